"""Every URL the API hands out (Location, result_url, callback_url, a trigger's url) is followed exactly as
given and answers, on the local service without a stage, under a stage path (as API Gateway serves it),
and with no API prefix or another one."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.local_service import LocalService

pytestmark = pytest.mark.e2e

SLOW = {
    "name": "slow_result",
    "steps": [{"id": "nap", "type": "machine", "task_type": "util.sleep", "config": {"seconds": 0.0}},
              {"id": "hook", "type": "webhook", "depends_on": ["nap"]}],
}
# (stage path, API prefix): no stage with the default prefix, a stage with no prefix, a stage with another.
LAYOUTS = [("", "/workflows"), ("/dev", "/"), ("/dev", "/api/v1")]


def send(method: str, url: str, body: Any = None) -> tuple[int, dict[str, str], Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, dict(response.headers), json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.loads(error.read() or b"null")


@pytest.fixture(scope="module", params=LAYOUTS, ids=lambda layout: f"stage[{layout[0]}]-prefix[{layout[1]}]")
def layout(request: Any, tmp_path_factory: Any) -> Iterator[tuple[str, str]]:
    """(origin, API root as a client reaches it) of a local service under the layout."""
    stage, prefix = request.param
    service = LocalService(tmp_path_factory.mktemp("urls") / "service.log",
                           env={"STEPFLOW_LOCAL_BASE_PATH": stage, "STEPFLOW_API_PREFIX": prefix})
    origin = service.base
    service.base = origin + stage  # where its /health is
    service.start()
    yield origin, origin + stage + prefix.rstrip("/")
    service.stop()


def test_every_url_the_api_returns_is_followed_as_given(layout: tuple[str, str]) -> None:
    origin, api = layout
    status, _, body = send("POST", f"{api}/definitions", SLOW)
    assert status in (200, 201), body
    # A run that cannot end within its wait: 202 with Location, Retry-After and result_url.
    status, headers, running = send("POST", f"{api}/definitions/slow_result/run", {"wait_seconds": 0})
    assert status == 202, running
    assert headers["Location"] == running["result_url"] and int(headers["Retry-After"]) >= 1
    assert running["workflow_name"] == "slow_result" and running["revision"] and running["started_at"]
    followed: dict[str, int] = {}
    status, headers, again = send("GET", origin + running["result_url"])
    followed["result_url"] = status
    assert status == 202 and again["result_url"] == running["result_url"] == headers["Location"]
    # A start's Location is the instance.
    status, headers, started = send("POST", f"{api}/instances", {"definition_name": "slow_result"})
    assert status == 201
    status, _, instance = send("GET", origin + headers["Location"])
    followed["Location"] = status
    assert instance["id"] == started["id"]
    # A waiting webhook step's callback_url completes it; then the result is there (200).
    tasks = until(lambda: send("GET", f"{api}/tasks?instance_id={running['id']}")[2]["items"])
    status, _, callback = send("GET", f"{api}/tasks/{tasks[0]['id']}/callback")
    assert status == 200, callback
    status, _, done = send("POST", origin + callback["callback_url"], {"ok": True})
    followed["callback_url"] = status
    status, headers, result = until(lambda: (lambda r: r if r[0] == 200 else None)(
        send("GET", origin + running["result_url"])))
    assert result["status"] == "completed" and result["completed_at"], result
    assert result["workflow_name"] == "slow_result" and result["started_at"] and "Location" not in headers
    # A webhook trigger's url starts an instance.
    status, _, trigger = send("POST", f"{api}/definitions/slow_result/triggers", {})
    assert status == 201, trigger
    followed["trigger url"] = _fire(origin + trigger["url"], trigger["secret"])
    assert followed == {"result_url": 202, "Location": 200, "callback_url": 200, "trigger url": 201}


def until(check: Any, timeout: float = 30.0) -> Any:
    """The first truthy value of check(), polled every 0.1 s up to `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, "the condition never held"
        time.sleep(0.1)


def _fire(url: str, secret: str) -> int:
    body = json.dumps({"order": 1}).encode()
    stamp = str(int(time.time()))
    key = base64.b64decode(secret.removeprefix("whsec_"))  # the signing key, as Standard Webhooks reads it
    signature = hmac.new(key, f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    request = urllib.request.Request(url, data=body, method="POST", headers={
        "Content-Type": "application/json", "X-Stepflow-Timestamp": stamp, "X-Stepflow-Signature": f"v1={signature}"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def test_the_layouts_are_what_they_claim(tmp_path: Path) -> None:
    # Outside the stage nothing answers (so a URL without it would fail the test above).
    service = LocalService(tmp_path / "service.log", env={"STEPFLOW_LOCAL_BASE_PATH": "/dev"})
    origin = service.base
    service.base = origin + "/dev"
    service.start()
    try:
        assert send("GET", f"{origin}/workflows/definitions")[0] == 404
        assert send("GET", f"{origin}/dev/workflows/definitions")[0] == 200
    finally:
        service.stop()
