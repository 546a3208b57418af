"""Due dates and assignees of human tasks from instance data, through the API on the local runtime: a
path or an expression (`{{ submitted_at }} + 2d`) checked at registration, bad data at run time a named
step error (which on_error can route), never a crash."""

from __future__ import annotations

import json
from typing import Any

FORM = {"type": "object", "properties": {"approved": {"type": "boolean"}}}


def review(name: str, **step: Any) -> dict[str, Any]:
    return {"name": name, "version": "1.0.0",
            "steps": [{"id": "review", "type": "human", "title": "Review", "form_schema": FORM, **step}],
            "edges": [], "initial_step": "review", "terminal_steps": ["review"]}


def _start(api: Any, definition: dict[str, Any], data: dict[str, Any]) -> str:
    status, body = api.post("/definitions", definition)
    assert status in (200, 201), body
    status, started = api.post("/instances", {"definition_name": definition["name"], "input_data": data})
    assert status == 201, started
    return started["id"]


def test_the_due_date_comes_from_a_data_path_with_an_offset(api):
    definition = review("due_from_data", due_at="{{ submitted_at }} + 2d", reminder_before="1d",
                        assignee="{{ owner.email }}", candidate_groups=["{{ teams }}", "audit"])
    instance_id = _start(api, definition, {"submitted_at": "2026-03-01T10:00:00Z", "owner": {"email": "kim@x"},
                                           "teams": ["ops", "finance"]})
    task = api.one_task(f"instance_id={instance_id}")
    assert task["due_at"] == "2026-03-03T10:00:00.000Z" and task["assignee"] == "kim@x"
    detail = api.get(f"/tasks/{task['id']}")[1]
    assert detail["reminder_at"] == "2026-03-02T10:00:00.000Z"
    assert sorted(detail["candidate_groups"]) == ["audit", "finance", "ops"]  # a set: kept in no order
    assert [t["id"] for t in api.get("/tasks?assignee_group=finance")[1]["items"]] == [task["id"]]


def test_a_bare_path_is_the_due_date_itself(api):
    instance_id = _start(api, review("due_at_path", due_at="deadline"), {"deadline": "2026-04-01T08:30:00+02:00"})
    assert api.one_task(f"instance_id={instance_id}")["due_at"] == "2026-04-01T06:30:00.000Z"


def test_data_without_a_due_date_fails_the_step_with_a_named_error_and_no_task(api):
    definition = review("due_missing", due_at="{{ submitted_at }} + 2d")
    for data, why in (({}, "'submitted_at' is not in the instance data"),
                      ({"submitted_at": "next tuesday"}, "'submitted_at' is not a timestamp")):
        instance_id = _start(api, definition, data)
        done = api.wait(instance_id)
        assert done["status"] == "failed", done
        assert done["error"]["error"] == "Stepflow.TaskDataError", done["error"]
        assert why in done["error"]["message"] and "File" not in json.dumps(done), done["error"]
        assert api.get(f"/tasks?instance_id={instance_id}")[1]["items"] == []


def test_on_error_routes_a_step_whose_data_gives_no_due_date(api):
    definition = review("due_missing_routed", due_at="deadline", on_error="explain")
    definition["steps"] += [{"id": "explain", "type": "machine", "task_type": "data.set",
                             "config": {"values": {"explained": True}}},
                            {"id": "done", "type": "machine", "task_type": "data.set", "config": {"values": {"ok": True}}}]
    definition["terminal_steps"] = ["explain", "done"]
    definition["edges"] = [{"source": "review", "target": "done"}]
    instance_id = _start(api, definition, {})
    done = api.wait(instance_id)
    assert done["status"] == "completed", done.get("error")
    assert done["context_data"]["outcome"] == "failed" and done["context_data"]["error"] == "Stepflow.TaskDataError"
    assert done["context_data"]["explained"] is True and "ok" not in done["context_data"]


def test_a_due_date_rule_that_is_not_one_is_refused_where_it_is(api):
    for due, extra in (("{{ submitted_at }} * 2", {}), ("{{ submitted_at }} + soon", {}),
                       ("deadline", {"due_in": "2d"})):
        status, body = api.post("/definitions", review("bad_due", due_at=due, **extra))
        assert status == 422, body
        assert [i["location"] for i in body["detail"]["issues"]] == (
            ["steps[0]"] if extra else ["steps[0].due_at"]), body


def test_an_assignee_or_group_placeholder_that_is_not_a_path_is_refused_where_it_is(api):
    definition = review("bad_people", assignee="{{ owner email }}", candidate_groups=["ops", "{{ teams[ }}"])
    status, body = api.post("/definitions", definition)
    assert status == 422, body
    assert sorted(i["location"] for i in body["detail"]["issues"]) == ["steps[0].assignee",
                                                                       "steps[0].candidate_groups"], body
