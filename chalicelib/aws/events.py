"""Publishes Stepflow's lifecycle events to an EventBridge bus for other systems."""

from __future__ import annotations

import json
from typing import Any

from chalicelib.observability import logger

SOURCE = "stepflow"
MAX_ENTRIES = 10  # PutEvents takes at most 10 entries...
MAX_BATCH_BYTES = 200_000  # ...of at most 256 KB together; a margin for the fields around the detail


class PublishFailed(Exception):
    """EventBridge did not take every entry (the caller retries them)."""


class EventPublisher:
    def __init__(self, events: Any, bus_name: str):
        self._events = events
        self._bus = bus_name

    def publish(self, detail_type: str, detail: dict[str, Any]) -> None:
        """Best effort: a failed publish is logged, never fails the request that caused it."""
        try:
            self.publish_all([(detail_type, detail)])
        except Exception:  # noqa: BLE001 - notification must not break the action it reports
            logger.exception("event publish failed", extra={"detail_type": detail_type})

    def publish_all(self, events: list[tuple[str, dict[str, Any]]]) -> int:
        """Publishes every (detail type, detail), in order, as few PutEvents as fit; PublishFailed when an
        entry was refused (the entries before it were taken: a retry publishes them again)."""
        batch: list[dict[str, Any]] = []
        size = 0
        for detail_type, detail in events:
            entry = {"Source": SOURCE, "DetailType": detail_type, "Detail": json.dumps(detail, default=str),
                     "EventBusName": self._bus}
            entry_size = len(entry["Detail"]) + len(detail_type) + len(SOURCE)
            if batch and (len(batch) == MAX_ENTRIES or size + entry_size > MAX_BATCH_BYTES):
                self._put(batch)
                batch, size = [], 0
            batch.append(entry)
            size += entry_size
        if batch:
            self._put(batch)
        return len(events)

    def _put(self, entries: list[dict[str, Any]]) -> None:
        result = self._events.put_events(Entries=entries)
        if result.get("FailedEntryCount"):
            codes = sorted({e.get("ErrorCode") for e in result.get("Entries", []) if e.get("ErrorCode")})
            logger.warning("events not published", extra={"failed": result["FailedEntryCount"], "codes": codes})
            raise PublishFailed(f"{result['FailedEntryCount']} of {len(entries)} events not published: {codes}")
