"""Audit records: what one mutating request did, by whom, from where and why, with values kept out.

Pure: the HTTP edge (api/audit.py) hands over what it saw; this builds the record and the keys it is
found by. A record never holds a secret value, a credential, a task token or a callback key: the body
is summarised by an allowlist of plain fields (names, ids, reasons, decisions), every other field is
named without its value, and path parameters that are themselves credentials are masked.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Body fields whose (short, scalar) values say what was done without carrying data or secrets.
SUMMARY_FIELDS = frozenset({
    "name", "definition_name", "namespace", "version", "revision", "alias", "reason", "comment", "decision",
    "approved", "assignee", "assignee_id", "assignee_group", "claimant", "status", "enabled", "purge",
    "schedule_id", "trigger_id", "event", "event_name", "correlation_id", "outcome", "start", "from", "to",
    "cron", "rate", "timezone", "ttl_seconds", "wait_seconds", "description"})
# However a field is named in SUMMARY_FIELDS, a name like these is never recorded with its value.
SECRET_NAME = re.compile(r"secret|token|password|passwd|credential|signature|authorization|api[_-]?key|private",
                         re.IGNORECASE)
REASON_FIELDS = ("reason", "comment")
MAX_SCALAR = 200
MAX_FIELDS = 50
NONE_TENANT = "_"  # the scope of requests no tenant is named in (authentication off, shared definitions)


def scope(tenant: str | None) -> str:
    return f"t#{tenant if tenant else NONE_TENANT}"


def summarise(body: Any) -> dict[str, Any]:
    """The body's shape: allowlisted plain values as given (cut to MAX_SCALAR), every other top-level field
    by name only. A body that is not an object is described by its type."""
    if body is None:
        return {}
    if not isinstance(body, Mapping):
        return {"body": type(body).__name__}
    values: dict[str, Any] = {}
    others: list[str] = []
    for key in sorted(str(k) for k in body)[:MAX_FIELDS]:
        value = body[key]
        if key in SUMMARY_FIELDS and not SECRET_NAME.search(key) and _plain(value):
            values[key] = value[:MAX_SCALAR] if isinstance(value, str) else value
        else:
            others.append(key[:80])
    summary: dict[str, Any] = {}
    if values:
        summary["values"] = values
    if others:
        summary["fields"] = others
    return summary


def _plain(value: Any) -> bool:
    return value is None or isinstance(value, bool | int | float) or isinstance(value, str)


def target(route: str, params: Mapping[str, str], masked: Iterable[str], created: str | None = None) -> str:
    """The resource a request addressed: the route up to its last path parameter, filled in (a masked
    parameter stays `{name}`), e.g. `definitions/order/schedules/s1` for `.../schedules/{schedule_id}/pause`;
    a route without one (a create) names what it created when the answer said."""
    hidden = set(masked)
    parts = [p for p in route.strip("/").split("/") if p]
    last = max((i for i, p in enumerate(parts) if p.startswith("{")), default=-1)
    kept = parts[: last + 1] if last >= 0 else parts[:1]
    filled = []
    for part in kept:
        name = part[1:-1] if part.startswith("{") and part.endswith("}") else None
        filled.append(part if name is None or name in hidden else str(params.get(name, part))[:255])
    if last < 0 and created:
        filled.append(created[:255])
    return "/".join(filled)


def reason_of(body: Any, query: Mapping[str, str] | None) -> str | None:
    for source in (body if isinstance(body, Mapping) else {}, query or {}):
        for field in REASON_FIELDS:
            value = source.get(field)
            if isinstance(value, str) and value.strip():
                return value[:1000]
    return None


def record(*, record_id: str, at: str, expires_at: int, tenant: str | None, actor: str, operation: str,
           method: str, route: str, target_name: str, summary: Mapping[str, Any], reason: str | None,
           request_id: str, source_ip: str | None, status: int, authenticated: bool) -> dict[str, Any]:
    """The stored record, with the keys of the indexes that find it by actor, target and operation."""
    pk = scope(tenant)
    return {
        "pk": pk, "sk": f"{at}#{record_id}", "id": record_id, "at": at, "expires_at": expires_at,
        "tenant_id": tenant, "actor": actor, "authenticated": authenticated, "operation": operation,
        "method": method, "route": route, "target": target_name, "summary": dict(summary), "reason": reason,
        "request_id": request_id, "source_ip": source_ip, "status": status,
        "outcome": "ok" if status < 400 else ("refused" if status < 500 else "failed"),
        "actor_key": f"{pk}|{actor}", "target_key": f"{pk}|{target_name}", "operation_key": f"{pk}|{operation}",
    }


PUBLIC_FIELDS = ("id", "at", "tenant_id", "actor", "authenticated", "operation", "method", "route", "target",
                 "summary", "reason", "request_id", "source_ip", "status", "outcome")


def view(stored: Mapping[str, Any]) -> dict[str, Any]:
    """A record as GET /audit answers it (the index keys and the expiry left out)."""
    return {field: stored.get(field) for field in PUBLIC_FIELDS}
