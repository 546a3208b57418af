"""The mailbox rules with in-memory fakes, step by step through the interleavings a sender and a registering
receive step can have: no event is lost between them and none is taken twice."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from chalicelib.aws.conditional_update import TransitionRefused
from chalicelib.errors import Conflict, FieldErrors
from chalicelib.service.mailboxes import MailboxService

NOW = datetime(2026, 1, 1, tzinfo=UTC)


class Boxes:
    """MailboxStore's contract: whole-box writes conditional on the version read."""

    def __init__(self) -> None:
        self.items: dict[str, dict[str, Any]] = {}
        self.before_write: Any = None  # called once before the next write (another writer cutting in)

    def get(self, box: str) -> dict[str, Any]:
        found = copy.deepcopy(self.items.get(box))
        return found or {"id": box, "version": 0, "messages": [], "receivers": [], "seen": []}

    def write_request(self, before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
        return {"box": before["id"], "version": before["version"], "after": copy.deepcopy(after)}

    def apply(self, request: dict[str, Any]) -> None:
        if self.before_write is not None:
            cut_in, self.before_write = self.before_write, None
            cut_in()
        current = self.items.get(request["box"], {}).get("version", 0)
        if current != request["version"]:
            raise TransitionRefused(request["box"])
        self.items[request["box"]] = {**request["after"], "id": request["box"], "version": current + 1}

    def write(self, before: dict[str, Any], after: dict[str, Any]) -> None:
        self.apply(self.write_request(before, after))


class Tasks:
    """TaskStore reads and TaskService.complete_received: the task and the mailbox write, both or neither."""

    def __init__(self, boxes: Boxes) -> None:
        self.boxes = boxes
        self.records: dict[str, dict[str, Any]] = {}
        self.completed: list[tuple[str, dict[str, Any]]] = []

    def get(self, task_id: str) -> dict[str, Any] | None:
        return copy.deepcopy(self.records.get(task_id))

    def complete_received(self, record: dict[str, Any], output: dict[str, Any], completed_by: str, *,
                          received: dict[str, Any], consume: dict[str, Any]) -> dict[str, Any]:
        if self.records[record["id"]]["status"] != "pending":
            raise Conflict("task already completed")
        self.boxes.apply(consume)  # refused: nothing is written
        self.records[record["id"]]["status"] = "completed"
        self.completed.append((record["id"], output))
        return {"id": record["id"]}


def service() -> tuple[MailboxService, Boxes, Tasks]:
    boxes = Boxes()
    tasks = Tasks(boxes)
    return MailboxService(boxes, tasks, tasks, lambda: NOW, keep_seconds=60, max_keep_seconds=3600), boxes, tasks


def task(task_id: str, instance: str, key: str | None = "A-1") -> dict[str, Any]:
    return {"id": task_id, "instance_id": instance, "step_name": "paid", "event_type": "order.paid",
            "correlation_key": key, "tenant_id": "t1", "status": "pending", "created_at": f"2026-01-01T00:00:0{task_id[-1]}Z"}


def register(mailboxes: MailboxService, tasks: Tasks, record: dict[str, Any]) -> Any:
    """What the registrar does: listed, stored, then waiting."""
    mailboxes.listen(record)
    tasks.records[record["id"]] = dict(record)
    return mailboxes.waiting(record)


def test_an_event_sent_between_listing_and_storing_the_task_is_kept_then_taken():
    mailboxes, _, tasks = service()
    record = task("task1", "i1")
    mailboxes.listen(record)
    sent = mailboxes.publish("t1", "order.paid", "A-1", {"n": 1})
    assert sent["status"] == "kept"  # listed, but its task not stored yet: it takes the event itself
    tasks.records[record["id"]] = dict(record)
    assert mailboxes.waiting(record)["data"] == {"n": 1}
    assert tasks.completed == [("task1", {"n": 1})]


def test_a_sender_that_finds_the_task_stored_delivers_before_the_step_marks_itself_ready():
    mailboxes, boxes, tasks = service()
    record = task("task1", "i1")
    mailboxes.listen(record)
    tasks.records[record["id"]] = dict(record)
    sent: list[dict[str, Any]] = []
    boxes.before_write = lambda: sent.append(mailboxes.publish("t1", "order.paid", "A-1", {"n": 2}))
    assert mailboxes.waiting(record) is None  # its "ready" write was refused; read again, the step is done
    assert sent[0]["status"] == "delivered" and tasks.completed == [("task1", {"n": 2})]


def test_an_event_kept_while_the_step_marks_itself_ready_is_not_missed():
    """A sender that read the box before the task was stored keeps the event; its write lands between the
    step's read and its "ready" write, which is refused: the step reads again and takes the event."""
    mailboxes, boxes, tasks = service()
    record = task("task1", "i1")
    mailboxes.listen(record)
    tasks.records[record["id"]] = dict(record)
    key = next(iter(boxes.items))  # the correlation key's box (listed first)
    message = {"id": "late", "type": "order.paid", "data": {"n": 3}, "kept_at": "2026-01-01T00:00:00.000Z",
               "expires_at": "2026-01-01T00:01:00.000Z"}

    def keep() -> None:
        box = boxes.get(key)
        boxes.write(box, {**box, "messages": [message]})

    boxes.before_write = keep
    assert mailboxes.waiting(record)["id"] == "late"
    assert tasks.completed == [("task1", {"n": 3})] and boxes.get(key)["messages"] == []


def test_a_kept_event_goes_to_one_of_two_steps_and_keys_stay_apart():
    mailboxes, _, tasks = service()
    assert mailboxes.publish("t1", "order.paid", "A-1", {"n": 1})["status"] == "kept"
    assert mailboxes.publish("t2", "order.paid", "A-1", {"n": 9})["status"] == "kept"  # another tenant's
    first, second = task("task1", "i1"), task("task2", "i2")
    assert register(mailboxes, tasks, first)["data"] == {"n": 1}
    assert register(mailboxes, tasks, second) is None  # nothing left for it: it waits
    other = task("task3", "i3", key="B-2")
    assert register(mailboxes, tasks, other) is None
    delivered = mailboxes.publish("t1", "order.paid", "A-1", {"n": 3})
    assert delivered["status"] == "delivered" and delivered["task_id"] == "task2"
    assert tasks.completed == [("task1", {"n": 1}), ("task2", {"n": 3})]


def test_the_same_event_id_is_taken_once_and_a_closed_receiver_is_dropped():
    mailboxes, _, tasks = service()
    record = task("task1", "i1")
    register(mailboxes, tasks, record)
    assert mailboxes.publish("t1", "order.paid", "A-1", {}, event_id="e1")["status"] == "delivered"
    assert mailboxes.publish("t1", "order.paid", "A-1", {}, event_id="e1") == {"status": "duplicate", "id": "e1"}
    closed = task("task2", "i2")
    register(mailboxes, tasks, closed)
    tasks.records["task2"]["status"] = "canceled"  # its instance was canceled
    with pytest.raises(Conflict):  # the canceled step is no receiver: nothing waits
        mailboxes.publish("t1", "order.paid", "A-1", {}, keep=False, event_id="e2")
    assert [t for t, _ in tasks.completed] == ["task1"]
    assert tasks.records["task2"]["status"] == "canceled"


def test_nothing_waiting_and_keep_false_is_refused_and_keeps_nothing():
    mailboxes, boxes, _ = service()
    with pytest.raises(Conflict, match="no receive step waits for event type 'order.paid' with correlation key 'Z'"):
        mailboxes.publish("t1", "order.paid", "Z", {}, keep=False)
    assert boxes.items == {}


def test_a_kept_event_expires():
    mailboxes, _, tasks = service()
    mailboxes.publish("t1", "order.paid", "A-1", {"n": 1}, ttl_seconds=30)
    later = MailboxService(mailboxes._store, tasks, tasks, lambda: NOW + timedelta(seconds=31),
                           keep_seconds=60, max_keep_seconds=3600)
    assert register(later, tasks, task("task1", "i1")) is None
    assert tasks.completed == []


def test_a_mailbox_stays_within_one_item():
    from chalicelib.service import mailboxes as rules

    mailboxes, boxes, tasks = service()
    big = {"text": "x" * (rules.MAX_EVENT_BYTES - 20)}
    kept = 0
    with pytest.raises(Conflict, match="as many events of this type and key as can be kept"):
        for _ in range(rules.MAX_KEPT + 1):
            mailboxes.publish("t1", "order.paid", "A-1", big)
            kept += 1
    box = next(iter(boxes.items.values()))
    assert 0 < kept and rules._size(box["messages"]) <= rules.MAX_KEPT_BYTES
    with pytest.raises(FieldErrors) as refused:
        mailboxes.publish("t1", "order.paid", "A-1", {"text": "x" * rules.MAX_EVENT_BYTES})
    assert "at most 32768 bytes" in refused.value.detail["issues"][0]["message"]
    box["receivers"] = [{"task_id": f"t{i}", "step": "paid", "since": "x", "ready": True}
                        for i in range(rules.MAX_RECEIVERS)]
    with pytest.raises(rules.TooManyReceivers):
        mailboxes.listen(task("task1", "i1"))
    # The largest mailbox the rules allow fits in a DynamoDB item (400 KB), with room for the item's keys.
    receivers = [{"task_id": "t" * 32, "instance_id": "i" * 128, "step": "p" * 64,
                  "since": "2026-01-01T00:00:00.000Z", "ready": True}] * rules.MAX_RECEIVERS
    seen = [{"id": "i" * 128, "until": "2026-01-01T00:00:00.000Z"}] * rules.MAX_SEEN
    assert rules.MAX_KEPT_BYTES + rules._size(receivers) + rules._size(seen) < 390_000
