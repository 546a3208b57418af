"""Contract tests of stepflow_local: moto's private hooks we patch still behave, and the runtime stops cleanly."""

from __future__ import annotations

import base64
import inspect
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest

from stepflow_local import moto_patches
from stepflow_local import testing_handlers as handlers
from stepflow_local.runtime import LocalRuntime

# Registers the fixtures unless a conftest already did (then this is a no-op).
pytest_plugins = ["stepflow_local.pytest_plugin"]

ROOT = Path(__file__).resolve().parents[2]
HANDLERS = "stepflow_local.testing_handlers"
FUNCTIONS = {
    "contract_echo": f"{HANDLERS}.echo",
    "contract_fail": f"{HANDLERS}.fail",
    "contract_flaky": f"{HANDLERS}.flaky",
    "contract_not_json": f"{HANDLERS}.not_json",
    "contract_missing_module": "stepflow_local.no_such_module.handler",
    "contract_missing_attr": f"{HANDLERS}.no_such_handler",
}


@pytest.fixture(scope="module")
def rt(local_runtime: LocalRuntime):
    for name, handler in FUNCTIONS.items():
        if name not in local_runtime.function_arns:
            local_runtime.add_function(name, handler)
    with moto_patches.scaled_time(0.01):  # whatever the session runtime uses: these tests must stay fast
        yield local_runtime


def _invoke(rt: LocalRuntime, name: str, payload: object = None, **kwargs: object) -> tuple[dict, Any]:
    args = {"FunctionName": rt.function_arns[name], **kwargs}
    if payload is not None:
        args["Payload"] = json.dumps(payload)
    response = rt.client("lambda").invoke(**args)
    return response, json.loads(response["Payload"].read())


def _run(rt: LocalRuntime, asl: dict, payload: object = None, timeout: float = 8.0) -> dict:
    sfn = rt.client("stepfunctions")
    machine = sfn.create_state_machine(
        name=f"{rt.prefix}contract-{uuid.uuid4().hex[:8]}", definition=json.dumps(asl),
        roleArn=rt.state_machine_role_arn)["stateMachineArn"]
    execution = sfn.start_execution(stateMachineArn=machine, name="run", input=json.dumps(payload or {}))
    return rt.wait_for_execution(execution["executionArn"], timeout=timeout)


def _lambda_task(function_arn: str, **extra: object) -> dict:
    return {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
            "Parameters": {"FunctionName": function_arn, "Payload.$": "$"},
            "ResultSelector": {"value.$": "$.Payload"}, "OutputPath": "$.value", **extra}


# ----------------------------------------------------------------------------------- the patches


def test_moto_private_hooks_have_the_shape_we_patched(rt):
    from moto.awslambda.models import LambdaFunction

    assert moto_patches.applied() >= {"jsonpath", "lambda", "time_scale", "stop", "dynamodb"}
    original = moto_patches.ORIGINALS["LambdaFunction._invoke_lambda"]
    signature = inspect.signature(original)
    assert list(signature.parameters) == ["self", "event"]
    assert str(signature.return_annotation).replace(" ", "") in {"tuple[str,bool,str]", "Tuple[str,bool,str]"}
    # LambdaFunction.invoke is the caller whose contract the in-process invoker honours.
    assert "res, errored, logs = self._invoke_lambda(event=body)" in inspect.getsource(LambdaFunction.invoke)
    assert moto_patches.lambda_in_process()
    moto_patches.apply()  # idempotent: nothing is wrapped twice
    assert moto_patches.lambda_in_process() and moto_patches.jsonpath_memoised()


def test_every_dynamodb_request_goes_through_the_serialised_handler(rt):
    from moto.core.responses import BaseResponse
    from moto.dynamodb import urls
    from moto.dynamodb.responses import DynamoHandler

    assert "dynamodb" in moto_patches.applied() and moto_patches.dynamodb_serialised()
    assert list(inspect.signature(moto_patches.ORIGINALS["DynamoHandler.call_action"]).parameters) == ["self"]
    # The route moto dispatches DynamoDB requests to, and the call the patched method sits behind.
    assert set(urls.url_paths.values()) == {DynamoHandler.dispatch}
    assert "return self.call_action()" in inspect.getsource(BaseResponse._dispatch)

    ddb = rt.client("dynamodb")
    done = threading.Event()
    caller = threading.Thread(target=lambda: (ddb.list_tables(), done.set()), daemon=True)
    with moto_patches.DYNAMODB_LOCK:  # while the lock is held elsewhere, a request waits for it
        caller.start()
        assert not done.wait(0.5)
    assert done.wait(10)
    caller.join(10)


