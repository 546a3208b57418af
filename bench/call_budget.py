"""AWS calls per endpoint on the local runtime, counted with the botocore hook of
stepflow_local/call_count.py: what a request costs, against the budget each endpoint has."""

from __future__ import annotations

import time
from typing import Any

from chalicelib.examples import bundled
from stepflow_local.call_count import CallCounter

# The most AWS calls each request may make (tests/integration/test_call_budget.py holds them to it).
# Each mutating request also puts its one audit record (chalicelib/api/audit.py): +1 on complete, approve, start.
BUDGETS = {"complete": 4, "approve": 4, "start": 5, "instance detail (waiting)": 2,
           "instance detail (completed)": 2, "instance list": None, "inbox": None}
# Counted by this same measure on commit 0974595, before views were built from the event log and the
# guards' reads were shared (that code path no longer exists to be measured side by side).
BASELINE = {"complete": 10, "approve": 11, "start": 12, "instance detail (waiting)": 4,
            "instance detail (completed)": 4, "instance list": 1, "inbox": 1}


def _ok(result: tuple[int, Any], *codes: int) -> Any:
    status, body = result
    assert status in (codes or (200, 201)), body
    return body


def _start(api: Any) -> str:
    return _ok(api.post("/instances", {"definition_name": "expense_approval", "user_id": "alice", "input_data": {
        "requester": "alice", "manager": "bob", "amount": 50, "description": "Conference"}}), 201)["id"]


def _task(api: Any, instance_id: str, deadline: float = 30.0) -> dict[str, Any]:
    end = time.monotonic() + deadline
    while True:
        items = _ok(api.get(f"/tasks?instance_id={instance_id}"))["items"]
        pending = [t for t in items if t["status"] == "pending"]
        if pending or time.monotonic() > end:
            assert pending, f"no task of {instance_id} appeared"
            return pending[0]
        time.sleep(0.05)


def measure(api: Any, region: str) -> dict[str, dict[str, Any]]:
    """{endpoint: {"calls": n, "by_operation": {...}, "scans": n}} for one request of each endpoint."""
    _ok(api.post("/definitions", bundled()["expense_approval"]))
    warm = _start(api)  # definitions and revisions are cached from here on, as in a warm Lambda
    api.wait(warm, until=("waiting", "failed"))
    _task(api, warm)
    counter = CallCounter(region).attach()
    results: dict[str, dict[str, Any]] = {}

    def count(name: str, call: Any) -> Any:
        counter.reset()
        body = call()
        results[name] = {"calls": counter.total, "by_operation": dict(sorted(counter.calls.items())),
                         "scans": counter.scans}
        return body

    try:
        first = count("start", lambda: _start(api))
        second = _start(api)
        api.wait(first, until=("waiting", "failed"))
        api.wait(second, until=("waiting", "failed"))
        task = _task(api, first)
        other = _task(api, second)
        count("instance detail (waiting)", lambda: _ok(api.get(f"/instances/{first}")))
        count("instance list", lambda: _ok(api.get("/instances?limit=20")))
        count("inbox", lambda: _ok(api.get("/tasks?assignee_id=bob")))
        count("complete", lambda: _ok(api.post(f"/tasks/{task['id']}/complete", {
            "output_data": {"approved": False}, "completed_by": "bob"})))
        count("approve", lambda: _ok(api.post(f"/approvals/{other['id']}/approve", {"decided_by": "bob"})))
        done = api.wait(first)
        assert done["status"] == "completed", done
        count("instance detail (completed)", lambda: _ok(api.get(f"/instances/{first}")))
    finally:
        counter.detach()
    return results
