"""Publishes Stepflow's lifecycle events to an EventBridge bus for other systems."""

from __future__ import annotations

import json
from typing import Any

from chalicelib.observability import logger

SOURCE = "stepflow"


class EventPublisher:
    def __init__(self, events: Any, bus_name: str):
        self._events = events
        self._bus = bus_name

    def publish(self, detail_type: str, detail: dict[str, Any]) -> None:
        """Best effort: a failed publish is logged, never fails the request that caused it."""
        try:
            result = self._events.put_events(Entries=[{
                "Source": SOURCE, "DetailType": detail_type, "Detail": json.dumps(detail, default=str),
                "EventBusName": self._bus,
            }])
            if result.get("FailedEntryCount"):
                logger.warning("event not published", extra={"detail_type": detail_type})
        except Exception:  # noqa: BLE001 - notification must not break the action it reports
            logger.exception("event publish failed", extra={"detail_type": detail_type})
