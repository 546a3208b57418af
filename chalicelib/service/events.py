"""Instance events: the log (record, read with a cursor) and events sent into a running instance.

The ordering guarantee readers get is described in chalicelib/core/event_stream.py. An event for a receive step goes through its mailbox (service/mailboxes.py). Webhook steps
are completed through TaskService's exactly-once path (one conditional write decides, then
SendTaskSuccess with the resumed state), so an event and a callback racing for the same step
cannot both complete it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from chalicelib.core import event_stream as es
from chalicelib.core.runs import run_of_execution
from chalicelib.errors import Conflict, Gone, InvalidInput, NotFound

POLL_SECONDS = 0.25  # while a reader waits for new events
# An instance that ended this long ago is finished even if its instance.ended event never got written.
END_GRACE = timedelta(minutes=5)
API_ACTOR = "stepflow:event"
events_log = logging.getLogger("stepflow.events")


class EventService:
    def __init__(self, store: Any, instances: Any, tasks: Any, now: Callable[[], datetime], *,
                 settle_seconds: float = es.SETTLE_SECONDS, sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic, mailboxes: Any = None,
                 receive_steps: Callable[[dict[str, Any]], list[dict[str, Any]]] | None = None):
        self._store = store  # EventStore
        self._instances = instances  # InstanceStore (read only: get)
        self._tasks = tasks  # TaskService
        self._now = now
        self._settle = settle_seconds
        self._sleep = sleep
        self._clock = clock
        self._mailboxes = mailboxes  # MailboxService (None: events complete webhook steps only)
        # The receive steps of an instance's definition ({id, event_type}), read from its revision.
        self._receive_steps = receive_steps

    # -- writing -------------------------------------------------------------------------------
    def record(self, instance_id: str, event_type: str, data: dict[str, Any] | None = None, *,
               step: str | None = None) -> dict[str, Any] | None:
        """Appends an event to the instance's log (e.g. instance.started / instance.ended); returns it.

        Best effort, like every writer of the log: a failed write is logged and None returned, so the
        action being recorded is never undone by its log. Never put a task token or a task snapshot in
        `data`: readers get it as it is.
        """
        try:
            return self._store.append(instance_id, event_type, data, step=step)
        except Exception:  # noqa: BLE001 - see the docstring
            events_log.exception("event not recorded", extra={"event_type": event_type})
            return None

    def record_request(self, instance_id: str, event_type: str, data: dict[str, Any] | None = None, *,
                       step: str | None = None) -> dict[str, Any]:
        """An event stamped now, as an item of the caller's TransactWriteItems: written with the change
        it records, or not at all (unlike `record`, never on its own)."""
        return self._store.put_request(instance_id, self._store.stamp(), event_type, data, step=step)

    def everything(self, instance_id: str) -> list[dict[str, Any]]:
        """The instance's whole log as stored (the instance view folds it into step records)."""
        return self._store.everything(instance_id)

    def purge(self, instance_id: str) -> int:
        """Deletes the instance's whole log (an instance deleted with purge)."""
        return self._store.purge(instance_id)

    # -- reading -------------------------------------------------------------------------------
    def _instance(self, instance_id: str) -> dict[str, Any]:
        record = self._instances.get(instance_id) if instance_id and len(instance_id) <= 128 else None
        if record is None:
            raise NotFound(f"no instance '{instance_id}'")
        return record

    def read(self, instance_id: str, *, after: str | None = None, limit: int = es.DEFAULT_LIMIT,
             wait: float = 0.0) -> dict[str, Any]:
        """One page of the log after the cursor: {events, cursor, more, ended, status}.

        `events` are in seq order, each handed out once to a reader that follows `cursor`.
        With `wait`, waits up to that many seconds (at most 20) while nothing new is there.
        `more`: more events can be read now. `ended`: the instance has ended and this page holds
        the end of its log, so a reader can stop.
        """
        after = es.parse_cursor(after)
        limit = max(1, min(int(limit), es.MAX_LIMIT))
        deadline = self._clock() + max(0.0, min(float(wait), es.MAX_WAIT_SECONDS))
        while True:
            record = self._instance(instance_id)
            status = record.get("status")
            ended = es.is_ended(status)
            upto = es.horizon(self._now(), self._settle, ended=ended)
            chosen = es.select(self._store.after(instance_id, after, limit + 1), limit, upto)
            if chosen.events:
                chosen = self._fenced(instance_id, after, limit, upto, chosen)
            page = [es.public_event(e) for e in chosen.events]
            finished = ended and not chosen.more and self._log_closed(instance_id, record, page, after)
            remaining = deadline - self._clock()
            if page or finished or remaining <= 0:
                cursor = page[-1]["seq"] if page else after
                return {"events": page, "cursor": cursor, "more": chosen.more, "ended": finished, "status": status}
            pause = POLL_SECONDS
            if chosen.held_back:
                # Sleep just until the oldest held-back event has settled.
                due = (es.settles_at(chosen.held_back, self._settle) - self._now()).total_seconds()
                pause = min(pause, max(due, 0.01))
            self._sleep(min(pause, remaining))

    def _fenced(self, instance_id: str, after: str | None, limit: int, upto: str | None,
                chosen: es.Selection) -> es.Selection:
        """The page, read again once the fence stands at its last seq: a write stamped below that seq but
        not yet landed at the first read either landed before the fence rose (and this read finds it) or
        is refused and stamped again above it; none lands behind the cursor this page hands out."""
        last = chosen.events[-1]["seq"]
        self._store.fence(instance_id, last)
        again = es.select(self._store.after(instance_id, after, limit + 1), limit, upto)
        page = [e for e in again.events if e["seq"] <= last]
        return es.Selection(page, again.more or len(page) < len(again.events), again.held_back)

    def _log_closed(self, instance_id: str, record: dict[str, Any], page: list[dict[str, Any]],
                    after: str | None) -> bool:
        """Whether nothing more will be written: the log's last event is instance.ended (written
        right after the status became final), or the instance ended long ago."""
        last = page[-1] if page else self._store.last(instance_id)
        if last is not None and last["type"] == es.END_EVENT:
            # An instance.ended written after this read's query (found by the look at the last event)
            # is not in the page: the log is not read to its end until a read hands it out.
            return bool(page) or last["seq"] <= (after or es.FLOOR)
        completed_at = record.get("completed_at")
        if not completed_at:
            return False
        try:
            ended_at = datetime.fromisoformat(str(completed_at).replace("Z", "+00:00"))
        except ValueError:
            return False
        return self._now() - ended_at > END_GRACE

    # -- sending -------------------------------------------------------------------------------
    def send(self, instance_id: str, data: dict[str, Any], *, step: str | None = None,
             event_type: str | None = None, sent_by: str | None = None, event_id: str | None = None,
             ttl_seconds: int | None = None) -> dict[str, Any]:
        """Completes the waiting webhook step(s) the event is for, with `data` as the step's output; or
        delivers it to the instance's receive step for its type (kept until the step waits).

        By `step` (that step), by `event_type` (every waiting webhook step declaring it), or both.
        Conflict when the instance has ended or no step of it waits for, or could take, the event.
        """
        if not step and not event_type:
            raise InvalidInput({"message": "say which step the event is for: give 'step' or 'event_type'",
                                "issues": [{"code": "missing", "location": "step", "message": "step or event_type"}]})
        record = self._instance(instance_id)
        if es.is_ended(record.get("status")):
            raise Conflict(f"instance is {record['status']}; it no longer takes events")
        waiting = self._tasks.pending_webhooks(instance_id)
        matched = [t for t in waiting if (not step or t["step_name"] == step)
                   and (not event_type or t.get("event_type") == event_type)]
        receivers = self._receive_steps(record) if self._receive_steps is not None else []
        if not matched and self._mailboxes is not None and receivers:
            if event_type is None:  # a receive step named alone: the type it waits for
                event_type = next((s["event_type"] for s in receivers if s["id"] == step), None)
            if event_type is not None and (step is None or any(s["id"] == step for s in receivers)):
                return self._mailboxes.send_to_instance(record, receivers, event_type, data, step=step,
                                                        event_id=event_id, sent_by=sent_by, ttl_seconds=ttl_seconds)
        if not matched:
            what = " and ".join(p for p in (f"step '{step}'" if step else "",
                                            f"event_type '{event_type}'" if event_type else "") if p)
            names = ", ".join(sorted(t["step_name"] for t in waiting)) or "none"
            takers = ", ".join(sorted(f"{s['id']} ({s['event_type']})" for s in receivers)) or "none"
            raise Conflict(f"no webhook step waits for {what} and no receive step takes it (waiting webhook "
                           f"steps: {names}; receive steps: {takers})")
        completed, refused = [], []
        for task in sorted(matched, key=lambda t: t["step_name"]):
            received = {"source": "api", "event_type": event_type or task.get("event_type"), "data": data}
            if sent_by:
                received["sent_by"] = sent_by
            try:
                completed.append(self._tasks.complete_webhook(task, data, sent_by or API_ACTOR, received=received))
            except (Conflict, Gone) as exc:
                refused.append(exc)  # another event or callback got there first, or the step stopped waiting
        if not completed:
            raise Conflict(f"nothing waits for this event any more: {refused[0].detail}")
        return {"instance_id": instance_id, "status": "delivered", "completed": completed}

    def callback(self, key: str, data: Any) -> dict[str, Any]:
        """POST /callbacks/{key}: NotFound (unknown key), Conflict (done), Gone (expired)."""
        record = self._tasks.by_callback_key(key)
        self._tasks.require_pending(record)
        instance = self._instances.get(run_of_execution(record.get("execution_arn"))[0] or record["instance_id"])
        if instance is None or es.is_ended(instance.get("status")):
            raise Gone("the workflow has ended; it no longer waits for this callback")
        return self._tasks.complete_callback(key, data, record=record)
