"""Events into running instances by message correlation: a receive step waits for an event type (and,
optionally, a correlation key from instance data); an event finds the step waiting for it, or is kept
until one does.

Each (tenant, event type, correlation key) has a mailbox (aws/mailbox_store.py) listing the receive steps
waiting on it and the events kept for it; a receive step also waits in its own instance's mailbox of the
type, where POST /instances/{id}/events delivers. Every decision is one conditional write on the mailbox's
version, so a sender and a registering step cannot miss each other (whoever writes second sees the
other), and an event is consumed once: taking it out of the mailbox and completing the step are one
transaction (TaskService.complete_received). An event with an `id` is taken once however often it is sent.
"""

from __future__ import annotations

import json
import logging
import random
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from chalicelib.aws.conditional_update import TransitionRefused
from chalicelib.aws.mailbox_store import box_id
from chalicelib.core.times import iso
from chalicelib.errors import Conflict, FieldErrors, Gone

API_ACTOR = "stepflow:event"
BY_KEY, BY_INSTANCE = "key", "instance"
# A mailbox is one DynamoDB item (at most 400 KB): its kept events, its waiting steps and the ids it
# remembers are bounded so that it always fits.
MAX_KEPT = 50  # events kept in one mailbox at a time
MAX_KEPT_BYTES = 160 * 1024  # their JSON, all together
MAX_EVENT_BYTES = 32 * 1024  # one event's data, as JSON
MAX_RECEIVERS = 500  # steps waiting on one event type and key at a time
MAX_SEEN = 200  # ids remembered per mailbox (for as long as their event could be kept)
# Reads of a mailbox other writers keep changing, with a growing random pause between them: one key is
# busy only while its senders and steps race, and each write decides for all of them.
ATTEMPTS = 30
# A receiver listed whose task was never stored (its registration stopped half-way) is dropped after this.
ABANDONED_AFTER = timedelta(minutes=5)
log = logging.getLogger("stepflow.events")


class TooManyReceivers(Exception):
    """More receive steps wait on one event type and correlation key than a mailbox holds: the step that
    would be one too many fails with this error (its name is the Step Functions error)."""


