"""A completion writes once and sends once; the instance's watch confirms the delivery later, with one
history read, and a watch whose execution no longer exists ends its instance after a bounded number
of checks instead of retrying forever."""

from __future__ import annotations

import time

import pytest

from chalicelib.examples import bundled
from chalicelib.service.reconciliation import EXECUTION_MISSING, MAX_WATCH_MISSES
from stepflow_local.call_count import counted
from tests.waiting import wait_for_task

LONG_AGO = "2000-01-01T00:00:00.000Z"


@pytest.fixture
def app_services(api):
    import app as app_module

    assert api.post("/definitions", bundled()["expense_approval"])[0] in (200, 201)
    return app_module.services


def _expense(api, amount):
    status, body = api.post("/instances", {"definition_name": "expense_approval", "input_data": {
        "requester": "alice", "manager": "bob", "amount": amount}})
    assert status == 201, body
    return body["id"]


def test_the_watch_confirms_a_delivery_with_one_history_read_and_no_second_send(api, app_services, local_aws):
    instance_id = _expense(api, 5000)
    manager = wait_for_task(api, instance_id, "manager_approval")
    assert api.post(f"/tasks/{manager['id']}/complete", {"output_data": {"approved": True},
                                                           "completed_by": "bob"})[0] == 200
    # The workflow resumed and waits for finance; the completion is still marked for the watch to confirm,
    # and the registrar of the finance task left that watch in place.
    wait_for_task(api, instance_id, "finance_approval")
    tasks, instances = app_services.task_store, app_services.instance_store
    assert tasks.get(manager["id"]).get("outbox_state")
    record = instances.get(instance_id)
    assert record["chore"] == "watch" and record["deliveries"] == 1
    instances.update(instance_id, {"chore_at": LONG_AGO})  # its watch has come
    with counted(local_aws.region) as calls:
        stats = app_services.instances.reconcile()
    assert stats == {"watched": 1, "reconciled": 0, "completions_confirmed": 1}, stats
    assert calls.calls["stepfunctions.GetExecutionHistory"] == 1 and "stepfunctions.SendTaskSuccess" not in calls.calls
    assert "outbox_state" not in tasks.get(manager["id"])
    record = instances.get(instance_id)
    assert record["status"] == "waiting" and "chore" not in record and "deliveries" not in record
    # Nothing is left for a sweep: the next one reads no instance and no task.
    with counted(local_aws.region) as calls:
        assert app_services.instances.reconcile() == {"watched": 0, "reconciled": 0}
    assert calls.items_read == 0


def test_a_watch_whose_execution_is_gone_ends_the_instance_after_a_bounded_number_of_checks(
        api, app_services, local_aws):
    instance_id = _expense(api, 50)
    task = wait_for_task(api, instance_id, "manager_approval")
    instances = app_services.instance_store
    deadline = time.monotonic() + 10
    while instances.get(instance_id)["status"] != "waiting":  # the registrar has shown the task waiting
        assert time.monotonic() < deadline
        time.sleep(0.05)
    arn = instances.get(instance_id)["execution_arn"]
    # An execution Step Functions does not know (gone with its retention, say), whose watch has come.
    instances.update(instance_id, {"execution_arn": arn + "-gone", "chore": "watch", "chore_at": LONG_AGO})
    for check in range(1, MAX_WATCH_MISSES):
        assert app_services.instances.reconcile() == {"watched": 1, "reconciled": 0, "executions_missing": 1}
        assert instances.get(instance_id)["watch_misses"] == check and instances.get(instance_id)["status"] == "waiting"
    assert app_services.instances.reconcile() == {"watched": 1, "reconciled": 0, "ended_without_execution": 1}
    record = instances.get(instance_id)
    assert record["status"] == "failed" and record["error"]["error"] == EXECUTION_MISSING
    assert f"not found in {MAX_WATCH_MISSES} checks" in record["error"]["message"]
    assert "chore" not in record and "watch_misses" not in record
    closed = api.get(f"/tasks/{task['id']}")[1]
    assert closed["status"] == "expired"
    assert app_services.task_store.get(task["id"])["closed_reason"] == f"the instance failed ({EXECUTION_MISSING})"
    assert app_services.instances.reconcile() == {"watched": 0, "reconciled": 0}  # never described again
    local_aws.client("stepfunctions").stop_execution(executionArn=arn)  # the real one, left waiting
