"""Workflow schedules through the API and the schedule_fired handler: a time-scaled rate schedule starts
runs on time, overlap policies, pause, backfills, a double fire, and the 422s for bad expressions."""

from __future__ import annotations

import time
from datetime import datetime, timedelta

QUICK = {"name": "tick", "version": "1", "steps": [
    {"id": "mark", "type": "machine", "task_type": "data.set", "config": {"values": {"ticked": True}}}]}
SLOW = {"name": "review", "version": "1", "steps": [{"id": "review", "type": "human", "title": "Review"}]}


def register(api, body):
    status, found = api.post("/definitions", body)
    assert status in (200, 201), found


def schedule(api, name, **body):
    status, found = api.post(f"/definitions/{name}/schedules", body)
    assert status == 201, found
    return found


def fire(name, schedule_id, at):
    import app as app_module

    return app_module.schedule_fired({"definition": name, "schedule_id": schedule_id, "scheduled_at": at}, None)


def runs(api, name):
    status, page = api.get(f"/instances?workflow_name={name}&limit=100")
    assert status == 200, page
    return page["items"]


def wait_for(check, timeout=30.0):
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def test_a_time_scaled_rate_schedule_starts_runs_on_time(api, local_aws):
    import app as app_module
    from stepflow_local.schedules import deliver_workflow_schedules

    register(api, QUICK)
    created = schedule(api, "tick", expression="rate(1 minute)", overlap="allow", input={"who": "clock"})
    assert len(created["next_runs"]) == 5
    job = deliver_workflow_schedules(app_module, local_aws, 0.01)  # a minute passes every 0.6 s
    try:
        fired = wait_for(lambda: len(runs(api, "tick")) >= 3 and runs(api, "tick"))
    finally:
        job.cancel()
    assert fired, "the schedule started fewer than 3 runs"
    slots = sorted(datetime.fromisoformat(api.get(f"/instances/{r['id']}")[1]["input_data"]["scheduled_at"])
                   for r in fired)
    # On time: each run carries its own slot, a minute after the one before, counted from the schedule's creation.
    assert all(b - a == timedelta(minutes=1) for a, b in zip(slots, slots[1:], strict=False)), slots
    anchor = datetime.fromisoformat(created["created_at"]).replace(microsecond=0)
    assert all((s - anchor).total_seconds() % 60 == 0 for s in slots), (anchor, slots)
    detail = api.get(f"/instances/{fired[0]['id']}")[1]
    assert detail["input_data"]["who"] == "clock"


def test_a_double_fire_starts_one_instance(api):
    register(api, QUICK)
    found = schedule(api, "tick", expression="cron(0 * * * ? *)", overlap="allow")
    first = fire("tick", found["id"], "2026-01-05T10:00:00Z")
    second = fire("tick", found["id"], "2026-01-05T10:00:00Z")
    assert first["outcome"] == "started" and second["outcome"] == "already_started"
    assert first["instance_id"] == second["instance_id"]
    assert len(runs(api, "tick")) == 1
    assert api.get(f"/definitions/tick/schedules/{found['id']}")[1]["fired"] == 1


def test_skip_overlap_skips_while_a_run_is_open(api):
    register(api, SLOW)
    found = schedule(api, "review", expression="rate(1 hour)")
    assert found["overlap"] == "skip"
    first = fire("review", found["id"], "2026-01-05T10:00:00Z")
    assert first["outcome"] == "started"
    api.wait(first["instance_id"], until=("waiting",))
    assert fire("review", found["id"], "2026-01-05T11:00:00Z") == {"outcome": "skipped"}
    assert len(runs(api, "review")) == 1
    status, view = api.get(f"/definitions/review/schedules/{found['id']}")
    assert status == 200 and view["skipped"] == 1 and view["last_instance_id"] == first["instance_id"]
    # Once the open run ends, the next fire starts again.
    task = api.one_task(f"instance_id={first['instance_id']}")
    assert api.post(f"/tasks/{task['id']}/complete", {"output_data": {}, "completed_by": "ann"})[0] == 200
    assert api.wait(first["instance_id"])["status"] == "completed"
    assert fire("review", found["id"], "2026-01-05T12:00:00Z")["outcome"] == "started"
    assert len(runs(api, "review")) == 2


