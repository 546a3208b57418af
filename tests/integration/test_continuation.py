"""After a restart on a kept store (Step Functions forgotten, DynamoDB kept), what the local service does at
start (stepflow_local/restart.py): state machines back, live instances continued from their last completed
step, a waiting step keeping its task, a completed task never opened again, a timer keeping its due time."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from chalicelib.core.times import iso
from chalicelib.errors import Conflict
from stepflow_local import kept_timers
from stepflow_local.moto_patches import interrupt_sleeps, time_scale
from stepflow_local.restart import keep_timers, recover
from tests.waiting import wait_for_task

REVIEW = {
    "name": "kept_review", "version": "1.0.0",
    "steps": [
        {"id": "prepare", "type": "machine", "task_type": "data.set", "config": {"values": {"prepared": True}}},
        {"id": "review", "type": "human", "depends_on": ["prepare"], "assignee_group": "reviewers",
         "due_in": "2d", "form_schema": {"type": "object", "required": ["ok"],
                                         "properties": {"ok": {"type": "boolean"}}}},
        {"id": "finish", "type": "machine", "task_type": "data.set", "depends_on": ["review"],
         "config": {"values": {"finished": True}}},
    ],
}
# A day's wait: at the tests' time scale (x0.01) still 14 minutes, so an instance that completes within a
# test's deadline has had its Wait end at the kept due time.
TIMER = {
    "name": "kept_timer", "version": "1.0.0",
    "steps": [
        {"id": "prepare", "type": "machine", "task_type": "data.set", "config": {"values": {"prepared": True}}},
        {"id": "pause", "type": "timer", "seconds": 86400, "depends_on": ["prepare"]},
        {"id": "finish", "type": "machine", "task_type": "data.set", "depends_on": ["pause"],
         "config": {"values": {"finished": True}}},
    ],
}


def services():
    """The app's services, imported once the runtime has exported its settings (as the `api` fixture does)."""
    import app

    return app.services


def forget_step_functions(runtime) -> None:
    """What a restart of the local service does to Step Functions (moto, in memory): running executions
    end with the process (no status event reaches the app), and state machines and executions are gone.
    DynamoDB, with definitions, instances, tasks and event logs, keeps everything."""
    from moto.stepfunctions.parser.models import stepfunctions_parser_backends

    runtime.stop_running_executions("the process stopped")
    interrupt_sleeps(True)
    try:
        assert runtime.wait_for_interpreter_threads(10) == []
    finally:
        interrupt_sleeps(False)
    runtime.execution_changes()
    for account in stepfunctions_parser_backends.values():
        account.reset()


def register_and_start(api, definition, input_data=None):
    status, body = api.post("/definitions", definition)
    assert status in (200, 201), body
    status, started = api.post("/instances", {"definition_name": definition["name"], "input_data": input_data or {}})
    assert status == 201, started
    return started["id"]


def stored_task(task_id):
    return services().task_store.get(task_id)


def wait_for(condition, what, timeout=20.0):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"{what} did not happen"
        time.sleep(0.1)


def events_of(instance_id, event_type):
    return [e for e in services().event_store.everything(instance_id) if e["type"] == event_type]


def test_a_waiting_instance_continues_and_its_task_keeps_its_id_place_and_due_date(api, local_aws):
    instance_id = register_and_start(api, REVIEW)
    task = wait_for_task(api, instance_id, "review")
    before = stored_task(task["id"])

    forget_step_functions(local_aws)
    report = recover(services())
    assert report.continued == [instance_id] and "kept_review" in report.state_machines

    after = wait_for(lambda: (t := stored_task(task["id"])) and t["attempt"] == before["attempt"] + 1 and t,
                     "the continued run taking the task over")
    assert after["token"] != before["token"]  # the new run's token; the old one died with its execution
    assert after["execution_arn"].endswith(f"{instance_id}--1")
    for kept in ("id", "created_at", "created_key", "due_at", "assignee_group", "status", "title"):
        assert after.get(kept) == before.get(kept), kept
    inbox = api.get("/tasks?assignee_group=reviewers")[1]["items"]
    assert [t["id"] for t in inbox] == [task["id"]]
    assert [t["id"] for t in api.get(f"/tasks?instance_id={instance_id}")[1]["items"]] == [task["id"]]
    assert len(events_of(instance_id, "task.created")) == 1  # the same task, not a new one

    view = api.get(f"/instances/{instance_id}")[1]
    assert view["status"] == "waiting" and view["current_steps"] == ["review"]
    assert [r["kind"] for r in view["runs"]] == ["start", "continue"]
    status, done = api.post(f"/tasks/{task['id']}/complete", {"output_data": {"ok": True}, "completed_by": "rita"})
    assert status == 200, done
    finished = api.wait(instance_id)
    assert finished["status"] == "completed", finished
    assert finished["context_data"]["finished"] is True and finished["context_data"]["ok"] is True
    # The machine step before the restart ran once: the continued run carried its output.
    assert len([e for e in events_of(instance_id, "step.started") if e["step"] == "prepare"]) == 1


