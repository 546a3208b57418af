"""Shared fixtures: the embedded AWS runtime (moto, in-process Lambda) and an HTTP client for the app."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from typing import Any

import pytest

pytest_plugins = ["stepflow_local.pytest_plugin"]

# Metrics are EMF lines on stdout: useful in CloudWatch, noise in a test log.
os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
# No X-Ray daemon in tests (a test that wants tracing sets the Lambda environment in a fresh interpreter).
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")


class Api:
    """chalice.test.Client with JSON helpers and the default /workflows prefix."""

    def __init__(self, client: Any, prefix: str = "/workflows"):
        self.client = client
        self.prefix = prefix

    def _url(self, path: str) -> str:
        return path if path.startswith("/health") else self.prefix + path

    def get(self, path: str) -> tuple[int, Any]:
        response = self.client.http.get(self._url(path))
        return response.status_code, _body(response)

    def post(self, path: str, body: Any = None, *, raw: str | None = None,
             content_type: str = "application/json") -> tuple[int, Any]:
        payload = raw if raw is not None else json.dumps(body)
        response = self.client.http.post(self._url(path), body=payload, headers={"content-type": content_type})
        return response.status_code, _body(response)

    def put(self, path: str, body: Any = None, *, raw: str | None = None,
            content_type: str = "application/json") -> tuple[int, Any]:
        payload = raw if raw is not None else json.dumps(body)
        response = self.client.http.put(self._url(path), body=payload, headers={"content-type": content_type})
        return response.status_code, _body(response)

    def delete(self, path: str) -> tuple[int, Any]:
        response = self.client.http.delete(self._url(path))
        return response.status_code, _body(response)

    def wait(self, instance_id: str, until: tuple[str, ...] = ("completed", "failed", "canceled"),
             timeout: float = 30.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            status, body = self.get(f"/instances/{instance_id}")
            assert status == 200, body
            if body["status"] in until or time.monotonic() > deadline:
                return body
            time.sleep(0.1)  # not faster: a tight poll starves moto's interpreter threads


    def one_task(self, query: str, timeout: float = 10.0) -> dict[str, Any]:
        """The one task a /tasks query finds; a step shows as waiting a moment before its task is stored."""
        deadline = time.monotonic() + timeout
        while True:
            status, page = self.get(f"/tasks?{query}")
            assert status == 200, page
            if page["items"] or time.monotonic() > deadline:
                assert len(page["items"]) == 1, page
                return page["items"][0]
            time.sleep(0.1)


def _body(response: Any) -> Any:
    try:
        return json.loads(response.body)
    except ValueError:
        return response.body


@pytest.fixture
def api(local_aws: Any) -> Iterator[Api]:
    import app as app_module
    from stepflow_local.gateway import routed_test_client  # routed as deployed: unknown paths reach the app

    with routed_test_client(app_module.app) as client:
        yield Api(client)


@pytest.fixture(autouse=True)
def no_scans(request: Any) -> Iterator[None]:
    """No request path may scan a table: a Scan from the app's DynamoDB client fails the test."""
    if "local_aws" not in request.fixturenames:
        yield
        return
    from chalicelib.aws.clients import client

    local = request.getfixturevalue("local_aws")
    events = client("dynamodb", local.region).meta.events
    scans: list[str] = []

    def refuse(params: Any = None, **_: Any) -> None:
        scans.append(str((params or {}).get("TableName")))
        raise AssertionError("a Scan on a request path: every read must be a key lookup or an index query")

    events.register("before-parameter-build.dynamodb.Scan", refuse)
    try:
        yield
    finally:
        events.unregister("before-parameter-build.dynamodb.Scan", refuse)
    assert not scans, f"Scan called on {scans}"

