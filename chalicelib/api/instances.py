"""Routes for workflow instances: start (idempotent, or to start later, or of an inline definition),
run and wait, results, listing with filters, one instance with its step history, cancel, retry, resume,
cleanup."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from chalice import Blueprint

from chalicelib.api.auth import (
    actor,
    definition_scope,
    principal,
    require_definition,
    require_instance,
    tenant_for_write,
)
from chalicelib.api.cursors import open_cursor, seal
from chalicelib.api.http import (
    BadRequest,
    bool_param,
    float_param,
    handles_errors,
    int_param,
    json_response,
    query,
    read_body,
    url_of,
)
from chalicelib.api.listing import listing_tenant, unindexed_message
from chalicelib.core.listing import Unindexed
from chalicelib.errors import InvalidInput

STATUSES = ("pending", "running", "waiting", "completed", "failed", "canceled")
FILTERS = ("workflow_name", "correlation_id", "created_by", "status", "origin_instance", "origin_tenant_id")
API_NAMES = {"workflow_name": "definition_name"}
API_LABELS = {"definition_name": "workflow_name"}
MAX_KEY = 255
MAX_STEP_ID = 64
MAX_RUN_WAIT = 25.0  # a run answers within API Gateway's 29 s integration timeout
RETRY_AFTER = 2  # seconds a client waits before asking a 202's Location again


def create_blueprint(services: Callable[[], Any]) -> Blueprint:
    bp = Blueprint(__name__)

    def idempotency_key() -> str | None:
        key = bp.current_request.headers.get("idempotency-key")
        if key is not None and not 0 < len(key) <= MAX_KEY:
            raise BadRequest(f"Idempotency-Key must be 1 to {MAX_KEY} characters")
        return key

    def located(path: str) -> str:
        return url_of(bp.current_request, services().settings.api_prefix, path)

    def result_response(code: int, body: dict[str, Any]) -> Any:
        """An ended instance's result (200), or 202 saying where and when to ask again."""
        if code != 202:
            return json_response(body, code)
        url = located(f"/instances/{body['id']}/result")
        return json_response({**body, "result_url": url}, 202, {"Location": url, "Retry-After": str(RETRY_AFTER)})

    def optional_body() -> dict[str, Any]:
        raw = bp.current_request.raw_body
        if not raw or not raw.strip():
            return {}
        body = read_body(bp.current_request)
        if body is None:
            return {}
        if not isinstance(body, dict):
            raise InvalidInput({"message": "the body must be a JSON object", "issues": []})
        return body

    def owned(request: Any) -> tuple[Any, dict[str, Any]]:
        """Who starts it and for which tenant come from the token when authentication is on; the
        definition as the guard read it (the start uses it rather than reading it again)."""
        if request.revision is not None and request.alias is not None:
            raise InvalidInput({"message": "give 'revision' or 'alias', not both: a start runs one revision",
                                "issues": [{"code": "conflicting_fields", "location": "alias",
                                            "message": "give 'revision' or 'alias', not both"}]})
        found = services()
        # The definition of this name in the tenant the instance is for (and its namespace, from the body
        # or the query).
        scope = definition_scope({"tenant_id": request.tenant_id,
                                  "namespace": query(bp.current_request).get("namespace")}, request.namespace)
        definition = require_definition(found, request.definition_name, scope=scope)
        user = actor(request.model_dump(include={"user_id"}), "user_id")
        return request.model_copy(update={"user_id": user, "tenant_id": tenant_for_write(request.tenant_id),
                                          "namespace": scope[1]}), definition

    @bp.route("/instances", methods=["POST"])
    @handles_errors
    def start_instance() -> Any:
        from chalicelib.service.requests import StartInstance, parse_body  # pydantic: loaded by the first start

        body = read_body(bp.current_request)
        params = query(bp.current_request)
        if "start" in params and isinstance(body, dict):
            # ?start=false is the same as "start": false in the body; the two must not disagree.
            start = bool_param(params, "start", True)
            if "start" in body and body["start"] != start:
                raise BadRequest("'start' is in the query and the body with different values")
            body = {**body, "start": start}
        if isinstance(body, dict):
            from chalicelib.api.adhoc import workflow_named

            body = workflow_named(services(), body, params.get("namespace"))
        request, definition = owned(parse_body(StartInstance, body))
        view, created = services().instances.start(request, idempotency_key(), definition=definition)
        return json_response(view, 201 if created else 200, {"Location": located(f"/instances/{view['id']}")})

    @bp.route("/definitions/{name}/run", methods=["POST"])
    @handles_errors
    def run_definition(name: str) -> Any:
        body = optional_body()
        from chalicelib.service.requests import RunInstance, parse_body

        params = query(bp.current_request)
        if "wait_seconds" in params:  # the query's, as the body's (they may not disagree)
            wait = float_param(params, "wait_seconds", MAX_RUN_WAIT, 0.0, MAX_RUN_WAIT)
            if "wait_seconds" in body and body["wait_seconds"] != wait:
                raise BadRequest("'wait_seconds' is in the query and the body with different values")
            body = {**body, "wait_seconds": wait}
        request, _ = owned(parse_body(RunInstance, {**body, "definition_name": name}))
        code, result = services().instances.run(request, request.wait_seconds, idempotency_key())
        return result_response(code, result)

    @bp.route("/instances", methods=["GET"])
    @handles_errors
    def list_instances() -> Any:
        from chalicelib.service.instances import MAX_PAGE

        params = query(bp.current_request)
        status = params.get("status")
        if status is not None and status not in STATUSES:
            raise BadRequest(f"'status' must be one of {', '.join(STATUSES)}")
        limit = int_param(params, "limit", 20, 1, MAX_PAGE)
        filters = {API_NAMES.get(f, f): params.get(f) or None for f in FILTERS}
        tenant, foreign = listing_tenant(params)
        if foreign:
            return json_response({"items": [], "limit": limit, "offset": 0, "next_cursor": None})
        for field in ("started_after", "started_before"):
            if params.get(field) and not _looks_like_time(params[field]):
                raise BadRequest(f"'{field}' must be an ISO 8601 time such as 2026-01-31T12:00:00Z")
        offset = int_param(params, "offset", 0, 0, MAX_PAGE)
        if offset > limit:
            # Skipped items are still read: an offset is held to one page. Pages follow next_cursor.
            raise BadRequest(f"'offset' may be at most 'limit' ({limit}); follow next_cursor for later pages")
        found = services()
        include_deleted = bool_param(params, "include_deleted")
        # The cursor is bound to the caller's tenant and to the filters (which choose the index).
        selection = {"list": "instances", **filters, "tenant_id": tenant, "started_after": params.get("started_after"),
                     "started_before": params.get("started_before"), "include_deleted": include_deleted}
        try:
            page = found.instances.list(
                filters=filters, tenant=tenant, started_after=params.get("started_after"),
                started_before=params.get("started_before"), include_deleted=include_deleted, limit=limit,
                start=open_cursor(found, params.get("cursor"), selection), offset=offset)
        except Unindexed as exc:
            raise BadRequest(unindexed_message(exc, API_LABELS, "include_deleted=true" if include_deleted else "")) \
                from None
        return json_response(seal(found, page, selection))

    @bp.route("/instances/{instance_id}", methods=["GET"])
    @handles_errors
    def get_instance(instance_id: str) -> Any:
        record = require_instance(services(), instance_id)  # read once: the view starts from it
        params = query(bp.current_request)
        with_outputs = bool_param(params, "include_outputs", True)
        # One step's input at a time: every step's would repeat the data once per step.
        input_of = params.get("input_of")
        if input_of is not None and not 0 < len(input_of) <= MAX_STEP_ID:
            raise BadRequest(f"'input_of' must be a step id of 1 to {MAX_STEP_ID} characters")
        return json_response(services().instances.get(instance_id, with_outputs=with_outputs,
                                                      input_of=input_of, record=record))

    @bp.route("/instances/{instance_id}/history", methods=["GET"])
    @handles_errors
    def get_history(instance_id: str) -> Any:
        """The execution history itself, a page at a time, for who wants Step Functions' own account."""
        from chalicelib.service.instances import MAX_HISTORY_PAGE

        found = services()
        record = require_instance(found, instance_id)
        params = query(bp.current_request)
        runs = record.get("runs") or ([{"execution_arn": record["execution_arn"]}] if record.get("execution_arn") else [])
        run = int_param(params, "run", len(runs) - 1 if runs else 0, 0, max(len(runs) - 1, 0))
        selection = {"list": "history", "instance_id": instance_id, "run": run}
        token = open_cursor(found, params.get("cursor"), selection)
        page = found.instances.history(record, run, token, int_param(params, "limit", 100, 1, MAX_HISTORY_PAGE))
        return json_response(seal(found, page, selection))

    @bp.route("/instances/{instance_id}", methods=["DELETE"])
    @handles_errors
    def delete_instance(instance_id: str) -> Any:
        require_instance(services(), instance_id)
        purge = bool_param(query(bp.current_request), "purge")
        return json_response(services().instances.delete(instance_id, purge=purge))

    @bp.route("/instances/{instance_id}/start", methods=["POST"])
    @handles_errors
    def start_pending(instance_id: str) -> Any:
        require_instance(services(), instance_id)
        return json_response(services().instances.start_pending(instance_id))

    @bp.route("/instances/{instance_id}/result", methods=["GET"])
    @handles_errors
    def get_result(instance_id: str) -> Any:
        require_instance(services(), instance_id)
        code, body = services().instances.result(instance_id)
        return result_response(code, body)

    @bp.route("/instances/{instance_id}/cancel", methods=["POST"])
    @handles_errors
    def cancel_instance(instance_id: str) -> Any:
        require_instance(services(), instance_id)
        params = query(bp.current_request)
        reason = params.get("reason")
        if reason is not None and len(reason) > 1000:
            raise BadRequest("'reason' must be text of at most 1,000 characters")
        reason = reason or optional_body().get("reason")
        if reason is not None and (not isinstance(reason, str) or len(reason) > 1000):
            message = "'reason' must be text of at most 1,000 characters"
            raise InvalidInput({"message": message, "issues": [{"code": "invalid", "location": "reason",
                                                                "message": message}]})
        if bool_param(params, "purge"):
            return json_response(services().instances.cancel_and_purge(instance_id, reason))
        return json_response(services().instances.cancel(instance_id, reason))

    @bp.route("/instances/{instance_id}/continue", methods=["POST"])
    @handles_errors
    def continue_instance(instance_id: str) -> Any:
        require_instance(services(), instance_id)
        body = optional_body()
        unknown = sorted(set(body) - {"input_data"})
        if unknown:
            raise _invalid(unknown[0], f"unknown field(s) {', '.join(unknown)}: a continuation takes only 'input_data'")
        data = body.get("input_data", {})
        if not isinstance(data, dict):
            raise _invalid("input_data", "'input_data' must be a JSON object")
        caller = principal()
        view = services().instances.continue_run(instance_id, data, caller.id if caller.authenticated else None)
        return json_response(view, 201, {"Location": located(f"/instances/{view['id']}")})

    @bp.route("/instances/{instance_id}/retry", methods=["POST"])
    @handles_errors
    def retry_instance(instance_id: str) -> Any:
        require_instance(services(), instance_id)
        caller = principal()
        return json_response(services().instances.retry(instance_id, caller.id if caller.authenticated else None), 201)

    @bp.route("/instances/{instance_id}/resume", methods=["POST"])
    @handles_errors
    def resume_instance(instance_id: str) -> Any:
        require_instance(services(), instance_id)
        return json_response(services().instances.resume(instance_id))

    return bp


def _looks_like_time(text: str) -> bool:
    from datetime import datetime

    try:
        datetime.fromisoformat(text.replace("Z", "+00:00"))
        return True
    except ValueError:
        return False


def _invalid(location: str, message: str) -> InvalidInput:
    """A well-formed body that is wrong: 422 with the located issue (the error contract, docs/api.md)."""
    return InvalidInput({"message": message, "issues": [{"code": "invalid", "location": location, "message": message}]})