def test_lambda_invoke_round_trips_the_payload_and_context(rt):
    payload = {"text": "héllo", "n": [1, 2.5, None, True], "nested": {"a": {}}}
    response, body = _invoke(rt, "contract_echo", payload)
    assert "FunctionError" not in response
    assert body["event"] == payload
    context = body["context"]
    assert context["function_name"] == f"{rt.prefix}contract_echo"
    assert context["invoked_function_arn"] == rt.function_arns["contract_echo"]
    assert context["memory_limit_in_mb"] == rt.lambda_memory_mb
    assert context["log_group_name"] == f"/aws/lambda/{rt.prefix}contract_echo"
    assert 0 < context["remaining_ms"] <= rt.lambda_timeout * 1000
    uuid.UUID(context["aws_request_id"])

    _, body = _invoke(rt, "contract_echo")  # no payload: Lambda delivers {}
    assert body["event"] == {}


def test_a_raised_exception_becomes_a_handled_function_error(rt):
    response, body = _invoke(rt, "contract_fail", {}, LogType="Tail")
    assert response["FunctionError"] == "Handled"
    assert body["errorType"] == "MyError"
    assert body["errorMessage"] == "it failed on purpose"
    assert any("testing_handlers.py" in line for line in body["stackTrace"])
    assert "[ERROR] MyError" in base64.b64decode(response["LogResult"]).decode()


@pytest.mark.parametrize("name, error_type", [
    ("contract_missing_module", "Runtime.ImportModuleError"),
    ("contract_missing_attr", "Runtime.HandlerNotFound"),
    ("contract_not_json", "Runtime.MarshalError"),
])
def test_runtime_errors_use_the_lambda_runtime_error_types(rt, name, error_type):
    response, body = _invoke(rt, name, {})
    assert response["FunctionError"] == "Handled"
    assert body["errorType"] == error_type


def test_step_functions_lambda_task_round_trips_the_payload(rt):
    payload = {"order": {"id": "o-1", "lines": [{"sku": "a", "qty": 2}]}, "flag": False}
    asl = {"StartAt": "Invoke", "States": {
        "Invoke": _lambda_task(rt.function_arns["contract_echo"], Next="Plain"),
        # A plain function ARN as Resource (the older Lambda integration) must run the same handler.
        "Plain": {"Type": "Task", "Resource": rt.function_arns["contract_echo"], "OutputPath": "$.event", "End": True},
    }}
    result = _run(rt, asl, payload)
    assert result["status"] == "SUCCEEDED", result
    output = json.loads(result["output"])  # Plain's input was Invoke's result: {"event": payload, "context": ...}
    assert output["event"] == payload
    assert output["context"]["function_name"] == f"{rt.prefix}contract_echo"


@pytest.mark.parametrize("error_name", ["MyError", "Stepflow.Custom_Error"])
def test_the_exception_class_name_is_the_step_functions_error(rt, error_name):
    asl = {"StartAt": "Fail", "States": {
        "Fail": _lambda_task(rt.function_arns["contract_fail"], Catch=[
            {"ErrorEquals": [error_name], "ResultPath": "$.caught", "Next": "Caught"}], End=True),
        "Caught": {"Type": "Pass", "End": True},
    }}
    payload = {} if error_name == "MyError" else {"error": error_name}
    result = _run(rt, asl, payload)
    assert result["status"] == "SUCCEEDED", result
    caught = json.loads(result["output"])["caught"]
    assert caught["Error"] == error_name
    assert json.loads(caught["Cause"])["errorType"] == error_name

    uncaught = _run(rt, {"StartAt": "Fail", "States": {"Fail": _lambda_task(rt.function_arns["contract_fail"], End=True)}},
                    payload)
    assert (uncaught["status"], uncaught["error"]) == ("FAILED", error_name)


def test_retry_on_the_error_name_works_and_the_time_scale_shortens_waits(rt):
    key = uuid.uuid4().hex
    asl = {"StartAt": "Wait", "States": {
        "Wait": {"Type": "Wait", "Seconds": 50, "Next": "Flaky"},  # 0.5 s at scale 0.01
        "Flaky": _lambda_task(rt.function_arns["contract_flaky"], Retry=[
            {"ErrorEquals": ["MyError"], "IntervalSeconds": 10, "BackoffRate": 2, "MaxAttempts": 3}], End=True),
    }}
    started = time.monotonic()
    result = _run(rt, asl, {"key": key, "failures": 2})
    elapsed = time.monotonic() - started
    assert result["status"] == "SUCCEEDED", result
    assert json.loads(result["output"]) == {"attempt": 3}
    assert handlers.calls(key) == 3
    assert elapsed < 4, f"Wait 50 s + retries 10 s, 20 s at scale 0.01 took {elapsed:.1f} s"  # ~1 s expected


