"""The local service under load: keep-alive sockets without Nagle, quiet logs, status changes without
listing executions, and the threads a waiting execution holds."""

from __future__ import annotations

import http.client
import json
import logging
import socket
import threading
import time
import uuid
from contextlib import contextmanager
from typing import Any

import pytest

from stepflow_local import moto_patches
from stepflow_local.http_server import LocalHTTPServer
from stepflow_local.runtime import LocalRuntime
from stepflow_local.status_events import DETAIL_TYPE, StatusWatcher

pytest_plugins = ["stepflow_local.pytest_plugin"]


@pytest.fixture(scope="module")
def rt(local_runtime: LocalRuntime):
    if "scale_echo" not in local_runtime.function_arns:
        local_runtime.add_function("scale_echo", "stepflow_local.testing_handlers.echo")
    with moto_patches.scaled_time(0.01):
        yield local_runtime


@contextmanager
def serving(rt: LocalRuntime, verbose: bool):
    from stepflow_local import server

    urls: list[str] = []
    stop = threading.Event()
    thread = threading.Thread(target=server.serve, kwargs=dict(
        port=0, app_module="stepflow_local.testing_app", runtime=rt, ready=urls.append, stop_event=stop,
        verbose=verbose))
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not urls and thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert urls, "the server never became ready"
        yield urls[0]
    finally:
        stop.set()
        thread.join(10)
    assert not thread.is_alive()


def test_keep_alive_requests_share_one_socket_without_nagle_and_log_nothing_by_default(rt, monkeypatch, caplog):
    accepted: list[socket.socket] = []
    original = LocalHTTPServer.process_request

    def spy(self: Any, request: socket.socket, client_address: Any) -> None:
        accepted.append(request)
        original(self, request, client_address)

    monkeypatch.setattr(LocalHTTPServer, "process_request", spy)
    caplog.set_level(logging.INFO)
    with serving(rt, verbose=False) as url:
        host, port = url.removeprefix("http://").split(":")
        connection = http.client.HTTPConnection(host, int(port), timeout=10)
        for _ in range(3):
            connection.request("GET", "/health")
            response = connection.getresponse()
            assert response.status == 200 and json.loads(response.read())["status"] == "healthy"
        assert len(accepted) == 1  # HTTP/1.1 keep-alive: three requests, one connection
        assert accepted[0].getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
        connection.close()
    assert not [r for r in caplog.records if r.name == "stepflow_local.http" and r.levelno < logging.WARNING]


def test_verbose_logs_one_access_line_per_request(rt, caplog):
    caplog.set_level(logging.INFO)
    with serving(rt, verbose=True) as url:
        host, port = url.removeprefix("http://").split(":")
        connection = http.client.HTTPConnection(host, int(port), timeout=10)
        for _ in range(2):
            connection.request("GET", "/health")
            connection.getresponse().read()
        connection.close()
    lines = [r.getMessage() for r in caplog.records if r.name == "stepflow_local.http"]
    assert len([line for line in lines if "GET /health" in line]) == 2


def _machine(rt: LocalRuntime, asl: dict) -> str:
    return rt.client("stepfunctions").create_state_machine(
        name=f"{rt.prefix}scale-{uuid.uuid4().hex[:8]}", definition=json.dumps(asl),
        roleArn=rt.state_machine_role_arn)["stateMachineArn"]


def _waiting_machine(rt: LocalRuntime) -> str:
    return _machine(rt, {"StartAt": "Token", "States": {"Token": {
        "Type": "Task", "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
        "Parameters": {"FunctionName": rt.function_arns["scale_echo"], "Payload": {"token.$": "$$.Task.Token"}},
        "End": True}}})


def _wait_submitted(rt: LocalRuntime, arns: list[str]) -> None:
    sfn = rt.client("stepfunctions")
    deadline = time.monotonic() + 20
    for arn in arns:
        while "TaskSubmitted" not in [e["type"] for e in sfn.get_execution_history(executionArn=arn)["events"]]:
            assert time.monotonic() < deadline, "the callback task never started"
            time.sleep(0.05)


