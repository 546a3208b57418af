"""Receive steps through the API: events sent before a step waits are kept and taken when it does, correlation
keys keep instances' events apart, one event is taken once however it races, and ended instances stop
receiving."""

from __future__ import annotations

import threading
import time
from typing import Any

from tests.waiting import wait_for_task


def flow(name: str, *, correlated: bool = True, hold: bool = True) -> dict[str, Any]:
    """prepare -> (hold: a webhook step the test completes) -> paid (receive) -> finish."""
    steps: list[dict[str, Any]] = [
        {"id": "prepare", "type": "machine", "task_type": "data.set", "config": {"values": {"ready": True}}}]
    before = "prepare"
    if hold:
        steps.append({"id": "hold", "type": "webhook", "depends_on": ["prepare"]})
        before = "hold"
    paid: dict[str, Any] = {"id": "paid", "type": "receive", "event_type": "order.paid", "depends_on": [before]}
    if correlated:
        paid["correlation_key"] = "{{ order_id }}"
    steps += [paid, {"id": "finish", "type": "machine", "task_type": "data.set", "config": {"values": {"done": True}},
                     "depends_on": ["paid"]}]
    return {"name": name, "steps": steps}


def start(api, definition: dict[str, Any], input_data: dict[str, Any]) -> str:
    status, body = api.post("/definitions", definition)
    assert status in (200, 201), body
    status, started = api.post("/instances", {"definition_name": definition["name"], "input_data": input_data})
    assert status == 201, started
    return started["id"]


def release(api, instance_id: str) -> None:
    """Completes the instance's `hold` webhook step: its receive step starts waiting next."""
    wait_for_task(api, instance_id, "hold")
    status, body = api.post(f"/instances/{instance_id}/events", {"step": "hold", "data": {}})
    assert status == 202, body


def test_an_event_sent_before_its_step_waits_is_kept_and_taken_when_it_does(api):
    instance_id = start(api, flow("receive_early"), {"order_id": "A-1"})
    wait_for_task(api, instance_id, "hold")
    status, kept = api.post("/events", {"type": "order.paid", "correlation_key": "A-1", "data": {"amount": 5},
                                        "id": "evt-1"})
    assert status == 202, kept
    assert kept["status"] == "kept" and kept["id"] == "evt-1" and kept["expires_at"]
    # Sent again (a retry of the same event): the same event, not a second one.
    assert api.post("/events", {"type": "order.paid", "correlation_key": "A-1", "data": {"amount": 5},
                                "id": "evt-1"}) == (202, {"status": "duplicate", "id": "evt-1"})

    release(api, instance_id)
    done = api.wait(instance_id)
    assert done["status"] == "completed", done
    # The event's data is the step's output, under the step's id (its declared writes).
    assert done["context_data"]["paid"] == {"amount": 5}
    assert "amount" not in done["context_data"]
    task = api.get(f"/tasks?instance_id={instance_id}")[1]["items"]
    receive = next(t for t in task if t["step_name"] == "paid")
    assert receive["kind"] == "receive" and receive["output_data"] == {"paid": {"amount": 5}}
    # Taken, so not kept any more: the next event of the key waits for a step again.
    assert api.post("/events", {"type": "order.paid", "correlation_key": "A-1", "data": {}})[1]["status"] == "kept"


def test_instances_waiting_on_different_keys_each_get_only_their_own_event(api):
    definition = flow("receive_keys", hold=False)
    first = start(api, definition, {"order_id": "K-1"})
    second = start(api, definition, {"order_id": "K-2"})
    wait_for_task(api, first, "paid")
    wait_for_task(api, second, "paid")

    status, to_second = api.post("/events", {"type": "order.paid", "correlation_key": "K-2", "data": {"who": 2}})
    assert status == 202 and to_second["status"] == "delivered", to_second
    assert to_second["instance_id"] == second and to_second["step_name"] == "paid"
    assert api.wait(second)["context_data"]["paid"] == {"who": 2}
    assert api.get(f"/instances/{first}")[1]["status"] == "waiting"  # not taken by the other key's event

    status, to_first = api.post("/events", {"type": "order.paid", "correlation_key": "K-1", "data": {"who": 1}})
    assert to_first["status"] == "delivered" and to_first["instance_id"] == first
    assert api.wait(first)["context_data"]["paid"] == {"who": 1}
    # An event of another type, or a key nobody waits on, reaches neither; kept=false says so.
    status, refused = api.post("/events", {"type": "order.paid", "correlation_key": "K-3", "keep": False})
    assert status == 409 and "no receive step waits for event type 'order.paid' with correlation key 'K-3'" \
        in refused["detail"]


