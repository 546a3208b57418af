"""Routes for instance events: read or follow the log (NDJSON or SSE), send an event into an instance or to
whichever instance waits for it (POST /events, message correlation), webhook callbacks.

A read returns what is there (after waiting up to `wait` seconds when nothing is) and the cursor to read
on from. `follow=true` asks for the log until the instance ends. API Gateway buffers a response until it
ends (and ends it at 29 s), so there a followed read is a long poll: it answers as soon as there are
events, or after `wait` (20 s by default) with none, never at the limit, always with the cursor; an
EventSource reconnects `retry` ms later by itself, sending the last `id:` it saw as Last-Event-ID, and
a 204 tells it that the instance has ended and it has everything. The local server, which can stream,
holds one connection open instead and writes each page as it comes (stepflow_local/http_server.py):
the `Stepflow-Follow` header of a followed answer tells it that the answer is one page of a stream.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from chalice import Blueprint, Response

from chalicelib.api.auth import actor, require_instance
from chalicelib.api.http import (
    BadRequest,
    bool_param,
    float_param,
    handles_errors,
    int_param,
    json_response,
    query,
    read_body,
)
from chalicelib.core import event_stream as es
from chalicelib.errors import InvalidInput

# Every query parameter the log's GET takes; any other is refused (400), not ignored.
READ_PARAMETERS = frozenset({"after", "limit", "wait", "follow", "sse"})


def create_blueprint(services: Callable[[], Any]) -> Blueprint:
    bp = Blueprint(__name__)

    @bp.route("/instances/{instance_id}/events", methods=["GET"])
    @handles_errors
    def read_events(instance_id: str) -> Any:
        request = bp.current_request
        params = query(request)
        unknown = sorted(set(params) - READ_PARAMETERS)
        if unknown:
            # A parameter this route does not know would otherwise be ignored without a word.
            raise BadRequest(f"unknown query parameter(s) {', '.join(repr(u) for u in unknown)}; this route takes "
                             f"{', '.join(sorted(READ_PARAMETERS))}")
        require_instance(services(), instance_id)
        follow = bool_param(params, "follow", False)
        as_sse = bool_param(params, "sse", False) or es.SSE in (request.headers.get("accept") or "")
        # The query's cursor wins over the header an EventSource sends when it reconnects.
        raw_cursor = params.get("after") or request.headers.get("last-event-id")
        try:
            after = es.parse_cursor(raw_cursor)
        except es.BadCursor as exc:
            raise BadRequest(f"'{'after' if params.get('after') else 'Last-Event-ID'}': {exc}") from None
        page = services().events.read(
            instance_id, after=after, limit=int_param(params, "limit", es.DEFAULT_LIMIT, 1, es.MAX_LIMIT),
            wait=float_param(params, "wait", es.MAX_WAIT_SECONDS if follow else 0.0, 0.0, es.MAX_WAIT_SECONDS))
        headers: dict[str, Any] = {"Cache-Control": "no-cache", "Stepflow-Instance-Status": str(page["status"]),
                   "Stepflow-More": "true" if page["more"] else "false",
                   "Stepflow-Ended": "true" if page["ended"] else "false"}
        if page["cursor"]:
            headers["Stepflow-Cursor"] = page["cursor"]
        if follow:
            headers["Stepflow-Follow"] = "true"
        if as_sse:
            if page["ended"] and not page["events"]:
                return Response(body="", status_code=204, headers=headers)
            retry = es.FOLLOW_RETRY_MS if follow else es.SSE_RETRY_MS
            return Response(body=es.sse(page["events"], retry), status_code=200,
                            headers={"Content-Type": f"{es.SSE}; charset=utf-8", **headers})
        return Response(body=es.ndjson(page["events"]), status_code=200,
                        headers={"Content-Type": es.NDJSON, **headers})

    @bp.route("/instances/{instance_id}/events", methods=["POST"])
    @handles_errors
    def send_event(instance_id: str) -> Any:
        from chalicelib.api.bodies import SendEvent
        from chalicelib.service.requests import parse_body

        request = parse_body(SendEvent, read_body(bp.current_request))
        require_instance(services(), instance_id)
        sent_by = actor({"sent_by": request.sent_by}, "sent_by")
        result = services().events.send(instance_id, request.data, step=request.step,
                                        event_type=request.event_type, sent_by=sent_by, event_id=request.id,
                                        ttl_seconds=request.ttl_seconds)
        return json_response(result, 202)

    @bp.route("/events", methods=["POST"])
    @handles_errors
    def publish_event() -> Any:
        """To the caller's tenant's instance whose receive step waits for the type and correlation key;
        kept for ttl_seconds when none waits yet (202 either way: `status` says which)."""
        from chalicelib.api.auth import tenant_for_write
        from chalicelib.api.bodies import PublishEvent
        from chalicelib.service.requests import parse_body

        request = parse_body(PublishEvent, read_body(bp.current_request))
        sent_by = actor({"sent_by": request.sent_by}, "sent_by")
        tenant = tenant_for_write(request.tenant_id)
        result = services().mailboxes.publish(tenant, request.type, request.correlation_key, request.data,
                                              event_id=request.id, sent_by=sent_by, keep=request.keep,
                                              ttl_seconds=request.ttl_seconds)
        return json_response(result, 202)

    @bp.route("/callbacks/{key}", methods=["POST"])
    @handles_errors
    def callback(key: str) -> Any:
        raw = bp.current_request.raw_body or b""
        data = read_body(bp.current_request) if raw.strip() else {}
        if not isinstance(data, dict):
            raise InvalidInput({"message": "a callback body is a JSON object (it becomes the step's output)",
                                "issues": []})
        task = services().events.callback(key, data)
        # The caller holds a key to one step: it learns that the step is done, nothing more.
        return json_response({"task_id": task["id"], "step_name": task["step_name"], "status": task["status"],
                              "completed_at": task["completed_at"]})

    return bp
