"""One error contract for every route (chalice.test.Client through the local gateway): unknown route 404,
wrong method 405 with Allow, bad media type 415, a body without Content-Type read as JSON, an unreadable
body 400, a well-formed but invalid body 422, no token 401, a role too low 403, a missing resource 404,
each as {"detail": ...}. The table is tests/error_contract.py; docs/api.md "Errors" describes it."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.auth_on import authentication
from tests.error_contract import (
    Answer,
    auth_cases,
    build_world,
    call,
    check,
    not_found_cases,
    operations,
    route_cases,
)

SECRET = "contract-secret-0123456789-0123456789"


def sender(api: Any):
    def send(method: str, path: str, body: bytes | None, headers: dict[str, str]) -> Answer:
        response = api.client.http.request(method, path, headers=headers, body=body or b"")
        return Answer(response.status_code, {k.lower(): v for k, v in (response.headers or {}).items()},
                      response.body if isinstance(response.body, bytes) else str(response.body or "").encode())
    return send


@pytest.fixture
def world(api):
    send = sender(api)
    spec = json.loads(api.client.http.get("/openapi.json").body)
    return send, spec, build_world(send, api.prefix)


def test_every_route_refuses_what_no_route_takes_and_bad_bodies_alike(world, api):
    send, spec, ids = world
    count, problems = check(send, route_cases(spec, api.prefix, ids), ids)
    assert problems == [], "\n".join(problems)
    ops = operations(spec)
    assert count >= len(ops) + 2 * len({op.path for op in ops})  # 415 per operation; 404 and 405 per path
    assert sum(op.takes_body for op in ops) >= 20


def test_every_read_of_something_missing_is_404(world):
    send, spec, ids = world
    count, problems = check(send, not_found_cases(spec, ids))
    assert problems == [], "\n".join(problems)
    assert count > 30


def test_with_authentication_on_no_token_is_401_and_a_low_role_403_everywhere(world, api):
    from chalicelib.auth import mint

    send, spec, ids = world
    with authentication(SECRET):
        viewer = mint(SECRET, "vera", roles=["viewer"], groups=(), tenant="acme")
        count, problems = check(send, auth_cases(spec, ids, {"viewer": viewer}))
    assert problems == [], "\n".join(problems)
    assert count > 100


def test_a_conflict_is_409_with_the_same_shape(world, api):
    send, _, ids = world
    prefix = api.prefix
    assert call(send, "POST", f"{prefix}/instances/{ids['instance_id']}/cancel", {}).status == 200
    again = call(send, "POST", f"{prefix}/instances/{ids['instance_id']}/cancel", {})
    assert again.status == 409 and set(again.json()) == {"detail"}, again
    taken = call(send, "POST", f"{prefix}/credentials", {"name": "contract_secret", "value": "s3cret-value-0123456789"})
    assert taken.status == 409 and set(taken.json()) == {"detail"}, taken


def test_a_body_without_content_type_is_taken_as_json(api):
    """`curl -d '{...}'` (form-encoded by default) and no header at all both register a definition."""
    body = json.dumps({"name": "plain_curl", "steps": [{"id": "one", "type": "machine", "task_type": "data.set",
                                                        "config": {"values": {"a": 1}}}]}).encode()
    for headers in ({"content-type": "application/x-www-form-urlencoded"}, {}):
        response = api.client.http.request("POST", "/workflows/definitions", headers=headers, body=body)
        assert response.status_code in (200, 201), response.body
        assert json.loads(response.body)["name"] == "plain_curl"
    started = api.client.http.request("POST", "/workflows/instances", body=json.dumps(
        {"definition_name": "plain_curl"}).encode(), headers={"content-type": "application/x-www-form-urlencoded"})
    assert started.status_code == 201, started.body


def test_options_answers_the_routes_methods(api):
    response = api.client.http.request("OPTIONS", "/workflows/definitions", headers={}, body=b"")
    assert response.status_code == 204
    assert {m.strip() for m in response.headers["Allow"].split(",")} == {"GET", "POST", "OPTIONS"}


def test_the_openapi_document_describes_each_status_of_the_contract(api):
    from openapi_spec_validator import validate

    spec = json.loads(api.client.http.get("/openapi.json").body)
    validate(spec)
    responses = spec["components"]["responses"]
    statuses = {r["description"].split(":")[0]: r for r in responses.values()}
    assert {"400", "401", "403", "404", "405", "409", "413", "415", "422"} <= set(statuses)
    for response in responses.values():
        assert response["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
    assert "Allow" in statuses["405"]["headers"]
    # Each operation's own error answers say the same, one schema for all.
    start = spec["paths"]["/workflows/instances"]["post"]["responses"]
    assert {"400", "404", "415", "422"} <= set(start)
    assert start["422"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
