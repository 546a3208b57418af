"""Webhook triggers through the API: a signed delivery to POST /hooks/{key} starts an instance with its
body; a bad signature, a stale timestamp and a replay are refused with 401 and start nothing; disabled,
rotated and deleted triggers; the rate limit; Idempotency-Key; pins; and the key and secret appear in
the creation (or rotation) answer only, never in a read, an event log or a log line."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.auth_on import authentication
from tests.integration.test_auth import SECRET, Caller, token
from tests.integration.test_observability import captured_lines

QUICK = {"name": "hooked", "version": "1", "steps": [
    {"id": "mark", "type": "machine", "task_type": "data.set", "config": {"values": {"rev": 1}}}]}
PREFIX = "/workflows"


def signing_key(secret: str) -> bytes:
    assert secret.startswith("whsec_")
    return base64.b64decode(secret.removeprefix("whsec_"))


def stepflow_headers(secret: str, body: bytes, at: int | None = None) -> dict[str, str]:
    """The completion webhooks' scheme: v1=<hex HMAC("<timestamp>.<body>")>."""
    stamp = str(int(time.time()) if at is None else at)
    digest = hmac.new(signing_key(secret), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return {"X-Stepflow-Timestamp": stamp, "X-Stepflow-Signature": f"v1={digest}"}


def standard_headers(secret: str, body: bytes, msg_id: str, at: int | None = None) -> dict[str, str]:
    """Standard Webhooks: v1,<base64 HMAC("<id>.<timestamp>.<body>")>."""
    stamp = str(int(time.time()) if at is None else at)
    digest = hmac.new(signing_key(secret), f"{msg_id}.{stamp}.".encode() + body, hashlib.sha256).digest()
    return {"webhook-id": msg_id, "webhook-timestamp": stamp,
            "webhook-signature": "v1," + base64.b64encode(digest).decode()}


class Hooks:
    """Deliveries straight through chalice.test.Client (no token), every answer kept for the leak test."""

    def __init__(self, api: Any):
        self.api = api
        self.seen: list[str] = []

    def post(self, url: str, body: bytes, headers: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        response = self.api.client.http.post(url, body=body, headers={"content-type": "application/json", **headers})
        text = response.body.decode() if isinstance(response.body, bytes) else str(response.body)
        self.seen.append(text)
        return response.status_code, json.loads(text), dict(response.headers)

    def signed(self, created: dict[str, Any], data: Any, **extra: str) -> tuple[int, Any, dict[str, str]]:
        body = json.dumps(data).encode()
        return self.post(created["url"], body, {**stepflow_headers(created["secret"], body), **extra})


@pytest.fixture
def hooks(api: Any) -> Hooks:
    return Hooks(api)


def instances_of(api: Any, name: str = "hooked") -> list[dict[str, Any]]:
    status, page = api.get(f"/instances?workflow_name={name}&limit=100")
    assert status == 200, page
    return page["items"]


def new_trigger(api: Any, body: Any = None, name: str = "hooked") -> dict[str, Any]:
    status, created = api.post(f"/definitions/{name}/triggers", body if body is not None else {})
    assert status == 201, created
    return created


def test_a_signed_delivery_starts_an_instance_with_its_body(api, hooks):
    assert api.post("/definitions", QUICK)[0] == 201
    created = new_trigger(api, {"description": "orders from the shop", "forward_headers": ["X-Shop-Event"]})
    assert created["url"] == f"{PREFIX}/hooks/{created['key']}" and created["secret"].startswith("whsec_")
    assert created["enabled"] is True and created["rate_limit_per_minute"] == 60

    status, started, _ = hooks.signed(created, {"order": 7, "items": ["a", "b"]}, **{"X-Shop-Event": "order.paid",
                                                                                       "Authorization": "Bearer x"})
    assert status == 201, started
    assert started["created"] is True and started["trigger_id"] == created["id"]
    done = api.wait(started["instance_id"])
    assert done["status"] == "completed" and done["created_by"] == f"trigger:{created['id']}"
    status, instance = api.get(f"/instances/{started['instance_id']}")
    # The body, and only the chosen headers: never one that authenticates.
    assert instance["input_data"] == {"body": {"order": 7, "items": ["a", "b"]},
                                 "headers": {"content-type": "application/json", "x-shop-event": "order.paid"}}

    # Standard Webhooks headers work too, with the same secret.
    body = json.dumps({"order": 8}).encode()
    status, second, _ = hooks.post(created["url"], body, standard_headers(created["secret"], body, "msg_1"))
    assert status == 201 and second["instance_id"] != started["instance_id"]
    assert api.get(f"/instances/{second['instance_id']}")[1]["input_data"]["body"] == {"order": 8}
    listed = api.get("/definitions/hooked/triggers")[1]
    assert [t["id"] for t in listed] == [created["id"]]
    assert listed[0]["last_instance_id"] == second["instance_id"] and listed[0]["last_fired_at"]


def test_a_bad_signature_a_stale_timestamp_and_a_replay_are_401_and_start_nothing(api, hooks):
    assert api.post("/definitions", QUICK)[0] == 201
    created = new_trigger(api)
    url, secret = created["url"], created["secret"]
    body = json.dumps({"n": 1}).encode()
    other = "whsec_" + base64.b64encode(b"k" * 32).decode()
    now = int(time.time())
    refused = [
        {},  # unsigned
        stepflow_headers(other, body),  # another secret
        {**stepflow_headers(secret, body), "X-Stepflow-Signature": "v1=" + "0" * 64},
        stepflow_headers(secret, b'{"n": 2}'),  # signed for another body
        # Well past the 300 s window either way: a slow machine must not bring one back inside it.
        stepflow_headers(secret, body, at=now - 400),  # stale
        stepflow_headers(secret, body, at=now + 400),  # from the future
        {**stepflow_headers(secret, body), "X-Stepflow-Timestamp": "yesterday"},
        standard_headers(other, body, "msg_x"),
        standard_headers(secret, body, "msg_old", at=now - 600),
        {**standard_headers(secret, body, "msg_a"), "webhook-id": "msg_b"},  # the id is signed too
    ]
    for headers in refused:
        status, answer, _ = hooks.post(url, body, headers)
        assert status == 401, (headers, answer)
    assert instances_of(api) == []

    # A replay of a delivery that started an instance: 401, and still one instance.
    headers = stepflow_headers(secret, body)
    assert hooks.post(url, body, headers)[0] == 201
    status, answer, _ = hooks.post(url, body, headers)
    assert status == 401 and "replay" in answer["detail"]
    standard = standard_headers(secret, body, "msg_once")
    assert hooks.post(url, body, standard)[0] == 201
    resigned = standard_headers(secret, body, "msg_once", at=now - 10)  # the same id signed again
    assert hooks.post(url, body, standard)[0] == 401 and hooks.post(url, body, resigned)[0] == 401
    assert len(instances_of(api)) == 2


def test_disabled_rotated_and_deleted_triggers(api, hooks):
    assert api.post("/definitions", QUICK)[0] == 201
    created = new_trigger(api)
    base = f"/definitions/hooked/triggers/{created['id']}"
    status, disabled = api.post(f"{base}/disable")
    assert status == 200 and disabled["enabled"] is False
    status, answer, _ = hooks.signed(created, {"n": 1})
    unknown, _, _ = hooks.signed({**created, "url": f"{PREFIX}/hooks/hk_nothing"}, {"n": 1})
    assert status == unknown == 404 and answer == {"detail": "no such hook"}  # the same answer as an unknown key
    assert api.post(f"{base}/enable")[1]["enabled"] is True
    assert hooks.signed(created, {"n": 2})[0] == 201

    # Rotation: the new secret works at once; the old one for the overlap, then not at all.
    status, rotated = api.post(f"{base}/rotate", {"overlap_seconds": 600})
    assert status == 200 and rotated["secret"] != created["secret"] and rotated["previous_secret_valid_until"]
    assert hooks.signed({**created, "secret": rotated["secret"]}, {"n": 3})[0] == 201
    assert hooks.signed(created, {"n": 4})[0] == 201  # within the overlap
    status, again = api.post(f"{base}/rotate", {"overlap_seconds": 0})
    assert status == 200 and again["previous_secret_valid_until"] is None
    assert hooks.signed({**created, "secret": rotated["secret"]}, {"n": 5})[0] == 401
    assert hooks.signed(created, {"n": 6})[0] == 401
    assert hooks.signed({**created, "secret": again["secret"]}, {"n": 7})[0] == 201
    assert api.post(f"{base}/rotate", {"overlap_seconds": -1})[0] == 422

    count = len(instances_of(api))
    assert api.delete(base) == (200, {"id": created["id"], "deleted": True})
    assert hooks.signed({**created, "secret": again["secret"]}, {"n": 8})[0] == 404
    assert api.get(base)[0] == 404 and api.post(f"{base}/enable")[0] == 404 and api.delete(base)[0] == 404
    assert len(instances_of(api)) == count == 4


def test_the_rate_limit_answers_429_with_retry_after(api, hooks, monkeypatch):
    import app as app_module

    assert api.post("/definitions", QUICK)[0] == 201
    created = new_trigger(api, {"rate_limit_per_minute": 2})
    # One fixed moment: every delivery falls in the same window, however slow the machine is.
    moment = float(int(time.time()) // 60 * 60 + 30)
    monkeypatch.setattr(app_module.services.triggers, "_clock", lambda: moment)

    def at_moment(n: int) -> tuple[int, Any, dict[str, str]]:
        body = json.dumps({"n": n}).encode()
        return hooks.post(created["url"], body, stepflow_headers(created["secret"], body, at=int(moment)))

    assert at_moment(1)[0] == 201 and at_moment(2)[0] == 201
    status, answer, headers = at_moment(3)
    assert status == 429 and "2 deliveries a minute" in answer["detail"]
    assert {k.lower(): v for k, v in headers.items()}["retry-after"] == "30"
    assert len(instances_of(api)) == 2
    # The next window has a fresh budget.
    moment += 60
    assert at_moment(4)[0] == 201


def test_the_same_idempotency_key_gets_the_same_instance(api, hooks):
    assert api.post("/definitions", QUICK)[0] == 201
    created = new_trigger(api)
    status, first, _ = hooks.signed(created, {"order": 1}, **{"Idempotency-Key": "order-1"})
    assert status == 201
    # Another delivery (its own timestamp and signature) with the same key: the same instance, 200.
    body = json.dumps({"order": 1}).encode()
    status, second, _ = hooks.post(created["url"], body, {**standard_headers(created["secret"], body, "retry-2"),
                                                          "Idempotency-Key": "order-1"})
    assert status == 200 and second["instance_id"] == first["instance_id"] and second["created"] is False
    # The same key with another body is a conflict, and starts nothing.
    status, _, _ = hooks.signed(created, {"order": 2}, **{"Idempotency-Key": "order-1"})
    assert status == 409
    assert len(instances_of(api)) == 1
    assert hooks.signed(created, {"order": 1}, **{"Idempotency-Key": "x" * 256})[0] == 400


def test_a_delivery_cut_short_after_it_was_recorded_is_finished_by_its_retry(api, hooks, monkeypatch):
    import app as app_module

    assert api.post("/definitions", QUICK)[0] == 201
    created = new_trigger(api)
    service = app_module.services.triggers
    real_start = service._instances.start
    calls = {"n": 0}

    def failing_once(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 1:
            raise ConnectionError("the process died here")
        return real_start(*args, **kwargs)

    monkeypatch.setattr(service._instances, "start", failing_once)
    body = json.dumps({"n": 1}).encode()
    headers = standard_headers(created["secret"], body, "msg_cut")
    assert hooks.post(created["url"], body, headers)[0] == 500
    # The sender retries the same delivery: not a replay (nothing was started), it starts once.
    status, started, _ = hooks.post(created["url"], body, headers)
    assert status == 201, started
    assert hooks.post(created["url"], body, headers)[0] == 401  # now it is one
    assert [i["id"] for i in instances_of(api)] == [started["instance_id"]]


def test_pins_bounds_and_bad_requests(api, hooks):
    assert api.post("/definitions", QUICK)[0] == 201
    second = {**QUICK, "version": "2", "steps": [{**QUICK["steps"][0], "config": {"values": {"rev": 2}}}]}
    assert api.post("/definitions", second)[0] == 201
    pinned = new_trigger(api, {"revision": 1})
    status, started, _ = hooks.signed(pinned, {"n": 1})
    assert status == 201
    assert api.wait(started["instance_id"])["revision_number"] == 1
    aliased = new_trigger(api, {"alias": "live"})
    status, started, _ = hooks.signed(aliased, {"n": 1})
    assert status == 201 and api.wait(started["instance_id"])["revision_number"] == 2

    for body, code in [({"revision": 9}, 404), ({"alias": "nope"}, 404), ({"revision": 1, "alias": "live"}, 422),
                       ({"rate_limit_per_minute": 0}, 422), ({"forward_headers": ["Authorization"]}, 422),
                       ({"forward_headers": ["bad header"]}, 422), ({"key": "mine"}, 422)]:
        assert api.post("/definitions/hooked/triggers", body)[0] == code, body
    assert api.post("/definitions/nothing/triggers", {})[0] == 404
    assert api.get("/definitions/nothing/triggers")[0] == 404

    count = len(instances_of(api))
    big = b'{"pad": "' + b"x" * (256 * 1024) + b'"}'
    assert hooks.post(pinned["url"], big, stepflow_headers(pinned["secret"], big))[0] == 413
    assert hooks.post(pinned["url"], b"not json", stepflow_headers(pinned["secret"], b"not json"))[0] == 400
    status, answer, _ = hooks.post(f"{PREFIX}/hooks/{'k' * 300}", b"{}", stepflow_headers(pinned["secret"], b"{}"))
    assert status == 404 and answer == {"detail": "no such hook"}
    # The stored hash of a key is not a key.
    import app as app_module
    from chalicelib.core.hooks import key_hash

    assert hooks.post(f"{PREFIX}/hooks/{key_hash(pinned['key'])}", b"{}", stepflow_headers(pinned["secret"], b"{}"))[0] \
        == 404
    assert len(instances_of(api)) == count
    # Deactivated: the hook's workflow refuses new starts (409), and nothing starts.
    assert api.delete("/definitions/hooked")[0] == 200
    assert hooks.signed(pinned, {"n": 2})[0] == 409
    assert len(instances_of(api)) == count
    assert app_module.services.triggers is not None


@pytest.fixture
def secured(api: Any) -> Iterator[Caller]:
    with authentication(SECRET):
        yield Caller(api)


def test_keys_and_secrets_are_shown_once_to_editors_and_never_read_or_logged(secured, hooks):
    with captured_lines() as lines:
        created, rotated = shown_once_then_only_metadata(secured, hooks)
    call = secured
    secrets = {created["key"], created["secret"], rotated["secret"], created["url"],
               created["secret"].removeprefix("whsec_"), rotated["secret"].removeprefix("whsec_")}
    creation_answers = [s for s in call.seen if created["key"] in s or rotated["secret"] in s]
    assert len(creation_answers) == 2  # the creation and the rotation, nothing else
    reads = [s for s in call.seen if s not in creation_answers] + hooks.seen
    logged = "\n".join(lines)
    for secret in secrets:
        assert not any(secret in s for s in reads), secret
        assert secret not in logged, secret
    assert '"path":"/workflows/hooks/{key}"' in logged  # a hook's request line names the route, not the key


def shown_once_then_only_metadata(call: Caller, hooks: Hooks) -> tuple[dict[str, Any], dict[str, Any]]:
    editor, viewer = token("editor"), token("viewer")
    assert call("POST", "/definitions", QUICK, editor)[0] == 201
    assert call("POST", "/definitions/hooked/triggers", {}, token("executor"))[0] == 403
    assert call("POST", "/definitions/hooked/triggers", {}, token("editor", "globex"))[0] == 404
    status, created = call("POST", "/definitions/hooked/triggers", {}, editor)
    assert status == 201
    status, rotated = call("POST", f"/definitions/hooked/triggers/{created['id']}/rotate", {}, editor)
    assert status == 200
    # The hook needs no token: the key and the signature are the credential.
    status, started, _ = hooks.signed({**created, "secret": rotated["secret"]}, {"n": 1})
    assert status == 201
    status, instance = call("GET", f"/instances/{started['instance_id']}", None, viewer)
    assert status == 200 and instance["tenant_id"] == "acme"  # the trigger's tenant
    deadline = time.monotonic() + 30
    while call("GET", f"/instances/{started['instance_id']}", None, viewer)[1]["status"] != "completed":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    for path in ("/definitions/hooked/triggers", f"/definitions/hooked/triggers/{created['id']}",
                 f"/instances/{started['instance_id']}", f"/instances/{started['instance_id']}/events",
                 f"/instances/{started['instance_id']}/result", f"/instances/{started['instance_id']}/history",
                 "/definitions/hooked", "/instances"):
        for who in (viewer, editor, token("admin")):
            assert call("GET", path, None, who)[0] == 200, path
    assert call("GET", "/definitions/hooked/triggers", None, token("viewer", "globex"))[0] == 404
    return created, rotated


def test_each_tenants_triggers_are_its_own_and_start_its_own_definition(api, hooks):
    """Names are per tenant: two tenants' `hooked` have their own triggers, listed apart, and a delivery
    starts the definition of the tenant whose trigger it is."""
    created = {}
    for tenant in ("t-one", "t-two"):
        body = {**QUICK, "steps": [{**QUICK["steps"][0], "config": {"values": {"tenant": tenant}}}]}
        assert api.put(f"/definitions/hooked?tenant_id={tenant}", body)[0] == 201
        status, created[tenant] = api.post(f"/definitions/hooked/triggers?tenant_id={tenant}", {})
        assert status == 201, created[tenant]
    for tenant, other in (("t-one", "t-two"), ("t-two", "t-one")):
        status, listed = api.get(f"/definitions/hooked/triggers?tenant_id={tenant}")
        assert status == 200 and [t["id"] for t in listed] == [created[tenant]["id"]], listed
        assert listed[0]["definition_name"] == "hooked"
        assert api.get(f"/definitions/hooked/triggers/{created[other]['id']}?tenant_id={tenant}")[0] == 404
    assert api.get("/definitions/hooked/triggers")[0] == 404  # no tenant: nobody's `hooked` is visible
    status, started, _ = hooks.signed(created["t-two"], {"n": 1})
    assert status == 201, started
    deadline = time.monotonic() + 30
    while (view := api.get(f"/instances/{started['instance_id']}")[1])["status"] != "completed":
        assert time.monotonic() < deadline, view
        time.sleep(0.1)
    assert view["tenant_id"] == "t-two" and view["output"]["tenant"] == "t-two", view