def test_jsonpath_parsing_is_memoised(rt):
    from moto.stepfunctions.parser.asl.component.common.path import result_path
    from moto.stepfunctions.parser.asl.utils import json_path

    assert moto_patches.jsonpath_memoised()
    asl = {"StartAt": "A", "States": {
        "A": {"Type": "Pass", "InputPath": "$.a", "ResultPath": "$.b", "Next": "B"},
        "B": {"Type": "Pass", "InputPath": "$.b", "ResultPath": "$.c", "End": True},
    }}
    def hits() -> int:
        return sum(getattr(m.parse, "cache_info")().hits for m in (json_path, result_path))  # noqa: B009

    _run(rt, asl, {"a": 1})
    before = hits()
    assert _run(rt, asl, {"a": 2})["status"] == "SUCCEEDED"
    assert hits() > before


def test_stopping_executions_ends_their_threads_and_they_stay_aborted(rt):
    sfn = rt.client("stepfunctions")
    asl = {"StartAt": "Both", "States": {"Both": {"Type": "Parallel", "End": True, "Branches": [
        {"StartAt": "Long", "States": {"Long": {"Type": "Wait", "Seconds": 10_000_000, "End": True}}},
        {"StartAt": "Token", "States": {"Token": {
            "Type": "Task", "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
            "Parameters": {"FunctionName": rt.function_arns["contract_echo"], "Payload": {"token.$": "$$.Task.Token"}},
            "End": True}}},
    ]}}}
    machine = sfn.create_state_machine(name=f"{rt.prefix}contract-stop", definition=json.dumps(asl),
                                       roleArn=rt.state_machine_role_arn)["stateMachineArn"]
    arn = sfn.start_execution(stateMachineArn=machine, name="stop-me", input="{}")["executionArn"]
    deadline = time.monotonic() + 5
    while "TaskSubmitted" not in [e["type"] for e in sfn.get_execution_history(executionArn=arn)["events"]]:
        assert time.monotonic() < deadline, "the callback task never started"
        time.sleep(0.05)

    assert arn in rt.stop_running_executions()
    assert rt.wait_for_interpreter_threads(3) == []
    assert rt.wait_for_execution(arn, timeout=1)["status"] == "ABORTED"


def test_scheduler_runs_callbacks_until_cancelled(rt):
    ticks = []
    job = rt.every(0.05, lambda: ticks.append(time.monotonic()), name="tick")
    deadline = time.monotonic() + 3
    while len(ticks) < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    job.cancel()
    assert len(ticks) >= 3
    count = len(ticks)
    time.sleep(0.15)
    assert len(ticks) <= count + 1  # at most one run already in flight when cancelled
    assert job not in rt.scheduler.jobs


def test_only_one_runtime_at_a_time(rt):
    with pytest.raises(RuntimeError, match="already active"):
        LocalRuntime().start()
    assert LocalRuntime.active() is rt


def test_exported_environment_matches_the_settings(rt):
    settings = rt.settings()
    assert settings.stage == "local"
    assert settings.definitions_table in rt.table_names.values()
    assert settings.state_machine_role_arn == rt.state_machine_role_arn
    assert settings.step_runner_arn == rt.function_arns["step_runner"]
    tables = rt.client("dynamodb").list_tables()["TableNames"]
    assert sorted(rt.table_names.values()) == sorted(tables)
    assert threading.current_thread() is threading.main_thread()


def test_local_server_serves_the_app_and_calls_the_start_hook(rt, capsys):
    from stepflow_local import server, testing_app

    urls: list[str] = []
    stop = threading.Event()
    jobs_before = {id(job) for job in rt.scheduler.jobs}
    thread = threading.Thread(target=server.serve, kwargs=dict(
        port=0, app_module="stepflow_local.testing_app", runtime=rt, ready=urls.append, stop_event=stop))
    thread.start()
    try:
        deadline = time.monotonic() + 5
        while not urls and thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert urls, "the server never became ready"
        with urllib.request.urlopen(f"{urls[0]}/health", timeout=5) as response:
            assert json.loads(response.read()) == {"status": "healthy", "stage": "local"}
        with urllib.request.urlopen(f"{urls[0]}/tables", timeout=5) as response:
            assert sorted(json.loads(response.read())["tables"]) == sorted(rt.table_names.values())
    finally:
        stop.set()
        thread.join(5)
    assert not thread.is_alive()
    assert testing_app.started == ["registered"]
    assert rt.started  # a runtime the caller started is left running...
    # ...without this app's schedules, status watcher and stream pump running on for the next user.
    assert {id(job) for job in rt.scheduler.jobs} <= jobs_before
    out = capsys.readouterr().out
    assert f"Stepflow local API: {urls[0]}" in out and f"curl {urls[0]}/health" in out