def test_buffer_one_keeps_one_run_waiting_for_the_open_one(api):
    import app as app_module

    register(api, SLOW)
    found = schedule(api, "review", expression="rate(1 hour)", overlap="buffer_one")
    first = fire("review", found["id"], "2026-01-05T10:00:00Z")
    api.wait(first["instance_id"], until=("waiting",))
    queued = fire("review", found["id"], "2026-01-05T11:00:00Z")
    assert queued["outcome"] == "queued"
    assert fire("review", found["id"], "2026-01-05T12:00:00Z") == {"outcome": "skipped"}  # one buffered at most
    assert api.get(f"/instances/{queued['instance_id']}")[1]["status"] == "pending"
    task = api.one_task(f"instance_id={first['instance_id']}")
    assert api.post(f"/tasks/{task['id']}/complete", {"output_data": {}, "completed_by": "ann"})[0] == 200
    assert api.wait(first["instance_id"])["status"] == "completed"
    # The sweep starts the buffered run once the open one has ended (no need to wait for the next fire).
    assert app_module.services.schedules.start_buffered() == 1
    assert api.wait(queued["instance_id"], until=("waiting",))["status"] == "waiting"
    assert app_module.services.schedules.start_buffered() == 0
    # Now it is the open run: the next fire is buffered behind it.
    assert fire("review", found["id"], "2026-01-05T13:00:00Z")["outcome"] == "queued"
    assert api.get(f"/definitions/review/schedules/{found['id']}")[1]["last_instance_id"] == queued["instance_id"]


def test_pause_stops_the_schedule_and_resume_starts_it_again(api):
    import app as app_module
    from chalicelib.wiring import now_utc

    register(api, QUICK)
    found = schedule(api, "tick", expression="rate(1 minute)", overlap="allow")
    status, paused = api.post(f"/definitions/tick/schedules/{found['id']}/pause", {})
    assert status == 200 and paused["state"] == "paused" and paused["next_runs"] == []
    later = now_utc() + timedelta(hours=1)
    assert app_module.services.schedules.due(later) == []  # the local runtime fires nothing
    assert fire("tick", found["id"], "2026-01-05T10:00:00Z") == {"outcome": "paused"}  # nor does a late AWS fire
    assert runs(api, "tick") == []
    status, resumed = api.post(f"/definitions/tick/schedules/{found['id']}/resume", {})
    assert status == 200 and resumed["state"] == "enabled" and len(resumed["next_runs"]) == 5
    due = app_module.services.schedules.due(later)
    assert [(n, i) for n, i, _ in due] == [("tick", found["id"])]


def test_the_local_runtime_fires_the_times_a_late_check_passed_but_not_those_of_a_downtime(api):
    import app as app_module

    register(api, QUICK)
    found = schedule(api, "tick", expression="rate(1 minute)")
    anchor = datetime.fromisoformat(found["next_runs"][0])
    service = app_module.services.schedules
    late = service.due(anchor + timedelta(minutes=2, seconds=30), catch_up=timedelta(minutes=5))
    assert [at for _, _, at in late] == [(anchor + timedelta(minutes=m)).strftime("%Y-%m-%dT%H:%M:%SZ")
                                         for m in range(3)]
    assert service.due(anchor + timedelta(minutes=2, seconds=40), catch_up=timedelta(minutes=5)) == []  # fired once
    after_downtime = service.due(anchor + timedelta(hours=5, seconds=10), catch_up=timedelta(minutes=1))
    assert [at for _, _, at in after_downtime] == [(anchor + timedelta(hours=5)).strftime("%Y-%m-%dT%H:%M:%SZ")]