class MailboxService:
    def __init__(self, store: Any, tasks: Any, task_store: Any, now: Callable[[], datetime], *,
                 keep_seconds: int, max_keep_seconds: int, sleep: Callable[[float], None] = time.sleep):
        self._store = store  # MailboxStore
        self._tasks = tasks  # TaskService: completes the step with the event (exactly once)
        self._task_store = task_store  # TaskStore: a waiting receiver's record, read consistently
        self._now = now
        self.keep_seconds = keep_seconds
        self.max_keep_seconds = max_keep_seconds
        self._sleep = sleep

    def _attempts(self) -> Any:
        """Attempt numbers, pausing (with jitter) before each one after the first."""
        for attempt in range(ATTEMPTS):
            if attempt:
                self._sleep(random.uniform(0, min(0.2, 0.004 * 2 ** attempt)))  # noqa: S311 - jitter
            yield attempt

    # -- sending -------------------------------------------------------------------------------
    def publish(self, tenant: str | None, event_type: str, correlation_key: str | None, data: dict[str, Any], *,
                event_id: str | None = None, sent_by: str | None = None, keep: bool = True,
                ttl_seconds: int | None = None) -> dict[str, Any]:
        """POST /events: to whichever of the tenant's instances waits for the type with this key (the one
        waiting longest), else kept for `ttl_seconds`; with keep=False, Conflict when none waits."""
        box = box_id(tenant, event_type, BY_KEY, correlation_key or "")
        event = self._event(event_type, data, event_id, sent_by, ttl_seconds, correlation_key=correlation_key)
        what = f"event type '{event_type}'" + (f" with correlation key '{correlation_key}'" if correlation_key
                                               else " without a correlation key")
        return self._deliver(box, event, keep=keep, nobody=f"no receive step waits for {what}")

    def send_to_instance(self, instance: dict[str, Any], waits_for: list[dict[str, Any]], event_type: str,
                         data: dict[str, Any], *, step: str | None = None, event_id: str | None = None,
                         sent_by: str | None = None, ttl_seconds: int | None = None) -> dict[str, Any]:
        """POST /instances/{id}/events to a receive step: to the instance's step waiting for the type (that
        `step`, if named), else kept until it waits. `waits_for`: the receive steps of the instance's
        definition ({id, event_type}); an event none of them takes is refused (Conflict), never kept."""
        takers = [s for s in waits_for if s["event_type"] == event_type and (step is None or s["id"] == step)]
        if not takers:
            offered = ", ".join(sorted(f"{s['id']} ({s['event_type']})" for s in waits_for)) or "none"
            target = f"step '{step}' for event type '{event_type}'" if step else f"event type '{event_type}'"
            raise Conflict(f"no receive step of this workflow takes {target}, so the event cannot be kept for it "
                           f"(its receive steps: {offered})")
        box = box_id(instance.get("tenant_id"), event_type, BY_INSTANCE, instance["id"])
        event = self._event(event_type, data, event_id, sent_by, ttl_seconds, step=step)
        return {"instance_id": instance["id"], **self._deliver(box, event, keep=True, nobody="")}

    def _event(self, event_type: str, data: dict[str, Any], event_id: str | None, sent_by: str | None,
               ttl_seconds: int | None, **extra: Any) -> dict[str, Any]:
        size = len(json.dumps(data, separators=(",", ":")))
        if size > MAX_EVENT_BYTES:
            raise FieldErrors({"message": "the event is too large", "issues": [{
                "code": "too_large", "location": "data",
                "message": f"an event's data is at most {MAX_EVENT_BYTES} bytes as JSON; this is {size}"}]})
        ttl = self.keep_seconds if ttl_seconds is None else ttl_seconds
        if not 1 <= ttl <= self.max_keep_seconds:
            raise FieldErrors({"message": "the event cannot be kept that long", "issues": [{
                "code": "out_of_range", "location": "ttl_seconds",
                "message": f"ttl_seconds is between 1 and {self.max_keep_seconds}"}]})
        event = {"id": event_id or uuid.uuid4().hex, "type": event_type, "data": data, "sent_by": sent_by,
                 "ttl": ttl, **{k: v for k, v in extra.items() if v is not None}}
        return event

    def _deliver(self, box_key: str, event: dict[str, Any], *, keep: bool, nobody: str) -> dict[str, Any]:
        for _ in self._attempts():
            now = self._now()
            box = self._store.get(box_key)
            live = _pruned(box, iso(now))
            if any(s["id"] == event["id"] for s in live["seen"]):
                return {"status": "duplicate", "id": event["id"]}
            seen = _remember(live["seen"], event["id"], iso(now + timedelta(seconds=event["ttl"])))
            waiting = [r for r in live["receivers"] if not event.get("step") or r["step"] == event["step"]]
            receiver, record = self._receiver(box, live, waiting, now)
            if receiver == "retry":
                continue
            if record is not None:
                rest = [r for r in live["receivers"] if r["task_id"] != record["id"]]
                consume = self._store.write_request(box, {**live, "receivers": rest, "seen": seen})
                try:
                    view = self._tasks.complete_received(record, event["data"], event.get("sent_by") or API_ACTOR,
                                                         received=_received(event), consume=consume)
                except TransitionRefused:
                    continue  # the mailbox changed meanwhile: read it again
                except (Conflict, Gone):
                    continue  # the step stopped waiting meanwhile: the next read drops it
                return {"status": "delivered", "id": event["id"], "instance_id": record.get("instance_id"),
                        "step_name": record["step_name"], "task_id": record["id"], "completed": [view]}
            if not keep and receiver is None:
                raise Conflict(f"{nobody}; the event was not kept (keep is false)")
            expires_at = iso(now + timedelta(seconds=event["ttl"]))
            message = {k: v for k, v in event.items() if k != "ttl"} | {"kept_at": iso(now), "expires_at": expires_at}
            if len(live["messages"]) >= MAX_KEPT or _size([*live["messages"], message]) > MAX_KEPT_BYTES:
                raise Conflict("as many events of this type and key as can be kept are already waiting for a "
                               f"receive step (at most {MAX_KEPT}, {MAX_KEPT_BYTES // 1024} KiB); send more once "
                               "steps take them")
            try:
                self._store.write(box, {**live, "messages": [*live["messages"], message], "seen": seen})
            except TransitionRefused:
                continue
            return {"status": "kept", "id": event["id"], "expires_at": expires_at, "completed": []}
        raise Conflict("the mailbox of this event kept changing; send the event again")

    def _receiver(self, box: dict[str, Any], live: dict[str, Any], waiting: list[dict[str, Any]],
                  now: datetime) -> tuple[Any, dict[str, Any] | None]:
        """The receiver an event goes to: (entry, its pending task); (entry, None) when the longest-waiting
        one is about to wait (listed, its task not stored yet: the event is kept and it takes it);
        ("retry", None) after dropping one that stopped waiting; (None, None) when none is listed."""
        for receiver in waiting:
            record = self._task_store.get(receiver["task_id"])
            if record is not None and record.get("status") == "pending":
                return receiver, record
            abandoned = record is None and (receiver.get("ready") or (receiver.get("since") or "")
                                            < iso(now - ABANDONED_AFTER))
            if record is None and not abandoned:
                return receiver, None
            rest = [r for r in live["receivers"] if r["task_id"] != receiver["task_id"]]
            self._forget(box, {**live, "receivers": rest})  # it stopped waiting: not a receiver any more
            return "retry", None
        return None, None

    def _forget(self, box: dict[str, Any], after: dict[str, Any]) -> None:
        try:
            self._store.write(box, after)
        except TransitionRefused:
            pass  # changed meanwhile: the caller reads it again anyway

    # -- a receive step starts waiting -----------------------------------------------------------
    def listen(self, record: dict[str, Any]) -> None:
        """Before its task is stored: the receive step is listed in its mailboxes (its correlation key's
        and its instance's), not yet ready. A sender that finds it there and no task yet keeps the event;
        `waiting` then takes it."""
        entry = {"task_id": record["id"], "instance_id": record.get("instance_id"), "step": record["step_name"],
                 "since": record.get("created_at"), "ready": False}
        for key in _boxes(record):
            for _ in self._attempts():
                box = self._store.get(key)
                if any(r["task_id"] == entry["task_id"] for r in box["receivers"]):
                    break
                if len(box["receivers"]) >= MAX_RECEIVERS:
                    raise TooManyReceivers(f"{MAX_RECEIVERS} receive steps already wait for event type "
                                           f"'{record['event_type']}' with this correlation key")
                try:
                    self._store.write(box, {**box, "receivers": [*box["receivers"], entry]})
                    break
                except TransitionRefused:
                    continue
            else:
                raise TransitionRefused(f"the mailbox of task {record['id']} kept changing")

    def waiting(self, record: dict[str, Any]) -> dict[str, Any] | None:
        """Its task is stored: the step takes the oldest event kept for it, or is marked ready in its
        mailboxes. Either is a write on the mailbox's version, so an event kept meanwhile is never missed
        (a sender that kept it changed the version: this reads again). The event taken, or None."""
        for _ in self._attempts():
            current = self._task_store.get(record["id"])
            if current is None or current.get("status") != "pending":
                return None  # taken by a sender meanwhile, or closed
            now = iso(self._now())
            read = [self._store.get(key) for key in _boxes(record)]
            outcome = self._take_kept(current, read, now)
            if outcome == "retry":
                continue
            if outcome is not None:
                return outcome if isinstance(outcome, dict) else None
            if self._ready(read, current, now):
                return None
        raise TransitionRefused(f"the mailboxes of task {record['id']} kept changing")

    def _take_kept(self, record: dict[str, Any], boxes: list[dict[str, Any]], now: str) -> Any:
        """The first kept event for the step, taken: its message; "retry" when a mailbox changed; "closed"
        when the step no longer waits; None when nothing is kept for it."""
        for box in boxes:
            live = _pruned(box, now)
            kept = [m for m in live["messages"] if not m.get("step") or m["step"] == record["step_name"]]
            if not kept:
                continue
            message = kept[0]
            after = {**live, "messages": [m for m in live["messages"] if m["id"] != message["id"]],
                     "receivers": [r for r in live["receivers"] if r["task_id"] != record["id"]]}
            try:
                self._tasks.complete_received(record, message["data"], message.get("sent_by") or API_ACTOR,
                                              received=_received(message), consume=self._store.write_request(box, after))
            except TransitionRefused:
                return "retry"
            except (Conflict, Gone):
                return "closed"
            except FieldErrors as exc:
                # Its data writes what this step may not (core/decisions.py): dropped, the step waits on.
                log.warning("kept event refused by its receive step", extra={
                    "task_id": record["id"], "fields": [i["location"] for i in exc.detail["issues"]]})
                self._forget(box, {**live, "messages": after["messages"]})
                return "retry"
            return message
        return None

    def _ready(self, boxes: list[dict[str, Any]], record: dict[str, Any], now: str) -> bool:
        """Marks the step ready in each mailbox (as read); False when one changed meanwhile."""
        for box in boxes:
            live = _pruned(box, now)
            others = [r for r in live["receivers"] if r["task_id"] != record["id"]]
            mine = next((r for r in live["receivers"] if r["task_id"] == record["id"]), None)
            if mine is not None and mine.get("ready"):
                continue
            entry = {"task_id": record["id"], "instance_id": record.get("instance_id"), "step": record["step_name"],
                     "since": record.get("created_at"), "ready": True}
            # In the order they started waiting: the longest-waiting receiver is served first.
            receivers = sorted([*others, entry], key=lambda r: r.get("since") or "")
            try:
                self._store.write(box, {**live, "receivers": receivers})
            except TransitionRefused:
                return False
        return True


