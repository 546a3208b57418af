"""The compact ASL (CompileOptions.share_context: the payload's constant part in the variable `c`) runs
exactly as the default, spelled-out form on moto (both merge a Parallel's maps in the Lambda that reads
them): same status, same steps map, the same output from every Task state, for every shape that changes
what is shared or merged where."""

from __future__ import annotations

import inspect
import json
import uuid
from typing import Any

import pytest

from chalicelib.core.compiler import CompileOptions, compile_definition
from chalicelib.core.gates import GATE_OPEN
from chalicelib.core.model import Definition


def m(step_id: str, *deps: str, value: Any = True, **extra: Any) -> dict[str, Any]:
    return {"id": step_id, "type": "machine", "task_type": "data.set", "config": {"values": {step_id: value}},
            "depends_on": list(deps), **extra}


FALLBACK = {"task_type": "data.set", "config": {"values": {"recovered": True}}}
CASES = {
    # A join read by a Lambda (the array form), a gateway after it (a merge Task first), nested fan-outs.
    "fans": [m("start"), m("a", "start"), m("b", "start"), m("c", "b"), m("d", "b"), m("e", "c", "d"),
             {"id": "route", "type": "gateway", "depends_on": ["a", "e"]},
             m("big", "route", condition="start == true"), m("small", "route"), m("done", "big", "small")],
    # Several roots: the first state is a Parallel, whose branches run before it assigns the context.
    "roots": [m("x"), m("y"), m("z"), m("j", "x", "y", "z"), m("k", "j"), m("l", "k")],
    # A first gateway (a Choice assigns with the rule it takes, or on its Default).
    "gate_rule": [{"id": "route", "type": "gateway"}, m("p", "route", condition="go == true"), m("q", "route"),
                  m("r", "p", "q"), m("s", "r"), m("t", "s")],
    # A first step that fails into its fallback, which assigns the context in its place.
    "falls": [m("first", fallback=FALLBACK, task_type="test.fail_once"), m("second", "first"),
              m("third", "second"), m("fourth", "third")],
    # A join a Wait reads first (merged in the definition), a timer first.
    "waits": [{"id": "pause", "type": "timer", "seconds": 1}, m("a", "pause"), m("b", "a"), m("c", "a"),
              {"id": "settle", "type": "timer", "seconds": 1, "depends_on": ["b", "c"]}, m("d", "settle"),
              m("e", "d")],
}
INPUTS = {"gate_rule": [{"go": True}, {"go": False}]}


@pytest.fixture
def failing_first(api):
    import app as app_module
    from chalicelib.tasks.errors import StepError

    registry = app_module.services.registry
    if "test.fail_once" not in registry:
        @registry.task("test.fail_once", description="Fails, so that the step's fallback runs.")
        def fail(ctx):
            raise StepError("Test.Failed", "always")
    return registry


def _outputs(sfn: Any, arn: str) -> dict[str, Any]:
    """The output of every Task state that exited, by state (branches finish in either order); a gated step that
    found its gate shut and ran later in `<step>__run` counts as its own state, so the two runs compare whichever
    way their branches raced."""
    events = sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]
    exited = {}
    for event in events:
        details = event.get("stateExitedEventDetails")
        if event["type"] == "TaskStateExited" and details:
            name = details["name"].removesuffix("__run")
            assert name not in exited, details  # each step's Task state exits once
            output = json.loads(details["output"])
            if output.get("gate", {}).get("Error") == GATE_OPEN:
                continue  # the step only waited at its gate (whether it had to is a race): `<step>__run` ran it
            if "failure" in output:  # a caught error: its name and message (its Cause also names the request)
                cause = json.loads(output["failure"]["Cause"])
                output["failure"] = [output["failure"]["Error"], cause["errorType"], cause["errorMessage"]]
            exited[name] = output
    return exited


def _run(local_aws: Any, asl: dict[str, Any], data: dict[str, Any]) -> tuple[str, Any, dict[str, Any]]:
    sfn = local_aws.client("stepfunctions")
    machine = sfn.create_state_machine(name=f"forms-{uuid.uuid4().hex[:10]}", definition=json.dumps(asl),
                                       roleArn=local_aws.state_machine_role_arn, type="STANDARD")["stateMachineArn"]
    arn = sfn.start_execution(stateMachineArn=machine, name=uuid.uuid4().hex,
                              input=json.dumps({"input": data, "steps": {}, "data": data}))["executionArn"]
    done = local_aws.wait_for_execution(arn, timeout=60)
    return done["status"], json.loads(done.get("output") or "null"), _outputs(sfn, arn)


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_compact_and_the_spelled_out_machines_run_alike(api, local_aws, failing_first, name):
    body = {"name": f"forms_{name}", "version": "1.0.0", "steps": CASES[name]}
    status, registered = api.post("/definitions", body)
    assert status in (200, 201), registered
    definition = Definition.model_validate(body)
    arns = local_aws.function_arns
    bound = {"step_runner": arns["step_runner"], "task_registrar": arns["task_registrar"]}
    compact = compile_definition(definition, registered["revision"], CompileOptions(**bound, share_context=True))
    spelled = compile_definition(definition, registered["revision"], CompileOptions(**bound))
    # What registration deployed is the default, spelled-out form (its joins merged by the Lambdas).
    deployed = local_aws.client("stepfunctions").describe_state_machine(
        stateMachineArn=registered["state_machine_arn"])["definition"]
    assert json.loads(deployed) == spelled
    assert '"Assign"' in json.dumps(compact) and '"Assign"' not in json.dumps(spelled)
    for data in INPUTS.get(name, [{}]):
        first = _run(local_aws, compact, data)
        second = _run(local_aws, spelled, data)
        assert first[0] == "SUCCEEDED", first
        assert first == second, (data, first, second)


def test_a_step_in_the_middle_falls_back_and_the_workflow_goes_on(api, failing_first):
    """Through the API: a failing step that is not the last runs its fallback, then the steps after it."""
    body = {"name": "falls_midway", "version": "1.0.0", "steps": [
        m("before"), m("midway", "before", fallback=FALLBACK, task_type="test.fail_once"), m("after", "midway")]}
    status, registered = api.post("/definitions", body)
    assert status in (200, 201), registered
    status, run = api.post("/definitions/falls_midway/run", {"input_data": {}, "wait_seconds": 20})
    assert status == 200 and run["status"] == "completed", run
    status, instance = api.get(f"/instances/{run['id']}")
    history = {s["step_name"]: s["status"] for s in instance["step_history"]}
    assert history == {"before": "succeeded", "midway": "succeeded", "after": "succeeded"}, instance
    assert instance["context_data"]["recovered"] is True and instance["context_data"]["after"] is True


def test_moto_reads_variables_only_through_jsonata_so_the_runtime_reads_them():
    from stepflow_local import moto_patches, moto_variables

    moto_patches.apply()
    assert moto_variables.patched()
    # When moto reads a JSONPath "$name" itself, stepflow_local/moto_variables.py can go.
    original = inspect.getsource(moto_variables.ORIGINALS["StringVariableSample._eval_body"])
    assert "eval_jsonata_expression(" in original
