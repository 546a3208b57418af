"""A definition's lifecycle through the running local service over HTTP: PUT a change, the revision
history with a diff and a restore, export into a fresh service with identical ASL, and deactivation that
refuses new starts while a running instance completes."""

from __future__ import annotations

import time
import urllib.request

import pytest

from tests.local_service import LocalService, call

pytestmark = pytest.mark.e2e
FLOW = {"name": "e2e_purchase", "version": "1.0", "steps": [
    {"id": "review", "type": "human", "title": "Review"},
    {"id": "record", "type": "machine", "task_type": "data.set", "depends_on": ["review"],
     "config": {"values": {"recorded": True}}}]}
CHANGED = {**FLOW, "steps": [FLOW["steps"][0], {**FLOW["steps"][1], "config": {"values": {"recorded": "twice"}}}]}


@pytest.fixture(scope="module")
def services(tmp_path_factory):
    started = []
    try:
        for name in ("first", "second"):
            started.append(LocalService(tmp_path_factory.mktemp(name) / "service.log").start())
    except RuntimeError as exc:
        pytest.fail(str(exc))
    yield [s.base + "/workflows" for s in started]
    for service in started:
        service.stop()


def raw(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=30) as response:
        return response.read()


def until(what, ready, timeout: float = 60):
    deadline = time.monotonic() + timeout
    while True:
        value = what()
        if ready(value) or time.monotonic() > deadline:
            return value
        time.sleep(0.2)


def test_put_diff_restore_export_import_and_deactivate(services):
    first, second = services
    assert call("POST", f"{first}/definitions", FLOW)[0] == 201
    status, running = call("POST", f"{first}/instances", {"definition_name": "e2e_purchase"})
    assert status == 201
    assert call("PUT", f"{first}/definitions/e2e_purchase", CHANGED)[0] == 201
    status, revisions = call("GET", f"{first}/definitions/e2e_purchase/revisions")
    assert status == 200 and [r["number"] for r in revisions] == [2, 1]
    diff = call("GET", f"{first}/definitions/e2e_purchase/revisions/1/diff?to=2")[1]
    assert diff["structural"]["steps_changed"] == [{"id": "record", "fields": ["config"]}]
    status, restored = call("POST", f"{first}/definitions/e2e_purchase/revisions/1/restore")
    assert status == 201 and restored["revision_number"] == 3 and restored["revision"] == revisions[1]["revision"]

    document = raw(f"{first}/definitions/e2e_purchase/export?format=yaml")
    request = urllib.request.Request(f"{second}/definitions/import", data=document, method="POST",
                                     headers={"Content-Type": "application/x-yaml"})
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 201
    assert raw(f"{second}/definitions/e2e_purchase/asl") == raw(f"{first}/definitions/e2e_purchase/asl")

    assert call("DELETE", f"{first}/definitions/e2e_purchase")[1]["active"] is False
    status, refused = call("POST", f"{first}/instances", {"definition_name": "e2e_purchase"})
    assert status == 409 and "deactivated" in refused["detail"]
    page = until(lambda: call("GET", f"{first}/tasks?instance_id={running['id']}")[1], lambda p: p["items"])
    task = page["items"][0]
    assert call("POST", f"{first}/tasks/{task['id']}/complete", {"output_data": {}, "completed_by": "ann"})[0] == 200
    done = until(lambda: call("GET", f"{first}/instances/{running['id']}")[1],
                 lambda b: b["status"] in ("completed", "failed", "canceled"))
    assert done["status"] == "completed" and done["revision"] == revisions[1]["revision"]