def _boxes(record: dict[str, Any]) -> list[str]:
    """A receive task's mailboxes: its correlation key's (POST /events) and its instance's."""
    return [box_id(record.get("tenant_id"), record["event_type"], BY_KEY, record.get("correlation_key") or ""),
            box_id(record.get("tenant_id"), record["event_type"], BY_INSTANCE, record.get("instance_id") or "")]


def _pruned(box: dict[str, Any], now: str) -> dict[str, Any]:
    """The box without expired events and ids."""
    return {**box, "messages": [m for m in box["messages"] if m["expires_at"] > now],
            "seen": [s for s in box["seen"] if s["until"] > now]}


def _size(value: Any) -> int:
    return len(json.dumps(value, separators=(",", ":")))


def _remember(seen: list[dict[str, Any]], event_id: str, until: str) -> list[dict[str, Any]]:
    return [*seen, {"id": event_id, "until": until}][-MAX_SEEN:]


def _received(event: dict[str, Any]) -> dict[str, Any]:
    """The event.received entry of the instance log: what arrived, from whom."""
    received = {"source": "event", "event_type": event["type"], "event_id": event["id"], "data": event["data"]}
    if event.get("correlation_key"):
        received["correlation_key"] = event["correlation_key"]
    if event.get("sent_by"):
        received["sent_by"] = event["sent_by"]
    return received
