"""Out of office: a person names a delegate, and tasks opened for them meanwhile go to the delegate
(the task registrar reads the entry; core/quorum.py out_of_office_delegate says when it holds)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from chalicelib.core.times import iso
from chalicelib.errors import InvalidInput, NotFound


class AbsenceService:
    def __init__(self, store: Any, now: Callable[[], datetime]):
        self._store = store
        self._now = now

    def get(self, tenant: str | None, user: str) -> dict[str, Any]:
        found = self._store.absence(tenant, user)
        if found is None:
            raise NotFound(f"'{user}' has no out-of-office entry")
        return _view(found)

    def put(self, tenant: str | None, user: str, delegate: str, *, starts_at: datetime | None = None,
            until: datetime | None = None, reason: str | None = None, by: str | None = None) -> dict[str, Any]:
        if delegate == user:
            raise InvalidInput({"message": "the request body is not valid", "issues": [
                {"code": "invalid", "location": "delegate", "message": "a delegate is someone else"}]})
        if until is not None and until <= (starts_at or self._now()):
            raise InvalidInput({"message": "the request body is not valid", "issues": [
                {"code": "invalid", "location": "until", "message": "'until' is after now (and after starts_at)"}]})
        record = {"user": user, "delegate": delegate, "starts_at": iso(starts_at) if starts_at else None,
                  "until": iso(until) if until else None, "reason": reason, "set_by": by, "set_at": iso(self._now())}
        self._store.put_absence(tenant, record)
        return _view(record)

    def delete(self, tenant: str | None, user: str) -> dict[str, Any]:
        if not self._store.delete_absence(tenant, user):
            raise NotFound(f"'{user}' has no out-of-office entry")
        return {"user": user, "deleted": True}


def _view(record: dict[str, Any]) -> dict[str, Any]:
    return {name: record.get(name) for name in ("user", "delegate", "starts_at", "until", "reason", "set_by", "set_at")}
