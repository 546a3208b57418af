"""The overdue sweep of human tasks: escalates each due task once, sends due reminders once, and
redelivers interrupted completions (TaskService's part that runs on a schedule)."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from chalicelib.aws.conditional_update import TransitionRefused
from chalicelib.aws.task_store import public
from chalicelib.core.quorum import assignment_trail
from chalicelib.core.tasks import OPEN, OVERDUE_ERROR
from chalicelib.core.times import iso
from chalicelib.errors import Conflict, FieldErrors, Gone
from chalicelib.service.task_delivery import DEAD_TOKEN_ERRORS, error_code

ESCALATION_ACTOR = "stepflow:escalation"
DEFAULT_OVERDUE_ERROR = OVERDUE_ERROR
events_log = logging.getLogger("stepflow.events")


class Sweep:
    """Uses TaskService's _store, _machines, _publisher, _now, _declared, _finish and redeliver."""

    _store: Any
    _machines: Any
    _publisher: Any
    _now: Any
    _declared: Any
    _finish: Any
    redeliver: Any

    def sweep(self) -> dict[str, int]:
        """Escalates due tasks once, sends due reminders once, redelivers interrupted completions.

        Reads only the sparse indexes, so its cost follows the number of due items, not all tasks.
        """
        now = self._now()
        stats = {"read": 0, "escalated": 0, "reminded": 0, "redelivered": 0}
        for record in self._due("by_due", "due_state", "due_at", now):
            stats["read"] += 1
            stats["escalated"] += self._escalate(record, now)
        for record in self._due("by_reminder", "reminder_state", "reminder_at", now):
            stats["read"] += 1
            try:
                self._store.transition(record["id"], expect={"status": "pending"}, require=("reminder_state",),
                                       set_={"reminded_at": iso(now)}, remove=("reminder_state",), after=record,
                                       before=record)
            except TransitionRefused:
                continue
            self._publisher.publish("task.reminder", {"task": public(record)})
            stats["reminded"] += 1
        read, stats["redelivered"] = self.redeliver(now)
        stats["read"] += read
        return stats

    def _due(self, index: str, key: str, field: str, upto: datetime):
        start = None
        while True:
            items, start = self._store.query(index, key, OPEN, upto=(field, iso(upto)), start=start,
                                             newest_first=False)
            yield from items
            if not start:
                return

    def _escalate(self, record: dict[str, Any], now: datetime) -> int:
        escalation = record.get("escalation") or {}
        action = escalation.get("action", "notify")
        changes: dict[str, Any] = {"escalated_at": iso(now), "overdue_state": OPEN}
        if action == "reassign":
            # To a person, or to a group whose members can then claim it.
            changes["reassigned_from"] = record.get("assignee")
            changes["assignee"] = escalation.get("assignee")
            if escalation.get("assignee_group"):
                changes["assignee_group"] = escalation["assignee_group"]
            changes["assignments"] = assignment_trail(record, "escalated", ESCALATION_ACTOR, {
                "assignee": changes["assignee"], "group": changes.get("assignee_group", record.get("assignee_group"))},
                "overdue", iso(now))
        after = {**record, **changes}
        try:
            # Only the sweep that removes due_state escalates: overlapping sweeps cannot both win.
            self._store.transition(record["id"], expect={"status": "pending"}, require=("due_state",),
                                   set_=changes, remove=("due_state",), after=after, before=record)
        except TransitionRefused:
            return 0
        self._publisher.publish("task.overdue", {"task": public(after), "action": action})
        if action == "complete":
            try:
                output = self._declared(after, dict(escalation.get("output") or {}))
                self._finish(after, output, ESCALATION_ACTOR, "completed when overdue")
            except (Conflict, Gone):
                pass
            except FieldErrors as exc:
                # Registration checks the configured output; data that arrived since can still collide.
                # The task stays pending and overdue for a person to finish.
                events_log.warning("escalation output refused", extra={
                    "task_id": record["id"], "fields": [i["location"] for i in exc.detail["issues"]]})
        elif action == "fail":
            self._fail(after, escalation.get("error") or DEFAULT_OVERDUE_ERROR)
        return 1

    def _fail(self, record: dict[str, Any], error: str) -> None:
        try:
            self._store.transition(record["id"], expect={"status": "pending"}, set_={"status": "expired",
                                   "completed_at": iso(self._now()), "completed_by": ESCALATION_ACTOR},
                                   remove=("overdue_state", "reminder_state"), after={**record, "status": "expired"}, before=record)
        except TransitionRefused:
            return
        try:
            self._machines.send_failure(record["token"], error, f"task '{record['step_name']}' was not done in time")
        except Exception as exc:  # noqa: BLE001 - a dead token means the workflow stopped waiting anyway
            if error_code(exc) not in DEAD_TOKEN_ERRORS:
                raise

