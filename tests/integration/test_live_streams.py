"""Following an instance's events live: one connection on the local server (NDJSON and SSE, heartbeats,
an early end resumed from the cursor), a long poll through the API as API Gateway serves it, step
events written as the step emits them, and every query parameter either honoured or refused."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
import requests

EMITS = 3
GAP_SECONDS = 0.5  # real time between a step's events (not the runtime's scaled clock)
RECEIPT_TOLERANCE = 1.0  # each event reaches the follower within this long of being written

FLOW = {
    "name": "live_emitter",
    "steps": [
        {"id": "work", "type": "machine", "task_type": "test.emit_slowly"},
        {"id": "finish", "type": "machine", "task_type": "data.set", "config": {"values": {"done": True}},
         "depends_on": ["work"]},
    ],
}
WAITING = {
    "name": "live_waiting",
    "steps": [{"id": "approve", "type": "human", "assignee": "ada", "form_schema": {
        "type": "object", "required": ["ok"], "properties": {"ok": {"type": "boolean"}}}}],
}


@pytest.fixture
def server(api, local_aws) -> Iterator[str]:
    """The app on the local server (stepflow_local.server.serve, as `make run`) in this process, on a
    free port, with a test task type that emits EMITS events GAP_SECONDS apart while it works."""
    import app as app_module
    from stepflow_local import server as local_server

    registry = app_module.services.registry
    if "test.emit_slowly" not in registry:
        @registry.task("test.emit_slowly", description="Emits events while it works.")
        def emit_slowly(ctx):
            for n in range(EMITS):
                if n:
                    time.sleep(GAP_SECONDS)  # real time: the follower must see each as it comes
                ctx.emit("work.progress", {"n": n})
            return {"emitted": EMITS}

    urls: list[str] = []
    stop = threading.Event()
    thread = threading.Thread(target=local_server.serve, kwargs=dict(
        port=0, app_module="app", runtime=local_aws, ready=urls.append, stop_event=stop,
        on_start=lambda runtime: None), daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not urls and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert urls, "the local server never became ready"
    yield urls[0] + "/workflows"
    stop.set()
    thread.join(10)


def start(base: str, definition: dict[str, Any]) -> str:
    response = requests.post(f"{base}/definitions", json=definition, timeout=30)
    assert response.status_code in (200, 201), response.text
    response = requests.post(f"{base}/instances", json={"definition_name": definition["name"], "input_data": {}},
                             timeout=30)
    assert response.status_code == 201, response.text
    return response.json()["id"]


def _utc_seconds(seq: str) -> float:
    from datetime import UTC

    return datetime.strptime(seq.split("-", 1)[0], "%Y%m%dT%H%M%S.%fZ").replace(tzinfo=UTC).timestamp()


def whole_log(base: str, instance_id: str) -> list[dict[str, Any]]:
    response = requests.get(f"{base}/instances/{instance_id}/events?limit=1000", timeout=30)
    assert response.status_code == 200 and response.headers["Stepflow-Ended"] == "true", response.headers
    return [json.loads(line) for line in response.text.splitlines()]


def test_a_follower_gets_each_step_event_within_a_second_of_its_writing_on_one_connection(server):
    instance_id = start(server, FLOW)
    received: list[tuple[float, dict[str, Any]]] = []
    blank_lines = 0
    with requests.Session() as session:
        with session.get(f"{server}/instances/{instance_id}/events?follow=true", stream=True, timeout=60) as response:
            assert response.status_code == 200 and response.headers["Content-Type"] == "application/x-ndjson"
            assert response.headers.get("Transfer-Encoding") == "chunked"
            for line in response.iter_lines(chunk_size=1):
                if not line:
                    blank_lines += 1  # a heartbeat
                    continue
                received.append((time.time(), json.loads(line)))
    events = [e for _, e in received]
    # The one connection carried the whole log, each event once, in order, to the end.
    assert events == whole_log(server, instance_id)
    assert events[-1]["type"] == "instance.ended"
    progress = [(at, e) for at, e in received if e["type"] == "work.progress"]
    assert [e["data"]["n"] for _, e in progress] == list(range(EMITS))
    # Written as emitted (GAP_SECONDS apart, while the step ran: before its step.succeeded)...
    stamps = [_utc_seconds(e["seq"]) for _, e in progress]
    assert all(b - a >= GAP_SECONDS * 0.9 for a, b in zip(stamps, stamps[1:], strict=False)), stamps
    succeeded = next(e for e in events if e["type"] == "step.succeeded" and e["step"] == "work")
    assert all(e["seq"] < succeeded["seq"] for _, e in progress)
    # ...and each received within the tolerance of its writing.
    lags = [round(at - _utc_seconds(e["seq"]), 3) for at, e in progress]
    assert all(lag <= RECEIPT_TOLERANCE for lag in lags), lags


def test_an_sse_follower_gets_ids_heartbeats_and_the_whole_log(server, monkeypatch):
    from stepflow_local import http_server

    monkeypatch.setattr(http_server, "HEARTBEAT_SECONDS", 0.3)
    instance_id = start(server, WAITING)
    frames: list[str] = []
    heartbeats = 0
    with requests.get(f"{server}/instances/{instance_id}/events?follow=true", stream=True, timeout=60,
                      headers={"Accept": "text/event-stream"}) as response:
        assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/event-stream")
        buffer = ""
        for piece in response.iter_content(chunk_size=None, decode_unicode=True):
            buffer += piece
            while "\n\n" in buffer:
                frame, buffer = buffer.split("\n\n", 1)
                if frame.startswith(": heartbeat"):
                    heartbeats += 1
                    if heartbeats == 2:  # silence is filled: now end the instance
                        task = requests.get(f"{server}/tasks?instance_id={instance_id}", timeout=30).json()["items"][0]
                        done = requests.post(f"{server}/tasks/{task['id']}/complete", json={"output_data": {"ok": True}, "completed_by": "ada"},
                                             timeout=30)
                        assert done.status_code == 200, done.text
                elif frame.startswith("id:"):
                    frames.append(frame)
                else:
                    assert frame.startswith("retry:"), frame
    ids = [f.split("\n", 1)[0].removeprefix("id: ") for f in frames]
    data = [json.loads(f.rsplit("data: ", 1)[1]) for f in frames]
    assert heartbeats >= 2
    assert [d["seq"] for d in data] == ids == [e["seq"] for e in whole_log(server, instance_id)]
    assert data[-1]["type"] == "instance.ended"


def test_a_stream_ended_early_is_resumed_from_its_cursor_without_loss_or_repeats(server, monkeypatch):
    # As API Gateway ends every response by 29 s, the server here ends each stream after 0.4 s.
    monkeypatch.setenv("STEPFLOW_LOCAL_STREAM_SECONDS", "0.4")
    instance_id = start(server, FLOW)
    events: list[dict[str, Any]] = []
    cursor, connections, ended = "", 0, False
    while not ended:
        connections += 1
        assert connections < 200
        with requests.get(f"{server}/instances/{instance_id}/events?follow=true{cursor}", stream=True,
                          timeout=60) as response:
            assert response.status_code == 200
            ended = response.headers["Stepflow-Ended"] == "true" if "Stepflow-Ended" in response.headers else False
            for line in response.iter_lines():
                if line:
                    events.append(json.loads(line))
        if events:
            cursor = f"&after={events[-1]['seq']}"
    assert connections > 2
    log = whole_log(server, instance_id)
    assert [e["seq"] for e in events] == [e["seq"] for e in log], ([e["type"] for e in events], [e["type"] for e in log])
    assert events == log


def test_a_followed_read_through_the_gateway_is_a_long_poll_that_ends_with_its_cursor(api):
    # API Gateway buffers: a followed read answers with the events there are, or after `wait` with none,
    # carrying the cursor and (SSE) a short retry, so an EventSource comes back at once.
    status, _ = api.post("/definitions", WAITING)
    assert status in (200, 201)
    status, started = api.post("/instances", {"definition_name": "live_waiting", "input_data": {}})
    instance_id = started["id"]
    deadline = time.monotonic() + 30
    while True:
        response = api.client.http.get(f"/workflows/instances/{instance_id}/events?follow=true&wait=1",
                                       headers={"Accept": "text/event-stream"})
        assert response.status_code == 200 and response.headers["Stepflow-Follow"] == "true"
        body = response.body.decode()
        assert body.startswith("retry: 250\n\n")
        if "task.created" in body:
            break
        assert time.monotonic() < deadline
    cursor = response.headers["Stepflow-Cursor"]
    assert body.rstrip("\n").rsplit("id: ", 1)[1].split("\n", 1)[0] == cursor
    # Nothing new: the poll ends after its wait, empty, with the same cursor.
    response = api.client.http.get(f"/workflows/instances/{instance_id}/events?follow=true&wait=0.3",
                                   headers={"Accept": "text/event-stream", "Last-Event-ID": cursor})
    assert response.status_code == 200 and response.body.decode() == "retry: 250\n\n"
    assert response.headers["Stepflow-Cursor"] == cursor and response.headers["Stepflow-Ended"] == "false"


@pytest.mark.parametrize("query", ["include_internal=true", "include_qualified_name=true", "acquire_timeout=5",
                                   "follow=maybe", "wait=25", "wait=soon", "limit=0", "after=nope", "cursor=x"])
def test_every_query_parameter_of_the_log_is_honoured_or_refused(api, query):
    status, _ = api.post("/definitions", WAITING)
    status, started = api.post("/instances", {"definition_name": "live_waiting", "input_data": {}})
    response = api.client.http.get(f"/workflows/instances/{started['id']}/events?{query}")
    assert response.status_code == 400, (query, response.body)
    detail = json.loads(response.body)["detail"]
    assert query.split("=")[0] in detail
