"""Keeping the instance index in step with Step Functions (InstanceService's reconciling half, mixed into
it): status-change events, the sweep's watch over instances whose end may have gone unseen, and
completion-webhook retries."""

from __future__ import annotations

import logging
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

from chalicelib.aws.conditional_update import TransitionRefused
from chalicelib.core.history import STATUS_BY_EXECUTION
from chalicelib.core.runs import run_of_execution
from chalicelib.core.times import iso
from chalicelib.errors import NotFound
from chalicelib.service.launches import WATCH
from chalicelib.service.task_delivery import REDELIVERY_AFTER

TERMINAL = frozenset({"completed", "failed", "canceled"})
WATCH_AGAIN = timedelta(minutes=10)  # a running instance checked and found running: checked again then
RECONCILE_BATCH = 500  # watches checked per sweep; the rest wait for the next one
# A watched instance whose execution Step Functions does not know is checked this many times (one a
# sweep) before it ends as failed with EXECUTION_MISSING: a describe never succeeds again.
MAX_WATCH_MISSES = 3
EXECUTION_MISSING = "Stepflow.ExecutionNotFound"
log = logging.getLogger("stepflow.instances")


class Reconciliation:
    """Uses InstanceService's _store, _machines, _tasks, _notifier, _now, _summary, _log, _settle_end and _end."""

    _store: Any
    _machines: Any
    _tasks: Any
    _notifier: Any
    _now: Any
    _summary: Any
    _log: Any
    _settle_end: Any
    _end: Any

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
        a task of it was completed, and no status event has settled it since), and confirms the
        deliveries of their completions. At most `limit` a sweep."""
        stats: Counter[str] = Counter({"watched": 0, "reconciled": 0})
        now = self._now()
        for record in self._store.due_chores(WATCH, iso(now), limit=limit):
            stats["watched"] += 1
            try:
                self._check_watch(record, now, stats)
            except Exception:  # noqa: BLE001 - left for the next sweep; the others still get theirs
                log.warning("reconciling %s failed; the next sweep retries", record["id"], exc_info=True)
        return dict(stats)

    def _check_watch(self, record: dict[str, Any], now: datetime, stats: Counter[str]) -> None:
        if record.get("chore") != WATCH:
            return  # the index lags: its chore changed meanwhile
        live = record["status"] not in TERMINAL and bool(record.get("execution_arn"))
        tasks: list[dict[str, Any]] | None = None
        undecided = 0
        if record.get("deliveries") and self._tasks is not None:
            # Its completions first (one history read): a step that exited confirms its delivery; one
            # still waiting is sent again; if the execution has ended, its end settles the rest.
            tasks = self._tasks.records_of(record["id"])
            settled_deliveries = self._tasks.settle_deliveries(tasks, ended=record["status"] in TERMINAL)
            for outcome in ("confirmed", "resent", "expired"):
                if settled_deliveries[outcome]:
                    stats[f"completions_{outcome}"] += settled_deliveries[outcome]
            undecided = settled_deliveries["undecided"]
        if live:
            try:
                settled = self._settle_from_execution(record)
            except NotFound:
                self._execution_missing(record, now, stats)
                return
            if settled["status"] in TERMINAL:
                stats["reconciled"] += 1  # its end closed its tasks and settled what was left
                return
        if tasks is None:
            tasks = self._tasks.records_of(record["id"]) if self._tasks is not None and live else []
        changes: dict[str, Any] = {} if undecided else {"deliveries": None}
        if undecided:
            changes["chore_at"] = iso(now + REDELIVERY_AFTER)  # watched until every delivery is settled
        if live:
            waiting = any(t["status"] == "pending" for t in tasks)
            changes["status"] = "waiting" if waiting else "running"
            # A waiting instance expects no status event until a task of it is completed (which watches it).
            if not undecided:
                changes.update({"chore": None, "chore_at": None} if waiting
                               else {"chore_at": iso(now + WATCH_AGAIN)})
        elif not undecided:
            changes.update({"chore": None, "chore_at": None})
        if record.get("watch_misses"):
            changes["watch_misses"] = None
        # Pinned to the deliveries it confirmed: a completion meanwhile adds one, and keeps the watch.
        pinned = {"deliveries": record["deliveries"]} if record.get("deliveries") else {}
        try:
            self._store.update(record["id"], changes, expect={"chore": WATCH, "status": record["status"], **pinned},
                               absent=() if pinned else ("deliveries",))
        except TransitionRefused:
            pass

    def _execution_missing(self, record: dict[str, Any], now: datetime, stats: Counter[str]) -> None:
        """The instance's execution does not exist (gone with Step Functions' retention, or never made):
        checked again at the next sweeps, and after MAX_WATCH_MISSES checks the instance ends as failed,
        so its tasks close and it is never described again."""
        misses = int(record.get("watch_misses") or 0) + 1
        if misses < MAX_WATCH_MISSES:
            try:
                self._store.update(record["id"], {"watch_misses": misses},
                                   expect={"chore": WATCH, **({"watch_misses": misses - 1} if misses > 1 else {})},
                                   absent=() if misses > 1 else ("watch_misses",))
            except TransitionRefused:
                pass
            stats["executions_missing"] += 1
            return
        message = (f"Step Functions has no execution for this instance (not found in {misses} checks); "
                   "how it ended is unknown")
        self._end(record, {"status": "failed", "completed_at": iso(now), "output": None, "watch_misses": None,
                           "error": {"error": EXECUTION_MISSING, "message": message},
                           "context": record.get("context") if record.get("context") is not None else record.get("input")})
        stats["ended_without_execution"] += 1

    def deliver_notifications(self) -> int:
        """Retries completion webhooks whose next attempt is due and that their timer has not sent."""
        if self._notifier is None:
            return 0
        due = self._store.due_notifications(iso(self._notifier.sweep_horizon(self._now())))
        for record in due:
            self._notifier.notify(record)
        return len(due)
