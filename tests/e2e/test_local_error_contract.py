"""The error contract over real HTTP: `python -m stepflow_local.server` (authentication on) answers the
same table as the app under chalice.test.Client (tests/error_contract.py): its own server and gateway
send unknown paths, wrong methods, media types and bodies to the app alike."""

from __future__ import annotations

import http.client
import json

import pytest

from chalicelib.auth import mint
from tests.error_contract import Answer, auth_cases, build_world, check, not_found_cases, route_cases
from tests.local_service import LocalService

SECRET = "local-contract-secret-0123456789-0123456789"
PREFIX = "/workflows"


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    started = LocalService(tmp_path_factory.mktemp("errors") / "service.log",
                           {"STEPFLOW_AUTH": "hs256", "STEPFLOW_JWT_SECRET": SECRET})
    try:
        started.start()
    except RuntimeError as exc:
        pytest.fail(str(exc))
    yield started
    started.stop()


def sender(base: str, bearer: str | None = None):
    host, port = base.removeprefix("http://").split(":")

    def send(method: str, path: str, body: bytes | None, headers: dict[str, str]) -> Answer:
        headers = dict(headers)
        if bearer and "authorization" not in headers:
            headers["authorization"] = f"Bearer {bearer}"
        # http.client sends exactly these headers: a body without Content-Type goes out without one.
        connection = http.client.HTTPConnection(host, int(port), timeout=60)
        try:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            return Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())
        finally:
            connection.close()
    return send


def test_the_local_service_answers_the_whole_table(service):
    admin = sender(service.base, mint(SECRET, "ada", roles=["admin"], tenant="acme"))
    answer = admin("GET", "/openapi.json", None, {})
    assert answer.status == 200
    spec = json.loads(answer.body)
    ids = build_world(admin, PREFIX)
    problems: list[str] = []
    for cases, send in ((route_cases(spec, PREFIX, ids), admin), (not_found_cases(spec, ids), admin),
                        (auth_cases(spec, ids, {"viewer": mint(SECRET, "vic", roles=["viewer"], tenant="acme")}),
                         sender(service.base))):
        count, found = check(send, cases, ids)
        assert count > 30
        problems += found
    assert problems == [], "\n".join(problems)