def test_a_completion_made_while_the_execution_is_gone_is_delivered_to_the_continued_run(api, local_aws):
    instance_id = register_and_start(api, REVIEW)
    task = wait_for_task(api, instance_id, "review")
    forget_step_functions(local_aws)

    # Between the restart and the continued run: the old token is dead, but the step still waits.
    status, done = api.post(f"/tasks/{task['id']}/complete", {"output_data": {"ok": False}, "completed_by": "rita"})
    assert status == 200 and done["status"] == "completed", done
    assert stored_task(task["id"]).get("outbox_state")  # not delivered yet: marked, never expired

    recover(services())
    finished = api.wait(instance_id)
    assert finished["status"] == "completed", finished
    assert finished["context_data"]["ok"] is False
    record = stored_task(task["id"])
    assert record["status"] == "completed" and record["completed_by"] == "rita" and not record.get("outbox_state")
    assert [t["id"] for t in api.get(f"/tasks?instance_id={instance_id}")[1]["items"]] == [task["id"]]
    assert len(events_of(instance_id, "task.completed")) == 1


def test_a_completion_holding_the_record_from_before_the_takeover_is_refused_and_reloads(api, local_aws):
    instance_id = register_and_start(api, REVIEW)
    task = wait_for_task(api, instance_id, "review")
    stale = stored_task(task["id"])
    forget_step_functions(local_aws)
    recover(services())
    wait_for(lambda: stored_task(task["id"])["attempt"] == stale["attempt"] + 1, "the takeover")

    with pytest.raises(Conflict):
        services().tasks.complete(task["id"], {"ok": True}, "rita", record=stale)
    status, done = api.post(f"/tasks/{task['id']}/complete", {"output_data": {"ok": True}, "completed_by": "rita"})
    assert status == 200, done
    assert api.wait(instance_id)["status"] == "completed"


def test_a_task_closed_before_the_restart_is_not_opened_again(api, local_aws):
    instance_id = register_and_start(api, REVIEW)
    task = wait_for_task(api, instance_id, "review")
    status, _ = api.post(f"/instances/{instance_id}/cancel?reason=duplicate")
    assert status == 200
    forget_step_functions(local_aws)

    report = recover(services())
    assert report.continued == []  # an ended instance has nothing to continue
    assert stored_task(task["id"])["status"] == "canceled"
    assert api.get(f"/instances/{instance_id}")[1]["status"] == "canceled"


def test_continuing_twice_starts_one_run(api, local_aws):
    instance_id = register_and_start(api, REVIEW)
    wait_for_task(api, instance_id, "review")
    forget_step_functions(local_aws)
    assert recover(services()).continued == [instance_id]
    assert recover(services()).continued == []  # its new run exists
    assert [r["kind"] for r in api.get(f"/instances/{instance_id}")[1]["runs"]] == ["start", "continue"]


def test_a_new_instance_starts_on_a_restored_state_machine(api, local_aws):
    register_and_start(api, REVIEW)
    forget_step_functions(local_aws)
    recover(services())
    status, started = api.post("/instances", {"definition_name": "kept_review", "input_data": {}})
    assert status == 201, started
    wait_for_task(api, started["id"], "review")


def test_a_waiting_timer_ends_at_its_kept_due_time_not_a_whole_wait_later(api, local_aws):
    instance_id = register_and_start(api, TIMER)
    wait_for(lambda: api.get(f"/instances/{instance_id}")[1]["current_steps"] == ["pause"], "the timer")
    # The timer began when `prepare` finished: move that two days back, as if the service had been down.
    succeeded = [e for e in events_of(instance_id, "step.succeeded") if e["step"] == "prepare"]
    assert len(succeeded) == 1
    long_ago = iso(datetime.now(UTC) - timedelta(days=2))
    services().ddb.update_item(
        TableName=services().settings.events_table,
        Key={"instance_id": {"S": instance_id}, "seq": {"S": succeeded[0]["seq"]}},
        UpdateExpression="SET #at = :at", ExpressionAttributeNames={"#at": "at"},
        ExpressionAttributeValues={":at": {"S": long_ago}})
    forget_step_functions(local_aws)

    assert recover(services()).continued == [instance_id]
    finished = api.wait(instance_id, timeout=60)
    assert finished["status"] == "completed", finished
    assert finished["context_data"]["finished"] is True


