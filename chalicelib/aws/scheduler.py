"""EventBridge Scheduler adapter: one schedule per Stepflow schedule, flexible window off, invoking the
schedule_fired Lambda with the schedule's key and the time it was due (Scheduler's own scheduled-time)."""

from __future__ import annotations

import json
from typing import Any

from chalicelib.errors import Unavailable

# Scheduler substitutes the time the run was due into the target's input.
SCHEDULED_TIME = "<aws.scheduler.scheduled-time>"
MAX_NAME = 64


class EventBridgeSchedules:
    def __init__(self, client: Any, target_arn: str, role_arn: str, prefix: str, group: str = "default"):
        self._client = client
        self._target_arn = target_arn
        self._role_arn = role_arn
        self._prefix = prefix
        self._group = group

    def name_of(self, schedule_id: str) -> str:
        return (self._prefix + schedule_id)[-MAX_NAME:]

    def put(self, record: dict[str, Any]) -> None:
        """Creates or updates the schedule as the record says (so a retry after a failure converges)."""
        request: dict[str, Any] = {
            "Name": self.name_of(record["id"]), "GroupName": self._group,
            "ScheduleExpression": record["expression"], "ScheduleExpressionTimezone": record["timezone"],
            "FlexibleTimeWindow": {"Mode": "OFF"},
            "State": "DISABLED" if record.get("state") == "paused" else "ENABLED",
            "Target": {"Arn": self._target_arn, "RoleArn": self._role_arn,
                       "Input": json.dumps({"definition": record["definition_name"], "schedule_id": record["id"],
                                            "scheduled_at": SCHEDULED_TIME}),
                       "RetryPolicy": {"MaximumRetryAttempts": 5, "MaximumEventAgeInSeconds": 3600}},
        }
        if record.get("start_date"):
            request["StartDate"] = record["start_date"]
        if record.get("end_date"):
            request["EndDate"] = record["end_date"]
        try:
            try:
                self._client.create_schedule(**request)
            except self._client.exceptions.ConflictException:
                self._client.update_schedule(**request)
        except Exception as exc:  # botocore errors: the caller retries; nothing else changed yet
            raise Unavailable("the schedule could not be set on EventBridge Scheduler; try again") from exc

    def delete(self, schedule_id: str) -> None:
        """Deletes it; one already gone counts as deleted."""
        try:
            self._client.delete_schedule(Name=self.name_of(schedule_id), GroupName=self._group)
        except self._client.exceptions.ResourceNotFoundException:
            return
        except Exception as exc:
            raise Unavailable("the schedule could not be deleted on EventBridge Scheduler; try again") from exc


class LocalSchedules:
    """No EventBridge Scheduler: the local runtime fires due schedules itself (stepflow_local/schedules.py)."""

    def put(self, record: dict[str, Any]) -> None:
        return None

    def delete(self, schedule_id: str) -> None:
        return None
