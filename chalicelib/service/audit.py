"""The audit log: appends one record per mutating request, and reads a tenant's records back."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from chalicelib.core import audit
from chalicelib.core.times import iso

logger = logging.getLogger("stepflow.audit")

MAX_PAGE = 200
EXPORT_LIMIT = 10_000


class AuditLog:
    def __init__(self, store: Any, clock: Callable[[], datetime], retention_days: int):
        self._store = store
        self._clock = clock
        self._retention = timedelta(days=retention_days)

    def append(self, **fields: Any) -> dict[str, Any]:
        """Builds and stores the record (core/audit.py `record` takes `fields`). A record that cannot be stored
        is written to the log whole, at ERROR level, so it is not lost; the request's answer stands."""
        now = self._clock()
        entry = audit.record(record_id=uuid.uuid4().hex, at=iso(now),
                             expires_at=int((now + self._retention).timestamp()), **fields)
        try:
            self._store.append(entry)
        except Exception as exc:  # noqa: BLE001 - the change is made; the record must survive somewhere
            logger.error("audit record not stored (%s): %s", type(exc).__name__,
                         json.dumps(audit.view(entry), default=str))
        return entry

    def page(self, tenant: str | None, filters: dict[str, str], since: str | None, until: str | None,
             limit: int, after: dict[str, str] | None) -> dict[str, Any]:
        items, last = self._store.page(audit.scope(tenant), filters, since, until, limit, after)
        return {"items": [audit.view(item) for item in items], "limit": limit, "next_cursor": last}

    def export(self, tenant: str | None, filters: dict[str, str], since: str | None,
               until: str | None) -> list[dict[str, Any]]:
        """Every matching record, newest first, up to EXPORT_LIMIT (narrow the time range for more)."""
        found: list[dict[str, Any]] = []
        after = None
        while len(found) < EXPORT_LIMIT:
            page = self.page(tenant, filters, since, until, min(MAX_PAGE, EXPORT_LIMIT - len(found)), after)
            found += page["items"]
            after = page["next_cursor"]
            if not after:
                break
        return found