# ------------------------------------------------------------------------------ runtime exit


EXIT_SCRIPT = textwrap.dedent("""
    import json, logging, os, sys, threading, time
    from chalicelib.resources import Function
    from stepflow_local.runtime import LocalRuntime

    functions = (Function("echo", "stepflow_local.testing_handlers.echo", "", ""),
                 Function("fail", "stepflow_local.testing_handlers.fail", "", ""))
    logging.getLogger("moto").setLevel(logging.CRITICAL)  # it logs whole state trees for expected failures
    runtime = LocalRuntime(functions=functions)
    with runtime:
        sfn = runtime.client("stepfunctions")
        machines = {
            "wait": {"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 3600, "End": True}}},
            "token": {"StartAt": "T", "States": {"T": {
                "Type": "Task", "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
                "Parameters": {"FunctionName": runtime.function_arns["echo"], "Payload": {"t.$": "$$.Task.Token"}},
                "End": True}}},
            "retry": {"StartAt": "T", "States": {"T": {
                "Type": "Task", "Resource": runtime.function_arns["fail"],
                "Retry": [{"ErrorEquals": ["MyError"], "IntervalSeconds": 3600, "MaxAttempts": 2}], "End": True}}},
        }
        executions = {}
        for name, asl in machines.items():
            arn = sfn.create_state_machine(name=name, definition=json.dumps(asl),
                                           roleArn=runtime.state_machine_role_arn)["stateMachineArn"]
            executions[name] = sfn.start_execution(stateMachineArn=arn, name="e", input="{}")["executionArn"]
        # Until each sits where it would block: in the Wait, on the task token, in the Retry back-off.
        expected = {"wait": "WaitStateEntered", "token": "TaskSubmitted", "retry": "LambdaFunctionFailed"}
        deadline = time.monotonic() + 10
        while not (positioned := all(
                expected[name] in [e["type"] for e in sfn.get_execution_history(executionArn=arn)["events"]]
                for name, arn in executions.items())) and time.monotonic() < deadline:
            time.sleep(0.05)
        running = len(runtime.running_executions())
        alive_before = len(runtime.interpreter_threads())
        started = time.monotonic()
    exit_seconds = time.monotonic() - started
    print(json.dumps({
        "positioned": positioned, "running": running, "alive_before": alive_before, "exit_seconds": exit_seconds,
        "alive_after": len(LocalRuntime.interpreter_threads()),
        "threads": sorted(t.name for t in threading.enumerate()),
        "active": LocalRuntime.active() is not None,
    }), flush=True)
    os._exit(0)  # the census is taken; skip the interpreter's slow module teardown
""")


@pytest.fixture(scope="module", autouse=True)
def exit_run():
    """Starts the exit scenario in a separate process at once, so it runs while the other tests do.

    A separate process: the session runtime stays untouched, and the thread census is exact.
    """
    env = {k: v for k, v in os.environ.items() if k != moto_patches.TIME_SCALE_ENV}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    # Files, not pipes: nobody reads the pipes until the test runs, and a full pipe would block the child.
    with tempfile.TemporaryFile("w+") as stdout, tempfile.TemporaryFile("w+") as stderr:
        process = subprocess.Popen([sys.executable, "-c", EXIT_SCRIPT], cwd=ROOT, env=env,
                                   stdout=stdout, stderr=stderr, text=True)
        process.outputs = (stdout, stderr)  # type: ignore[attr-defined]
        yield process
        if process.poll() is None:
            process.kill()
            process.wait()


def test_runtime_exit_stops_running_executions_and_leaves_no_thread(exit_run):
    exit_run.wait(timeout=60)
    stdout, stderr = (f.seek(0) or f.read() for f in exit_run.outputs)
    assert exit_run.returncode == 0, stderr[-3000:]
    report = json.loads(stdout.strip().splitlines()[-1])
    assert report["positioned"], "the executions never reached their blocking states"
    assert report["running"] == 3
    assert report["alive_before"] > 0
    assert report["alive_after"] == 0
    assert report["threads"] == ["MainThread"]
    assert report["exit_seconds"] < 2
    assert not report["active"]
