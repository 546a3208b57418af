"""A human step routes on its outcome (on_reject, on_timeout, on_error) instead of failing the instance:
through the API, on the local runtime (moto's Step Functions interpreter running the compiled ASL)."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from chalicelib.core.times import iso

APPROVAL_FORM = {"type": "object", "required": ["approved"], "properties": {"approved": {"type": "boolean"}}}


def routed(name: str, **review: Any) -> dict[str, Any]:
    return {
        "name": name, "version": "1.0.0",
        "steps": [
            {"id": "review", "type": "human", "title": "Review", "assignee_group": "reviewers",
             "form_schema": APPROVAL_FORM, "on_reject": "rework", "on_timeout": "chase", **review},
            {"id": "ship", "type": "machine", "task_type": "data.set", "config": {"values": {"shipped": True}}},
            {"id": "rework", "type": "machine", "task_type": "data.set", "config": {"values": {"reworked": True}}},
            {"id": "chase", "type": "machine", "task_type": "data.set", "config": {"values": {"chased": True}}},
        ],
        "edges": [{"source": "review", "target": "ship"}],
        "initial_step": "review", "terminal_steps": ["ship", "rework", "chase"],
    }


def _start(api: Any, definition: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    status, body = api.post("/definitions", definition)
    assert status in (200, 201), body
    status, started = api.post("/instances", {"definition_name": definition["name"], "input_data": {}})
    assert status == 201, started
    return started["id"], api.one_task(f"instance_id={started['id']}")


def _ran(done: dict[str, Any]) -> list[str]:
    return [s["step_name"] for s in done["step_history"]]


def test_a_rejection_routed_by_on_reject_takes_its_branch_and_the_instance_completes(api):
    instance_id, task = _start(api, routed("routed_reject"))
    assert api.post(f"/approvals/{task['id']}/reject", {"decided_by": "ann"})[0] == 200
    done = api.wait(instance_id)
    assert done["status"] == "completed", done.get("error")
    assert done["context_data"]["reworked"] is True and "shipped" not in done["context_data"]
    assert "rework" in _ran(done) and "ship" not in _ran(done)


def test_an_approval_takes_the_plain_link(api):
    instance_id, task = _start(api, routed("routed_approve"))
    assert api.post(f"/approvals/{task['id']}/approve", {"decided_by": "ann"})[0] == 200
    done = api.wait(instance_id)
    assert done["status"] == "completed" and done["context_data"]["shipped"] is True
    assert "reworked" not in done["context_data"] and "chased" not in done["context_data"]


def test_an_overdue_task_failed_by_its_escalation_is_routed_by_on_timeout(api):
    """Without on_timeout an escalation `fail` fails the instance; with it, the workflow catches the
    named error and goes on at the route, the step's output saying what happened."""
    import app as app_module

    definition = routed("routed_overdue", due_in=1, escalation={"action": "fail", "error": "Review.Overdue"})
    instance_id, task = _start(api, definition)
    deadline = time.monotonic() + 20
    while iso(datetime.now(UTC)) <= task["due_at"]:  # due in a second: wait for the clock to pass it
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert app_module.services.tasks.sweep()["escalated"] >= 1
    done = api.wait(instance_id)
    assert done["status"] == "completed", done.get("error")
    assert done["context_data"]["chased"] is True
    assert done["context_data"]["outcome"] == "timed_out" and done["context_data"]["error"] == "Review.Overdue"
    assert api.get(f"/tasks/{task['id']}")[1]["status"] == "expired"


def test_routes_are_checked_at_registration_where_they_are(api):
    definition = routed("routed_bad", on_error="nowhere")
    definition["steps"][0]["form_schema"] = {"type": "object", "properties": {"note": {"type": "string"}}}
    definition["edges"].append({"source": "review", "target": "chase"})
    status, body = api.post("/definitions", definition)
    assert status == 422, body
    found = sorted((i["location"], i["code"]) for i in body["detail"]["issues"])
    assert found == [("steps[0].on_error", "unknown_step"), ("steps[0].on_reject", "reject_without_decision"),
                     ("steps[0].on_timeout", "route_is_also_a_link")], found


def test_a_routed_step_needs_a_link_for_an_ordinary_completion(api):
    definition = routed("routed_unlinked")
    definition["edges"] = []
    definition["terminal_steps"] = ["chase", "ship"]
    definition["steps"][1]["depends_on"] = ["rework"]  # ship still runs, but not after the review
    status, body = api.post("/definitions", definition)
    assert status == 422, body
    assert [(i["location"], i["code"]) for i in body["detail"]["issues"]] == [("steps[0]", "route_without_link")]
