"""Routes for human tasks (the inbox) and approval gates over the same task records."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from chalice import Blueprint

from chalicelib.api.auth import actor, principal, require_may_act, require_task
from chalicelib.api.cursors import open_cursor, seal
from chalicelib.api.http import (
    BadRequest,
    bool_param,
    handles_errors,
    int_param,
    json_response,
    query,
    read_body,
    stage_root,
)
from chalicelib.api.listing import listing_tenant, unindexed_message
from chalicelib.core.listing import Unindexed
from chalicelib.errors import Forbidden


def create_blueprint(services: Callable[[], Any]) -> Blueprint:
    bp = Blueprint(__name__)

    def acting(task_id: str, model: str, field: str, *,
               may_act: bool = True) -> tuple[Any, str | None, dict[str, Any]]:
        """The parsed body, who acts, and the task as the guard read it (the service starts from it rather
        than reading it again); the task must be the caller's tenant's (404) and theirs to work (403)."""
        # The body models (pydantic) load with the first write, not at import: cold start serves reads too.
        from chalicelib.api import bodies
        from chalicelib.service.requests import parse_body

        request = parse_body(getattr(bodies, model), read_body(bp.current_request))
        who = actor(request.model_dump(include={field}), field, required_when_off=field != "reassigned_by")
        record = require_task(services(), task_id)
        if may_act:
            require_may_act(record)
        return request, who, record

    @bp.route("/tasks", methods=["GET"])
    @handles_errors
    def list_tasks() -> Any:
        from chalicelib.service.tasks import MAX_PAGE

        params = query(bp.current_request)
        limit = int_param(params, "limit", 20, 1, MAX_PAGE)
        tenant, foreign = listing_tenant(params)
        if foreign:
            return json_response({"items": [], "limit": limit, "next_cursor": None})
        found = services()
        # The cursor is bound to the caller's tenant and to the filters (which choose the index).
        selection = {"list": "tasks", "status": params.get("status"), "assignee_id": params.get("assignee_id"),
                     "assignee_group": params.get("assignee_group"), "instance_id": params.get("instance_id"),
                     "overdue": bool_param(params, "overdue"), "tenant_id": tenant,
                     "completed_by": params.get("completed_by")}
        try:
            page = found.tasks.list(
                tenant=tenant, status=selection["status"], assignee_id=selection["assignee_id"],
                assignee_group=selection["assignee_group"], instance_id=selection["instance_id"],
                overdue=selection["overdue"], completed_by=selection["completed_by"], limit=limit,
                start=open_cursor(found, params.get("cursor"), selection))
        except Unindexed as exc:
            raise BadRequest(unindexed_message(exc, {"assignee": "assignee_id"})) from None
        return json_response(seal(found, page, selection))

    @bp.route("/tasks/metrics", methods=["GET"])
    @handles_errors
    def task_metrics() -> Any:
        tenant, foreign = listing_tenant(query(bp.current_request))
        if foreign:  # another tenant's counters are not this caller's to read: nothing, as in the lists
            return json_response({"pending_by_group": {}, "pending_total": 0, "overdue_count": 0,
                                  "oldest_overdue_due_at": None, "oldest_overdue_age_seconds": None})
        return json_response(services().tasks.metrics(tenant=tenant))

    @bp.route("/tasks/{task_id}", methods=["GET"])
    @handles_errors
    def get_task(task_id: str) -> Any:
        return json_response(services().tasks.present(require_task(services(), task_id)))

    @bp.route("/tasks/{task_id}/callback", methods=["GET"])
    @handles_errors
    def get_task_callback(task_id: str) -> Any:
        """The callback URL of a waiting webhook step, for whoever may work the task (executor and up,
        assignee or group member or admin): the one deliberate read of the capability."""
        record = require_task(services(), task_id)
        require_may_act(record)
        view = services().tasks.callback_view(task_id)
        # The service knows the API prefix; the stage (or a custom domain's base path) is this request's.
        return json_response({**view, "callback_url": stage_root(bp.current_request) + view["callback_url"]})

    @bp.route("/tasks/{task_id}/complete", methods=["POST"])
    @handles_errors
    def complete_task(task_id: str) -> Any:
        request, who, record = acting(task_id, "CompleteTask", "completed_by")
        return json_response(services().tasks.complete(task_id, request.output_data, who, request.comment,
                                                       record=record))

    @bp.route("/tasks/{task_id}/reassign", methods=["POST"])
    @handles_errors
    def reassign_task(task_id: str) -> Any:
        request, who, record = acting(task_id, "ReassignTask", "reassigned_by")
        return json_response(services().tasks.reassign(task_id, request.new_assignee, request.reason, who,
                                                       new_group=request.new_group, record=record))

    @bp.route("/tasks/{task_id}/claim", methods=["POST"])
    @handles_errors
    def claim_task(task_id: str) -> Any:
        _, who, _ = acting(task_id, "ClaimTask", "user")
        return json_response(services().tasks.claim(task_id, who))

    @bp.route("/tasks/{task_id}/unclaim", methods=["POST"])
    @handles_errors
    def unclaim_task(task_id: str) -> Any:
        _, who, _ = acting(task_id, "ClaimTask", "user", may_act=False)  # only the claimer may unclaim (the service checks)
        return json_response(services().tasks.unclaim(task_id, who))

    @bp.route("/approvals/{task_id}", methods=["GET"])
    @handles_errors
    def get_approval(task_id: str) -> Any:
        return json_response(services().tasks.approval(task_id, record=require_task(services(), task_id)))

    @bp.route("/approvals/{task_id}/approve", methods=["POST"])
    @handles_errors
    def approve(task_id: str) -> Any:
        request, who, record = acting(task_id, "Decision", "decided_by")
        return json_response(services().tasks.decide(task_id, True, who, request.comment, record=record))

    @bp.route("/approvals/{task_id}/reject", methods=["POST"])
    @handles_errors
    def reject(task_id: str) -> Any:
        request, who, record = acting(task_id, "Decision", "decided_by")
        return json_response(services().tasks.decide(task_id, False, who, request.comment, record=record))

    def absent_user(user: str) -> tuple[str | None, str | None]:
        """(tenant, who acts) for a person's out-of-office entry: their own, or anyone's for an admin."""
        caller = principal()
        if not user or len(user) > 255:
            raise BadRequest("a user id has 1 to 255 characters")
        if caller.authenticated and caller.id != user and not caller.is_admin:
            raise Forbidden("only the person themself (or an admin) sets their out-of-office")
        tenant = caller.tenant_id if caller.authenticated else (query(bp.current_request).get("tenant_id") or None)
        return tenant, caller.id if caller.authenticated else None

    @bp.route("/users/{user}/out-of-office", methods=["GET"])
    @handles_errors
    def get_out_of_office(user: str) -> Any:
        tenant, _ = absent_user(user)
        return json_response(services().absences.get(tenant, user))

    @bp.route("/users/{user}/out-of-office", methods=["PUT"])
    @handles_errors
    def put_out_of_office(user: str) -> Any:
        from chalicelib.api import bodies
        from chalicelib.service.requests import parse_body

        tenant, who = absent_user(user)
        request = parse_body(bodies.OutOfOffice, read_body(bp.current_request))
        return json_response(services().absences.put(tenant, user, request.delegate, starts_at=request.starts_at,
                                                     until=request.until, reason=request.reason, by=who or user))

    @bp.route("/users/{user}/out-of-office", methods=["DELETE"])
    @handles_errors
    def delete_out_of_office(user: str) -> Any:
        tenant, _ = absent_user(user)
        return json_response(services().absences.delete(tenant, user))

    return bp
