"""The compiler: golden ASL per step kind and graph shape, statelint, determinism, structure rules."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from statelint.linter import Linter

from chalicelib.core.compiler import CompileError, CompileOptions, compile_definition
from chalicelib.core.model import Definition
from chalicelib.core.sizing import bind_placeholders
from chalicelib.tools.build_statemachines import OUT, render_all

GOLDEN = Path(__file__).with_name("golden")
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"
# statelint checks what Step Functions receives: the machine with its function ARNs bound.
ARNS = {"StepRunnerFunctionArn": "arn:aws:lambda:eu-west-1:123456789012:function:stepflow-dev-step_runner",
        "TaskRegistrarFunctionArn": "arn:aws:lambda:eu-west-1:123456789012:function:stepflow-dev-task_registrar"}


# statelint 3.1, the newest release, predates Step Functions' workflow variables (2024): it reports the
# first state's Assign and every "c.$": "$c" as errors. Exactly those two findings are left to
# asl-validator 4, which knows variables (tests/unit/test_asl_validator.py runs it on every golden file
# and committed machine); everything else statelint reports still fails the test.
VARIABLE_FINDINGS = re.compile(r'Field "Assign" not allowed in .*'
                               r'|Field "c\.\$" of (Parameters|Payload) at ".*" is not a JSONPath or intrinsic function expression')


def lint(asl):
    return [f for f in Linter.validate(bind_placeholders(asl, ARNS)) if not VARIABLE_FINDINGS.fullmatch(f)]


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
    # Outcome routes: a rejection, a timeout (its own or a failing escalation) and any other failure each
    # continue at their step; the plain link starts parallel work, so the region is planned per branch.
    "routed_human": [
        {"id": "review", "type": "human", "form_schema": {"type": "object", "properties": {
            "approved": {"type": "boolean"}}}, "timeout_seconds": 3600, "escalation": {"action": "fail"},
         "on_reject": "rework", "on_timeout": "chase", "on_error": "oops"},
        m("p1", "review"), m("p2", "p1"), m("p3", "p1"), m("ship", "p2", "p3"),
        m("rework"), m("chase"), m("oops"),
    ],
    # A routed step inside a gateway's branch, without a plain successor (the approval ends the branch).
    "routed_in_gateway": [
        m("start"), {"id": "route", "type": "gateway", "depends_on": ["start"]},
        {"id": "review", "type": "human", "depends_on": ["route"], "condition": "amount > 100",
         "form_schema": {"type": "object", "properties": {"approved": {"type": "boolean"}}},
         "output_namespace": "review", "on_reject": "rework"},
        m("rework"), m("auto", "route"), m("done", "review", "rework", "auto"),
    ],
    # Only a failure is routed: no Choice after the task, only its Catch.
    "routed_error_only": [
        {"id": "review", "type": "human", "form_schema": {"type": "object"}, "on_error": "explain"},
        m("done", "review"), m("explain"),
    ],
    "timers": [
        m("a"), m("b", "a"), m("c", "a"),
        {"id": "wait_until", "type": "timer", "until": "ship_at", "depends_on": ["b", "c"]},
        {"id": "pause", "type": "timer", "seconds": 5, "depends_on": ["wait_until"]},
    ],
}


# Compiled with the context shared through the variable `c` (CompileOptions.share_context).
CASES["shared_context"] = CASES["gateway_with_parallel_branch"]
OPTIONS = {"shared_context": CompileOptions(share_context=True)}


def definition(name: str) -> Definition:
    return Definition.model_validate({"name": name, "version": "1.0.0", "steps": CASES[name]})


@pytest.mark.parametrize("name", sorted(CASES))
def test_golden_asl(name):
    asl = compile_definition(definition(name), "0123456789abcdef", OPTIONS.get(name, CompileOptions()))
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


def test_fan_out_compiles_to_one_parallel_whose_maps_the_join_merges():
    states = compile_definition(definition("fan_out_join"), "r")["States"]
    assert list(states) == ["start", "par__1", "join"]
    parallel = states["par__1"]
    assert [b["StartAt"] for b in parallel["Branches"]] == ["x", "y", "z"]
    # The join's Lambda merges the branches' maps (core/payload.py merged_steps): no merge in the ASL.
    assert parallel["ResultSelector"] == {"steps.$": "$"} and states["join"]["Type"] == "Task"
    # Each branch hands back only its steps map.
    assert all(b["States"][b["StartAt"]]["OutputPath"] == "$.steps" for b in parallel["Branches"])


def test_a_join_no_lambda_reads_first_is_merged_in_the_definition():
    # At the machine's end (its output is the steps map) and before a Wait (which hands the state on).
    ends = Definition.model_validate({"name": "ends", "steps": [m("a"), m("x", "a"), m("y", "a")]})
    assert compile_definition(ends, "r")["States"]["par__1"]["ResultSelector"] == {
        "steps.$": "States.JsonMerge($[0],$[1],false)"}
    waits = Definition.model_validate({"name": "waits", "steps": [
        m("a"), m("x", "a"), m("y", "a"), {"id": "pause", "type": "timer", "seconds": 5, "depends_on": ["x", "y"]},
        m("z", "pause")]})
    states = compile_definition(waits, "r")["States"]
    assert states["par__1"]["Next"] == "pause"
    assert states["par__1"]["ResultSelector"] == {"steps.$": "States.JsonMerge($[0],$[1],false)"}


def _payloads(states):
    for name, state in states.items():
        parameters = state.get("Parameters")
        if parameters is not None:
            yield name, parameters.get("Payload", parameters)
        for branch in state.get("Branches", []):
            yield from _payloads(branch["States"])


SHARED = CompileOptions(share_context=True)


def test_the_first_state_assigns_the_context_every_later_payload_reads():
    asl = compile_definition(definition("gateway_after_join"), "rev", SHARED)
    context = {"w": "gateway_after_join", "r": "rev", "i.$": "$$.Execution.Input.input", "e.$": "$$.Execution.Id"}
    first = asl["States"][asl["StartAt"]]
    assert first["Assign"] == {"c": context}
    assert first["Parameters"] == {"w": "gateway_after_join", "r": "rev", "s": "start",
                                   "i.$": "$$.Execution.Input.input", "x.$": "$.steps", "e.$": "$$.Execution.Id"}
    later = [payload for name, payload in _payloads(asl["States"]) if name != asl["StartAt"]]
    assert len(later) == 6 and all(p["c.$"] == "$c" and not {"w", "r", "i.$", "e.$"} & p.keys() for p in later)
    # Spelled out (the default), every payload is the flat form and nothing is assigned.
    flat = compile_definition(definition("gateway_after_join"), "rev")
    assert "Assign" not in json.dumps(flat)
    assert all(context.items() <= p.items() and "c.$" not in p for _, p in _payloads(flat["States"]))


def test_what_runs_before_the_context_is_assigned_spells_it_out():
    # A first step with a fallback: the fallback runs instead of it, so it assigns the context too.
    first_falls = Definition.model_validate({"name": "f", "steps": [
        m("a", fallback={"task_type": "util.log", "config": {"message": "x"}}), m("b", "a"), m("c", "b"), m("d", "c")]})
    states = compile_definition(first_falls, "r", SHARED)["States"]
    assert states["a"]["Catch"][0]["Next"] == "a__fallback"
    for name in ("a", "a__fallback"):
        assert "Assign" in states[name] and "w" in states[name]["Parameters"], name
    # A first Parallel: its branches run before it ends (and assigns), so they spell it out.
    roots = Definition.model_validate({"name": "roots", "steps": [m("x"), m("y"), m("j", "x", "y"), m("k", "j"),
                                                                   m("l", "k")]})
    asl = compile_definition(roots, "r", SHARED)
    assert asl["StartAt"] == "par__1" and "Assign" in asl["States"]["par__1"]
    inside = [p for name, p in _payloads(asl["States"]) if name in ("x", "y")]
    assert len(inside) == 2 and all("w" in p for p in inside)
    assert all(p.get("c.$") == "$c" for name, p in _payloads(asl["States"]) if name in ("j", "k", "l"))
    # A first gateway: a Choice assigns with the rule it takes, and with its own Assign on the Default.
    gateway = Definition.model_validate({"name": "g", "steps": [
        {"id": "route", "type": "gateway"}, m("a", "route", condition="x == 1"), m("b", "route"), m("c", "a", "b"),
        m("d", "c"), m("e", "d")]})
    route = compile_definition(gateway, "r", SHARED)["States"]["route"]
    assert route["Type"] == "Choice" and "Assign" in route and all("Assign" in rule for rule in route["Choices"])
    # Two steps: one Assign would cost more than the one payload it shortens.
    assert "Assign" not in json.dumps(compile_definition(definition("human_and_webhook"), "r", SHARED))


def test_a_fallback_catches_its_step_wherever_the_step_is():
    body = {"name": "fb", "steps": [m("a"), m("b", "a", fallback={"task_type": "util.log", "config": {"message": "x"}}),
                                    m("c", "b")]}
    states = compile_definition(Definition.model_validate(body), "r")["States"]
    assert states["b"]["Catch"] == [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.failure", "Next": "b__fallback"}]
    assert states["b"]["Next"] == states["b__fallback"]["Next"] == "c"


def test_retry_fields_at_their_asl_default_are_left_out():
    defaults = Definition.model_validate({"name": "r", "steps": [m("a", retry={"max_attempts": 4})]})
    [_, own] = compile_definition(defaults, "r")["States"]["a"]["Retry"]
    assert own == {"ErrorEquals": ["States.ALL"]}  # 1 s, then 3 more attempts, backing off x2: the defaults
    other = Definition.model_validate({"name": "r", "steps": [
        m("a", retry={"max_attempts": 2, "interval_seconds": 5, "backoff_rate": 1.0})]})
    [_, own] = compile_definition(other, "r")["States"]["a"]["Retry"]
    assert own == {"ErrorEquals": ["States.ALL"], "IntervalSeconds": 5, "MaxAttempts": 1, "BackoffRate": 1.0}


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


def test_a_receive_step_compiles_to_a_task_token_wait_like_other_callbacks():
    from chalicelib.core.compiler import compile_definition
    from chalicelib.core.model import Definition

    definition = Definition.model_validate({"name": "r", "steps": [
        {"id": "paid", "type": "receive", "event_type": "order.paid", "correlation_key": "{{ order_id }}",
         "timeout_seconds": 60}]})
    state = compile_definition(definition, "rev1")["States"]["paid"]
    assert state["Resource"] == "arn:aws:states:::lambda:invoke.waitForTaskToken"
    assert state["Parameters"]["Payload"]["t.$"] == "$$.Task.Token"
    assert state["Parameters"]["Payload"]["s"] == "paid"
    assert state["TimeoutSeconds"] == 60
    assert state["Catch"][0]["Next"] == "paid__timed_out"


def test_a_workflow_start_that_waits_is_a_callback_on_the_step_runner_then_a_state_that_makes_the_answer_its_output():
    wait = {"id": "check", "type": "machine", "task_type": "workflow.start",
            "config": {"workflow": "credit_check", "wait": True}, "retry": {"max_attempts": 2},
            "fallback": {"task_type": "data.set", "config": {"values": {"fell_back": True}}}}
    definition = Definition.model_validate({"name": "parent", "steps": [wait, m("after", "check")]})
    states = compile_definition(definition, "r1")["States"]
    payload = {"w": "parent", "r": "r1", "s": "check", "i.$": "$$.Execution.Input.input", "x.$": "$.steps",
               "e.$": "$$.Execution.Id"}
    service_retry = {"ErrorEquals": ["Lambda.ServiceException", "Lambda.AWSLambdaException",
                                     "Lambda.SdkClientException", "Lambda.TooManyRequestsException"]}
    assert sorted(states) == ["after", "check", "check__done", "check__fallback"]
    assert states["check"] == {
        "Type": "Task", "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
        "Parameters": {"FunctionName": "${StepRunnerFunctionArn}",
                       "Payload": {"k": "child", **payload, "t.$": "$$.Task.Token"}},
        "Retry": [service_retry, {"ErrorEquals": ["States.ALL"], "MaxAttempts": 1}],
        "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.failure", "Next": "check__fallback"}],
        "ResultPath": "$.child", "Next": "check__done"}
    assert states["check__done"] == {"Type": "Task", "Resource": "${StepRunnerFunctionArn}",
                                     "Parameters": {"k": "child_done", **payload, "o.$": "$.child"},
                                     "Retry": [service_retry], "Next": "after"}
    assert states["check__fallback"]["Next"] == "after"
    assert lint({"StartAt": "check", "States": states}) == []
    # Without wait (or wait false) it is a plain step-runner task, as every other type.
    plain = Definition.model_validate({"name": "parent", "steps": [{**wait, "config": {"workflow": "c", "wait": False}}]})
    assert compile_definition(plain, "r1")["States"]["check"]["Resource"] == "${StepRunnerFunctionArn}"
