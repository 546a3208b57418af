"""Routes for a workflow's schedules: create, list, read, change, delete, pause, resume, backfill."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from chalice import Blueprint

from chalicelib.api.auth import definition_key, definition_scope, principal, visible
from chalicelib.api.http import handles_errors, json_response, query, read_body
from chalicelib.errors import InvalidInput, NotFound


def create_blueprint(services: Callable[[], Any]) -> Blueprint:
    bp = Blueprint(__name__)

    def next_count() -> int:
        from chalicelib.service.schedules import MAX_NEXT_RUNS

        raw = query(bp.current_request).get("next", "5")
        if not raw.isdigit() or not 0 <= int(raw) <= MAX_NEXT_RUNS:
            raise InvalidInput({"message": "the query is not valid", "issues": [{
                "code": "invalid_query", "location": "next",
                "message": f"'next' is a whole number from 0 to {MAX_NEXT_RUNS}"}]})
        return int(raw)

    def key_of(name: str, *, change: bool = False) -> str:
        """The key of the caller's definition of this name (names are per tenant and namespace; another
        tenant's is not found, as none is), when the caller may read (or change) it."""
        return definition_key(services(), name, query(bp.current_request), change=change)

    def owned(name: str, schedule_id: str, *, change: bool) -> str:
        """The workflow's key, when the caller may read (or change) it and the schedule is of the caller's
        tenant: another tenant's schedule (on a shared workflow) is not found."""
        key = key_of(name, change=change)
        if not visible(services().schedules.record(key, schedule_id)):
            raise NotFound(f"definition '{name}' has no schedule '{schedule_id[:64]}'")
        return key

    @bp.route("/definitions/{name}/schedules", methods=["POST"])
    @handles_errors
    def create_schedule(name: str) -> Any:
        """A new schedule; it starts the workflow from its next fire time on."""
        body = read_body(bp.current_request)
        found = services()
        key = key_of(name, change=True)
        who = principal()
        # The tenant the request addresses definitions for: the token's, or with authentication off the
        # `tenant_id` parameter's; runs start in it.
        tenant = definition_scope(query(bp.current_request))[0]
        return json_response(found.schedules.create(key, body, who.id if who.authenticated else None, tenant), 201)

    @bp.route("/definitions/{name}/schedules", methods=["GET"])
    @handles_errors
    def list_schedules(name: str) -> Any:
        return json_response([view for view in services().schedules.list(key_of(name)) if visible(view)])

    @bp.route("/definitions/{name}/schedules/{schedule_id}", methods=["GET"])
    @handles_errors
    def get_schedule(name: str, schedule_id: str) -> Any:
        """One schedule and its next fire times (`?next=N`, up to 50)."""
        key = owned(name, schedule_id, change=False)
        return json_response(services().schedules.get(key, schedule_id, next_count()))

    @bp.route("/definitions/{name}/schedules/{schedule_id}", methods=["PUT"])
    @handles_errors
    def update_schedule(name: str, schedule_id: str) -> Any:
        """Changes the fields given; the others keep their values."""
        body = read_body(bp.current_request)
        key = owned(name, schedule_id, change=True)
        return json_response(services().schedules.update(key, schedule_id, body))

    @bp.route("/definitions/{name}/schedules/{schedule_id}", methods=["DELETE"])
    @handles_errors
    def delete_schedule(name: str, schedule_id: str) -> Any:
        key = owned(name, schedule_id, change=True)
        services().schedules.delete(key, schedule_id)
        return json_response({"id": schedule_id, "deleted": True})

    @bp.route("/definitions/{name}/schedules/{schedule_id}/pause", methods=["POST"])
    @handles_errors
    def pause_schedule(name: str, schedule_id: str) -> Any:
        key = owned(name, schedule_id, change=True)
        return json_response(services().schedules.set_state(key, schedule_id, "paused"))

    @bp.route("/definitions/{name}/schedules/{schedule_id}/resume", methods=["POST"])
    @handles_errors
    def resume_schedule(name: str, schedule_id: str) -> Any:
        key = owned(name, schedule_id, change=True)
        return json_response(services().schedules.set_state(key, schedule_id, "enabled"))

    @bp.route("/definitions/{name}/schedules/{schedule_id}/backfill", methods=["POST"])
    @handles_errors
    def backfill_schedule(name: str, schedule_id: str) -> Any:
        """One run per fire time in [from, to] that has none yet (at most 100)."""
        body = read_body(bp.current_request)
        key = owned(name, schedule_id, change=True)
        return json_response(services().schedules.backfill(key, schedule_id, body))

    return bp
