"""Exactly-once events for receive steps on every store (the tests' in-memory DynamoDB, DynamoDB Local in memory
and on disk): senders and registering receive steps racing on one correlation key never lose an event, never
hand one event to two steps, and never complete a step twice."""

from __future__ import annotations

import itertools
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from chalicelib.aws.mailbox_store import MailboxStore
from chalicelib.core.times import iso
from chalicelib.service.mailboxes import MailboxService
from tests.integration.test_task_atomicity import (  # noqa: F401 - fixtures of every store
    T0,
    ddb,
    eager_thread_switches,
    kept_store,
    world,
)

_ids = itertools.count()


def receive_task(i: int) -> dict[str, Any]:
    return {"id": f"recv{next(_ids):06d}", "instance_id": f"inst{i}", "execution_arn": f"arn:exec:inst{i}",
            "workflow": "w", "revision": "r", "step_name": "paid", "kind": "receive", "status": "pending",
            "created_at": iso(T0), "attempt": 1, "token": f"token-{i}", "event_type": "order.paid",
            "correlation_key": "A-1", "tenant_id": "t1", "snapshot": {"input": {}, "steps": {}}}


def test_racing_senders_and_receivers_take_each_event_once(world):  # noqa: F811 - the imported fixture
    mailboxes = MailboxService(MailboxStore(world.store._ddb, world.store._table), world.service, world.store,
                               world.clock, keep_seconds=600, max_keep_seconds=3600)

    def register(record: dict[str, Any]) -> Any:
        mailboxes.listen(record)
        world.store.put(record)
        return mailboxes.waiting(record)

    receivers = [receive_task(i) for i in range(6)]
    # Eight distinct events, the first one sent three times (a sender's retries): seven events in all.
    sends = [("e0", 0), ("e0", 0), ("e0", 0)] + [(f"e{n}", n) for n in range(1, 8)]
    with eager_thread_switches(), ThreadPoolExecutor(max_workers=8) as pool:
        sent = [pool.submit(mailboxes.publish, "t1", "order.paid", "A-1", {"n": n}, event_id=event_id)
                for event_id, n in sends[:5]]
        taken = [pool.submit(register, record) for record in receivers]
        sent += [pool.submit(mailboxes.publish, "t1", "order.paid", "A-1", {"n": n}, event_id=event_id)
                 for event_id, n in sends[5:]]
        answers = [f.result() for f in sent]
        took = [f.result() for f in taken]

    delivered = [a["id"] for a in answers if a["status"] == "delivered"]
    kept = [a["id"] for a in answers if a["status"] == "kept"]
    duplicates = [a for a in answers if a["status"] == "duplicate"]
    assert len(duplicates) == 2 and sorted(delivered + kept) == [f"e{n}" for n in range(8)]
    taken_from_box = [m["id"] for m in took if m is not None]
    # Each event reached one step at most: by its sender or by a step taking it from the mailbox.
    assert len(set(delivered + taken_from_box)) == len(delivered) + len(taken_from_box)
    assert set(taken_from_box) <= set(kept)
    completed = [world.store.get(r["id"]) for r in receivers]
    assert all(c["status"] == "completed" for c in completed)  # 8 events, 6 steps: every step got one
    assert len(delivered) + len(taken_from_box) == 6
    # Each step completed once, and its workflow was told once.
    assert sorted(token for token, _ in world.machines.successes) == sorted(r["token"] for r in receivers)
    outputs = sorted(c["output_data"]["paid"]["n"] for c in completed)
    assert len(set(outputs)) == 6
    # The two events no step took are still kept, once each.
    box = mailboxes._store.get(next(iter(_box_ids(receivers[0]))))
    assert sorted(m["id"] for m in box["messages"]) == sorted(set(kept) - set(taken_from_box))


def _box_ids(record: dict[str, Any]) -> list[str]:
    from chalicelib.service.mailboxes import _boxes

    return _boxes(record)
