"""Logs, metrics and traces: per-request metrics, per-invocation log keys (under threads, and from one
invocation to the next), correlation ids on a step's lines, lines capped at 8 KB, and X-Ray tracing that
is off (and not even imported) locally and on where the function is deployed."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from chalicelib import observability
from chalicelib.log_caps import MAX_LINE_BYTES, CappedTextFormatter
from chalicelib.observability import logger
from tests.xray_probe import DAEMON, RECEIVE, check_handler_segment


@contextlib.contextmanager
def captured_lines():
    """What the `stepflow` logger writes, formatted as in production, one JSON object per line."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logger.registered_formatter)
    target = logging.getLogger("stepflow")
    target.addHandler(handler)
    lines: list[str] = []
    try:
        yield lines
    finally:
        target.removeHandler(handler)
        lines += stream.getvalue().splitlines()


@contextlib.contextmanager
def eager_thread_switches():
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)  # a race between two threads shows within a few hundred requests
    try:
        yield
    finally:
        sys.setswitchinterval(previous)


def test_concurrent_requests_each_flush_their_own_metrics(api, monkeypatch, capfd):
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    barrier = threading.Barrier(16)

    def burst(_):
        barrier.wait()
        return [api.get("/health")[0] for _ in range(20)] + [api.get("/definitions/nope")[0] for _ in range(5)]

    with eager_thread_switches(), ThreadPoolExecutor(16) as pool:
        statuses = [s for batch in pool.map(burst, range(16)) for s in batch]
    assert statuses.count(200) == 16 * 20 and statuses.count(404) == 16 * 5
    emf = [json.loads(line) for line in capfd.readouterr().out.splitlines() if line.startswith('{"_aws"')]
    requests = [m for m in emf if "Requests" in m]
    assert len(requests) == 16 * 25  # one metric blob per request, none merged into or lost from another
    assert all(m["Requests"] == [1.0] and "ServerErrors" not in m for m in requests)


def test_a_step_runs_keys_never_reach_a_later_request_line(api):
    definition = {"name": "keys_flow", "version": "1.0.0", "steps": [
        {"id": "only", "type": "machine", "task_type": "util.log", "config": {"message": "hello from the step"}}],
        "edges": [], "initial_step": "only", "terminal_steps": ["only"]}
    assert api.post("/definitions", definition)[0] in (200, 201)
    with captured_lines() as lines:
        status, started = api.post("/instances", {"definition_name": "keys_flow", "input_data": {}})
        assert status == 201, started
        assert api.wait(started["id"])["status"] == "completed"
        assert api.get("/health")[0] == 200
    records = [json.loads(line) for line in lines]
    step_lines = [r for r in records if "hello from the step" in str(r["message"])]
    request_lines = [r for r in records if r.get("message") == "request"]
    assert request_lines and all(r.get("request_id") for r in request_lines)
    assert not [r for r in request_lines if {"workflow", "step", "execution"} & set(r)], request_lines
    # The step's own lines (what it logs while it runs) do carry them, and the ids that find its run.
    assert step_lines and all(r["workflow"] == "keys_flow" and r["step"] == "only" for r in step_lines)
    assert all(r["instance_id"] == started["id"] and r["execution"].endswith(f":{started['id']}") and
               r["function_name"].endswith("step_runner") and r["function_request_id"] for r in step_lines)
    # The step runner's Lambda context (inject_lambda_context) is not on the request lines either.
    assert not [r for r in request_lines if str(r.get("function_name", "")).endswith("step_runner")]
    reads = [r for r in request_lines if r["path"] == "/workflows/instances/{instance_id}"]
    assert reads and all(r["instance_id"] == started["id"] for r in reads)


class Context:
    """What inject_lambda_context reads of the Lambda runtime's context object."""

    def __init__(self, request_id: str, function_name: str = "stepflow-dev-probe"):
        self.aws_request_id, self.function_name = request_id, function_name
        self.memory_limit_in_mb, self.invoked_function_arn = 512, f"arn:aws:lambda:us-east-1:1:function:{function_name}"


def test_every_handler_of_the_app_runs_inside_the_invocation_middleware(local_runtime):
    import app

    handler, event_type = app.app.middleware_handlers[0]  # the first registered is the outermost
    assert event_type == "all" and handler.__qualname__.startswith("make_invocation_middleware")


def test_a_key_left_by_one_invocation_is_not_on_the_next_invocations_lines():
    from chalice import Chalice

    probe = Chalice(app_name="probe")
    probe.register_middleware(observability.make_invocation_middleware(), "all")

    @probe.lambda_function(name="probe")
    def handler(event, context):
        if "tenant" in event:
            logger.append_keys(tenant=event["tenant"])  # never removed: what an earlier step run once left behind
        logger.info("handling", extra={"n": event["n"]})
        return {}

    with captured_lines() as lines:
        handler({"n": 1, "tenant": "acme"}, Context("request-1"))
        handler({"n": 2}, Context("request-2"))
    first, second = (json.loads(line) for line in lines)
    assert (first["n"], first["tenant"], first["function_request_id"]) == (1, "acme", "request-1")
    assert first["cold_start"] in (True, False) and first["function_name"] == "stepflow-dev-probe"
    assert (second["n"], second["function_request_id"]) == (2, "request-2") and "tenant" not in second


def test_keys_appended_through_the_plain_logger_api_stay_on_their_thread():
    appended, release = threading.Event(), threading.Event()

    def invocation():
        logger.append_keys(tenant="acme")  # Powertools' own API: this thread's keys only
        logger.info("on the invocation's thread")
        appended.set()
        release.wait(10)
        logger.remove_keys(["tenant"])

    with captured_lines() as lines:
        thread = threading.Thread(target=invocation)
        thread.start()
        assert appended.wait(10)
        logger.info("on another thread")
        release.set()
        thread.join(10)
    by_message = {json.loads(line)["message"]: json.loads(line) for line in lines}
    assert by_message["on the invocation's thread"]["tenant"] == "acme"
    assert "tenant" not in by_message["on another thread"]


