"""Routes for workflow definitions: list, register, replace (PUT), deactivate or purge, validate (dry run),
get, compiled ASL."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from chalice import Blueprint

from chalicelib.api.auth import (
    definition_scope,
    may_change,
    principal,
    refuse_reserved,
    require_definition,
    visible,
)
from chalicelib.api.http import BODY_TYPES, bool_param, handles_errors, json_response, query, read_body
from chalicelib.api.listing import listing_tenant
from chalicelib.api.routing import FORM_ENCODED


def source_of(request: Any) -> tuple[str, str]:
    """The body as submitted (read_body has already bounded and decoded it) and its format."""
    content_type = (request.headers.get("content-type") or "application/json").split(";")[0].strip().lower()
    text = (request.raw_body or b"").decode("utf-8")
    # A body sent without its own Content-Type (`curl -d` labels it form-encoded) is JSON when it reads as JSON.
    unlabelled_json = content_type == FORM_ENCODED and text.lstrip().startswith("{")
    return text, ("json" if content_type == "application/json" or unlabelled_json else "yaml")


def create_blueprint(services: Callable[[], Any]) -> Blueprint:
    bp = Blueprint(__name__)

    def register(name: str | None) -> Any:
        request = bp.current_request
        data = read_body(request, allow_yaml=True)
        source, source_format = source_of(request)
        found = services()
        tenant, namespace = definition_scope(query(request))
        # The name is the caller's tenant's (and namespace's): another tenant's of the same name is not
        # touched, nor revealed; registering it makes the caller's own.
        named = name if name is not None else (data.get("name") if isinstance(data, dict) else None)
        refuse_reserved(named)
        key = found.definitions.resolve(named, tenant, namespace)
        caller = principal()
        record = found.definitions.register(data, created_by=caller.id if caller.authenticated else None,
                                            tenant_id=tenant, source=source, source_format=source_format,
                                            name=name, key=key)
        created = record.pop("created")
        return json_response(_full(record), 201 if created else 200)

    @bp.route("/definitions", methods=["GET"])
    @handles_errors
    def list_definitions() -> Any:
        from chalicelib.core.definition_keys import listing
        from chalicelib.service.definitions import summary  # the compiler and model come with it

        params = query(bp.current_request)
        tenant, foreign = listing_tenant(params)
        _, namespace = definition_scope({"namespace": params.get("namespace")})
        if foreign:
            return json_response([])
        # Anonymous definitions (inline starts) are left out unless asked for; by name they read as any other.
        listed = services().definitions.list(bool_param(params, "include_inactive"),
                                             bool_param(params, "include_adhoc"))
        records = listing(listed, tenant, namespace)
        return json_response([summary(dict(r)) for r in records if visible(r, shared_ok=True)])

    @bp.route("/definitions", methods=["POST"], content_types=BODY_TYPES)
    @handles_errors
    def register_definition() -> Any:
        return register(None)

    @bp.route("/definitions/{name}", methods=["PUT"], content_types=BODY_TYPES)
    @handles_errors
    def put_definition(name: str) -> Any:
        """Registers a new revision when the content changed; the same one when it did not."""
        return register(name)

    @bp.route("/definitions/{name}", methods=["DELETE"])
    @handles_errors
    def delete_definition(name: str) -> Any:
        """Deactivates (new starts refused); with purge=true (admin) removes it once no instance is open."""
        found = services()
        params = query(bp.current_request)
        key = may_change(found, name, definition_scope(params))["key"]
        caller = principal()
        by = caller.id if caller.authenticated else None
        if bool_param(params, "purge"):
            def automation(definition_key: str) -> None:
                # Its schedules (and their EventBridge schedules) and its webhook triggers go with it.
                found.schedules.delete_all(definition_key)
                found.triggers.delete_all(definition_key)

            return json_response(found.definitions.purge(key, by, found.instance_store.open_count, automation))
        return json_response(found.definitions.deactivate(key, by))

    @bp.route("/definitions/validate", methods=["POST"], content_types=BODY_TYPES)
    @handles_errors
    def validate_definition() -> Any:
        data = read_body(bp.current_request, allow_yaml=True)
        caller = principal()
        return json_response(services().definitions.validate(data, caller.tenant_id if caller.authenticated else None))

    @bp.route("/definitions/{name}", methods=["GET"])
    @handles_errors
    def get_definition(name: str) -> Any:
        params = query(bp.current_request)
        record = require_definition(services(), name, params.get("version"), params.get("revision"),
                                    definition_scope(params))
        return json_response(_full(record))

    @bp.route("/definitions/{name}/asl", methods=["GET"])
    @handles_errors
    def get_asl(name: str) -> Any:
        params = query(bp.current_request)
        version, revision = params.get("version"), params.get("revision")
        key = require_definition(services(), name, version, revision, definition_scope(params))["key"]
        return json_response(services().definitions.asl(key, version, revision))

    return bp


def _full(record: dict[str, Any]) -> dict[str, Any]:
    from chalicelib.service.definitions import summary

    return {**summary(record), "definition": record.get("body"), "state_machine_arn": record.get("state_machine_arn")}
