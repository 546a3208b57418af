"""Timestamps in one format everywhere: ISO 8601, UTC, milliseconds, with a Z."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


def iso(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def as_iso(value: Any) -> str | None:
    """Formats datetimes; passes strings through; None stays None."""
    if value is None:
        return None
    return iso(value) if isinstance(value, datetime) else str(value)


def parse_iso(value: str) -> datetime:
    """The moment an `iso` string (or any ISO 8601 one with an offset or a Z) names, timezone-aware."""
    moment = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
