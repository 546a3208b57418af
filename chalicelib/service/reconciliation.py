"""Keeping the instance index in step with Step Functions (InstanceService's reconciling half, mixed into
it): status-change events, the sweep's watch over instances whose end may have gone unseen, and
completion-webhook retries."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from chalicelib.aws.conditional_update import TransitionRefused
from chalicelib.core.history import STATUS_BY_EXECUTION
from chalicelib.core.runs import run_of_execution
from chalicelib.core.times import iso
from chalicelib.service.launches import WATCH

TERMINAL = frozenset({"completed", "failed", "canceled"})
WATCH_AGAIN = timedelta(minutes=10)  # a running instance checked and found running: checked again then
RECONCILE_BATCH = 500  # watches checked per sweep; the rest wait for the next one
log = logging.getLogger("stepflow.instances")


class Reconciliation:
    """Uses InstanceService's _store, _machines, _tasks, _notifier, _now, _summary, _log and _settle_end."""

    _store: Any
    _machines: Any
    _tasks: Any
    _notifier: Any
    _now: Any
    _summary: Any
    _log: Any
    _settle_end: Any

    def on_execution_event(self, detail: dict[str, Any]) -> str | None:
        """An EventBridge 'Step Functions Execution Status Change': an end is recorded (one describe for
        its output and error, one log read for the step outputs); other changes need nothing."""
        name = detail.get("name") or str(detail.get("executionArn", "")).rsplit(":", 1)[-1]
        record = self._store.get(run_of_execution(name)[0])
        if record is None or record.get("execution_arn") != detail.get("executionArn"):
            return None  # not ours, or an earlier run of a resumed instance
        status = STATUS_BY_EXECUTION.get(str(detail.get("status")), "running")
        if status not in TERMINAL or (record["status"] in TERMINAL and record.get("completed_at")):
            return record["status"]
        return self._settle_from_execution(record)["status"]

    def _settle_from_execution(self, record: dict[str, Any]) -> dict[str, Any]:
        """Describes the execution; if it ended, records the end. The record as it then stands."""
        execution = self._machines.describe(record["execution_arn"])
        status = STATUS_BY_EXECUTION.get(execution["status"], "running")
        if status not in TERMINAL:
            return record
        return self._settle_end(record, status, self._summary(record, self._log(record)), execution)

    def reconcile(self, limit: int = RECONCILE_BATCH) -> dict[str, int]:
        """Catches missed status events without reading healthy instances: only those on the sparse
        `watch` chore whose time has come (an end may have happened unseen: its launch was recorded, or
        a task of it closed, and no status event has settled it since). At most `limit` a sweep."""
        stats = {"watched": 0, "reconciled": 0}
        now = self._now()
        for record in self._store.due_chores(WATCH, iso(now), limit=limit):
            stats["watched"] += 1
            try:
                stats["reconciled"] += self._check_watch(record, now)
            except Exception:  # noqa: BLE001 - left for the next sweep; the others still get theirs
                log.warning("reconciling %s failed; the next sweep retries", record["id"], exc_info=True)
        return stats

    def _check_watch(self, record: dict[str, Any], now: datetime) -> int:
        if record.get("chore") != WATCH:
            return 0  # the index lags: its chore changed meanwhile
        if record["status"] not in TERMINAL and record.get("execution_arn"):
            settled = self._settle_from_execution(record)
            if settled["status"] in TERMINAL:
                return 1  # its end replaced the watch with the close chore
            waiting = self._tasks is not None and any(
                r["status"] == "pending" for r in self._tasks.for_instance(record["id"]))
            status = "waiting" if waiting else "running"
            changes: dict[str, Any] = {"status": status}
            # A waiting instance expects no status event until a task closes (which watches it again).
            changes.update({"chore": None, "chore_at": None} if waiting
                           else {"chore_at": iso(now + WATCH_AGAIN)})
            try:
                self._store.update(record["id"], changes, expect={"chore": WATCH, "status": record["status"]})
            except TransitionRefused:
                pass
            return 0
        try:
            self._store.update(record["id"], {"chore": None, "chore_at": None}, expect={"chore": WATCH})
        except TransitionRefused:
            pass
        return 0

    def watch(self, instance_id: str, *, after: timedelta = timedelta(0)) -> None:
        """Something happened after which the instance may end (a task of it closed): the sweep checks
        it unless a status event settles it first. Never replaces a launch or close chore."""
        try:
            self._store.watch(instance_id, iso(self._now() + after), WATCH)
        except TransitionRefused:
            pass

    def deliver_notifications(self) -> int:
        """Retries completion webhooks whose next attempt is due."""
        if self._notifier is None:
            return 0
        due = self._store.due_notifications(iso(self._now()))
        for record in due:
            self._notifier.notify(record)
        return len(due)
