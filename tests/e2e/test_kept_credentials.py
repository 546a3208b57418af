"""End to end: credentials on the local service's data directory (as `make run` keeps them) survive a stop by
SIGTERM and a crash by SIGKILL: their metadata is the same, steps still authenticate with the value (and
with a value rotated before the crash), a deleted one stays deleted, and no value reaches the log."""

from __future__ import annotations

import stat
from http.server import BaseHTTPRequestHandler

import pytest

from tests.e2e.test_durable_service import api, finished, services, start  # noqa: F401 - `services` is a fixture
from tests.local_service import call
from tests.serving import serving

pytestmark = pytest.mark.e2e

FIRST = "kept-value-first-5Rq8w"
ROTATED = "kept-value-rotated-2Lx9v"
GONE = "kept-value-deleted-7Nb3k"


class Target(BaseHTTPRequestHandler):
    """Records the Authorization header of each request."""

    seen: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self.seen.append(self.headers.get("Authorization") or "")
        body = b"{}"
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def target():
    with serving(Target) as url:
        yield url


def authenticated_call(base: str) -> str:
    """Runs the workflow to its end; the Authorization header the target received."""
    before = len(Target.seen)
    done = finished(base, start(base, "kept_auth", {}))
    assert done["status"] == "completed", done
    assert len(Target.seen) == before + 1
    return Target.seen[-1]


def test_credentials_survive_a_restart_and_a_crash_of_a_service_on_a_data_directory(services, tmp_path, target):  # noqa: F811
    data = tmp_path / "data"
    service = services(tmp_path, data)
    base = api(service)
    for name, value in (("kept_token", FIRST), ("kept_gone", GONE)):
        status, body = call("POST", f"{base}/credentials", {"name": name, "value": value, "description": f"{name} <b>"})
        assert status == 201, body
    status, body = call("POST", f"{base}/definitions", {"name": "kept_auth", "steps": [
        {"id": "get", "type": "machine", "task_type": "http.request",
         "config": {"url": f"{target}/hello", "auth": {"type": "bearer", "credential": "kept_token"}}}]})
    assert status == 201, body
    assert authenticated_call(base) == f"Bearer {FIRST}"
    before = call("GET", f"{base}/credentials/kept_token")[1]
    assert call("DELETE", f"{base}/credentials/kept_gone")[0] in (200, 204)
    kept = data / "secrets.json"
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600

    service.stop()  # SIGTERM
    service = services(tmp_path, data)
    base = api(service)
    assert call("GET", f"{base}/credentials/kept_token")[1] == before  # name, description, created/rotated at
    assert call("GET", f"{base}/credentials/kept_gone")[0] == 404
    assert authenticated_call(base) == f"Bearer {FIRST}"

    # Rotated, then a crash: the rotated value is what was kept.
    status, body = call("PUT", f"{base}/credentials/kept_token", {"value": ROTATED})
    assert status == 200, body
    service.kill()
    service = services(tmp_path, data)
    base = api(service)
    rotated = call("GET", f"{base}/credentials/kept_token")[1]
    assert rotated["created_at"] == before["created_at"] and rotated["rotated_at"]
    assert authenticated_call(base) == f"Bearer {ROTATED}"
    assert [c["name"] for c in call("GET", f"{base}/credentials")[1]["items"]] == ["kept_token"]
    service.stop()

    # No value in anything the three services printed.
    logs = "".join(p.read_text(errors="replace") for p in tmp_path.glob("*.log"))
    assert logs and not any(value in logs for value in (FIRST, ROTATED, GONE))