def test_a_backfill_starts_one_run_per_missed_slot(api):
    register(api, QUICK)
    found = schedule(api, "tick", expression="cron(*/15 9 * * ? *)", timezone="Europe/Paris", overlap="skip")
    status, done = api.post(f"/definitions/tick/schedules/{found['id']}/backfill",
                            {"from": "2026-01-05T08:00:00Z", "to": "2026-01-05T08:30:00Z"})
    assert status == 200, done
    assert [(r["scheduled_at"], r["outcome"]) for r in done["runs"]] == [
        ("2026-01-05T08:00:00Z", "started"), ("2026-01-05T08:15:00Z", "started"), ("2026-01-05T08:30:00Z", "started")]
    status, again = api.post(f"/definitions/tick/schedules/{found['id']}/backfill",
                             {"from": "2026-01-05T08:15:00Z", "to": "2026-01-05T09:00:00Z"})
    assert [r["outcome"] for r in again["runs"]] == ["already_started", "already_started", "started"]
    assert len(runs(api, "tick")) == 4
    inputs = sorted(api.get(f"/instances/{r['id']}")[1]["input_data"]["scheduled_at"] for r in runs(api, "tick"))
    assert inputs == ["2026-01-05T08:00:00Z", "2026-01-05T08:15:00Z", "2026-01-05T08:30:00Z", "2026-01-05T08:45:00Z"]


def test_bad_expressions_and_time_zones_are_422_and_create_nothing(api):
    register(api, QUICK)
    cases = [
        ({"expression": "rate(1 minutes)"}, "expression", "rate(1 minute)"),
        ({"expression": "cron(0 12 * * * *)"}, "expression", "'?'"),
        ({"expression": "cron(61 12 * * ? *)"}, "expression", "from 0 to 59"),
        ({"expression": "every day"}, "expression", "cron("),
        ({"expression": "cron(" + "1," * 300 + "1 * * * ? *)"}, "expression", "at most 256"),
        ({"expression": "rate(1 hour)", "timezone": "Mars/Olympus"}, "timezone", "not a known IANA"),
        ({"expression": "rate(1 hour)", "timezone": "../../etc/passwd"}, "timezone", "IANA"),
        ({"expression": "rate(1 hour)", "overlap": "sometimes"}, "overlap", "skip"),
        ({"expression": "rate(1 hour)", "start_date": "yesterday"}, "start_date", "ISO 8601"),
        ({"expression": "rate(1 hour)", "start_date": "2026-02-01T00:00:00Z", "end_date": "2026-01-01T00:00:00Z"},
         "end_date", "after"),
        ({"expression": "rate(1 hour)", "input": {"scheduled_at": "x"}}, "input.scheduled_at", "scheduled_at"),
        ({"expression": "rate(1 hour)", "colour": "red"}, "colour", "unknown"),
    ]
    for body, location, words in cases:
        status, answer = api.post("/definitions/tick/schedules", body)
        assert status == 422, (body, answer)
        issue = answer["detail"]["issues"][0]
        assert issue["location"] == location and words in issue["message"], (body, issue)
    assert api.get("/definitions/tick/schedules") == (200, [])
    assert api.post("/definitions/nope/schedules", {"expression": "rate(1 hour)"})[0] == 404


def test_read_change_and_delete(api):
    register(api, QUICK)
    found = schedule(api, "tick", expression="cron(0 9 ? * MON-FRI *)", timezone="America/New_York",
                     start_date="2030-01-01T00:00:00Z")
    status, view = api.get(f"/definitions/tick/schedules/{found['id']}?next=3")
    assert status == 200 and view["next_runs"] == ["2030-01-01T14:00:00Z", "2030-01-02T14:00:00Z",
                                                   "2030-01-03T14:00:00Z"]
    assert api.get(f"/definitions/tick/schedules/{found['id']}?next=500")[0] == 422
    status, changed = api.put(f"/definitions/tick/schedules/{found['id']}", {"timezone": "UTC"})
    assert status == 200 and changed["next_runs"][0] == "2030-01-01T09:00:00Z"
    assert changed["expression"] == "cron(0 9 ? * MON-FRI *)"
    assert api.get("/definitions/tick/schedules")[1] == [changed]
    assert api.delete(f"/definitions/tick/schedules/{found['id']}") == (200, {"id": found["id"], "deleted": True})
    assert api.get(f"/definitions/tick/schedules/{found['id']}")[0] == 404
    assert fire("tick", found["id"], "2030-01-01T09:00:00Z") == {"outcome": "gone"}


