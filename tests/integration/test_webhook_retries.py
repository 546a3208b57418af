"""Completion webhook retries through the app on the local runtime's timer (the path `make run` takes, and
on AWS the SQS queue's): a receiver that fails gets each retry at the documented delay, at a time scale."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest

from chalicelib.core.times import parse_iso
from chalicelib.examples import bundled
from chalicelib.service.notifications import BACKOFF_SECONDS
from tests.contract import Contract
from tests.integration.test_metrics import scrape, value
from tests.serving import serving

SCALE = 0.0005  # the documented 10 s ... 1 h (4,360 s in all) in about 2.2 s


class Failing(BaseHTTPRequestHandler):
    """Answers 500 to the first `failures` requests of a path, then 204; records when each arrived."""

    failures: dict[str, int] = {}
    arrivals: list[tuple[str, float, str]] = []  # (path, time.time(), X-Stepflow-Attempt)

    def do_POST(self) -> None:  # noqa: N802
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.arrivals.append((self.path, time.time(), self.headers["X-Stepflow-Attempt"]))
        seen = sum(1 for path, _, _ in self.arrivals if path == self.path)
        self.send_response(500 if seen <= self.failures.get(self.path, 0) else 204)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[str]:
    Failing.failures, Failing.arrivals = {}, []
    with serving(Failing) as url:
        yield url


@pytest.fixture
def timer(api: Any, local_aws: Any) -> Iterator[Any]:
    """The local retry timer, installed as the local service installs it (stepflow_local/server.py)."""
    import app as app_module
    from stepflow_local.webhook_retries import deliver_webhook_retries

    installed = deliver_webhook_retries(app_module, local_aws, SCALE)
    yield installed
    vars(app_module.services).pop("retry_timer", None)


def attempts_of(api: Any, instance_id: str, count: int, timeout: float = 60.0) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        notifications = api.get(f"/instances/{instance_id}")[1]["notifications"]
        done = len(notifications) >= count and "next_attempt_at" not in notifications[-1]
        if done or time.monotonic() > deadline:
            return notifications
        time.sleep(0.1)


def start(api: Any, url: str) -> str:
    status, body = api.post("/definitions", bundled()["image_pipeline"])
    assert status in (200, 201), body
    status, started = api.post("/instances", {"definition_name": "image_pipeline", "input_data": {"prompt": "w"},
                                              "webhook_url": url})
    assert status == 201, started
    assert api.wait(started["id"])["status"] == "completed"  # recording the end sends the first attempt
    return started["id"]


def test_retries_come_at_the_documented_delays_from_the_timer(api, receiver, timer):
    Failing.failures["/flaky"] = 5
    instance_id = start(api, f"{receiver}/flaky")
    attempts = attempts_of(api, instance_id, 6)
    assert [(a["attempt"], a["ok"]) for a in attempts] == [(n, n == 6) for n in range(1, 7)]
    # The timer was set for each retry at the documented delay (scaled) after the attempt before it.
    given = [(attempt, due) for i, attempt, due in timer.given if i == instance_id]
    assert [attempt for attempt, _ in given] == [2, 3, 4, 5, 6]
    for (_, due), earlier, delay in zip(given, attempts[:-1], BACKOFF_SECONDS, strict=True):
        assert abs((due - parse_iso(earlier["at"])).total_seconds() - delay * SCALE) <= 0.001  # ms timestamps
        assert earlier["next_attempt_at"] == due.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    # No retry reached the receiver before it was due; each came from its timer, the sweep never ran.
    arrived = {attempt: at for path, at, attempt in Failing.arrivals if path == "/flaky"}
    assert sorted(arrived) == ["1", "2", "3", "4", "5", "6"]
    for attempt, due in given:
        assert datetime.fromtimestamp(arrived[str(attempt)], UTC) >= due
    assert "next_attempt_at" not in attempts[-1]
    # The instance with its attempts is what the API document declares.
    spec = json.loads(api.client.http.get("/openapi.json").body)
    answer = api.client.http.get(f"/workflows/instances/{instance_id}")
    Contract(spec).check("GET", f"/workflows/instances/{instance_id}", 200, answer.body, "application/json")


def test_a_webhook_that_never_succeeds_is_given_up_after_six_attempts_and_counted(api, receiver, timer):
    Failing.failures["/down"] = 99
    instance_id = start(api, f"{receiver}/down")
    attempts = attempts_of(api, instance_id, 6)
    assert [(a["attempt"], a["ok"]) for a in attempts] == [(n, False) for n in range(1, 7)]
    assert "next_attempt_at" not in attempts[-1]  # no seventh: given up
    assert len([i for i, _, _ in timer.given if i == instance_id]) == 5
    samples = scrape(api)
    assert value(samples, "stepflow_webhook_deliveries_total", tenant="_", outcome="failed") == 6
    assert value(samples, "stepflow_webhook_dead_letters_total", tenant="_") == 1


def test_retries_open_when_the_local_service_starts_are_timed_then(api, receiver, local_aws):
    """A kept store's retries from before a restart: the service sets their timers as it starts."""
    import app as app_module
    from stepflow_local.webhook_retries import deliver_webhook_retries

    Failing.failures["/later"] = 1
    notifier = app_module.services.notifier
    saved, notifier.backoff = notifier.backoff, (0.05,) * 5  # no timer yet: the retry is only recorded
    try:
        instance_id = start(api, f"{receiver}/later")
    finally:
        notifier.backoff = saved
    assert app_module.services.instance_store.get(instance_id)["notify_state"] == "open"
    timer = deliver_webhook_retries(app_module, local_aws, SCALE)
    try:
        assert [(i, attempt) for i, attempt, _ in timer.given] == [(instance_id, 2)]
        attempts = attempts_of(api, instance_id, 2)
    finally:
        vars(app_module.services).pop("retry_timer", None)
    assert [(a["attempt"], a["ok"]) for a in attempts] == [(1, False), (2, True)]
