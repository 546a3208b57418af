"""End to end: the local service on a data directory (as `make run` starts it) stopped mid-run, by SIGTERM and
by SIGKILL, and started again: definitions are still there, the waiting task is the same task in the inbox,
and the instances that were running (at a human step, in a machine step) complete."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from tests.local_service import ROOT, LocalService, call
from tests.serving import serving

pytestmark = pytest.mark.e2e

REVIEW = {
    "name": "kept_review", "version": "1.0.0",
    "steps": [
        {"id": "prepare", "type": "machine", "task_type": "data.set", "config": {"values": {"prepared": True}}},
        {"id": "review", "type": "human", "depends_on": ["prepare"], "assignee_group": "reviewers",
         "due_in": "2d", "form_schema": {"type": "object", "required": ["ok"],
                                         "properties": {"ok": {"type": "boolean"}}}},
        {"id": "finish", "type": "machine", "task_type": "data.set", "depends_on": ["review"],
         "config": {"values": {"finished": True}}},
    ],
}


class Gate(BaseHTTPRequestHandler):
    """GET /slow/<key>: the first call of a key is held until the test opens the gate (a machine step
    caught mid-run by the stop); every later call answers at once."""

    calls: dict[str, int] = {}
    opened = threading.Event()

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        count = self.calls[self.path] = self.calls.get(self.path, 0) + 1
        if count == 1:
            self.opened.wait(120)
        body = b'{"answer": %d}' % count
        try:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except OSError:
            pass  # the caller died with the service

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def gate():
    with serving(Gate) as url:
        yield url
        Gate.opened.set()


def calling(gate: str) -> dict:
    return {
        "name": "kept_call", "version": "1.0.0",
        "steps": [
            {"id": "prepare", "type": "machine", "task_type": "data.set", "config": {"values": {"ready": True}}},
            {"id": "call", "type": "machine", "task_type": "http.request", "depends_on": ["prepare"],
             "config": {"url": f"{gate}/slow/{{{{ key }}}}", "timeout_seconds": 60}},
            {"id": "finish", "type": "machine", "task_type": "data.set", "depends_on": ["call"],
             "config": {"values": {"finished": True}}},
        ],
    }


def wait_until(condition, what: str, timeout: float = 90):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {timeout} s")
        time.sleep(0.2)


def api(service: LocalService) -> str:
    return f"{service.base}/workflows"


@pytest.fixture
def services():
    """Starts services on a data directory; whatever a failing test leaves running is stopped after it."""
    started: list[LocalService] = []

    def start(tmp_path: Path, data: Path) -> LocalService:
        service = LocalService(tmp_path / "service.log", data_dir=data)
        started.append(service)
        try:
            return service.start(timeout=180)
        except RuntimeError as exc:
            pytest.fail(str(exc))

    yield start
    for service in started:
        service.stop()


def pending_task(base: str, instance_id: str) -> dict:
    def found():
        items = call("GET", f"{base}/tasks?instance_id={instance_id}")[1]["items"]
        return [t for t in items if t["status"] == "pending"]

    tasks = wait_until(found, f"a pending task of {instance_id}")
    assert len(tasks) == 1, tasks
    return tasks[0]


def finished(base: str, instance_id: str) -> dict:
    def done():
        body = call("GET", f"{base}/instances/{instance_id}")[1]
        return body if body["status"] in ("completed", "failed", "canceled") else None

    return wait_until(done, f"instance {instance_id} ending")


def start(base: str, name: str, input_data: dict) -> str:
    status, body = call("POST", f"{base}/instances", {"definition_name": name, "input_data": input_data})
    assert status == 201, body
    return body["id"]


def run_across_a_restart(start_service, tmp_path: Path, gate: str, stop) -> None:
    data = tmp_path / "data"
    service = start_service(tmp_path, data)
    base = api(service)
    for definition in (REVIEW, calling(gate)):
        status, body = call("POST", f"{base}/definitions", definition)
        assert status == 201, body
    key = f"{stop.__name__}-{time.monotonic_ns()}"
    waiting = start(base, "kept_review", {})
    task = pending_task(base, waiting)
    running = start(base, "kept_call", {"key": key})
    wait_until(lambda: Gate.calls.get(f"/slow/{key}") == 1, "the machine step calling out")

    stop(service)
    service = start_service(tmp_path, data)
    base = api(service)
    listed = {d["name"] for d in call("GET", f"{base}/definitions")[1]}
    assert {"kept_review", "kept_call", "expense_approval"} <= listed

    # The machine step caught mid-run ran again in the continued run (at least once), and the rest followed.
    done = finished(base, running)
    assert done["status"] == "completed", done
    assert done["context_data"]["body"] == {"answer": 2} and done["context_data"]["finished"] is True
    assert Gate.calls[f"/slow/{key}"] == 2
    assert [r["kind"] for r in done["runs"]] == ["start", "continue"]

    # The waiting task: the same task, still in its group's inbox, with its due date.
    inbox = call("GET", f"{base}/tasks?assignee_group=reviewers")[1]["items"]
    assert task["id"] in [t["id"] for t in inbox]
    # The continued run takes it over: a new attempt (its own token), everything a user sees kept.
    kept = wait_until(lambda: (t := call("GET", f"{base}/tasks/{task['id']}")[1])["attempt"] == task["attempt"] + 1
                      and t, "the continued run taking the task over")
    assert {k: kept[k] for k in ("id", "status", "created_at", "due_at", "assignee_group", "title")} == \
        {k: task[k] for k in ("id", "status", "created_at", "due_at", "assignee_group", "title")}
    status, body = call("POST", f"{base}/tasks/{task['id']}/complete",
                        {"output_data": {"ok": True}, "completed_by": "rita"})
    assert status == 200 and body["status"] == "completed", body
    done = finished(base, waiting)
    assert done["status"] == "completed", done
    assert done["context_data"]["ok"] is True and done["context_data"]["finished"] is True
    assert [t["id"] for t in call("GET", f"{base}/tasks?instance_id={waiting}")[1]["items"]] == [task["id"]]
    assert service.stop() == 0, (tmp_path / "service.log").read_text()[-3000:]


def sigterm(service: LocalService) -> None:
    assert service.stop() == 0, service.log.read_text()[-3000:]


def sigkill(service: LocalService) -> None:
    pid_file = service.args[service.args.index("--data-dir") + 1] + "/dynamodb.pid"
    database_pid = int(Path(pid_file).read_text())
    service.kill()
    # Its DynamoDB Local dies with it (no process left holding the database for the next start).
    wait_until(lambda: not Path(f"/proc/{database_pid}").exists() or _zombie(database_pid), "DynamoDB Local exiting")


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1].startswith("Z")
    except OSError:
        return True


def test_stopped_by_sigterm_and_started_again_it_continues_where_it_was(services, tmp_path, gate):
    run_across_a_restart(services, tmp_path, gate, sigterm)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc to see DynamoDB Local exit")
def test_killed_and_started_again_it_continues_where_it_was(services, tmp_path, gate):
    run_across_a_restart(services, tmp_path, gate, sigkill)


def test_a_second_server_on_the_same_data_directory_is_refused(services, tmp_path):
    data = tmp_path / "data"
    service = services(tmp_path, data)
    second = subprocess.run([sys.executable, "-m", "stepflow_local.server", "--data-dir", str(data), "--port", "0"],
                            cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert second.returncode == 1
    assert "in use by another Stepflow server" in second.stderr and "Traceback" not in second.stderr
    assert call("GET", f"{service.base}/health")[0] == 200  # the first one is unharmed


def test_the_event_log_stream_is_read_on_a_kept_store_from_the_first_instance_on(services, tmp_path):
    """`make run`'s store: the event log's stream (the lifecycle events' outbox) is taken as instances log
    their events, from the first one written after an idle start, and the reader's checkpoint follows."""
    import json

    data = tmp_path / "data"
    service = services(tmp_path, data)
    base = api(service)
    definition = {"name": "kept_stream", "steps": [
        {"id": "only", "type": "machine", "task_type": "data.set", "config": {"values": {"done": True}}}]}
    assert call("POST", f"{base}/definitions", definition)[0] == 201
    checkpoint = data / "streams.json"
    time.sleep(1.5)  # not a wait for a result: the reader polls an empty stream for a while first (the case)
    finished(base, start(base, "kept_stream", {}))
    wait_until(lambda: checkpoint.exists() and json.loads(checkpoint.read_text()),
               "the stream reader taking the instance's log records")
    log = (tmp_path / "service.log").read_text(encoding="utf-8", errors="replace")
    assert "dynamodb-streams failed" not in log
