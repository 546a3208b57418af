"""Logs and metrics under threads: per-request metrics, per-invocation log keys, and lines capped at 8 KB."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from chalicelib import observability
from chalicelib.log_caps import MAX_LINE_BYTES, CappedTextFormatter
from chalicelib.observability import logger


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
    # The step's own lines (what it logs while it runs) do carry them.
    assert step_lines and all(r["workflow"] == "keys_flow" and r["step"] == "only" for r in step_lines)


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
