"""Liveness and readiness: /readyz answers 503 naming the dependency that is down (faults injected into the
app's own AWS clients at the transport), 200 when all answer; /healthz touches nothing."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest


def _get(api: Any, path: str) -> tuple[int, dict[str, Any]]:
    response = api.client.http.get(path)
    return response.status_code, json.loads(response.body)


@pytest.fixture
def fault(local_aws: Any) -> Iterator[Any]:
    """Makes every call of one service's operation fail as if the endpoint were down, until the test ends."""
    from botocore.exceptions import EndpointConnectionError

    from chalicelib.aws.clients import client

    hooks: list[tuple[Any, str, Any]] = []

    def inject(service: str, operation: str, *, hang: threading.Event | None = None) -> None:
        def refuse(**_: Any) -> None:
            if hang is not None:
                hang.wait(30)  # a dependency that never answers (released when the test ends)
            raise EndpointConnectionError(endpoint_url=f"https://{service}.example")

        events = client(service, local_aws.region).meta.events
        events.register(f"before-send.{service}.{operation}", refuse)
        hooks.append((events, f"before-send.{service}.{operation}", refuse))

    yield inject
    for events, name, handler in hooks:
        events.unregister(name, handler)


def test_ready_when_every_dependency_answers(api):
    status, body = _get(api, "/readyz")
    assert status == 200, body
    assert body["status"] == "ready" and body["failing"] == []
    assert body["checks"] == {"dynamodb": "ok", "stepfunctions": "ok"}


def test_dynamodb_down_is_503_naming_it(api, fault):
    fault("dynamodb", "DescribeTable")
    status, body = _get(api, "/readyz")
    assert status == 503, body
    assert body["failing"] == ["dynamodb"] and body["checks"]["stepfunctions"] == "ok"
    assert body["checks"]["dynamodb"] == "unreachable"
    assert "example" not in json.dumps(body)  # the error's text (an endpoint) is logged, never answered


def test_step_functions_down_is_503_naming_it(api, fault):
    fault("stepfunctions", "ListStateMachines")
    status, body = _get(api, "/readyz")
    assert status == 503, body
    assert body["failing"] == ["stepfunctions"] and body["checks"]["dynamodb"] == "ok"


def test_a_dependency_that_hangs_fails_at_the_deadline(api, fault, monkeypatch):
    from dataclasses import replace

    import app as app_module

    # Settings are frozen: the app's services get a copy with a short deadline for this test.

    monkeypatch.setitem(app_module.services.__dict__, "settings", replace(app_module.services.settings,
                                                                          ready_deadline_seconds=1.0))
    release = threading.Event()
    fault("stepfunctions", "ListStateMachines", hang=release)
    try:
        status, body = _get(api, "/readyz")
    finally:
        release.set()
    assert status == 503, body
    assert body["checks"]["stepfunctions"] == "timed_out" and "stepfunctions" in body["failing"]


def test_liveness_does_no_io_and_health_stays(api, fault):
    fault("dynamodb", "DescribeTable")
    fault("stepfunctions", "ListStateMachines")
    assert _get(api, "/healthz") == (200, {"status": "alive"})
    assert _get(api, "/health")[0] == 200
