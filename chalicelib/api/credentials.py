"""Routes for credentials: create, list, read (metadata only), rotate and delete the caller's tenant's secrets."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from chalice import Blueprint

from chalicelib.api.auth import principal
from chalicelib.api.http import BadRequest, handles_errors, int_param, json_response, query, read_body


def _caller() -> tuple[str | None, str | None]:
    """(tenant, user): with authentication off every credential is in the shared namespace."""
    who = principal()
    return (who.tenant_id, who.id) if who.authenticated else (None, None)


def create_blueprint(services: Callable[[], Any]) -> Blueprint:
    bp = Blueprint(__name__)

    @bp.route("/credentials", methods=["POST"])
    @handles_errors
    def create_credential() -> Any:
        """Stores a credential; its value is never read back."""
        body = read_body(bp.current_request)
        tenant, by = _caller()
        return json_response(services().credentials.create(tenant, body, by), 201)

    @bp.route("/credentials", methods=["GET"])
    @handles_errors
    def list_credentials() -> Any:
        """A page of the tenant's credentials (metadata only), by name within the page."""
        from chalicelib.api.cursors import open_cursor, seal
        from chalicelib.service.credentials import MAX_LIMIT, BadCursor

        params = query(bp.current_request)
        limit = int_param(params, "limit", 50, 1, MAX_LIMIT)
        tenant, _ = _caller()
        found = services()
        # Secrets Manager's own token, sealed for this caller's tenant: a forged one never reaches it.
        scope = {"list": "credentials"}
        token = open_cursor(found, params.get("cursor"), scope) if params.get("cursor") else None
        try:
            page = found.credentials.page(tenant, limit, token)
        except BadCursor as exc:
            raise BadRequest(str(exc)) from None
        return json_response(seal(found, page, scope))

    @bp.route("/credentials/{name}", methods=["GET"])
    @handles_errors
    def get_credential(name: str) -> Any:
        tenant, _ = _caller()
        return json_response(services().credentials.get(tenant, name))

    @bp.route("/credentials/{name}", methods=["PUT"])
    @handles_errors
    def update_credential(name: str) -> Any:
        """Rotates the value and/or changes the description."""
        body = read_body(bp.current_request)
        tenant, _ = _caller()
        return json_response(services().credentials.update(tenant, name, body))

    @bp.route("/credentials/{name}", methods=["DELETE"])
    @handles_errors
    def delete_credential(name: str) -> Any:
        """Deletes it at once: later steps that name it fail with Stepflow.CredentialMissing."""
        tenant, _ = _caller()
        return json_response(services().credentials.delete(tenant, name))

    return bp
