"""Delivering a task's completion to Step Functions so that it converges, and closing the tasks of an
ended instance (TaskService's delivering half, mixed into it).

A completion is one conditional write (status `completed`, the sparse `outbox_state` mark, and the seq
reserved for its `task.completed` event), then SendTaskSuccess, then the event at that seq, then the
mark removed. A process may stop after any of these; the sweep redelivers marked completions older
than REDELIVERY_AFTER, and every step is safe to repeat.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from chalicelib.aws.conditional_update import TransitionRefused
from chalicelib.aws.task_store import public
from chalicelib.core.history import summarise
from chalicelib.core.runs import run_of_execution
from chalicelib.core.tasks import resumed_state
from chalicelib.core.times import iso
from chalicelib.errors import Gone, NotFound

# A completion still marked as being delivered after this long was interrupted: the sweep resends it.
REDELIVERY_AFTER = timedelta(seconds=30)
# Step Functions' answers when a token no longer waits (AWS says TaskTimedOut; moto says InvalidToken).
DEAD_TOKEN_ERRORS = frozenset({"TaskTimedOut", "InvalidToken", "TaskDoesNotExist"})
CLOSED_ATTRIBUTES = ("due_state", "reminder_state", "overdue_state")
events_log = logging.getLogger("stepflow.events")


class Delivery:
    """Uses TaskService's _store, _machines, _loader, _publisher, _events, _now, _on_closed and _due."""

    _store: Any
    _machines: Any
    _loader: Any
    _publisher: Any
    _events: Any
    _now: Any
    _on_closed: Any
    _due: Any

    def _deliver(self, record: dict[str, Any], *, redelivery: bool = False) -> bool:
        """SendTaskSuccess with the resumed state. True: the completion stands (logged, mark removed);
        False: not delivered yet (the mark stays, the sweep retries); Gone: the step stopped waiting."""
        order = self._loader.load(record["workflow"], record["revision"]).order
        state = resumed_state(record.get("snapshot") or {}, record["step_name"], record["output_data"], order)
        try:
            self._machines.send_success(record["token"], state)
        except Exception as exc:  # noqa: BLE001 - sorted below: a dead token or a passing failure
            if error_code(exc) not in DEAD_TOKEN_ERRORS:
                return False
            if not redelivery and self._machines.find(record["execution_arn"]) is None:
                # Not a step that stopped waiting: its execution is gone (a local runtime restarted on its
                # kept store). The run that continues the instance re-enters the step and is handed this
                # completion (deliver_to_run); until then it stays marked, as an undelivered one does (a
                # redelivery learns the same from _sent_before).
                return False
            # A first send finds the token dead only if the step stopped waiting. A redelivery may also
            # find it spent by our own earlier send (the process stopped before removing the mark).
            spent_by_us = self._sent_before(record) if redelivery else False
            if spent_by_us is None:
                return False  # the history does not tell yet: the next sweep asks again
            if not spent_by_us:
                self._expire(record, "the workflow no longer waits for this task")
                raise Gone("the task expired before it was completed; its workflow no longer waits for it") from None
        self._stood(record)
        return True

    def _sent_before(self, record: dict[str, Any]) -> bool | None:
        """Whether our own earlier SendTaskSuccess is what spent the token of this completed task.

        The token lives only in our store and only the writer that won the completing write sends it,
        once per attempt; nothing else can make a waiting callback step succeed. So if the execution's
        history shows the step exited (succeeded), that earlier send of ours landed: the completion
        stands. If the step ended any other way (timed out, failed, the execution stopped or ended
        without it), the token died before our send: expired. While the history still shows the step
        waiting (it may trail a send by a moment), None: undecided, asked again by the next sweep.
        """
        loaded = self._loader.load(record["workflow"], record["revision"])
        kinds = {s.id: s.type for s in loaded.definition.steps}
        try:
            history = self._machines.history(record["execution_arn"])
        except NotFound:
            return None  # lost with a restarted local runtime: the run that continues the instance takes it
        step = summarise(history, kinds).steps.get(record["step_name"])
        if step is None:
            return False
        if step.status == "succeeded":
            return True
        return None if step.status in ("waiting", "running") else False

    def deliver_to_run(self, record: dict[str, Any], run: dict[str, Any]) -> None:
        """A completed task whose step a later run of its instance waits on again, because the run the
        completion was for is gone (a local runtime restarted on its kept store): the later run gets the
        completion under its own token (`run`: token, execution_arn, revision, snapshot), and the task
        is never opened again. TransitionRefused when the task changed meanwhile (the caller reads it again)."""
        moved = {**record, **run}
        self._store.transition(record["id"], expect={"status": "completed", "attempt": record.get("attempt")},
                               set_=run, after=moved, before=record)
        if moved.get("outbox_state"):
            # Never delivered: delivered now, logged at the place its completion reserved, the mark removed.
            self._deliver(moved, redelivery=True)
            return
        order = self._loader.load(moved["workflow"], moved["revision"]).order
        self._machines.send_success(run["token"], resumed_state(run["snapshot"], moved["step_name"],
                                                                moved["output_data"], order))

    def _stood(self, record: dict[str, Any]) -> None:
        """The completion was delivered: task.completed at the place reserved for it, then the mark removed."""
        self._record(record, "task.completed", {"completed_by": record.get("completed_by"),
                                                "comment": record.get("comment"), "output": record.get("output_data")},
                     seq=record.get("completed_seq"))
        self._publisher.publish("task.completed", {"task": public(record)})
        try:
            self._store.transition(record["id"], remove=("outbox_state",), after=record, before=record)
        except Exception:  # noqa: BLE001 - delivered; a mark left behind is found spent by our send
            events_log.warning("outbox mark not removed; the sweep removes it", exc_info=True)
        self._closed(record["instance_id"])

    def _expire(self, record: dict[str, Any], reason: str) -> None:
        self._store.transition(record["id"], set_={"status": "expired", "closed_reason": reason},
                               remove=("outbox_state",), after={**record, "status": "expired"}, before=record)
        self._record(record, "task.expired", {"reason": reason})

    def _closed(self, instance_id: str) -> None:
        """Tells the instance a task of it closed (it may run on and end: it is watched); best effort.
        Whether other tasks still wait is left to the instance's next view or the sweep's check, so a
        completion reads no sibling tasks."""
        if self._on_closed is None:
            return
        try:
            self._on_closed(instance_id, None)
        except Exception:  # noqa: BLE001 - the status follows the execution anyway (reads settle it)
            events_log.warning("instance not watched", exc_info=True)

    def redeliver(self, now: Any) -> tuple[int, int]:
        """The sweep's pass over interrupted completions: (read, delivered)."""
        read = delivered = 0
        for stale in self._due("by_outbox", "outbox_state", "completed_at", now - REDELIVERY_AFTER):
            read += 1
            record = self._store.get(stale["id"])  # the index lags; the table has the truth
            if record is None or not record.get("outbox_state"):
                continue
            try:
                delivered += self._deliver(record, redelivery=True)
            except Gone:
                pass
        return read, delivered

    def close_for_instance(self, instance_id: str, status: str, reason: str) -> int:
        """Closes the ended instance's pending tasks as `status` (canceled/expired), each logged with why."""
        closed = 0
        for record in self._store.for_instance(instance_id):
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
        return closed

    def _record(self, record: dict[str, Any], event_type: str, data: dict[str, Any], *,
                seq: str | None = None) -> None:
        """An event in the task's instance log; best effort (a failed write is logged, the action stands).

        With `seq` (reserved earlier) it is written there, once however often this is repeated."""
        instance_id = run_of_execution(record.get("execution_arn"))[0] or record.get("instance_id")
        if self._events is None or not instance_id:
            return
        body = {"task_id": record["id"], "kind": record.get("kind"), **data}
        try:
            if seq:
                self._events.put_at(instance_id, seq, event_type, body, step=record.get("step_name"))
            else:
                self._events.append(instance_id, event_type, body, step=record.get("step_name"))
        except Exception:  # noqa: BLE001 - see the docstring
            events_log.exception("event not recorded", extra={"event_type": event_type})

    def _stamp(self) -> str | None:
        """A place in the instance log, taken before the workflow resumes, for its task.completed."""
        if self._events is None:
            return None
        try:
            return self._events.stamp()
        except Exception:  # noqa: BLE001 - no place reserved: the event is appended when it stands
            return None


def error_code(exc: Exception) -> str:
    response = getattr(exc, "response", None) or {}
    return response.get("Error", {}).get("Code", type(exc).__name__)
