"""The compiler: golden ASL per step kind and graph shape, statelint, determinism, structure rules."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from statelint.linter import Linter

from chalicelib.core.compiler import CompileError, compile_definition
from chalicelib.core.model import Definition
from chalicelib.core.sizing import bind_placeholders
from chalicelib.tools.build_statemachines import OUT, render_all

GOLDEN = Path(__file__).with_name("golden")
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"
# statelint checks what Step Functions receives: the machine with its function ARNs bound.
ARNS = {"StepRunnerFunctionArn": "arn:aws:lambda:eu-west-1:123456789012:function:stepflow-dev-step_runner",
        "TaskRegistrarFunctionArn": "arn:aws:lambda:eu-west-1:123456789012:function:stepflow-dev-task_registrar"}


def lint(asl):
    return Linter.validate(bind_placeholders(asl, ARNS))


def m(step_id, *deps, **extra):
    return {"id": step_id, "type": "machine", "task_type": "data.set", "config": {"values": {step_id: True}},
            "depends_on": list(deps), **extra}


CASES = {
    "machine_policies": [m("charge", retry={"max_attempts": 4, "interval_seconds": 2, "backoff_rate": 1.5,
                                            "max_delay_seconds": 30},
                           timeout_seconds=60, fallback={"task_type": "util.log", "config": {"message": "fell back"}})],
    "chain": [m("a"), m("b", "a"), m("c", "b")],
    "fan_out_join": [m("start"), m("x", "start"), m("y", "start"), m("z", "start"), m("join", "x", "y", "z")],
    "not_series_parallel": [m("a"), m("b"), m("c", "a", "b"), m("d", "b")],
    "gateway_after_join": [
        m("start"), m("x", "start"), m("y", "start"),
        {"id": "route", "type": "gateway", "depends_on": ["x", "y"]},
        m("big", "route", condition="amount > 100"), m("small", "route"), m("done", "big", "small"),
    ],
    "gateway_with_parallel_branch": [
        m("start"), {"id": "route", "type": "gateway", "depends_on": ["start"]},
        m("p1", "route", condition="fast == true"), m("p2", "p1"), m("p3", "p1"), m("p4", "p2", "p3"),
        m("slow", "route"),
    ],
    "human_and_webhook": [
        {"id": "review", "type": "human", "title": "Review", "form_schema": {"type": "object"},
         "assignee_group": "reviewers", "timeout_seconds": 3600, "heartbeat_seconds": 600},
        {"id": "paid", "type": "webhook", "event_type": "payment.received", "depends_on": ["review"]},
    ],
    "timers": [
        m("a"), m("b", "a"), m("c", "a"),
        {"id": "wait_until", "type": "timer", "until": "ship_at", "depends_on": ["b", "c"]},
        {"id": "pause", "type": "timer", "seconds": 5, "depends_on": ["wait_until"]},
    ],
}


def definition(name: str) -> Definition:
    return Definition.model_validate({"name": name, "version": "1.0.0", "steps": CASES[name]})


@pytest.mark.parametrize("name", sorted(CASES))
def test_golden_asl(name):
    asl = compile_definition(definition(name), "0123456789abcdef")
    path = GOLDEN / f"{name}.asl.json"
    text = json.dumps(asl, indent=2) + "\n"
    if UPDATE:
        path.write_text(text)
    assert text == path.read_text(), f"{path.name} drifted; rerun with UPDATE_GOLDEN=1 after checking the diff"
    assert lint(asl) == []


@pytest.mark.parametrize("name", sorted(CASES))
def test_same_input_gives_byte_identical_output(name):
    first = json.dumps(compile_definition(definition(name), "r"))
    assert json.dumps(compile_definition(definition(name), "r")) == first


def test_committed_statemachines_match_the_compiler():
    expected = render_all()
    committed = {p.name: p.read_text() for p in OUT.glob("*.asl.json")}
    assert committed == expected, "statemachines/ drifted from the compiler: run `make statemachines`"
    for text in expected.values():
        assert lint(json.loads(text)) == []


def test_fan_out_compiles_to_one_parallel_with_a_steps_merge():
    states = compile_definition(definition("fan_out_join"), "r")["States"]
    assert list(states) == ["start", "par__1", "join"]
    parallel = states["par__1"]
    assert [b["StartAt"] for b in parallel["Branches"]] == ["x", "y", "z"]
    assert parallel["ResultSelector"] == {
        "steps.$": "States.JsonMerge(States.JsonMerge($[0],$[1],false),$[2],false)"}
    # Each branch hands back only its steps map, which is what the join merges.
    assert all(b["States"][b["StartAt"]]["OutputPath"] == "$.steps" for b in parallel["Branches"])


def test_choice_after_a_join_first_recomputes_the_data():
    states = compile_definition(definition("gateway_after_join"), "r")["States"]
    assert states["par__1"]["Next"] == "route__merge"
    assert states["route__merge"]["Parameters"]["k"] == "merge"
    assert states["route__merge"]["Next"] == "route"
    assert states["route"]["Type"] == "Choice"


def test_compile_refuses_a_cycle():
    d = Definition.model_validate({"name": "loop", "steps": [m("a", "b"), m("b", "a")]})
    with pytest.raises(CompileError, match="cycle"):
        compile_definition(d, "r")
