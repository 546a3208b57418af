"""Completing a task so that it converges, with nothing written after Step Functions took it, and closing
the tasks of an ended instance (TaskService's delivering half, mixed into it).

A completion is one TransactWriteItems that decides it: the task `completed` with the sparse
`outbox_state` mark, its tenant's counters, `task.completed` in the instance's event log at a seq
taken now (so it precedes what the resumed workflow writes), and the instance watched (the `watch`
chore, unless another chore stands, and one more delivery for it to confirm). Then SendTaskSuccess,
and nothing more. The watch's visit, REDELIVERY_AFTER later, reads the instance's marked completions
with one execution history read: the step exited (our send landed: the mark is removed), still waits
(the send was lost: it is sent again) or ended otherwise (the task expires, and task.completed at its
seq becomes task.expired). A process may stop anywhere; each of these steps is safe to repeat. The
sweep's by_outbox pass is the backstop for marks no watch settled within OUTBOX_BACKSTOP.
"""

from __future__ import annotations

import logging
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

from chalicelib.aws.conditional_update import TransitionRefused
from chalicelib.core.definition_keys import task_key
from chalicelib.core.history import summarise
from chalicelib.core.runs import run_of_execution
from chalicelib.core.tasks import OPEN, resumed_state
from chalicelib.core.times import iso
from chalicelib.errors import Conflict, Gone, NotFound

# A completion whose delivery is still unconfirmed this long after the completing write may have been
# cut short: the instance's watch comes due then, and sends it again if the step still waits.
REDELIVERY_AFTER = timedelta(seconds=30)
# Marks no watch has settled by then (its instance had another chore, or is gone) are redelivered from
# the by_outbox index: late enough that a healthy completion is never read there.
OUTBOX_BACKSTOP = timedelta(hours=1)
# Step Functions' answers when a token no longer waits (AWS says TaskTimedOut; moto says InvalidToken).
DEAD_TOKEN_ERRORS = frozenset({"TaskTimedOut", "InvalidToken", "TaskDoesNotExist"})
CLOSED_ATTRIBUTES = ("due_state", "reminder_state", "overdue_state")
WATCH = "watch"  # the instance chore that confirms deliveries (service/launches.py, service/reconciliation.py)
STOPPED_WAITING = "the workflow no longer waits for this task"
GONE = "gone"  # a step status: the execution no longer exists
FENCE_TRIES = 3  # a completion's events stamped again when a reader of the log had read past them
events_log = logging.getLogger("stepflow.events")