def test_a_kept_due_time_is_the_recorded_start_plus_the_wait_at_the_time_scale():
    started = "2026-01-05T09:00:00.000Z"
    assert kept_timers.due_time(started, 600, 1.0) == datetime(2026, 1, 5, 9, 10, tzinfo=UTC).timestamp()
    assert kept_timers.due_time(started, 600, 0.01) == datetime(2026, 1, 5, 9, 0, 6, tzinfo=UTC).timestamp()


def test_only_a_waiting_seconds_timer_is_kept_for_the_new_run(api, local_aws):
    from chalicelib.core.history import StepRecord, Summary

    register_and_start(api, TIMER)
    run = {"definition_name": "kept_timer", "revision": services().definitions.get("kept_timer")["revision"]}
    summary = Summary(steps={"prepare": StepRecord("prepare", "succeeded"),
                             "pause": StepRecord("pause", "waiting", started_at="2026-01-05T09:00:00.000Z")},
                      outputs={}, current_steps=["pause"])
    try:
        assert keep_timers(services(), run, summary, "i--1") == ["pause"]
        assert kept_timers.kept("i--1", "pause") == kept_timers.due_time("2026-01-05T09:00:00.000Z", 86400,
                                                                         time_scale())
    finally:
        kept_timers.clear()


def test_a_resumed_run_opens_a_new_task_where_the_earlier_one_expired(api, local_aws):
    timed = {**REVIEW, "name": "kept_timed", "steps": [
        REVIEW["steps"][0], {**REVIEW["steps"][1], "timeout_seconds": 1}, REVIEW["steps"][2]]}
    instance_id = register_and_start(api, timed)
    first = wait_for_task(api, instance_id, "review")
    failed = api.wait(instance_id)
    assert failed["status"] == "failed" and failed["error"]["error"] == "Stepflow.TaskTimedOut", failed
    assert stored_task(first["id"])["status"] == "expired"

    status, resumed = api.post(f"/instances/{instance_id}/resume")
    assert status == 200, resumed
    second = wait_for_task(api, instance_id, "review")
    assert second["id"] != first["id"]  # the expired task stays closed; the new run has its own
    assert stored_task(first["id"])["status"] == "expired"


def test_an_instance_whose_workflow_is_gone_fails_instead_of_waiting_forever(api, local_aws):
    instance_id = register_and_start(api, REVIEW)
    task = wait_for_task(api, instance_id, "review")
    forget_step_functions(local_aws)
    # The store lost the workflow's pointer (nothing in the API deletes one; a damaged store could).
    services().ddb.delete_item(TableName=services().settings.definitions_table,
                               Key={"name": {"S": "kept_review"}, "sk": {"S": "latest"}})

    report = recover(services())
    assert report.continued == [] and "kept_review" not in report.state_machines
    view = api.get(f"/instances/{instance_id}")[1]
    assert view["status"] == "failed" and view["error"]["error"] == "Stepflow.StartFailed", view
    assert "could not be continued" in view["error"]["message"]
    assert stored_task(task["id"])["status"] == "expired"


def test_a_damaged_workflow_record_does_not_keep_the_others_from_being_restored(api, local_aws):
    register_and_start(api, REVIEW)
    revision = api.post("/definitions", TIMER)[1]["revision"]
    forget_step_functions(local_aws)
    services().definitions._revision.cache_clear()  # this process read it; a restarted one would not have
    services().ddb.delete_item(TableName=services().settings.definitions_table,
                               Key={"name": {"S": "kept_timer"}, "sk": {"S": f"rev#{revision}"}})

    report = recover(services())
    assert "kept_review" in report.state_machines and "kept_timer" not in report.state_machines


def test_an_instance_not_continued_yet_can_still_be_canceled(api, local_aws):
    instance_id = register_and_start(api, REVIEW)
    task = wait_for_task(api, instance_id, "review")
    forget_step_functions(local_aws)  # and no continuation (one that failed at start, say)

    assert api.get(f"/instances/{instance_id}")[1]["status"] == "waiting"  # its view still reads
    status, canceled = api.post(f"/instances/{instance_id}/cancel?reason=gone")
    assert status == 200 and canceled["status"] == "canceled", canceled
    assert stored_task(task["id"])["status"] == "canceled"
    assert recover(services()).continued == []