def test_keys_appended_on_one_thread_are_not_on_another_threads_lines():
    started, release = threading.Event(), threading.Event()

    def invocation():
        with observability.log_keys(workflow="w1", step="s1"):
            logger.info("inside the step")
            started.set()
            release.wait(10)

    with captured_lines() as lines:
        thread = threading.Thread(target=invocation)
        thread.start()
        assert started.wait(10)
        logger.info("another request")
        release.set()
        thread.join(10)
        logger.info("after the step")
    by_message = {json.loads(line)["message"]: json.loads(line) for line in lines}
    assert by_message["inside the step"]["workflow"] == "w1"
    assert "workflow" not in by_message["another request"] and "workflow" not in by_message["after the step"]


@pytest.mark.parametrize("name", ["stepflow", "stepflow.api"])
def test_a_huge_log_line_is_capped_at_8_kb_and_marked(name):
    with captured_lines() as lines:
        logging.getLogger(name).warning("huge %s", "é" * 50_000, extra={"blob": {"data": "x" * 40_000}, "small": 7})
    [line] = lines
    record = json.loads(line)
    assert len(line.encode()) + 1 <= MAX_LINE_BYTES  # with its newline
    assert record["truncated"] is True and record["small"] == 7 and record["level"] == "WARNING"
    assert record["message"].startswith("huge éé")


def test_lines_under_the_cap_are_untouched():
    with captured_lines() as lines:
        logger.info("fine", extra={"n": 1})
    record = json.loads(lines[0])
    assert record["message"] == "fine" and record["n"] == 1 and "truncated" not in record


def test_the_local_servers_text_lines_are_capped_too():
    record = logging.LogRecord("stepflow_local", logging.INFO, __file__, 1, "payload %s", ("z" * 20_000,), None)
    line = CappedTextFormatter("%(levelname)s %(name)s: %(message)s").format(record)
    assert len(line.encode()) + 1 <= MAX_LINE_BYTES and line.startswith("INFO stepflow_local: payload zzz")
    assert line.endswith("[truncated: true]")
    short = logging.LogRecord("stepflow_local", logging.INFO, __file__, 1, "short", (), None)
    assert CappedTextFormatter("%(message)s").format(short) == "short"


# ------------------------------------------------------------------------------------------- tracing

ROOT = Path(__file__).resolve().parents[2]
# A request through the app's API handler in a fresh interpreter, as the Lambda runtime would run it (its
# environment, the trace header Lambda sets), with a UDP socket standing in for the X-Ray daemon.
TRACE_PROBE = DAEMON + """
os.environ.update(json.loads(sys.argv[1]))
if os.environ.pop("PROBE_WITHOUT_XRAY_SDK", None):  # a function whose package lacks the SDK still answers
    class NoSdk:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] == "aws_xray_sdk":
                raise ImportError(name)
            return None
    sys.meta_path.insert(0, NoSdk())
    sys.modules.pop("aws_xray_sdk", None)
import app
from chalice.test import Client
from chalicelib import observability

with Client(app.app) as client:
    status = client.http.get("/health").status_code
wait = 30 if observability.tracing_enabled() else 1
""" + RECEIVE + """
print(json.dumps({"status": status, "xray_sdk_loaded": "aws_xray_sdk" in sys.modules, "sent": sent,
                  "tracer": observability.tracer.cache_info().currsize == 1 and observability.tracer() is not None}))
"""


def _trace_probe(env: dict[str, str]) -> dict:
    done = subprocess.run([sys.executable, "-c", TRACE_PROBE, json.dumps(env)], cwd=ROOT, capture_output=True,
                          text=True, timeout=180, env={k: v for k, v in os.environ.items()
                                                       if k != observability.TRACE_DISABLED_ENV})
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_tracing_is_off_under_the_local_setting_and_the_xray_sdk_is_never_imported():
    found = _trace_probe({"POWERTOOLS_TRACE_DISABLED": "true"})  # what the local runtime and tests export
    assert found == {"status": 200, "xray_sdk_loaded": False, "sent": [], "tracer": False}


def test_a_deployed_function_traces_each_invocation():
    found = _trace_probe({})  # a deployed function's environment: nothing turns tracing off
    assert found["status"] == 200 and found["xray_sdk_loaded"]
    check_handler_segment(found["sent"], "## api_handler")


def test_a_function_without_the_xray_sdk_still_answers_untraced():
    found = _trace_probe({"PROBE_WITHOUT_XRAY_SDK": "1"})  # tracing on, the SDK missing (see tracer())
    assert found == {"status": 200, "xray_sdk_loaded": False, "sent": [], "tracer": False}


def test_the_deployed_configuration_turns_tracing_on_and_the_local_one_off(local_runtime):
    import app  # noqa: F401 - the app reads its settings at import: only inside the runtime
    from infra import build as infra_build

    built = infra_build.build("dev")
    for function in built.functions:
        properties = built.template["Resources"][function.logical_id]["Properties"]
        assert properties["Tracing"] == "Active", function.name
        env = {**built.stage.environment, **properties["Environment"]["Variables"],
               "AWS_LAMBDA_FUNCTION_NAME": properties["FunctionName"]}
        assert observability.tracing_enabled(env), function.name
    local = infra_build.resolve_stage("local").environment
    assert not observability.tracing_enabled({**local, "AWS_LAMBDA_FUNCTION_NAME": "stepflow-local-api"})
    assert not observability.tracing_enabled({**local_runtime.env})  # the local runtime's functions