class Delivery:
    """Uses TaskService's _store, _machines, _loader, _events, _instances, _now, _due, _present,
    _require_pending and get."""

    _store: Any
    _machines: Any
    _loader: Any
    _events: Any
    _instances: Any
    _now: Any
    _due: Any
    _require_pending: Any
    _present: Any
    get: Any

    # -- completing --------------------------------------------------------------------------
    def _finish(self, record: dict[str, Any], output: dict[str, Any], completed_by: str,
                comment: str | None, *, received: dict[str, Any] | None = None,
                consume: dict[str, Any] | None = None,
                also_set: dict[str, Any] | None = None, also_expect: dict[str, Any] | None = None,
                also_absent: tuple[str, ...] = ()) -> dict[str, Any]:
        """The one transaction that decides the completion, then SendTaskSuccess; the task's view.

        `consume`: one more write (a TransactWriteItems item: a mailbox taking the event) that stands or
        falls with the completion; when its condition refuses, TransitionRefused(part=1) is raised.
        `also_set`/`also_expect`/`also_absent`: more attributes written with it and conditions it holds
        to (a quorum's decisions: the deciding vote completes the task only on the decisions it counted)."""
        now = self._now()
        instance_id = _instance_of(record)
        logged = self._events is not None and bool(instance_id)
        closed = CLOSED_ATTRIBUTES
        floor: str | None = None
        for attempt in range(FENCE_TRIES):
            # Seqs taken now, before the workflow resumes, so these events precede what the next step writes.
            received_seq = self._events.stamp(after=floor) if logged and received is not None else None
            seq = self._events.stamp(after=floor) if logged else None
            after = {**{k: v for k, v in record.items() if k not in closed}, "status": "completed",
                     "completed_at": iso(now), "completed_by": completed_by, "comment": comment,
                     "output_data": output, "completed_seq": seq, **(also_set or {})}
            also: list[dict[str, Any]] = [consume] if consume is not None else []
            if received_seq:
                also.append(self._events.put_request(instance_id, received_seq, "event.received", {
                    "task_id": record["id"], "kind": record.get("kind"), **(received or {})},
                    step=record.get("step_name")))
            if seq:
                also.append(self._events.put_request(instance_id, seq, "task.completed", _completed_data(after),
                                                     step=record.get("step_name")))
            if self._instances is not None and instance_id:
                also.append(self._instances.watch_request(instance_id, iso(now + REDELIVERY_AFTER), WATCH))
            fence_part = 0
            if seq:
                # Holds only while no reader of the log has read past these seqs (core/event_stream.py).
                also.append(self._events.fence_request(instance_id, received_seq or seq))
                fence_part = len(also)
            try:
                # The one write that decides who completed the task; outbox_state marks it unconfirmed.
                self._store.transition(
                    record["id"], expect={"status": "pending", "attempt": record["attempt"], **(also_expect or {})},
                    set_={"status": "completed", "completed_at": iso(now), "completed_by": completed_by,
                          "comment": comment, "output_data": output, "outbox_state": OPEN, "completed_seq": seq,
                          **(also_set or {})},
                    remove=closed, absent=also_absent, after=after, before=record, also=tuple(also))
                break
            except TransitionRefused as exc:
                if fence_part and exc.part == fence_part and attempt < FENCE_TRIES - 1:
                    floor = self._events.fence_of(instance_id)  # a reader read past the seqs: stamp them again
                    continue
                if consume is not None and exc.part == 1:
                    raise  # the mailbox changed: its caller reads it again
                if exc.part:
                    raise Gone("the instance of this task no longer exists") from None
                self._require_pending(self.get(record["id"]))
                raise Conflict("the task changed while it was being completed; reload it") from None
        # Gone when the step no longer waits; not delivered yet (a passing failure): the watch resends it.
        self._deliver(after)
        return self._present(after)

    def _deliver(self, record: dict[str, Any], *, redelivery: bool = False) -> bool:
        """SendTaskSuccess with the resumed state. True: sent (a first send writes nothing more); False:
        not delivered yet (the mark stays, it is sent again later); Gone: the step stopped waiting."""
        sent = self._send(record)
        if sent is None:
            return False
        if sent:
            if redelivery or self._instances is None:
                self._confirmed(record)  # no watch comes to confirm it (or this is the one that does)
            return True
        if not redelivery and self._machines.find(record["execution_arn"]) is None:
            # Not a step that stopped waiting: its execution is gone (a local runtime restarted on its kept
            # store). The run that continues the instance re-enters the step and is handed this completion
            # (deliver_to_run); until then it stays marked, as an undelivered one does.
            return False
        # A first send finds the token dead only if the step stopped waiting. A redelivery may also find
        # it spent by our own earlier send (the process stopped before the mark was removed).
        spent_by_us = self._sent_before(record) if redelivery else False
        if spent_by_us is None:
            return False  # the history does not tell yet: asked again later
        if spent_by_us:
            self._confirmed(record)
            return True
        self._expire(record, STOPPED_WAITING)
        raise Gone("the task expired before it was completed; its workflow no longer waits for it")

    def _send(self, record: dict[str, Any]) -> bool | None:
        """True: Step Functions took it; False: the token is dead; None: a passing failure."""
        order = self._loader.load(task_key(record), record["revision"]).order
        state = resumed_state(record.get("snapshot") or {}, record["step_name"], record["output_data"], order)
        try:
            self._machines.send_success(record["token"], state)
        except Exception as exc:  # noqa: BLE001 - sorted here: a dead token or a passing failure
            return False if error_code(exc) in DEAD_TOKEN_ERRORS else None
        return True

    def _sent_before(self, record: dict[str, Any]) -> bool | None:
        """Whether our own earlier SendTaskSuccess is what spent the token of this completed task.

        The token lives only in our store and only the writer that won the completing write sends it;
        nothing else can make a waiting callback step succeed. So if the execution's history shows the
        step exited (succeeded), that earlier send of ours landed: the completion stands. If the step
        ended any other way, the token died before our send: expired. While the history still shows the
        step waiting (it may trail a send by a moment), None: undecided, asked again later.
        """
        status = self._step_statuses(record["execution_arn"], [record]).get(record["id"])
        if status == "succeeded":
            return True
        # GONE: lost with a restarted local runtime: the run that continues the instance takes it.
        return None if status in ("waiting", "running", GONE) else False

    def deliver_to_run(self, record: dict[str, Any], run: dict[str, Any]) -> None:
        """A completed task whose step a later run of its instance waits on again, because the run the
        completion was for is gone (a local runtime restarted on its kept store): the later run gets the
        completion under its own token (`run`: token, execution_arn, revision, snapshot), and the task
        is never opened again. TransitionRefused when the task changed meanwhile (the caller reads it again)."""
        moved = {**record, **run}
        self._store.transition(record["id"], expect={"status": "completed", "attempt": record.get("attempt")},
                               set_=run, after=moved, before=record)
        if moved.get("outbox_state"):
            # Never confirmed: delivered now under the new token (its task.completed was logged with the
            # completing write), and the mark removed.
            self._deliver(moved, redelivery=True)
            return
        order = self._loader.load(task_key(moved), moved["revision"]).order
        self._machines.send_success(run["token"], resumed_state(run["snapshot"], moved["step_name"],
                                                                moved["output_data"], order))

    def carried(self, instance_id: str, steps: set[str]) -> int:
        """The instance's marked completions of `steps`, whose outputs a continuing run carries (its
        earlier execution is gone): settled as delivered. How many."""
        settled = 0
        for record in self._store.for_instance(instance_id):
            if record.get("outbox_state") and record.get("status") == "completed" and record["step_name"] in steps:
                self._confirmed(record)
                settled += 1
        return settled

    def _step_statuses(self, execution_arn: str, records: list[dict[str, Any]]) -> dict[str, str | None]:
        """Each task's step status in its execution's history (one read): task id -> status (None: the
        step is not there; GONE: the execution no longer exists)."""
        try:
            events = self._machines.history(execution_arn)
        except NotFound:
            return {r["id"]: GONE for r in records}
        # One execution runs one revision of one workflow.
        loaded = self._loader.load(task_key(records[0]), records[0]["revision"])
        steps = summarise(events, {s.id: s.type for s in loaded.definition.steps}).steps
        return {r["id"]: (steps[r["step_name"]].status if r["step_name"] in steps else None) for r in records}

    def _confirmed(self, record: dict[str, Any]) -> None:
        """The completion stands: its mark is removed (once; a mark already gone is left so)."""
        try:
            self._store.transition(record["id"], require=("outbox_state",), remove=("outbox_state",),
                                   after=record, before=record)
        except TransitionRefused:
            pass

    def _expire(self, record: dict[str, Any], reason: str) -> None:
        """The completion did not reach the workflow: the task expires, and its task.completed in the log
        becomes task.expired at the same seq, in the same transaction (never one without the other)."""
        changes = {"set_": {"status": "expired", "closed_reason": reason}, "remove": ("outbox_state",),
                   "after": {**record, "status": "expired"}, "before": record}
        instance_id = _instance_of(record)
        floor: str | None = None
        for attempt in range(FENCE_TRIES):
            # A completion logged nowhere (no seq kept) gets its task.expired at a fresh seq, behind no reader.
            fresh = not record.get("completed_seq") and self._events is not None
            seq = self._events.stamp(after=floor) if fresh else record.get("completed_seq")
            also: tuple[dict[str, Any], ...] = ()
            if self._events is not None and instance_id and seq:
                also = (self._events.put_request(instance_id, seq, "task.expired", {
                    "task_id": record["id"], "kind": record.get("kind"), "reason": reason},
                    step=record.get("step_name"), replace="task.completed"),)
                if fresh:
                    also += (self._events.fence_request(instance_id, seq),)
            try:
                self._store.transition(record["id"], require=("outbox_state",), also=also, **changes)
                return
            except TransitionRefused as exc:
                if len(also) == 2 and exc.part == 2 and attempt < FENCE_TRIES - 1:
                    floor = self._events.fence_of(instance_id)
                    continue
                if not exc.part:
                    return  # settled meanwhile (confirmed, or expired by another)
                break
        # The seq holds something else (it never should): the task expires, the log is not rewritten.
        events_log.warning("completion event not replaced", extra={"task_id": record["id"]})
        try:
            self._store.transition(record["id"], require=("outbox_state",), **changes)
        except TransitionRefused:
            return

    # -- confirming ----------------------------------------------------------------------------
    def settle_deliveries(self, records: list[dict[str, Any]], *, ended: bool = False) -> Counter[str]:
        """An instance's completions still marked (among its task records, already read), settled with
        one history read per execution: `confirmed` (the step exited: our send landed), `resent` (it still
        waits: sent again once the completion is REDELIVERY_AFTER old), `expired` (it ended otherwise;
        with `ended`, the instance has ended, so a step still shown waiting never got it), `undecided`.
        """
        stats: Counter[str] = Counter()
        # (A task always names its execution; one that did not would be left to the by_outbox backstop.)
        marked = [r for r in records if r.get("outbox_state") and r.get("status") == "completed"
                  and r.get("execution_arn")]
        by_execution: dict[str, list[dict[str, Any]]] = {}
        for record in marked:
            by_execution.setdefault(record["execution_arn"], []).append(record)
        cutoff = iso(self._now() - REDELIVERY_AFTER)
        for execution_arn, group in by_execution.items():
            statuses = self._step_statuses(execution_arn, group)
            final = None
            for record in group:
                status = statuses[record["id"]]
                if status in ("waiting", "running") and ended:
                    # The history may trail an ended execution's last steps (moto's does): its final
                    # output is authoritative, so a step found there succeeded.
                    final = final if final is not None else self._final_steps(execution_arn)
                    status = "succeeded" if record["step_name"] in final else "ended"
                if status == GONE and not ended:
                    # Its execution is gone while the instance lives on (a local runtime restarted on its
                    # kept store): the run that continues the instance is handed it (deliver_to_run).
                    stats["undecided"] += 1
                elif status == "succeeded":
                    self._confirmed(record)
                    stats["confirmed"] += 1
                elif status in ("waiting", "running"):
                    if record.get("completed_at", "") > cutoff:
                        stats["undecided"] += 1  # its own process may still be sending it
                    elif self._send(record):
                        self._confirmed(record)
                        stats["resent"] += 1
                    else:
                        stats["undecided"] += 1  # a passing failure, or a send the history does not show yet
                else:
                    self._expire(record, STOPPED_WAITING)
                    stats["expired"] += 1
        return stats

    def _final_steps(self, execution_arn: str) -> dict[str, Any]:
        """The steps map a succeeded execution ended with; {} for any other end."""
        import json

        found = self._machines.find(execution_arn)
        if not found or found.get("status") != "SUCCEEDED":
            return {}
        try:
            final = json.loads(found.get("output") or "{}")
        except ValueError:
            return {}
        return final if isinstance(final, dict) else {}

    def redeliver(self, now: datetime) -> tuple[int, int]:
        """The sweep's backstop over marked completions no watch settled: (read, delivered)."""
        read = delivered = 0
        for stale in self._due("by_outbox", "outbox_state", "completed_at", now - self._backstop):
            read += 1
            record = self._store.get(stale["id"])  # the index lags; the table has the truth
            if record is None or not record.get("outbox_state"):
                continue
            try:
                delivered += self._deliver(record, redelivery=True)
            except Gone:
                pass
        return read, delivered

    @property
    def _backstop(self) -> timedelta:
        # Without an instance store no watch confirms anything: this pass is then the redelivery itself.
        return OUTBOX_BACKSTOP if self._instances is not None else REDELIVERY_AFTER

    # -- closing -------------------------------------------------------------------------------
    def close_for_instance(self, instance_id: str, status: str, reason: str) -> int:
        """Closes the ended instance's pending tasks as `status` (canceled/expired), each logged with why,
        and settles its completions still marked (the instance has ended: nothing waits any more)."""
        records = self._store.for_instance(instance_id)
        closed = 0
        for record in records:
            if record["status"] != "pending":
                continue
            try:
                self._store.transition(record["id"], expect={"status": "pending"},
                                       set_={"status": status, "closed_at": iso(self._now()), "closed_reason": reason},
                                       remove=CLOSED_ATTRIBUTES, after={**record, "status": status}, before=record)
            except TransitionRefused:
                continue
            self._record(record, f"task.{status}", {"reason": reason})
            closed += 1
        self.settle_deliveries(records, ended=True)
        return closed

    def records_of(self, instance_id: str) -> list[dict[str, Any]]:
        """The instance's task records as stored (for the services: they hold tokens and marks)."""
        return self._store.for_instance(instance_id)

    def _record(self, record: dict[str, Any], event_type: str, data: dict[str, Any]) -> None:
        """An event in the task's instance log; best effort (a failed write is logged, the action stands)."""
        instance_id = _instance_of(record)
        if self._events is None or not instance_id:
            return
        try:
            self._events.append(instance_id, event_type, {"task_id": record["id"], "kind": record.get("kind"), **data},
                                step=record.get("step_name"))
        except Exception:  # noqa: BLE001 - see the docstring
            events_log.exception("event not recorded", extra={"event_type": event_type})


def _instance_of(record: dict[str, Any]) -> str | None:
    return run_of_execution(record.get("execution_arn"))[0] or record.get("instance_id")


def _completed_data(record: dict[str, Any]) -> dict[str, Any]:
    return {"task_id": record["id"], "kind": record.get("kind"), "completed_by": record.get("completed_by"),
            "comment": record.get("comment"), "output": record.get("output_data")}


def error_code(exc: Exception) -> str:
    response = getattr(exc, "response", None) or {}
    return response.get("Error", {}).get("Code", type(exc).__name__)
