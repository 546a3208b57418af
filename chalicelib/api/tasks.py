"""Routes for human tasks (the inbox) and approval gates over the same task records."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from chalice import Blueprint
from pydantic import Field

from chalicelib.api.http import bool_param, handles_errors, int_param, json_response, query, read_body
from chalicelib.service.requests import _Body, parse_body
from chalicelib.service.tasks import MAX_PAGE


class CompleteTask(_Body):
    output_data: dict[str, Any]
    completed_by: str = Field(min_length=1, max_length=255)
    comment: str | None = Field(None, max_length=2000)


class ReassignTask(_Body):
    new_assignee: str = Field(min_length=1, max_length=255)
    reason: str | None = Field(None, max_length=1000)
    reassigned_by: str | None = Field(None, max_length=255)


class ClaimTask(_Body):
    user: str = Field(min_length=1, max_length=255)


class Decision(_Body):
    decided_by: str = Field(min_length=1, max_length=255)
    comment: str | None = Field(None, max_length=2000)


def create_blueprint(services: Callable[[], Any]) -> Blueprint:
    bp = Blueprint(__name__)

    def body(model: type[_Body]) -> Any:
        return parse_body(model, read_body(bp.current_request))

    @bp.route("/tasks", methods=["GET"])
    @handles_errors
    def list_tasks() -> Any:
        params = query(bp.current_request)
        return json_response(services().tasks.list(
            status=params.get("status"), assignee_id=params.get("assignee_id"),
            assignee_group=params.get("assignee_group"), instance_id=params.get("instance_id"),
            overdue=bool_param(params, "overdue"), limit=int_param(params, "limit", 20, 1, MAX_PAGE),
            cursor=params.get("cursor"),
        ))

    @bp.route("/tasks/metrics", methods=["GET"])
    @handles_errors
    def task_metrics() -> Any:
        return json_response(services().tasks.metrics())

    @bp.route("/tasks/{task_id}", methods=["GET"])
    @handles_errors
    def get_task(task_id: str) -> Any:
        return json_response(services().tasks.view(task_id))

    @bp.route("/tasks/{task_id}/complete", methods=["POST"])
    @handles_errors
    def complete_task(task_id: str) -> Any:
        request = body(CompleteTask)
        return json_response(services().tasks.complete(task_id, request.output_data, request.completed_by,
                                                       request.comment))

    @bp.route("/tasks/{task_id}/reassign", methods=["POST"])
    @handles_errors
    def reassign_task(task_id: str) -> Any:
        request = body(ReassignTask)
        return json_response(services().tasks.reassign(task_id, request.new_assignee, request.reason,
                                                       request.reassigned_by))

    @bp.route("/tasks/{task_id}/claim", methods=["POST"])
    @handles_errors
    def claim_task(task_id: str) -> Any:
        return json_response(services().tasks.claim(task_id, body(ClaimTask).user))

    @bp.route("/tasks/{task_id}/unclaim", methods=["POST"])
    @handles_errors
    def unclaim_task(task_id: str) -> Any:
        return json_response(services().tasks.unclaim(task_id, body(ClaimTask).user))

    @bp.route("/approvals/{task_id}", methods=["GET"])
    @handles_errors
    def get_approval(task_id: str) -> Any:
        return json_response(services().tasks.approval(task_id))

    @bp.route("/approvals/{task_id}/approve", methods=["POST"])
    @handles_errors
    def approve(task_id: str) -> Any:
        request = body(Decision)
        return json_response(services().tasks.decide(task_id, True, request.decided_by, request.comment))

    @bp.route("/approvals/{task_id}/reject", methods=["POST"])
    @handles_errors
    def reject(task_id: str) -> Any:
        request = body(Decision)
        return json_response(services().tasks.decide(task_id, False, request.decided_by, request.comment))

    return bp
