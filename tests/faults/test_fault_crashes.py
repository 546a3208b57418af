"""The process stops right after each step of a start and of a completion (and of a cancel): one sweep
later the instance has converged, with the completion taken once and logged once."""

from __future__ import annotations

import pytest

from tests.faults.harness import Crash
from tests.faults.scenario import FLOW


def start(scenario, n, **extra):
    status, body = scenario.call("start", "POST", "/instances",
                                 {"definition_name": FLOW["name"], "input_data": {"n": n}, **extra})
    assert status == 201, body
    return body["id"]


def complete(scenario, task_id, n):
    return scenario.call("complete", "POST", f"/tasks/{task_id}/complete",
                         {"output_data": {"approved": True, "reviewed": f"r-{n}"}, "completed_by": "ann"})


def finish_and_check(scenario):
    scenario.converge()
    scenario.finish()
    return scenario.check()


# The instance is written with its instance.started event in one TransactWriteItems.
@pytest.mark.parametrize("after", [("dynamodb", "TransactWriteItems"), ("stepfunctions", "StartExecution")],
                         ids=["instance_write", "start_execution"])
def test_a_start_cut_short_is_finished_by_one_sweep(scenario, faults, after):
    scenario.register()
    with faults.crash_after(*after), pytest.raises(Crash):
        scenario.call("start", "POST", "/instances", {"definition_name": FLOW["name"], "input_data": {"n": 0}})
    [record] = scenario.all_instances()
    # Live, its execution not recorded, its launch intent standing (after StartExecution the execution may
    # already have reached the human step and marked the instance waiting).
    assert record["status"] in ("running", "waiting") and not record.get("execution_arn") and record["chore"] == "launch"
    stats = scenario.sweep()
    assert stats["found" if after[1] == "StartExecution" else "started"] == 1
    record = scenario.instances.get(record["id"])
    assert record.get("execution_arn") and record.get("chore") in (None, "watch")  # no launch intent left
    assert len(record["runs"]) == 1
    counts = finish_and_check(scenario)
    assert counts == {"instances": 1, "completed": 1, "failed": 0, "canceled": 0, "tasks_closed": 0}


def test_a_repeated_request_makes_the_start_that_never_happened(scenario, faults):
    scenario.register()
    body = {"definition_name": FLOW["name"], "input_data": {"n": 1}}
    with faults.crash_after("dynamodb", "TransactWriteItems"), pytest.raises(Crash):
        scenario.call("start", "POST", "/instances", body, {"idempotency-key": "order-1"})
    status, again = scenario.call("start", "POST", "/instances", body, {"idempotency-key": "order-1"})
    assert status == 200, again  # the same instance, now started: not the dead one
    record = scenario.instances.get(again["id"])
    assert record.get("execution_arn") and record.get("chore") in (None, "watch")  # no launch intent left
    assert finish_and_check(scenario)["completed"] == 1


def test_a_start_step_functions_refuses_answers_503_and_converges(scenario, faults):
    scenario.register()
    faults.fail(stepfunctions=1.0)
    status, body = scenario.call("start", "POST", "/instances",
                                 {"definition_name": FLOW["name"], "input_data": {"n": 2}, "correlation_id": "c-2"})
    faults.off()
    assert status == 503 and "retried automatically" in body["detail"]["message"], body
    instance_id = body["detail"]["instance_id"]
    assert scenario.instances.get(instance_id)["chore"] == "launch"
    assert scenario.sweep()["started"] == 1
    assert finish_and_check(scenario)["completed"] == 1


def test_a_start_that_never_succeeds_fails_the_instance_with_a_clear_error(scenario, faults):
    scenario.register()
    faults.fail(stepfunctions=1.0)
    status, body = scenario.call("start", "POST", "/instances", {"definition_name": FLOW["name"], "input_data": {}})
    assert status == 503, body
    while scenario.instances.get(body["detail"]["instance_id"])["status"] == "running":
        assert scenario.sweep()["retrying"] + scenario.swept["start_failed"] >= 1
    faults.off()
    record = scenario.instances.get(body["detail"]["instance_id"])
    assert record["status"] == "failed" and record["error"]["error"] == "Stepflow.StartFailed"
    assert "5 attempts" in record["error"]["message"] and not record.get("chore")
    assert scenario.check()["failed"] == 1


# The completing transaction is the last write of a completion: after it the send may be lost (the
# instance's watch sends it again), and after the send nothing is left to do but confirm it (the watch
# reads the execution history: the step exited).
@pytest.mark.parametrize(("after", "settled"), [(("dynamodb", "TransactWriteItems"), "completions_resent"),
                                                (("stepfunctions", "SendTaskSuccess"), "completions_confirmed")],
                         ids=["completion_write", "send_task_success"])
def test_a_completion_cut_short_stands_after_one_sweep(scenario, faults, after, settled):
    scenario.register()
    instance_id = start(scenario, 3)
    scenario.wait_until_settled()
    task = scenario.open_task(instance_id)
    with faults.crash_after(*after), pytest.raises(Crash):
        complete(scenario, task["id"], 3)
    stored = scenario.tasks.get(task["id"])
    assert stored["status"] == "completed" and stored.get("outbox_state")
    if after[1] == "SendTaskSuccess":
        scenario.wait_for_ends()  # the send landed: the workflow finishes on its own
    stats = scenario.sweep()
    assert stats.get(settled) == 1, stats
    stored = scenario.tasks.get(task["id"])
    assert stored["status"] == "completed" and not stored.get("outbox_state")
    status, again = complete(scenario, task["id"], 3)
    assert status == 409, again
    scenario.wait_for_ends()
    counts = finish_and_check(scenario)
    assert counts["completed"] == 1
    log = scenario.events.after(instance_id, None, 1000)
    assert [e["type"] for e in log].count("task.completed") == 1


def test_a_cancel_cut_short_after_the_end_write_closes_the_tasks_in_one_sweep(scenario, faults):
    scenario.register()
    instance_id = start(scenario, 4)
    scenario.wait_until_settled()
    assert scenario.call("read", "GET", f"/instances/{instance_id}")[0] == 200  # the index is settled
    with faults.crash_after("dynamodb", "UpdateItem"), pytest.raises(Crash):
        scenario.call("cancel", "POST", f"/instances/{instance_id}/cancel", {"reason": "changed my mind"})
    assert scenario.instances.get(instance_id)["status"] == "canceled"
    assert scenario.open_task(instance_id) is not None
    assert scenario.sweep()["endings_finished"] == 1
    [task] = scenario.tasks.for_instance(instance_id)
    assert task["status"] == "canceled" and task["closed_reason"] == "the instance was canceled (changed my mind)"
    assert scenario.check()["canceled"] == 1
