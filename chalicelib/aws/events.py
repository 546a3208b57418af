"""Publishes Stepflow's lifecycle events to an EventBridge bus for other systems."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from chalicelib.observability import logger

if TYPE_CHECKING:  # a development dependency only: the Lambda package has no stubs
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_events.type_defs import PutEventsRequestEntryTypeDef

SOURCE = "stepflow"
MAX_ENTRIES = 10  # PutEvents takes at most 10 entries...
MAX_BATCH_BYTES = 200_000  # ...of at most 256 KB together; a margin for the fields around the detail


class PublishFailed(Exception):
    """EventBridge did not take every entry (the caller retries them)."""


class EventPublisher:
    def __init__(self, events: EventBridgeClient, bus_name: str):
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
        batch: list[PutEventsRequestEntryTypeDef] = []
        size = 0
        for detail_type, detail in events:
            entry: PutEventsRequestEntryTypeDef = {
                "Source": SOURCE, "DetailType": detail_type, "Detail": json.dumps(detail, default=str),
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

    def _put(self, entries: list[PutEventsRequestEntryTypeDef]) -> None:
        result = self._events.put_events(Entries=entries)
        if result.get("FailedEntryCount"):
            codes = sorted({code for e in result.get("Entries", []) if (code := e.get("ErrorCode"))})
            logger.warning("events not published", extra={"failed": result["FailedEntryCount"], "codes": codes})
            raise PublishFailed(f"{result['FailedEntryCount']} of {len(entries)} events not published: {codes}")
