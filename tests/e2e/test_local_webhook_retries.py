"""Completion webhook retries from the running local service (`make run`), on its timer at a time scale:
each retry is due at the documented delay after the attempt before it, and none arrives before then."""

from __future__ import annotations

import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest

from chalicelib.core.times import parse_iso
from chalicelib.service.notifications import BACKOFF_SECONDS
from tests.local_service import LocalService, call
from tests.serving import serving

pytestmark = pytest.mark.e2e
SCALE = 0.0005  # 10 s ... 1 h, 4,360 s in all, in about 2.2 s; the sweep (every 5 minutes) never runs


class FailingFive(BaseHTTPRequestHandler):
    arrivals: list[tuple[float, str]] = []  # (time.time(), X-Stepflow-Attempt)

    def do_POST(self) -> None:  # noqa: N802
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.arrivals.append((time.time(), self.headers["X-Stepflow-Attempt"]))
        self.send_response(500 if len(self.arrivals) <= 5 else 204)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[str]:
    FailingFive.arrivals = []
    with serving(FailingFive) as url:
        yield f"{url}/hook"


@pytest.fixture
def service(tmp_path) -> Iterator[str]:
    try:
        started = LocalService(tmp_path / "service.log", env={"STEPFLOW_LOCAL_TIME_SCALE": str(SCALE)}).start()
    except RuntimeError as exc:
        pytest.fail(str(exc))
    yield started.base + "/workflows"
    started.stop()


def test_retries_are_due_at_the_documented_delays_and_never_arrive_early(service, receiver):
    status, started = call("POST", f"{service}/instances", {"definition_name": "image_pipeline",
                                                            "input_data": {"prompt": "w"}, "webhook_url": receiver})
    assert status == 201, started
    deadline = time.monotonic() + 90
    while True:
        attempts = call("GET", f"{service}/instances/{started['id']}")[1]["notifications"]
        if (attempts and attempts[-1]["ok"]) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert [(a["attempt"], a["ok"]) for a in attempts] == [(n, n == 6) for n in range(1, 7)]
    arrived = {attempt: at for at, attempt in FailingFive.arrivals}
    for earlier, later, delay in zip(attempts[:-1], attempts[1:], BACKOFF_SECONDS, strict=True):
        due = parse_iso(earlier["next_attempt_at"])
        # Due at the documented delay, scaled (to the millisecond the timestamps keep)...
        assert abs((due - parse_iso(earlier["at"])).total_seconds() - delay * SCALE) <= 0.001
        # ...and neither sent nor received before then.
        assert parse_iso(later["at"]) >= due and arrived[str(later["attempt"])] >= due.timestamp()
    assert "next_attempt_at" not in attempts[-1]
