"""Instance views from the record and the event log; the paged history endpoint; missed status
events found through the watch chore without reading healthy instances."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import pytest

from chalicelib.core.times import iso
from chalicelib.examples import bundled
from stepflow_local.call_count import counted


@pytest.fixture
def app_services(api):
    import app as app_module

    return app_module.services


def _register(api, name):
    status, body = api.post("/definitions", bundled()[name])
    assert status in (200, 201), body


def _task(api, instance_id, deadline=20.0):
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        items = api.get(f"/tasks?instance_id={instance_id}")[1]["items"]
        if items:
            return items[0]
        time.sleep(0.05)
    raise AssertionError("no task appeared")


def test_a_waiting_instance_is_viewed_from_its_record_and_log_without_the_execution(api, local_aws):
    _register(api, "expense_approval")
    _, started = api.post("/instances", {"definition_name": "expense_approval", "input_data": {
        "requester": "a", "manager": "bob", "amount": 10}})
    assert api.wait(started["id"], until=("waiting", "failed"))["status"] == "waiting"
    _task(api, started["id"])
    with counted(local_aws.region) as calls:
        status, view = api.get(f"/instances/{started['id']}")
    assert status == 200 and view["current_steps"] == ["manager_approval"]
    assert {s["step_name"]: s["status"] for s in view["step_history"]} == {
        "submit": "succeeded", "manager_approval": "waiting"}
    assert not [op for op in calls.calls if op.startswith("stepfunctions.")], calls.calls
    assert calls.total == 2


def test_the_history_endpoint_pages_the_execution_history_without_task_tokens(api, app_services):
    _register(api, "expense_approval")
    _, started = api.post("/instances", {"definition_name": "expense_approval", "input_data": {
        "requester": "a", "manager": "bob", "amount": 10}})
    api.wait(started["id"], until=("waiting", "failed"))
    token = app_services.task_store.get(_task(api, started["id"])["id"])["token"]
    events, cursor, pages = [], None, 0
    while True:
        status, page = api.get(f"/instances/{started['id']}/history?limit=3" + (f"&cursor={cursor}" if cursor else ""))
        assert status == 200, page
        assert len(page["events"]) <= 3 and token not in json.dumps(page)
        events += page["events"]
        pages += 1
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert pages > 1 and events[0]["type"] == "ExecutionStarted"
    assert any(e["type"] == "TaskScheduled" for e in events)
    assert api.get(f"/instances/{started['id']}/history?cursor=forged")[0] == 400
    assert api.get("/instances/no-such/history")[0] == 404


def test_a_missed_status_event_is_found_by_the_watch_and_waiting_instances_are_not_read(api, app_services, local_aws):
    _register(api, "image_pipeline")
    _register(api, "expense_approval")
    _, waiting = api.post("/instances", {"definition_name": "expense_approval", "input_data": {
        "requester": "a", "manager": "bob", "amount": 10}})
    api.wait(waiting["id"], until=("waiting", "failed"))
    _task(api, waiting["id"])
    store = app_services.instance_store
    # The view shows `waiting` from the log as soon as the step starts; the registrar removes the watch
    # (no status event is expected while a task is open) only once it has stored the task. Should the
    # start record its launch only after that (the registrar then found no watch to remove), the watch
    # stays until it comes due: either way the waiting instance is not read before then.
    settled_by = time.monotonic() + 5  # the registrar's removal, in the usual order
    deadline = time.monotonic() + 20
    while (chore := store.get(waiting["id"]).get("chore")) is not None:
        if chore == "watch" and time.monotonic() > settled_by:
            break  # the launch was recorded after the task opened: the watch stays until it comes due
        assert time.monotonic() < deadline, f"the waiting instance's chore stayed {chore}"
        time.sleep(0.05)
    kept = store.get(waiting["id"])
    assert kept.get("chore") is None or kept["chore_at"] > iso(datetime.now(UTC)), kept.get("chore_at")
    _, ran = api.post("/instances", {"definition_name": "image_pipeline", "input_data": {"prompt": "p"}})
    local_aws.wait_for_execution(store.get(ran["id"])["execution_arn"])  # ended; no status event delivered
    assert store.get(ran["id"])["status"] == "running" and store.get(ran["id"])["chore"] == "watch"
    store.update(ran["id"], {"chore_at": "2000-01-01T00:00:00.000Z"})  # its watch has come
    with counted(local_aws.region) as calls:
        stats = app_services.instances.reconcile()
    assert stats == {"watched": 1, "reconciled": 1}
    record = store.get(ran["id"])
    assert record["status"] == "completed" and record["output"]["refined"]
    assert calls.scans == 0 and calls.calls["stepfunctions.DescribeExecution"] == 1  # the watched one only
    assert store.get(waiting["id"])["status"] == "waiting"
