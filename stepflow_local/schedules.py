"""Delivers the app's @app.schedule handlers locally: moto stores EventBridge schedules but never fires them."""

from __future__ import annotations

import importlib
import os
import re
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from stepflow_local.runtime import LocalRuntime

UNIT_SECONDS = {"minute": 60, "minutes": 60, "hour": 3600, "hours": 3600, "day": 86400, "days": 86400}
# How often to run every schedule locally; unset: each schedule's own rate.
INTERVAL_ENV = "STEPFLOW_LOCAL_SCHEDULE_SECONDS"


def rate_seconds(expression: Any) -> float | None:
    """Seconds between runs of a rate(...) schedule; None for cron, which the local runtime skips."""
    text = expression.to_string() if hasattr(expression, "to_string") else str(expression)
    match = re.fullmatch(r"rate\((\d+) (\w+)\)", text.strip())
    if not match:
        return None
    return int(match[1]) * UNIT_SECONDS[match[2]]


def scheduled_event(name: str, region: str) -> dict[str, Any]:
    """The shape EventBridge hands a scheduled Lambda (what chalice's generate_cw_event builds)."""
    return {"version": "0", "id": "local", "detail-type": "Scheduled Event", "source": "aws.events",
            "account": "123456789012", "time": datetime.now(UTC).isoformat(), "region": region,
            "resources": [f"arn:aws:events:{region}:123456789012:rule/{name}"], "detail": {}}


def deliver_schedules(app: Any, runtime: LocalRuntime) -> list[str]:
    """Registers every rate schedule of the app with the runtime's scheduler; returns their names."""
    override = os.environ.get(INTERVAL_ENV)
    names = []
    for source in getattr(app, "event_sources", []):
        expression = getattr(source, "schedule_expression", None)
        seconds = float(override) if override else rate_seconds(expression) if expression is not None else None
        if not seconds:
            continue
        module_name, attribute = source.handler_string.rsplit(".", 1)
        handler = getattr(importlib.import_module(module_name), attribute)
        name = source.name

        def run(handler: Any = handler, name: str = name) -> None:
            handler(scheduled_event(name, runtime.region), None)

        runtime.every(seconds, run, name=name)
        names.append(name)
    return names


CATCH_UP_SECONDS = 30.0  # real seconds


class ScaledClock:
    """The time workflow schedules are due by: real time, running 1/scale as fast from when it was made
    (STEPFLOW_LOCAL_TIME_SCALE=0.01: a `rate(1 minute)` schedule fires every 0.6 s)."""

    def __init__(self, scale: float):
        self.scale = scale if scale > 0 else 1.0
        self._origin = datetime.now(UTC)
        self._mono = time.monotonic()

    def now(self) -> datetime:
        return self._origin + timedelta(seconds=(time.monotonic() - self._mono) / self.scale)


def deliver_workflow_schedules(app_module: Any, runtime: LocalRuntime, scale: float = 1.0) -> Any:
    """Fires due workflow schedules the way EventBridge Scheduler does on AWS: the app's schedule_fired
    handler gets the schedule's key and the time it was due. Returns the scheduler job (cancel() stops it)."""
    clock = ScaledClock(scale)
    handler = app_module.schedule_fired
    # A tick held up (a busy machine) fires the times it passed; after a restart, older ones are a backfill's.
    catch_up = timedelta(seconds=CATCH_UP_SECONDS / clock.scale)

    def tick() -> None:
        for name, schedule_id, scheduled_at in app_module.services.schedules.due(clock.now(), catch_up):
            handler({"definition": name, "schedule_id": schedule_id, "scheduled_at": scheduled_at}, None)

    # Often enough that a fire is late by a fraction of the shortest rate (one minute, scaled), at most 1 s.
    return runtime.every(min(1.0, max(0.05, 60 * clock.scale / 6)), tick, name="workflow_schedules")
