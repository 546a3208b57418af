"""The audit log at the HTTP edge: the middleware that records every mutating request, and GET /audit.

The middleware wraps the authentication middleware (app.py registers it just outside), so every route,
whichever blueprint adds it, is recorded with no code of its own: one record per POST, PUT, PATCH or
DELETE whose caller is known (authentication off, a verified token, or a by-key route), refused ones
(403, 4xx) and failed ones (5xx) included. A request whose token is missing or invalid (401) names no
caller and no tenant, and is left to the request log.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from chalice import Blueprint, Response

from chalicelib.api import auth
from chalicelib.api.cursors import open_cursor, seal
from chalicelib.api.http import BadRequest, handles_errors, int_param, json_response, query
from chalicelib.core import audit
from chalicelib.errors import Forbidden

logger = logging.getLogger("stepflow.audit")

FILTERS = ("actor", "target", "operation")
MAX_BODY_FOR_SUMMARY = 256 * 1024


def make_middleware(services: Callable[[], Any], operation_of: Callable[[str, str], str]) -> Callable[..., Any]:
    """The http middleware; `operation_of(method, resource path)` names the operation (its operationId)."""

    def audit_middleware(event: Any, get_response: Callable[[Any], Any]) -> Any:
        if event.method not in audit.MUTATING:
            return get_response(event)
        with auth.identified() as callers:
            response = get_response(event)
        if not callers:
            return response
        try:
            _record(services(), operation_of, event, response, callers[-1])
        except Exception:  # noqa: BLE001 - never turn a done change into an error answer
            logger.exception("audit record could not be built")
        return response

    return audit_middleware


def _record(found: Any, operation_of: Callable[[str, str], str], event: Any, response: Any, caller: Any) -> None:
    from chalicelib.observability import current_request_id

    context = getattr(event, "context", None) or {}
    resource = context.get("resourcePath") or event.path
    prefix = found.settings.api_prefix.rstrip("/")
    route = resource[len(prefix):] if prefix and resource.startswith(prefix + "/") else resource
    body = _body(event)
    params = dict(event.query_params or {})
    tenant = caller.tenant_id if caller.authenticated else _named_tenant(body, params)
    guard = auth.guard_for(event.method, resource, found.settings.api_prefix)
    # On a by-key route the key in the path is the credential: it is never recorded.
    masked = set(event.uri_params or {}) if guard.role == auth.BY_KEY else set()
    status = int(response.status_code)
    created = _created(response) if status < 300 else None
    found.audit.append(
        tenant=tenant, actor=caller.id, authenticated=caller.authenticated,
        operation=operation_of(event.method, resource), method=event.method, route=route,
        target_name=audit.target(route, event.uri_params or {}, masked, created),
        summary=audit.summarise(body), reason=audit.reason_of(body, params),
        request_id=current_request_id() or context.get("requestId") or "",
        source_ip=(context.get("identity") or {}).get("sourceIp"), status=status)


def _body(event: Any) -> Any:
    raw = event.raw_body or b""
    if not raw or len(raw) > MAX_BODY_FOR_SUMMARY:
        return None
    content_type = ((event.headers or {}).get("content-type") or "application/json").split(";")[0].strip().lower()
    if content_type != "application/json":
        return {"content_type": content_type[:80]}
    try:
        return json.loads(raw)
    except ValueError:
        return {"unreadable": True}


def _named_tenant(body: Any, params: dict[str, str]) -> str | None:
    named = params.get("tenant_id") or (body.get("tenant_id") if isinstance(body, dict) else None)
    return named if isinstance(named, str) and 0 < len(named) <= auth.MAX_TENANT else None


def _created(response: Any) -> str | None:
    body = response.body
    if isinstance(body, str | bytes) and len(body) <= MAX_BODY_FOR_SUMMARY:
        try:
            body = json.loads(body)
        except ValueError:
            return None
    if isinstance(body, dict):
        for field in ("id", "name"):
            if isinstance(body.get(field), str):
                return str(body[field])
    return None


def create_blueprint(services: Callable[[], Any]) -> Blueprint:
    bp = Blueprint(__name__)

    def _selection() -> tuple[str | None, dict[str, str], str | None, str | None, dict[str, Any]]:
        params = query(bp.current_request)
        tenant = _tenant(params)
        filters = {name: params[name][:1024] for name in FILTERS if params.get(name)}
        since, until = _instant(params, "since"), _instant(params, "until")
        if since and until and since > until:
            raise BadRequest("'since' must not be after 'until'")
        return tenant, filters, since, until, params

    @bp.route("/audit", methods=["GET"])
    @handles_errors
    def list_audit_records() -> Any:
        """A page of the tenant's audit log, newest first, filtered by actor, target, operation and time."""
        tenant, filters, since, until, params = _selection()
        limit = int_param(params, "limit", 50, 1, 200)
        found = services()
        selection = {"list": "audit", "tenant_id": tenant, **filters, "since": since, "until": until}
        after = open_cursor(found, params.get("cursor"), selection)
        if after is not None and not (isinstance(after, dict) and all(isinstance(v, str) for v in after.values())):
            raise BadRequest("cursor is not valid: use the next_cursor of a previous page, or start without it")
        page = found.audit.page(tenant, filters, since, until, limit, after)
        return json_response(seal(found, page, selection))

    @bp.route("/audit/export", methods=["GET"])
    @handles_errors
    def export_audit_records() -> Any:
        """The matching audit records as NDJSON (one JSON object a line, newest first)."""
        tenant, filters, since, until, _ = _selection()
        records = services().audit.export(tenant, filters, since, until)
        text = "".join(json.dumps(record, separators=(",", ":"), default=str) + "\n" for record in records)
        return Response(body=text, status_code=200, headers={
            "Content-Type": "application/x-ndjson", "Content-Disposition": 'attachment; filename="audit.ndjson"'})

    return bp


def _tenant(params: dict[str, str]) -> str | None:
    """The caller's tenant; with authentication off, the one `tenant_id` names (none: the tenant-less log)."""
    caller = auth.principal()
    named = params.get("tenant_id") or None
    if named is not None and len(named) > auth.MAX_TENANT:
        raise BadRequest(f"'tenant_id' has at most {auth.MAX_TENANT} characters")
    if not caller.authenticated:
        return named
    if named is not None and named != caller.tenant_id:
        raise Forbidden("the audit log of another tenant is not yours to read")
    return caller.tenant_id


def _instant(params: dict[str, str], name: str) -> str | None:
    raw = params.get(name)
    if not raw:
        return None
    from datetime import datetime

    from chalicelib.core.times import iso

    try:
        return iso(datetime.fromisoformat(raw.replace("Z", "+00:00")))
    except (ValueError, TypeError):
        raise BadRequest(f"'{name}' must be an ISO 8601 time, e.g. 2026-01-31T12:00:00Z") from None
