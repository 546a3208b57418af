"""What the schedule operations answer: a workflow's schedules and a backfill's runs."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from chalicelib.core.responses.common import Closed, JsonObject, Timestamp


class Schedule(Closed):
    """A cron or rate expression in a time zone that starts the workflow when due."""

    id: str
    name: str = Field(description="The workflow it starts")
    tenant_id: str | None = Field(description="The tenant its runs belong to (its creator's)")
    expression: str = Field(description="EventBridge Scheduler syntax: `rate(5 minutes)`, `cron(0 9 ? * MON-FRI *)`")
    timezone: str = Field(description="The IANA time zone the cron fields are read in")
    start_date: Timestamp | None
    end_date: Timestamp | None
    overlap: Literal["skip", "buffer_one", "allow"]
    input: JsonObject = Field(description="Each run's input, plus `scheduled_at`")
    revision: int | str | None
    alias: str | None
    description: str | None
    state: Literal["enabled", "paused"]
    created_at: Timestamp
    created_by: str | None
    updated_at: Timestamp
    last_scheduled_at: Timestamp | None = Field(description="The latest scheduled time that started a run")
    last_instance_id: str | None
    queued_instance_id: str | None = Field(description="buffer_one: the run waiting for the open one to end")
    last_error: str | None = Field(description="Why the latest fire started nothing (an inactive workflow...)")
    fired: int
    skipped: int = Field(description="Fires the overlap policy skipped")
    next_runs: list[Timestamp] = Field(description="The next fire times (none while paused)")


class ScheduleRemoved(Closed):
    id: str
    deleted: Literal[True]


class BackfillRun(Closed):
    scheduled_at: Timestamp
    outcome: Literal["started", "already_started", "failed", "gone", "outside_dates", "paused", "skipped", "queued",
                     "invalid"]
    instance_id: str | None = None


class Backfill(Closed):
    name: str
    schedule_id: str
    runs: list[BackfillRun]
