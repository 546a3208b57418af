"""The Task payload's one-letter keys: the compiler sends only keys the handlers know, and the handlers
read both the short form and the long form that executions of older state machines still send."""

from __future__ import annotations

from typing import Any

from chalicelib.core.compiler import compile_definition
from chalicelib.core.model import Definition
from chalicelib.core.payload import KEYS, expand, merged_steps
from chalicelib.runtime.definitions import RevisionLoader
from chalicelib.runtime.step_runner import StepRunner
from chalicelib.tasks.registry import default_registry

BODY = {"name": "pay", "steps": [
    {"id": "a", "type": "machine", "task_type": "data.set", "config": {"values": {"x": 1}},
     "fallback": {"task_type": "data.set", "config": {"values": {"x": 0}}}},
    {"id": "b", "type": "machine", "task_type": "data.set", "config": {"values": {"y": 2}}, "depends_on": ["a"]},
    {"id": "c", "type": "machine", "task_type": "data.set", "config": {"values": {"z": 3}}, "depends_on": ["a"]},
    {"id": "route", "type": "gateway", "depends_on": ["b", "c"]},
    {"id": "ask", "type": "human", "depends_on": ["route"], "condition": "y == 2"},
    {"id": "skip", "type": "machine", "task_type": "data.set", "config": {"values": {"w": 4}}, "depends_on": ["route"]},
]}


def _parameters(states: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    for state in states.values():
        params = state.get("Parameters")
        if params is not None:
            found.append(params.get("Payload", params))
        for branch in state.get("Branches", []):
            found += _parameters(branch["States"])
    return found


def test_every_key_the_compiler_sends_is_one_the_handlers_expand():
    asl = compile_definition(Definition.model_validate(BODY), "0123456789abcdef")
    payloads = _parameters(asl["States"])
    assert len(payloads) >= 6  # a, its fallback, b, c, the merge before the gateway, ask, skip
    for payload in payloads:
        assert {key.removesuffix(".$") for key in payload} <= set(KEYS), payload
    kinds = sorted(p.get("k", "-") for p in payloads)
    assert "fallback" in kinds and "merge" in kinds


def test_the_step_runner_reads_the_short_and_the_long_form_alike():
    runner = StepRunner(RevisionLoader(lambda name, revision: {"body": BODY}), default_registry())
    short = {"w": "pay", "r": "r1", "s": "b", "i": {"n": 1}, "x": {"a": {"x": 1}}, "e": ""}
    long = {"kind": "machine", "workflow": "pay", "revision": "r1", "step": "b", "input": {"n": 1},
            "steps": {"a": {"x": 1}}, "execution": ""}
    expected = {"steps": {"a": {"x": 1}, "b": {"y": 2}}, "data": {"n": 1, "x": 1, "y": 2}}
    assert runner.handle(short) == runner.handle(long) == expected
    merged = runner.handle({"k": "merge", "w": "pay", "r": "r1", "s": "route", "i": {}, "x": {"b": {"y": 2}}})
    assert merged == {"steps": {"b": {"y": 2}}, "data": {"y": 2}}


def test_expand_leaves_a_long_form_event_as_it_is():
    long = {"kind": "fallback", "workflow": "w", "revision": "r", "step": "s", "failure": {"Error": "E"}}
    assert expand(long) is long
    assert expand({"k": "fallback", "w": "w", "r": "r", "s": "s", "f": {"Error": "E"}}) == long


def test_the_shared_context_and_a_parallels_maps_read_as_the_flat_long_form():
    shared = {"k": "merge", "c": {"w": "w", "r": "r", "i": {"n": 1}, "e": "arn"}, "s": "j",
              "x": [{"a": 1}, [{"b": 2}, {"c": 3}], {"b": 4}]}
    assert expand(shared) == {"kind": "merge", "workflow": "w", "revision": "r", "input": {"n": 1},
                              "execution": "arn", "step": "j", "steps": {"a": 1, "b": 4, "c": 3}}
    # Left to right, a later key winning: what States.JsonMerge($[0],$[1],false) nested gives.
    assert merged_steps([{"a": 1, "b": 1}, {"b": 2}]) == {"a": 1, "b": 2}
    assert merged_steps({"a": 1}) == {"a": 1} and merged_steps(None) == {}


def test_the_step_runner_joins_a_parallels_branches_itself():
    runner = StepRunner(RevisionLoader(lambda name, revision: {"body": BODY}), default_registry())
    event = {"c": {"w": "pay", "r": "r1", "i": {"n": 1}, "e": ""}, "s": "route", "k": "merge",
             "x": [{"a": {"x": 1}, "b": {"y": 2}}, {"a": {"x": 1}, "c": {"z": 3}}]}
    assert runner.handle(event) == {"steps": {"a": {"x": 1}, "b": {"y": 2}, "c": {"z": 3}},
                                    "data": {"n": 1, "x": 1, "y": 2, "z": 3}}
