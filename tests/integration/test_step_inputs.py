"""GET /instances/{id}?include_inputs=true: each step's input, as the step was given it."""

from __future__ import annotations

FLOW = {"name": "inputs_shown", "steps": [
    {"id": "start", "type": "machine", "task_type": "data.set", "config": {"values": {"a": 1}}},
    {"id": "left", "type": "machine", "task_type": "data.set", "config": {"values": {"l": 2}},
     "depends_on": ["start"]},
    {"id": "right", "type": "machine", "task_type": "data.set", "config": {"values": {"r": 3}},
     "depends_on": ["start"], "input_mappings": [{"from_step": "start", "from_field": "a", "to_field": "picked.a"}]},
    {"id": "join", "type": "machine", "task_type": "data.assert", "depends_on": ["left", "right"],
     "config": {"condition": "l == 0", "error": "Check.Failed", "message": "l is {{ l }}"}},
]}


def test_each_step_shows_the_data_it_was_given_only_when_asked(api):
    status, body = api.post("/definitions", FLOW)
    assert status == 201, body
    status, started = api.post("/instances", {"definition_name": "inputs_shown", "input_data": {"order": "o-1"}})
    assert status == 201, started
    assert api.wait(started["id"])["status"] == "failed"

    status, plain = api.get(f"/instances/{started['id']}")
    assert status == 200 and all("input" not in s for s in plain["step_history"]), plain["step_history"]
    status, view = api.get(f"/instances/{started['id']}?include_inputs=true")
    assert status == 200, view
    inputs = {s["step_name"]: s["input"] for s in view["step_history"]}
    assert inputs["start"] == {"order": "o-1"}
    # A branch sees what came before it, never the other branch's output.
    assert inputs["left"] == {"order": "o-1", "a": 1}
    assert inputs["right"] == {"order": "o-1", "a": 1, "picked": {"a": 1}}
    # The step that failed was given both branches' outputs; its clean error is on its record.
    assert inputs["join"] == {"order": "o-1", "a": 1, "l": 2, "r": 3}
    failed = next(s for s in view["step_history"] if s["step_name"] == "join")
    assert failed["status"] == "failed" and failed["error"] == {"error": "Check.Failed", "message": "l is 2"}
    assert view["error"]["error"] == "Check.Failed"


def test_include_inputs_takes_a_boolean(api):
    status, body = api.post("/definitions", FLOW)
    assert status == 201, body
    _, started = api.post("/instances", {"definition_name": "inputs_shown", "input_data": {}})
    api.wait(started["id"])
    status, answer = api.get(f"/instances/{started['id']}?include_inputs=maybe")
    assert status == 400 and "include_inputs" in str(answer), answer
