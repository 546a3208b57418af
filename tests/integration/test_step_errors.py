"""A failed step as users see it: {error, message} with the task's own message, in the instance, its step
history, /result, /run, the event log and a fallback's input; never a stack trace or a server path."""

from __future__ import annotations

import json

import pytest

from chalicelib.tasks.errors import StepError
from tests.leaks import leaks

CRASH_MESSAGE = f"the ledger is closed (see {__file__})"
SHOWN_MESSAGE = "the ledger is closed (see <path>)"


@pytest.fixture
def failing_tasks(api):
    """Two task types on the app's registry (the Lambda handlers share it): one crashes, one fails by name."""
    import app as app_module

    registry = app_module.services.registry
    if "test.crash" not in registry:
        @registry.task("test.crash", description="Raises an unexpected exception.")
        def crash(ctx):
            raise RuntimeError(CRASH_MESSAGE)

    if "test.refuse" not in registry:
        @registry.task("test.refuse", description="Fails with a named error.")
        def refuse(ctx):
            raise StepError("Ledger.Closed", "no postings after the close")

    return registry


def step_events(api, instance_id):
    response = api.client.http.get(f"{api.prefix}/instances/{instance_id}/events?limit=1000")
    assert response.status_code == 200, response.body
    return [json.loads(line) for line in response.body.decode().splitlines()]


@pytest.mark.parametrize(("task_type", "error", "message"), [
    ("test.crash", "RuntimeError", SHOWN_MESSAGE),
    ("test.refuse", "Ledger.Closed", "no postings after the close"),
])
def test_a_failed_step_shows_its_error_name_and_message_only(api, failing_tasks, task_type, error, message):
    name = f"fails_{task_type.split('.')[1]}"
    status, body = api.post("/definitions", {"name": name, "steps": [
        {"id": "post", "type": "machine", "task_type": task_type}]})
    assert status in (200, 201), body
    status, run = api.post(f"/definitions/{name}/run", {"input_data": {}, "wait_seconds": 20})
    assert status == 200, run
    expected = {"error": error, "message": message}
    assert run["status"] == "failed" and run["error"] == expected, run

    instance_id = run["id"]
    status, instance = api.get(f"/instances/{instance_id}")
    assert status == 200 and instance["error"] == expected, instance
    history = {s["step_name"]: s for s in instance["step_history"]}
    assert history["post"]["error"] == expected, history
    status, result = api.get(f"/instances/{instance_id}/result")
    assert status == 200 and result["error"] == expected, result
    events = step_events(api, instance_id)
    failed = [e["data"] for e in events if e["type"] == "step.failed"]
    assert failed and failed[0]["error"] == error and failed[0]["message"] == message, events
    for body in (run, instance, result, events):
        assert leaks(body) == [], body


def test_a_fallback_sees_the_error_name_and_message(api, failing_tasks):
    status, body = api.post("/definitions", {"name": "falls_back", "steps": [
        {"id": "post", "type": "machine", "task_type": "test.crash", "fallback": {
            "task_type": "data.set",
            "config": {"values": {"why": "{{ failure.error }}: {{ failure.message }}"}}}}]})
    assert status in (200, 201), body
    status, run = api.post("/definitions/falls_back/run", {"input_data": {}, "wait_seconds": 20})
    assert status == 200 and run["status"] == "completed", run
    assert run["result"]["why"] == f"RuntimeError: {SHOWN_MESSAGE}"
    assert leaks(run) == []
