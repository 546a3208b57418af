"""The inline-definition side of POST /instances: who may send one, and the named start it becomes."""

from __future__ import annotations

from typing import Any

from chalicelib.api.auth import actor, definition_scope, principal
from chalicelib.errors import Forbidden, InvalidInput

# An inline definition is registered, so it needs what registering needs: an operator who may only
# start instances (executor) runs registered workflows, never arbitrary ones of its own.
INLINE_ROLE = "editor"


def workflow_named(services: Any, body: dict[str, Any], namespace: str | None = None) -> dict[str, Any]:
    """The start body naming its workflow: as sent when it has `definition_name`; with an inline
    `definition`, that definition registered as the tenant's anonymous one (in the body's namespace, or
    else the query's `namespace`) and named in its place."""
    inline, named = "definition" in body, "definition_name" in body
    if inline == named:
        raise _invalid("definition_name", "name the workflow to start with 'definition_name', or send it inline "
                       "as 'definition'" + (", not both" if inline else ""))
    if not inline:
        return body
    if "revision" in body or "alias" in body:
        # An inline definition is one revision, registered by this request: there is nothing to pin.
        raise _invalid("revision" if "revision" in body else "alias", "an inline 'definition' runs as sent: "
                       "'revision' and 'alias' name revisions of a registered workflow")
    caller = principal()
    if caller.authenticated and not caller.has(INLINE_ROLE):
        raise Forbidden(f"an inline definition is registered to run: this needs the {INLINE_ROLE} role"
                        + (f"; you have {caller.role}" if caller.role else ""))
    from chalicelib.service.adhoc import register_inline
    from chalicelib.service.requests import StartInstance, parse_body

    rest = {k: v for k, v in body.items() if k != "definition"}
    # Every other field is checked before the definition is stored (the name is a stand-in here).
    request = parse_body(StartInstance, {**rest, "definition_name": "inline"})
    tenant, scoped = definition_scope({"tenant_id": request.tenant_id, "namespace": namespace}, request.namespace)
    record = register_inline(services.definitions, body["definition"], tenant_id=tenant, namespace=scoped,
                             created_by=actor(request.model_dump(include={"user_id"}), "user_id"),
                             input_data=request.input_data)
    return {**rest, "definition_name": record["name"]}


def _invalid(location: str, message: str) -> InvalidInput:
    """A start body that names its workflow wrongly: well-formed, so 422 with the field it is about."""
    return InvalidInput({"message": message, "issues": [{"code": "invalid", "location": location, "message": message}]})