def test_the_eventbridge_scheduler_adapter_keeps_one_schedule_per_workflow_schedule(local_aws):
    """Against the emulated Scheduler: flexible window off, the scheduled time in the target's input, a retried
    create updates, pause disables, a repeated delete is fine."""
    import json

    from chalicelib.aws.scheduler import SCHEDULED_TIME, EventBridgeSchedules

    client = local_aws.client("scheduler")
    target = "arn:aws:lambda:us-east-1:123456789012:function:stepflow-local-schedule_fired"
    role = "arn:aws:iam::123456789012:role/stepflow-local-scheduler"
    adapter = EventBridgeSchedules(client, target, role, "stepflow-local-")
    record = {"id": "abc123", "definition_name": "tick", "expression": "cron(0 9 ? * MON-FRI *)",
              "timezone": "Europe/Paris", "state": "enabled", "start_date": "2030-01-01T00:00:00Z"}
    adapter.put(record)
    adapter.put(record)  # a retry after a failure that came after the create
    found = client.get_schedule(Name="stepflow-local-abc123")
    assert found["FlexibleTimeWindow"] == {"Mode": "OFF"} and found["State"] == "ENABLED"
    assert found["ScheduleExpression"] == "cron(0 9 ? * MON-FRI *)"
    assert found["ScheduleExpressionTimezone"] == "Europe/Paris"
    assert found["Target"]["Arn"] == target and found["Target"]["RoleArn"] == role
    assert json.loads(found["Target"]["Input"]) == {"definition": "tick", "schedule_id": "abc123",
                                                    "scheduled_at": SCHEDULED_TIME}
    adapter.put({**record, "state": "paused"})
    assert client.get_schedule(Name="stepflow-local-abc123")["State"] == "DISABLED"
    adapter.delete("abc123")
    adapter.delete("abc123")
    assert [s["Name"] for s in client.list_schedules()["Schedules"]] == []


def test_each_tenants_schedules_are_its_own_and_run_its_own_definition(api):
    """Names are per tenant: two tenants' `tick` have their own schedules, listed apart, and a fire runs the
    definition of the tenant whose schedule it is."""
    from chalicelib.core import definition_keys

    made = {}
    for tenant in ("t-one", "t-two"):
        body = {**QUICK, "steps": [{**QUICK["steps"][0], "config": {"values": {"tenant": tenant}}}]}
        assert api.put(f"/definitions/tick?tenant_id={tenant}", body)[0] == 201
        status, made[tenant] = api.post(f"/definitions/tick/schedules?tenant_id={tenant}",
                                        {"expression": "cron(0 * * * ? *)", "overlap": "allow"})
        assert status == 201 and made[tenant]["name"] == "tick", made[tenant]
    for tenant, other in (("t-one", "t-two"), ("t-two", "t-one")):
        status, listed = api.get(f"/definitions/tick/schedules?tenant_id={tenant}")
        assert status == 200 and [s["id"] for s in listed] == [made[tenant]["id"]], listed
        assert api.get(f"/definitions/tick/schedules/{made[other]['id']}?tenant_id={tenant}")[0] == 404
    assert api.get("/definitions/tick/schedules")[0] == 404  # no tenant: nobody's `tick` is visible
    fired = fire(definition_keys.key("t-two", None, "tick"), made["t-two"]["id"], "2026-01-05T10:00:00Z")
    assert fired["outcome"] == "started", fired
    view = wait_for(lambda: (found := api.get(f"/instances/{fired['instance_id']}")[1])["status"] == "completed"
                    and found)
    assert view and view["tenant_id"] == "t-two" and view["output"]["tenant"] == "t-two", view
