"""End to end: the local service as a user starts it, driven over HTTP like a user would."""

from __future__ import annotations

import json
import signal
import time
from http.server import BaseHTTPRequestHandler

import pytest

from tests.local_service import LocalService, call
from tests.serving import serving

pytestmark = pytest.mark.e2e


class Receiver(BaseHTTPRequestHandler):
    """/flaky/<key> fails twice with 500, then answers; /down always fails."""

    calls: dict[str, int] = {}

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        count = self.calls[self.path] = self.calls.get(self.path, 0) + 1
        if self.path.startswith("/flaky/") and count > 2:
            body, status = json.dumps({"total": 42, "calls": count}).encode(), 200
        else:
            body, status = b'{"error": "try later"}', 500 if self.path.startswith("/flaky/") else 503
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def receiver():
    with serving(Receiver) as url:
        yield url


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    started = LocalService(tmp_path_factory.mktemp("service") / "service.log")
    try:
        started.start()
    except RuntimeError as exc:
        pytest.fail(str(exc))
    yield started.base, started.process, started.log
    started.stop()


def wait_until_done(base: str, instance_id: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, body = call("GET", f"{base}/workflows/instances/{instance_id}")
        assert status == 200
        if body["status"] in ("completed", "failed", "canceled"):
            return body
        time.sleep(0.2)
    pytest.fail(f"instance {instance_id} did not finish: {body}")


def dag(receiver: str) -> dict:
    return {
        "name": "e2e_dag", "version": "1.0.0",
        "steps": [
            {"id": "start", "type": "machine", "task_type": "data.set",
             "config": {"values": {"order": "{{ order_id }}", "base": 10}}},
            {"id": "fetch", "type": "machine", "task_type": "http.request", "depends_on": ["start"],
             "config": {"url": f"{receiver}/flaky/{{{{ order_id }}}}", "timeout_seconds": 5},
             "retry": {"max_attempts": 3, "interval_seconds": 1, "backoff_rate": 2.0}},
            {"id": "price", "type": "machine", "task_type": "data.set", "depends_on": ["start"],
             "config": {"values": {"price": 99.5}}},
            {"id": "tag", "type": "machine", "task_type": "data.set", "depends_on": ["start"],
             "config": {"values": {"tags": ["fast"]}}},
            {"id": "route", "type": "gateway", "depends_on": ["fetch", "price", "tag"]},
            {"id": "premium", "type": "machine", "task_type": "data.set", "depends_on": ["route"],
             "condition": "status == 200 and price > 50", "config": {"values": {"lane": "premium"}}},
            {"id": "standard", "type": "machine", "task_type": "data.set", "depends_on": ["route"],
             "config": {"values": {"lane": "standard"}}},
            {"id": "summary", "type": "machine", "task_type": "data.set", "depends_on": ["premium", "standard"],
             "input_mappings": [{"from_step": "fetch", "from_field": "body.total", "to_field": "remote_total"},
                                {"from_step": "price", "from_field": "price", "to_field": "quoted"}],
             "config": {"values": {"line": "{{ order }}: {{ lane }} lane, {{ remote_total }} items at {{ quoted }}"}}},
        ],
    }


def test_dag_with_fan_out_join_gateway_mappings_and_retry_completes(service, receiver):
    base, _, _ = service
    status, body = call("POST", f"{base}/workflows/definitions", dag(receiver))
    assert status == 201, body
    status, started = call("POST", f"{base}/workflows/instances",
                           {"definition_name": "e2e_dag", "input_data": {"order_id": "A7"}})
    assert status == 201, started
    done = wait_until_done(base, started["id"])
    assert done["status"] == "completed", done
    data = done["context_data"]
    assert data["lane"] == "premium"
    assert data["line"] == "A7: premium lane, 42 items at 99.5"
    assert data["tags"] == ["fast"] and data["status"] == 200
    history = {s["step_name"]: s for s in done["step_history"]}
    assert history["fetch"]["attempts"] == 3 and history["fetch"]["status"] == "succeeded"
    assert "standard" not in history
    assert Receiver.calls["/flaky/A7"] == 3


def test_a_step_that_keeps_failing_fails_the_instance_with_its_error(service, receiver):
    base, _, _ = service
    definition = {"name": "e2e_failing", "steps": [
        {"id": "prepare", "type": "machine", "task_type": "data.set", "config": {"values": {"ready": True}}},
        {"id": "call_down", "type": "machine", "task_type": "http.request", "depends_on": ["prepare"],
         "config": {"url": f"{receiver}/down"}, "retry": {"max_attempts": 2}},
        {"id": "never", "type": "machine", "task_type": "util.log", "depends_on": ["call_down"],
         "config": {"message": "unreachable"}},
    ]}
    assert call("POST", f"{base}/workflows/definitions", definition)[0] == 201
    _, started = call("POST", f"{base}/workflows/instances", {"definition_name": "e2e_failing"})
    done = wait_until_done(base, started["id"])
    assert done["status"] == "failed"
    assert done["error"]["error"] == "HttpStatusError"
    history = {s["step_name"]: s for s in done["step_history"]}
    assert history["call_down"]["status"] == "failed" and history["call_down"]["attempts"] == 2
    assert history["call_down"]["error"]["error"] == "HttpStatusError"
    assert "never" not in history
    status, failed = call("GET", f"{base}/workflows/instances?status=failed")
    assert [i["id"] for i in failed["items"]] == [started["id"]]


def test_an_invalid_definition_gets_every_issue_at_once(service):
    base, _, _ = service
    status, body = call("POST", f"{base}/workflows/definitions", {"name": "e2e_bad", "steps": [
        {"id": "a", "type": "machine", "task_type": "data.set", "config": {"values": {}}, "depends_on": ["b"]},
        {"id": "b", "type": "machine", "task_type": "data.set", "config": {"values": {}}, "depends_on": ["a"]},
        {"id": "c", "type": "machine", "task_type": "http.reqest", "depends_on": ["ghost"]},
    ]})
    assert status == 422
    assert [(i["code"], i["location"]) for i in body["detail"]["issues"]] == [
        ("cycle", "steps"),
        ("unknown_step", "steps[2].depends_on[0]"),
        ("unknown_task_type", "steps[2].task_type"),
    ]


def test_bundled_examples_are_registered_at_start(service):
    base, _, _ = service
    status, listed = call("GET", f"{base}/workflows/definitions")
    assert status == 200
    assert {"expense_approval", "image_pipeline", "order_fulfilment"} <= {d["name"] for d in listed}


def test_a_schedule_runs_on_the_local_service(service):
    """What `make run` users see: the service fires a rate(1 minute) schedule itself (at x0.01: every 0.6 s)."""
    base, _, _ = service
    flow = {"name": "every_minute", "version": "1", "steps": [
        {"id": "mark", "type": "machine", "task_type": "data.set", "config": {"values": {"ran": True}}}]}
    assert call("POST", f"{base}/workflows/definitions", flow)[0] == 201
    status, made = call("POST", f"{base}/workflows/definitions/every_minute/schedules",
                        {"expression": "rate(1 minute)", "overlap": "allow"})
    assert status == 201, made
    deadline = time.monotonic() + 60
    while True:
        items = call("GET", f"{base}/workflows/instances?workflow_name=every_minute&limit=100")[1]["items"]
        if len(items) >= 2 or time.monotonic() > deadline:
            break
        time.sleep(0.25)
    assert len(items) >= 2, items
    assert call("POST", f"{base}/workflows/definitions/every_minute/schedules/{made['id']}/pause", {})[0] == 200
    status, view = call("GET", f"{base}/workflows/definitions/every_minute/schedules/{made['id']}")
    assert view["fired"] >= 2 and view["state"] == "paused"
    done = wait_until_done(base, items[0]["id"])
    assert done["input_data"]["scheduled_at"].endswith("Z")


def test_an_event_sent_before_its_receive_step_waits_is_taken_when_it_does(service):
    base, _, _ = service
    definition = {"name": "e2e_receive", "steps": [
        {"id": "hold", "type": "webhook"},
        {"id": "paid", "type": "receive", "event_type": "order.paid", "correlation_key": "{{ order_id }}",
         "depends_on": ["hold"]}]}
    assert call("POST", f"{base}/workflows/definitions", definition)[0] in (200, 201)
    status, started = call("POST", f"{base}/workflows/instances",
                           {"definition_name": "e2e_receive", "input_data": {"order_id": "L-1"}})
    assert status == 201, started
    status, kept = call("POST", f"{base}/workflows/events",
                        {"type": "order.paid", "correlation_key": "L-1", "data": {"amount": 3}, "id": "l-1"})
    assert status == 202 and kept["status"] == "kept", kept
    deadline = time.monotonic() + 60
    while True:  # the webhook step waits a moment after the instance starts
        status, body = call("POST", f"{base}/workflows/instances/{started['id']}/events", {"step": "hold"})
        if status == 202:
            break
        assert status == 409 and time.monotonic() < deadline, body
        time.sleep(0.2)
    done = wait_until_done(base, started["id"])
    assert done["status"] == "completed" and done["context_data"]["paid"] == {"amount": 3}, done
    assert call("POST", f"{base}/workflows/events", {"type": "order.paid", "correlation_key": "L-1", "id": "l-1"}) \
        == (202, {"status": "duplicate", "id": "l-1"})


def test_a_step_waits_for_its_child_workflow_on_the_local_service(service):
    """workflow.start with wait as `make run` runs it: the child's end, noticed by the service's execution
    watcher (nobody reads the child), answers the parent's step with the child's output."""
    base, _, _ = service
    child = {"name": "e2e_child", "version": "1", "steps": [
        {"id": "pause", "type": "timer", "seconds": 30},
        {"id": "answer", "type": "machine", "task_type": "data.set", "depends_on": ["pause"],
         "config": {"values": {"answer": "{{ question }}!"}}}]}
    parent = {"name": "e2e_parent", "version": "1", "steps": [
        {"id": "ask", "type": "machine", "task_type": "workflow.start",
         "config": {"workflow": "e2e_child", "input": {"question": "{{ question }}"}, "wait": True}}]}
    for body in (child, parent):
        assert call("POST", f"{base}/workflows/definitions", body)[0] == 201
    status, started = call("POST", f"{base}/workflows/instances",
                           {"definition_name": "e2e_parent", "input_data": {"question": "why"}})
    assert status == 201, started
    done = wait_until_done(base, started["id"], timeout=90)
    assert done["status"] == "completed", done
    step = next(s for s in done["step_history"] if s["step_name"] == "ask")
    assert step["output"]["status"] == "completed" and step["output"]["output"]["answer"] == "why!"
    assert done["context_data"]["output"]["answer"] == "why!"


def test_the_service_writes_no_line_per_request_or_step_by_default(service):
    """Quiet unless --verbose: requests, a run and its util.log step add nothing to the service's output
    (the step's line is in the instance's event log instead: GET /instances/{id}/events)."""
    base, _, log = service
    definition = {"name": "quiet_flow", "version": "1.0.0", "steps": [
        {"id": "note", "type": "machine", "task_type": "util.log", "config": {"message": "noted quietly"}}],
        "edges": [], "initial_step": "note", "terminal_steps": ["note"]}
    assert call("POST", f"{base}/workflows/definitions", definition)[0] in (200, 201)
    before = log.read_bytes()
    status, started = call("POST", f"{base}/workflows/instances",
                           {"definition_name": "quiet_flow", "input_data": {}})
    assert status == 201, started
    assert wait_until_done(base, started["id"])["status"] == "completed"
    for _ in range(20):
        assert call("GET", f"{base}/health")[0] == 200
    assert log.read_bytes() == before


def test_ctrl_c_stops_the_service_cleanly(service):
    _, process, log = service
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=30) == 0, log.read_text()[-2000:]