def test_status_changes_are_delivered_without_listing_executions(rt):
    sfn = rt.client("stepfunctions")
    calls: list[str] = []
    record = lambda model, **kwargs: calls.append(model.name)  # noqa: E731
    sfn.meta.events.register("before-call.sfn", record)
    delivered: list[dict] = []
    ends: list[dict] = []  # a handler whose rule asks for ends only (as the app's does) gets no RUNNING
    watcher = StatusWatcher(rt, [(lambda event, context: delivered.append(event), None),
                                 (lambda event, context: ends.append(event), frozenset({"SUCCEEDED", "ABORTED"}))])
    try:
        rt.execution_changes()  # changes of earlier tests are not this test's
        waiting = sfn.start_execution(stateMachineArn=_waiting_machine(rt), name="w", input="{}")["executionArn"]
        _wait_submitted(rt, [waiting])
        quick = _machine(rt, {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}})
        done = sfn.start_execution(stateMachineArn=quick, name="q", input="{}")["executionArn"]
        rt.wait_for_execution(done)
        calls.clear()
        deadline = time.monotonic() + 10
        while {(e["detail"]["executionArn"], e["detail"]["status"]) for e in delivered} != {
                (waiting, "RUNNING"), (done, "SUCCEEDED")}:
            watcher.poll()
            assert time.monotonic() < deadline, delivered
            time.sleep(0.05)
        assert watcher.poll() == 0  # each change once
        sfn.stop_execution(executionArn=waiting)
        rt.wait_for_execution(waiting)
        while (waiting, "ABORTED") not in {(e["detail"]["executionArn"], e["detail"]["status"]) for e in delivered}:
            watcher.poll()
            assert time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        sfn.meta.events.unregister("before-call.sfn", record)
    assert "ListExecutions" not in calls and "ListStateMachines" not in calls
    assert set(calls) <= {"DescribeExecution", "StopExecution"}
    assert [(e["detail"]["executionArn"], e["detail"]["status"]) for e in ends] == [(done, "SUCCEEDED"),
                                                                                    (waiting, "ABORTED")]
    event = delivered[-1]
    assert event["detail-type"] == DETAIL_TYPE and event["source"] == "aws.states"
    assert set(event["detail"]) == {"executionArn", "stateMachineArn", "name", "status"}
    assert event["resources"] == [waiting]


def test_a_waiting_execution_holds_one_thread(rt):
    sfn = rt.client("stepfunctions")
    machine = _waiting_machine(rt)
    from moto.stepfunctions.parser.utils import TMP_THREADS  # every interpreter thread is listed there

    def interpreter_threads() -> int:
        return sum(1 for thread in list(TMP_THREADS) if thread.is_alive())

    before = interpreter_threads()
    arns = [sfn.start_execution(stateMachineArn=machine, name=f"t{i}", input="{}")["executionArn"] for i in range(6)]
    try:
        _wait_submitted(rt, arns)
        # The execution's own thread: the program runs on it (no machine TimeoutSeconds), and so does the
        # Task (no TimeoutSeconds of its own), waiting for its token there.
        assert interpreter_threads() - before == len(arns)
    finally:
        rt.stop_running_executions()
        assert rt.wait_for_interpreter_threads(5) == []


@pytest.mark.parametrize("limit", [{"TimeoutSeconds": 1}, {"HeartbeatSeconds": 1}])
def test_a_task_timeout_of_its_own_still_fails_the_task(rt, limit):
    token = {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
             "Parameters": {"FunctionName": rt.function_arns["scale_echo"], "Payload": {"token.$": "$$.Task.Token"}},
             "End": True, **limit}
    machine = _machine(rt, {"StartAt": "Token", "States": {"Token": token}})
    sfn = rt.client("stepfunctions")
    arn = sfn.start_execution(stateMachineArn=machine, name="limited", input="{}")["executionArn"]
    assert rt.wait_for_execution(arn, timeout=20)["status"] == "FAILED"
    failed = [e for e in sfn.get_execution_history(executionArn=arn)["events"] if e["type"] == "ExecutionFailed"]
    assert failed[0]["executionFailedEventDetails"]["error"] == "States.Timeout"


def test_a_machine_timeout_still_ends_the_execution(rt):
    machine = _machine(rt, {"TimeoutSeconds": 1, "StartAt": "Long", "States": {
        "Long": {"Type": "Wait", "Seconds": 100_000, "End": True}}})
    arn = rt.client("stepfunctions").start_execution(stateMachineArn=machine, name="slow", input="{}")["executionArn"]
    assert rt.wait_for_execution(arn, timeout=15)["status"] == "TIMED_OUT"
    rt.stop_running_executions()
