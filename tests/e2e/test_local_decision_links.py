"""End to end: a one-click decision link through the running local service, as a mail client would follow it."""

from __future__ import annotations

import time
import urllib.error
import urllib.request

import pytest

from tests.integration.test_quorum import board_spend
from tests.local_service import LocalService, call

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    started = LocalService(tmp_path_factory.mktemp("links") / "service.log")
    try:
        started.start()
    except RuntimeError as exc:
        pytest.fail(str(exc))
    yield started.base
    started.stop()


def fetch(method: str, url: str, body: bytes | None = None, content_type: str | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url, data=body, method=method,
                                     headers={"Content-Type": content_type} if content_type else {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_a_link_is_confirmed_by_get_and_decided_once_by_post(service):
    base = service
    definition = board_spend(required=1, out_of=None, name="served_link")
    definition["steps"][0]["assignee"] = "bob"
    assert call("POST", f"{base}/workflows/definitions", definition)[0] == 201
    status, started = call("POST", f"{base}/workflows/instances", {
        "definition_name": "served_link", "user_id": "alice", "input_data": {"requester": "alice", "amount": 5}})
    assert status == 201, started
    deadline = time.monotonic() + 60
    while True:
        items = call("GET", f"{base}/workflows/tasks?instance_id={started['id']}")[1]["items"]
        if items or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    [task] = items
    status, minted = call("POST", f"{base}/workflows/tasks/{task['id']}/links", {})
    assert status == 201, minted
    approve = base + minted["links"]["approve"]

    status, html = fetch("GET", approve)
    assert status == 200 and "<form method=post>" in html and "as bob" in html
    assert call("GET", f"{base}/workflows/tasks/{task['id']}")[1]["status"] == "pending"

    status, html = fetch("POST", approve, b"comment=ok", "application/x-www-form-urlencoded")
    assert status == 200 and "Approved" in html
    status, html = fetch("POST", approve, b"comment=again", "application/x-www-form-urlencoded")
    assert status == 409 and "already used" in html
    done = call("GET", f"{base}/workflows/tasks/{task['id']}")[1]
    assert done["status"] == "completed" and done["completed_by"] == "bob" and len(done["decisions"]) == 1
    deadline = time.monotonic() + 60
    while call("GET", f"{base}/workflows/instances/{started['id']}")[1]["status"] != "completed":
        assert time.monotonic() < deadline, "the instance did not complete"
        time.sleep(0.2)
