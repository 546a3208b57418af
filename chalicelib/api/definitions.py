"""Routes for workflow definitions: list, register, validate (dry run), get, compiled ASL."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from chalice import Blueprint

from chalicelib.api.auth import may_register, principal, require_definition, visible
from chalicelib.api.http import BODY_TYPES, handles_errors, json_response, query, read_body


def create_blueprint(services: Callable[[], Any]) -> Blueprint:
    bp = Blueprint(__name__)

    @bp.route("/definitions", methods=["GET"])
    @handles_errors
    def list_definitions() -> Any:
        from chalicelib.service.definitions import summary  # the compiler and model come with it

        return json_response([summary(r) for r in services().definitions.list() if visible(r, shared_ok=True)])

    @bp.route("/definitions", methods=["POST"], content_types=BODY_TYPES)
    @handles_errors
    def register_definition() -> Any:
        data = read_body(bp.current_request, allow_yaml=True)
        found = services()
        may_register(found, data.get("name") if isinstance(data, dict) else None)
        caller = principal()
        record = found.definitions.register(data, created_by=caller.id if caller.authenticated else None,
                                            tenant_id=caller.tenant_id)
        created = record.pop("created")
        return json_response(_full(record), 201 if created else 200)

    @bp.route("/definitions/validate", methods=["POST"], content_types=BODY_TYPES)
    @handles_errors
    def validate_definition() -> Any:
        data = read_body(bp.current_request, allow_yaml=True)
        return json_response(services().definitions.validate(data))

    @bp.route("/definitions/{name}", methods=["GET"])
    @handles_errors
    def get_definition(name: str) -> Any:
        record = require_definition(services(), name, query(bp.current_request).get("version"))
        return json_response(_full(record))

    @bp.route("/definitions/{name}/asl", methods=["GET"])
    @handles_errors
    def get_asl(name: str) -> Any:
        version = query(bp.current_request).get("version")
        require_definition(services(), name, version)
        return json_response(services().definitions.asl(name, version))

    return bp


def _full(record: dict[str, Any]) -> dict[str, Any]:
    from chalicelib.service.definitions import summary

    return {**summary(record), "definition": record.get("body"), "state_machine_arn": record.get("state_machine_arn")}