def test_one_event_sent_concurrently_is_taken_once(api):
    definition = flow("receive_race", hold=False)
    instance_id = start(api, definition, {"order_id": "R-1"})
    other = start(api, definition, {"order_id": "R-1"})  # two receivers on the same key
    wait_for_task(api, instance_id, "paid")
    wait_for_task(api, other, "paid")
    answers: list[tuple[int, Any]] = []
    barrier = threading.Barrier(4)

    def send() -> None:
        barrier.wait()
        answers.append(api.post("/events", {"type": "order.paid", "correlation_key": "R-1", "id": "once",
                                            "data": {"n": 1}}))

    threads = [threading.Thread(target=send) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    statuses = sorted(body["status"] for _, body in answers)
    assert statuses == ["delivered", "duplicate", "duplicate", "duplicate"], answers
    winner = next(body for _, body in answers if body["status"] == "delivered")
    assert api.wait(winner["instance_id"])["status"] == "completed"
    loser = other if winner["instance_id"] == instance_id else instance_id
    assert api.get(f"/instances/{loser}")[1]["status"] == "waiting"
    pending = api.get(f"/tasks?instance_id={loser}")[1]["items"]
    assert [t["step_name"] for t in pending if t["status"] == "pending"] == ["paid"]


def test_a_kept_event_is_taken_by_one_of_two_receivers(api):
    """Two instances start waiting on the key an event is kept for: one takes it, the other waits on."""
    status, kept = api.post("/events", {"type": "order.paid", "correlation_key": "T-1", "data": {"n": 7}})
    assert kept["status"] == "kept"
    definition = flow("receive_take", hold=False)
    ids = [start(api, definition, {"order_id": "T-1"}) for _ in range(2)]
    deadline = time.monotonic() + 30
    while True:
        states = sorted(api.get(f"/instances/{i}")[1]["status"] for i in ids)
        if states == ["completed", "waiting"]:
            break
        assert time.monotonic() < deadline, states
        time.sleep(0.1)
    # The one still waiting takes the next event.
    assert api.post("/events", {"type": "order.paid", "correlation_key": "T-1", "data": {"n": 8}})[1]["status"] \
        == "delivered"
    outputs = sorted(api.wait(i)["context_data"]["paid"]["n"] for i in ids)
    assert outputs == [7, 8]


def test_events_into_one_instance_and_seed_form(api):
    definition = flow("receive_direct", correlated=False)
    instance_id = start(api, definition, {})
    wait_for_task(api, instance_id, "hold")
    # Before its receive step waits: kept for it (the workflow has a receive step for the type).
    status, kept = api.post(f"/instances/{instance_id}/events",
                            {"event": {"type": "order.paid", "value": {"via": "seed"}}, "step": "paid"})
    assert status == 202 and kept["status"] == "kept" and kept["instance_id"] == instance_id, kept
    # A type no step of the workflow takes is not kept: 409 with what it does take.
    status, refused = api.post(f"/instances/{instance_id}/events", {"type": "order.shipped", "data": {}})
    assert status == 409 and "receive steps: paid (order.paid)" in refused["detail"], refused
    # The {event, step} form as a workflow-server client streams events back (an empty step: any step).
    status, body = api.post(f"/instances/{instance_id}/events", {"event": {
        "type": "__main__.Paid", "qualified_name": "__main__.Paid", "types": ["workflows.events.Event"],
        "__is_pydantic": True, "value": {}}, "step": ""})
    assert status == 409 and "event type '__main__.Paid'" in body["detail"], body
    release(api, instance_id)
    done = api.wait(instance_id)
    assert done["status"] == "completed" and done["context_data"]["paid"] == {"via": "seed"}
    # Ended: it takes no more events.
    status, ended = api.post(f"/instances/{instance_id}/events", {"type": "order.paid", "data": {}})
    assert status == 409 and "no longer takes events" in ended["detail"]
    assert api.post("/instances/nope/events", {"type": "order.paid"})[0] == 404
    # A body naming two different types is refused as invalid, changing nothing.
    status, body = api.post(f"/instances/{instance_id}/events", {"type": "a", "event": "b"})
    assert status == 422, body


def test_canceled_instance_closes_its_receiver(api):
    instance_id = start(api, flow("receive_cancel", hold=False), {"order_id": "C-1"})
    task = wait_for_task(api, instance_id, "paid")
    status, body = api.post(f"/instances/{instance_id}/cancel", {"reason": "customer left"})
    assert status == 200, body
    deadline = time.monotonic() + 20
    while api.get(f"/tasks/{task['id']}")[1]["status"] != "canceled":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    # Its receiver is closed: the event finds nobody waiting and is kept, not delivered to it.
    status, sent = api.post("/events", {"type": "order.paid", "correlation_key": "C-1", "data": {}})
    assert status == 202 and sent["status"] == "kept", sent
    assert api.get(f"/tasks/{task['id']}")[1]["status"] == "canceled"


def test_a_missing_correlation_field_fails_the_step_clearly(api):
    instance_id = start(api, flow("receive_missing", hold=False), {})
    done = api.wait(instance_id)
    assert done["status"] == "failed", done
    assert "CorrelationKeyMissing" in str(done.get("error")), done


def test_an_instance_that_ends_otherwise_closes_its_receiver(api):
    definition = flow("receive_timeout", hold=False)
    definition["steps"][1]["timeout_seconds"] = 60  # scaled down by the local runtime's clock in tests
    instance_id = start(api, definition, {"order_id": "E-1"})
    task = wait_for_task(api, instance_id, "paid")
    done = api.wait(instance_id, timeout=60)
    assert done["status"] == "failed", done
    deadline = time.monotonic() + 20
    while api.get(f"/tasks/{task['id']}")[1]["status"] != "expired":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    status, sent = api.post("/events", {"type": "order.paid", "correlation_key": "E-1", "data": {}})
    assert status == 202 and sent["status"] == "kept", sent
