"""Routes for workflow instances: start, list, and one instance with its step history."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from chalice import Blueprint

from chalicelib.api.http import BadRequest, bool_param, handles_errors, int_param, json_response, query, read_body
from chalicelib.service.instances import MAX_PAGE
from chalicelib.service.requests import StartInstance, parse_body

STATUSES = ("pending", "running", "waiting", "completed", "failed", "canceled")


def create_blueprint(services: Callable[[], Any]) -> Blueprint:
    bp = Blueprint(__name__)

    @bp.route("/instances", methods=["POST"])
    @handles_errors
    def start_instance() -> Any:
        request = parse_body(StartInstance, read_body(bp.current_request))
        return json_response(services().instances.start(request), 201)

    @bp.route("/instances", methods=["GET"])
    @handles_errors
    def list_instances() -> Any:
        params = query(bp.current_request)
        status = params.get("status")
        if status is not None and status not in STATUSES:
            raise BadRequest(f"'status' must be one of {', '.join(STATUSES)}")
        return json_response(services().instances.list(
            status=status, workflow_name=params.get("workflow_name"),
            limit=int_param(params, "limit", 20, 1, MAX_PAGE), offset=int_param(params, "offset", 0, 0, 100_000),
        ))

    @bp.route("/instances/{instance_id}", methods=["GET"])
    @handles_errors
    def get_instance(instance_id: str) -> Any:
        with_outputs = bool_param(query(bp.current_request), "include_outputs", True)
        return json_response(services().instances.get(instance_id, with_outputs=with_outputs))

    return bp
