"""GET /instances/{id}?input_of=<step>: that step's input, as the step was given it."""

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


def _failed_run(api) -> str:
    status, body = api.post("/definitions", FLOW)
    assert status == 201, body
    status, started = api.post("/instances", {"definition_name": "inputs_shown", "input_data": {"order": "o-1"}})
    assert status == 201, started
    assert api.wait(started["id"])["status"] == "failed"
    return started["id"]


def test_a_step_shows_the_data_it_was_given_when_asked_for_it(api):
    instance_id = _failed_run(api)
    status, plain = api.get(f"/instances/{instance_id}")
    assert status == 200 and all("input" not in s for s in plain["step_history"]), plain["step_history"]

    def input_of(step):
        status, view = api.get(f"/instances/{instance_id}?input_of={step}")
        assert status == 200, view
        shown = {s["step_name"]: s for s in view["step_history"] if "input" in s}
        assert list(shown) == [step], view["step_history"]  # that step's only
        return shown[step]["input"]

    assert input_of("start") == {"order": "o-1"}
    # A branch sees what came before it, never the other branch's output.
    assert input_of("left") == {"order": "o-1", "a": 1}
    assert input_of("right") == {"order": "o-1", "a": 1, "picked": {"a": 1}}
    # The step that failed was given both branches' outputs; its clean error is on its record.
    assert input_of("join") == {"order": "o-1", "a": 1, "l": 2, "r": 3}
    status, view = api.get(f"/instances/{instance_id}?input_of=join")
    failed = next(s for s in view["step_history"] if s["step_name"] == "join")
    assert failed["status"] == "failed" and failed["error"] == {"error": "Check.Failed", "message": "l is 2"}
    assert view["error"]["error"] == "Check.Failed"


def test_input_of_names_a_step(api):
    instance_id = _failed_run(api)
    # A step the instance has no record of (or no such step) gets nothing; a name too long is refused.
    status, view = api.get(f"/instances/{instance_id}?input_of=nowhere")
    assert status == 200 and all("input" not in s for s in view["step_history"])
    status, answer = api.get(f"/instances/{instance_id}?input_of={'x' * 65}")
    assert status == 400 and "input_of" in str(answer), answer
