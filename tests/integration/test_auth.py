"""Authentication, roles and tenant isolation through the API (chalice.test.Client, auth turned on here).

The authorization matrix: every endpoint x every role (none, viewer, executor, editor, admin) x own and
foreign tenant, each with the exact status it must get.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import jwt
import pytest

from chalicelib.api.auth import GUARDS, PUBLIC_ROUTES, guard_for
from chalicelib.auth import RANK, Authenticator, mint
from chalicelib.config import Settings, SettingsError
from tests.auth_on import authentication

SECRET = "test-secret-0123456789-0123456789-abcdef"
OWN, FOREIGN = "acme", "globex"
ROLES = (None, "viewer", "executor", "editor", "admin")

FLOW = {"name": "acme_flow", "version": "1.0.0",
        "input_schema": {"type": "object", "required": ["n"], "properties": {"n": {"type": "number"}}},
        "steps": [{"id": "one", "type": "machine", "task_type": "data.set", "config": {"values": {"done": True}}}]}
GATE = {"name": "acme_gate", "version": "1.0.0",
        "steps": [{"id": "review", "type": "human", "title": "Review", "assignee": "alice",
                   "assignee_group": "reviewers",
                   "form_schema": {"type": "object", "required": ["note"], "properties": {"note": {"type": "string"}}}}]}


def token(role: str | None, tenant: str = OWN, user: str | None = None, groups: tuple[str, ...] = ()) -> str:
    return mint(SECRET, user or f"user-{role}", roles=[role] if role else [], groups=groups, tenant=tenant)


class Caller:
    def __init__(self, api: Any):
        self.api = api
        self.seen: list[str] = []  # every response body, for the leak test

    def __call__(self, method: str, path: str, body: Any = None, bearer: str | None = None,
                 raw_path: bool = False) -> tuple[int, Any]:
        headers = {"content-type": "application/json"}
        if bearer:
            headers["authorization"] = f"Bearer {bearer}"
        url = path if raw_path else self.api.prefix + path
        call = getattr(self.api.client.http, method.lower())
        kwargs: dict[str, Any] = {"headers": headers}
        if body is not None:
            kwargs["body"] = json.dumps(body)
        response = call(url, **kwargs)
        text = response.body.decode() if isinstance(response.body, bytes) else str(response.body)
        self.seen.append(text)
        try:
            return response.status_code, json.loads(text)
        except ValueError:
            return response.status_code, text


@pytest.fixture
def secured(api):
    with authentication(SECRET):
        yield Caller(api)


def wait_status(call, instance_id: str, until: tuple[str, ...], bearer: str) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while True:
        status, body = call("GET", f"/instances/{instance_id}", bearer=bearer)
        assert status == 200, body
        if body["status"] in until or time.monotonic() > deadline:
            return body
        time.sleep(0.1)


def wait_task(call, instance_id: str, bearer: str) -> dict[str, Any]:
    """The instance's one task: it is stored a moment after the instance shows as waiting."""
    deadline = time.monotonic() + 30
    while True:
        status, page = call("GET", f"/tasks?instance_id={instance_id}", bearer=bearer)
        assert status == 200, page
        if page["items"] or time.monotonic() > deadline:
            assert len(page["items"]) == 1, page
            return page["items"][0]
        time.sleep(0.1)


def setup_tenant(call) -> dict[str, str]:
    editor, executor = token("editor"), token("executor")
    for definition in (FLOW, GATE):
        status, body = call("POST", "/definitions", definition, editor)
        assert status == 201, body
        assert body["tenant_id"] == OWN and body["created_by"] == "user-editor"
    status, done = call("POST", "/instances", {"definition_name": "acme_flow", "input_data": {"n": 1}}, executor)
    assert status == 201, done
    assert done["tenant_id"] == OWN and done["created_by"] == "user-executor"
    wait_status(call, done["id"], ("completed", "failed"), executor)
    status, gate = call("POST", "/instances", {"definition_name": "acme_gate"}, executor)
    assert status == 201, gate
    wait_status(call, gate["id"], ("waiting", "failed"), executor)
    status, body = call("POST", "/credentials", {"name": "acme_key", "value": "acme-key-value-0123"}, editor)
    assert status == 201, body
    status, schedule = call("POST", "/definitions/acme_flow/schedules", {"expression": "cron(0 * * * ? *)"}, editor)
    assert status == 201, schedule
    return {"done": done["id"], "gate": gate["id"], "task": wait_task(call, gate["id"], executor)["id"],
            "schedule": schedule["id"], "no_schedule": "no-such-schedule"}


DEPLOYED = {"STEPFLOW_JWT_ISSUER": "https://issuer.example", "STEPFLOW_JWT_AUDIENCE": "stepflow",
            "STEPFLOW_JWKS_URL": "https://issuer.example/jwks.json", "STEPFLOW_SERVER_SECRET": "s" * 32}


def test_settings_refuse_auth_off_on_deployed_stages():
    for stage in ("dev", "prod"):
        with pytest.raises(SettingsError):
            Settings.from_env({"STEPFLOW_STAGE": stage, "STEPFLOW_AUTH": "off", **DEPLOYED})
        deployed = Settings.from_env({"STEPFLOW_STAGE": stage, **DEPLOYED})
        assert deployed.auth_mode == "jwks"  # on unless said otherwise
        assert deployed.egress_allow_private is False
    local = Settings.from_env({"STEPFLOW_STAGE": "local"})
    assert local.auth_mode == "off" and local.egress_allow_private is True
    assert Settings.from_env({"STEPFLOW_STAGE": "local", "STEPFLOW_AUTH": "hs256"}).auth_enabled
    with pytest.raises(SettingsError):
        Settings.from_env({"STEPFLOW_AUTH": "maybe"})


STRONG = "k" * 32


@pytest.mark.parametrize(("env", "named"), [
    ({"STEPFLOW_JWT_ISSUER": ""}, "STEPFLOW_JWT_ISSUER"),
    ({"STEPFLOW_JWT_AUDIENCE": ""}, "STEPFLOW_JWT_AUDIENCE"),
    ({"STEPFLOW_JWKS_URL": ""}, "STEPFLOW_JWKS_URL"),
    ({"STEPFLOW_SERVER_SECRET": ""}, "STEPFLOW_SERVER_SECRET"),
    ({"STEPFLOW_SERVER_SECRET": "s" * 31}, "STEPFLOW_SERVER_SECRET"),
    ({"STEPFLOW_AUTH": "hs256", "STEPFLOW_JWT_SECRET": "x"}, "STEPFLOW_JWT_SECRET"),
    ({"STEPFLOW_AUTH": "hs256", "STEPFLOW_JWT_SECRET": "x" * 31}, "STEPFLOW_JWT_SECRET"),
    ({"STEPFLOW_AUTH": "hs256"}, "STEPFLOW_JWT_SECRET"),
], ids=["no-issuer", "no-audience", "jwks-without-url", "no-server-secret", "short-server-secret",
        "one-byte-hs256-secret", "31-byte-hs256-secret", "hs256-without-secret"])
def test_a_deployed_stage_refuses_to_start_without_each_piece(env, named):
    with pytest.raises(SettingsError, match=named) as refused:
        Settings.from_env({"STEPFLOW_STAGE": "prod", **DEPLOYED, **env})
    assert "prod" in str(refused.value) and "refuses to start" in str(refused.value)
    # The local stage needs none of it.
    Settings.from_env({"STEPFLOW_STAGE": "local", **env})


def test_a_deployed_stage_starts_with_a_complete_configuration():
    jwks = Settings.from_env({"STEPFLOW_STAGE": "dev", **DEPLOYED})
    assert jwks.server_secret == "s" * 32 and jwks.cursor_key != jwks.callback_secret
    # HS256 with a strong secret: the server secret may be derived from it.
    hs = Settings.from_env({"STEPFLOW_STAGE": "dev", "STEPFLOW_AUTH": "hs256", "STEPFLOW_JWT_SECRET": STRONG,
                            "STEPFLOW_JWT_ISSUER": "iss", "STEPFLOW_JWT_AUDIENCE": "aud"})
    assert hs.server_secret not in ("", STRONG) and len(hs.cursor_key) == 32


def test_a_deployed_authenticator_refuses_each_missing_piece():
    from chalicelib.auth import AuthConfigError

    Authenticator("hs256", STRONG, issuer="iss", audience="aud", deployed=True)
    Authenticator("jwks", jwks_url="https://issuer.example/jwks.json", issuer="iss", audience="aud", deployed=True)
    Authenticator("hs256", "x")  # the local stage may
    for kwargs, named in [({"issuer": None}, "STEPFLOW_JWT_ISSUER"), ({"audience": None}, "STEPFLOW_JWT_AUDIENCE"),
                          ({"secret": "x"}, "STEPFLOW_JWT_SECRET"), ({"mode": "off"}, "STEPFLOW_AUTH")]:
        given = {"mode": "hs256", "secret": STRONG, "issuer": "iss", "audience": "aud", **kwargs}
        with pytest.raises(AuthConfigError, match=named):
            Authenticator(**given, deployed=True)
    with pytest.raises(AuthConfigError, match="STEPFLOW_JWKS_URL"):
        Authenticator("jwks", issuer="iss", audience="aud", deployed=True)


def test_the_app_does_not_start_on_a_deployed_stage_without_issuer_and_audience(tmp_path):
    """Cold start: importing app.py (what Lambda does first) fails with the configuration error."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    env = {k: v for k, v in os.environ.items() if not k.startswith("STEPFLOW_")}
    env.update(STEPFLOW_STAGE="dev", STEPFLOW_AUTH="hs256", STEPFLOW_JWT_SECRET="x", AWS_DEFAULT_REGION="us-east-1")
    done = subprocess.run([sys.executable, "-c", "import app"], cwd=root, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode != 0
    assert "SettingsError" in done.stderr and "STEPFLOW_JWT_ISSUER" in done.stderr
    assert "STEPFLOW_JWT_AUDIENCE" in done.stderr and "at least 32 bytes" in done.stderr
    env.update(STEPFLOW_JWT_SECRET=STRONG, STEPFLOW_JWT_ISSUER="iss", STEPFLOW_JWT_AUDIENCE="aud")
    started = subprocess.run([sys.executable, "-c", "import app; print(app.services.auth.mode)"], cwd=root, env=env,
                             capture_output=True, text=True, timeout=120)
    assert started.returncode == 0 and started.stdout.strip() == "hs256", started.stderr[-2000:]


def test_issuer_and_audience_are_checked_when_configured(api):
    import app as app_module

    app_module.services.auth = Authenticator("hs256", SECRET, issuer="https://issuer.example", audience="stepflow")
    try:
        call = Caller(api)
        right = mint(SECRET, "u", roles=["viewer"], tenant=OWN, issuer="https://issuer.example", audience="stepflow")
        assert call("GET", "/definitions", bearer=right)[0] == 200
        for claims in ({}, {"issuer": "https://issuer.example"}, {"audience": "stepflow"},
                       {"issuer": "https://other.example", "audience": "stepflow"},
                       {"issuer": "https://issuer.example", "audience": "another-service"}):
            status, body = call("GET", "/definitions", bearer=mint(SECRET, "u", roles=["viewer"], tenant=OWN, **claims))
            assert status == 401, (claims, body)
    finally:
        del app_module.services.auth


def test_every_route_has_a_guard(api):
    import app as app_module

    prefix = app_module.services.settings.api_prefix
    for path, methods in app_module.app.routes.items():
        for method in methods:
            inner = path[len(prefix):] if path.startswith(prefix + "/") else path
            assert (method, inner) in GUARDS or (method, path) in PUBLIC_ROUTES, (method, path)
    assert guard_for("GET", "/workflows/not-a-route", prefix).role == "admin"  # fails closed


def test_tokens_are_verified(secured):
    call = secured
    assert call("GET", "/definitions")[0] == 401
    assert call("GET", "/definitions", bearer="not-a-jwt")[0] == 401
    wrong = mint("another-secret-another-secret-12345", "mallory", roles=["admin"], tenant=OWN)
    assert call("GET", "/definitions", bearer=wrong)[0] == 401
    expired = mint(SECRET, "old", roles=["admin"], tenant=OWN, ttl_seconds=-3600)
    status, body = call("GET", "/definitions", bearer=expired)
    assert status == 401 and "expired" in body["detail"]
    unsigned = jwt.encode({"sub": "x", "roles": ["admin"], "tenant_id": OWN, "exp": time.time() + 60}, None,
                          algorithm="none")
    assert call("GET", "/definitions", bearer=unsigned)[0] == 401
    no_tenant = mint(SECRET, "x", roles=["admin"])
    assert call("GET", "/definitions", bearer=no_tenant)[0] == 403
    assert call("GET", "/definitions", bearer=token("viewer"))[0] == 200
    cognito = jwt.encode({"sub": "c", "cognito:groups": ["editor"], "custom:tenant_id": OWN,
                          "exp": time.time() + 60}, SECRET, algorithm="HS256")
    assert call("POST", "/definitions/validate", FLOW, cognito)[0] == 200
    assert call("GET", "/health", raw_path=True)[0] == 200
    assert call("GET", "/openapi.json", raw_path=True)[0] == 200


def test_authorization_matrix(secured, capsys):
    call = secured
    ids = setup_tenant(call)
    done, gate, task = ids["done"], ids["gate"], ids["task"]
    assert call("PUT", "/kv/acme_ns/k1", {"value": 1}, token("executor"))[0] == 201
    # (method, path, body, status for an allowed caller of the own tenant, tenant-scoped, works-a-task)
    cases: list[tuple[str, str, Any, int, bool, bool]] = [
        ("GET", "/definitions", None, 200, False, False),
        ("POST", "/definitions/validate", FLOW, 200, False, False),
        ("GET", "/definitions/acme_flow", None, 200, True, False),
        ("GET", "/definitions/acme_flow/asl", None, 200, True, False),
        ("GET", "/definitions/acme_flow/graph", None, 200, True, False),
        ("DELETE", "/definitions/acme_gate?purge=true", None, 409, True, False),  # its gate instance is open
        ("GET", "/definitions/acme_flow/revisions", None, 200, True, False),
        ("GET", "/definitions/acme_flow/revisions/1", None, 200, True, False),
        ("GET", "/definitions/acme_flow/revisions/1/diff?to=1", None, 200, True, False),
        ("POST", "/definitions/acme_flow/revisions/1/restore", None, 200, True, False),  # it is the latest
        ("GET", "/definitions/acme_flow/export", None, 200, True, False),
        ("GET", "/definitions/acme_flow/aliases", None, 200, True, False),
        ("GET", "/definitions/acme_flow/aliases/live", None, 200, True, False),
        ("PUT", "/definitions/acme_flow/aliases/live", {"routes": [{"revision": 1}]}, 200, True, False),
        ("POST", "/definitions/acme_flow/schedules", {"expression": "rate(1 day)"}, 201, True, False),
        ("GET", "/definitions/acme_flow/schedules", None, 200, True, False),
        ("GET", f"/definitions/acme_flow/schedules/{ids['schedule']}", None, 200, True, False),
        ("PUT", f"/definitions/acme_flow/schedules/{ids['schedule']}", {"description": "hourly"}, 200, True, False),
        ("POST", f"/definitions/acme_flow/schedules/{ids['schedule']}/pause", {}, 200, True, False),
        ("POST", f"/definitions/acme_flow/schedules/{ids['schedule']}/resume", {}, 200, True, False),
        # A range with no fire time in it: starts nothing.
        ("POST", f"/definitions/acme_flow/schedules/{ids['schedule']}/backfill",
         {"from": "2020-01-01T00:10:00Z", "to": "2020-01-01T00:20:00Z"}, 200, True, False),
        ("DELETE", f"/definitions/acme_flow/schedules/{ids['no_schedule']}", None, 404, True, False),
        ("POST", "/definitions/acme_flow/run", {"input_data": {}}, 422, True, False),
        ("POST", "/instances", {"definition_name": "acme_flow", "input_data": {}}, 422, True, False),
        ("GET", "/instances", None, 200, False, False),
        ("GET", f"/instances/{done}", None, 200, True, False),
        ("DELETE", f"/instances/{gate}", None, 409, True, False),
        ("DELETE", f"/instances/{gate}?purge=true", None, 409, True, False),
        ("POST", f"/instances/{done}/start", None, 409, True, False),
        ("GET", f"/instances/{done}/result", None, 200, True, False),
        ("GET", f"/instances/{done}/history", None, 200, True, False),
        ("POST", f"/instances/{done}/cancel", None, 409, True, False),
        ("POST", f"/instances/{done}/retry", None, 409, True, False),
        ("POST", f"/instances/{done}/resume", None, 409, True, False),
        ("POST", f"/instances/{gate}/continue", None, 409, True, False),  # not completed
        ("GET", f"/instances/{done}/graph", None, 200, True, False),
        ("GET", f"/instances/{done}/events", None, 200, True, False),
        ("POST", f"/instances/{done}/events", {"step": "one", "data": {}}, 409, True, False),
        ("GET", "/tasks", None, 200, False, False),
        ("GET", "/tasks/metrics", None, 200, False, False),
        ("GET", f"/tasks/{task}", None, 200, True, False),
        ("GET", f"/tasks/{task}/callback", None, 409, True, True),  # a human task has no callback
        ("POST", f"/tasks/{task}/complete", {"output_data": {}}, 422, True, True),
        ("POST", f"/tasks/{task}/reassign", {"new_assignee": "alice"}, 200, True, True),
        ("POST", f"/tasks/{task}/claim", {}, 409, True, True),
        ("POST", f"/tasks/{task}/unclaim", {}, 409, True, False),
        ("GET", f"/approvals/{task}", None, 409, True, False),
        ("POST", f"/approvals/{task}/approve", {}, 409, True, True),
        ("POST", f"/approvals/{task}/reject", {}, 409, True, True),
        ("GET", "/plugins", None, 200, False, False),
        ("GET", "/plugins/data.set", None, 200, False, False),
        ("GET", "/plugins/categories", None, 200, False, False),
        ("POST", "/callbacks/no-such-key", {}, 404, False, False),
        # no receive step of the caller's tenant waits, and keep=false: refused, nothing kept
        ("POST", "/events", {"type": "acme.ping", "correlation_key": "x", "keep": False}, 409, False, False),
        ("POST", f"/tasks/{task}/links", {"decider": "bob"}, 409, True, False),  # not an approval
        ("GET", "/decide/no-such-link", None, 403, False, False),  # a link is its own credential
        ("POST", "/decide/no-such-link", {}, 403, False, False),
        # someone else's out-of-office: an admin's to set (each tenant keeps its own)
        ("GET", "/users/sam/out-of-office", None, 404, False, True),
        ("PUT", "/users/sam/out-of-office", {"delegate": "kim"}, 200, False, True),
        ("DELETE", "/users/sam/out-of-office", None, 200, False, True),
        ("POST", "/definitions/acme_flow/triggers", {}, 201, True, False),
        ("GET", "/definitions/acme_flow/triggers", None, 200, True, False),
        ("GET", "/definitions/acme_flow/triggers/trg-none", None, 404, True, False),
        ("POST", "/definitions/acme_flow/triggers/trg-none/disable", None, 404, True, False),
        ("POST", "/definitions/acme_flow/triggers/trg-none/enable", None, 404, True, False),
        ("POST", "/definitions/acme_flow/triggers/trg-none/rotate", None, 404, True, False),
        ("DELETE", "/definitions/acme_flow/triggers/trg-none", None, 404, True, False),
        ("POST", "/hooks/no-such-key", {}, 404, False, False),
        ("POST", "/credentials", {"name": "acme_key", "value": "short"}, 422, False, False),
        ("GET", "/credentials", None, 200, False, False),
        ("GET", "/credentials/acme_key", None, 200, True, False),
        ("PUT", "/credentials/acme_key", {"description": "the key"}, 200, True, False),
        ("DELETE", "/credentials/no_such_key", None, 404, False, False),
        # the key-value store: each tenant has its own namespaces (another's entry is not found)
        ("GET", "/kv/acme_ns", None, 200, False, False),
        ("GET", "/kv/acme_ns/k1", None, 200, True, False),
        ("PUT", "/kv/acme_ns/k1", {"value": 2, "ttl_seconds": 0}, 422, False, False),
        ("DELETE", "/kv/acme_ns/missing", None, 404, False, False),
        # the audit log: admins read their tenant's
        ("GET", "/audit", None, 200, False, False),
        ("GET", "/audit/export", None, 200, False, False),
        ("GET", "/metrics", None, 200, False, False),
        # Last: another tenant registering the name makes its own definition of it (NAME_CLAIMS), which
        # the rows above must not find.
        ("POST", "/definitions", FLOW, 200, True, False),  # same revision again: 200
        ("PUT", "/definitions/acme_flow", FLOW, 200, True, False),  # unchanged: the same revision
        ("POST", "/definitions/import", {"format": "stepflow.definition/v1", "name": "acme_flow", "definition": FLOW},
         200, True, False),
    ]
    public = [("GET", "/health"), ("GET", "/openapi.json"), ("GET", "/docs"), ("GET", "/ui")]
    import app as app_module

    prefix = app_module.services.settings.api_prefix
    covered = {(m, p.split("?")[0]) for m, p, *_ in cases}
    templates = {(m, path) for (m, path) in GUARDS}
    assert len(templates) == len({(m, _template(p, ids)) for m, p in covered}), "a guarded route has no case"

    failures, count, foreign_owns = [], 0, False
    for method, path, body, allowed, scoped, works_task in cases:
        guard = guard_for(method, prefix + _template(path.split("?")[0], ids), prefix)
        need = "admin" if "purge=true" in path else guard.role
        for role in ROLES:
            for tenant in (OWN, FOREIGN):
                if guard.role == "key":
                    want = allowed
                elif role is None:
                    want = 401
                elif RANK[role] < RANK[need]:
                    want = 403
                elif scoped and tenant == FOREIGN:
                    # Names are per tenant: registering a name another tenant has makes one's own (created
                    # by the first call, the same revision after); anything else of the other's is not found.
                    claim = (method, path) in NAME_CLAIMS
                    want = (200 if foreign_owns else 201) if claim else 404
                elif works_task and role != "admin":
                    want = 403  # not the assignee, not in the group
                else:
                    want = allowed
                got, answer = call(method, path, body, token(role, tenant) if role else None)
                foreign_owns = foreign_owns or (tenant == FOREIGN and got == 201)
                count += 1
                if got != want:
                    failures.append(f"{method} {path} role={role} tenant={tenant}: {got} != {want} {answer}")
    for method, path in public:
        for role in ROLES:
            got, _ = call(method, path, None, token(role) if role else None, raw_path=True)
            count += 1
            if got != 200:
                failures.append(f"{method} {path} role={role}: {got}")
    with capsys.disabled():
        print(f"\nauthorization matrix: {count} cases")
    assert not failures, "\n".join(failures)
    # Foreign tenants see nothing in lists.
    for path in ("/definitions", "/instances", "/tasks"):
        status, body = call("GET", path, bearer=token("admin", FOREIGN))
        items = body if isinstance(body, list) else body["items"]
        assert status == 200 and [i for i in items if i.get("tenant_id") == OWN] == [], (path, body)
    # Each tenant reads its own acme_flow; the other's registration changed nothing of it.
    for tenant in (OWN, FOREIGN):
        status, own = call("GET", "/definitions/acme_flow", bearer=token("viewer", tenant))
        assert status == 200 and own["tenant_id"] == tenant and own["revision_number"] == 1, own
    status, metrics = call("GET", "/tasks/metrics", bearer=token("admin", FOREIGN))
    assert metrics["pending_total"] == 0
    assert call("GET", "/tasks/metrics", bearer=token("viewer"))[1]["pending_total"] == 1


NAME_CLAIMS = {("POST", "/definitions"), ("PUT", "/definitions/acme_flow"), ("POST", "/definitions/import")}


def _template(path: str, ids: dict[str, str]) -> str:
    for name, value in ids.items():
        param = {"task": "{task_id}", "schedule": "{schedule_id}", "no_schedule": "{schedule_id}"}.get(name, "{instance_id}")
        path = path.replace(value, param)
    return (path.replace("/acme_flow", "/{name}").replace("/acme_gate", "/{name}")
            .replace("/revisions/1", "/revisions/{rev}").replace("/aliases/live", "/aliases/{alias}")
            .replace("/data.set", "/{plugin_id}")
            .replace("/no-such-key", "/{key}").replace("/no-such-link", "/{token}")
            .replace("/users/sam", "/users/{user}").replace("/trg-none", "/{trigger_id}")
            .replace("/credentials/acme_key", "/credentials/{name}").replace("/credentials/no_such_key",
                                                                            "/credentials/{name}")
            .replace("/acme_ns", "/{namespace}").replace("/k1", "/{key}").replace("/missing", "/{key}"))


def test_actors_come_from_the_token_and_mass_assignment_is_refused(secured, caplog, capsys):
    call = secured
    caplog.set_level(logging.INFO)  # our loggers at INFO (botocore DEBUG dumps whole AWS answers by design)
    ids = setup_tenant(call)
    executor = token("executor")
    status, body = call("POST", "/instances", {"definition_name": "acme_flow", "input_data": {"n": 1},
                                               "tenant_id": FOREIGN}, executor)
    assert status == 422 and body["detail"]["issues"][0]["location"] == "tenant_id"
    status, body = call("POST", "/instances", {"definition_name": "acme_flow", "input_data": {"n": 1},
                                               "user_id": "someone-else"}, executor)
    assert status == 422 and body["detail"]["issues"][0]["location"] == "user_id"
    # The foreign tenant cannot start the own tenant's workflow either.
    assert call("POST", "/instances", {"definition_name": "acme_flow", "input_data": {"n": 1}},
                token("executor", FOREIGN))[0] == 404
    alice = token("executor", user="alice")
    status, body = call("POST", f"/tasks/{ids['task']}/complete", {"output_data": {"note": "ok"},
                                                                   "completed_by": "bob"}, alice)
    assert status == 422 and body["detail"]["issues"][0]["location"] == "completed_by"
    # A member of the task's group may work it; the acting user is the token's.
    member = token("executor", user="carol", groups=("reviewers",))
    status, body = call("POST", f"/tasks/{ids['task']}/complete", {"output_data": {"note": "ok"}}, member)
    assert status == 200, body
    assert body["completed_by"] == "carol"
    wait_status(call, ids["gate"], ("completed", "failed"), executor)

    # No task token, secret or token signature in any response or log line.
    import app as app_module

    stored = app_module.services.task_store.get(ids["task"])
    secrets_ = [stored["token"], SECRET, alice.rsplit(".", 1)[1], member.rsplit(".", 1)[1], executor.rsplit(".", 1)[1]]
    call("GET", f"/instances/{ids['gate']}/events", bearer=executor)
    call("GET", f"/tasks/{ids['task']}", bearer=executor)
    logs = caplog.text + capsys.readouterr().out  # std logging and Powertools' JSON lines on stdout
    for secret in secrets_:
        assert not any(secret in seen for seen in call.seen), "a secret is in a response"
        assert secret not in logs, "a secret is in the log"


def test_a_schedule_on_a_shared_workflow_is_its_creator_tenant_s_alone(api):
    import app as app_module

    shared = {"name": "shared_tick", "version": "1", "steps": [
        {"id": "one", "type": "machine", "task_type": "data.set", "config": {"values": {"done": True}}}]}
    assert api.post("/definitions", shared)[0] == 201  # authentication off: a shared (tenant-less) workflow
    app_module.services.auth = Authenticator("hs256", SECRET)
    try:
        call = Caller(api)
        assert call("POST", "/definitions/shared_tick/schedules", {"expression": "rate(1 hour)"},
                    token("editor"))[0] == 403  # a shared workflow is changed by an admin only
        status, made = call("POST", "/definitions/shared_tick/schedules", {"expression": "rate(1 hour)"}, token("admin"))
        assert status == 201 and made["tenant_id"] == OWN
        path = f"/definitions/shared_tick/schedules/{made['id']}"
        assert call("GET", "/definitions/shared_tick/schedules", None, token("viewer"))[1] == [made]
        assert call("GET", "/definitions/shared_tick/schedules", None, token("viewer", FOREIGN)) == (200, [])
        assert call("GET", path, None, token("viewer", FOREIGN))[0] == 404
        for action in ("pause", "resume", "backfill"):
            assert call("POST", f"{path}/{action}", {}, token("admin", FOREIGN))[0] == 404
        assert call("DELETE", path, None, token("admin", FOREIGN))[0] == 404
        fired = app_module.schedule_fired({"definition": "shared_tick", "schedule_id": made["id"],
                                           "scheduled_at": "2026-01-05T10:00:00Z"}, None)
        run = call("GET", f"/instances/{fired['instance_id']}", None, token("viewer"))[1]
        assert run["tenant_id"] == OWN and run["created_by"] == f"schedule:{made['id']}"
        assert call("GET", f"/instances/{fired['instance_id']}", None, token("viewer", FOREIGN))[0] == 404
    finally:
        del app_module.services.auth


def test_an_event_reaches_only_its_own_tenants_receivers(secured):
    call = secured
    definition = {"name": "acme_receive", "steps": [
        {"id": "paid", "type": "receive", "event_type": "order.paid", "correlation_key": "{{ order_id }}"}]}
    assert call("POST", "/definitions", definition, token("editor"))[0] == 201
    executor = token("executor")
    status, started = call("POST", "/instances", {"definition_name": "acme_receive",
                                                  "input_data": {"order_id": "T-9"}}, executor)
    assert status == 201, started
    deadline = time.monotonic() + 20
    while not [t for t in call("GET", f"/tasks?instance_id={started['id']}", bearer=executor)[1]["items"]
               if t["status"] == "pending"]:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    event = {"type": "order.paid", "correlation_key": "T-9", "data": {"n": 1}, "keep": False}
    # Another tenant's executor: the same answer as for a key nobody waits on; nothing kept, nothing taken.
    status, foreign = call("POST", "/events", event, token("executor", FOREIGN))
    assert status == 409 and "no receive step waits" in foreign["detail"], foreign
    # A viewer may not send events; naming another tenant in the body is refused.
    assert call("POST", "/events", event, token("viewer"))[0] == 403
    assert call("POST", "/events", {**event, "tenant_id": FOREIGN}, executor)[0] == 422
    status, own = call("POST", "/events", event, executor)
    assert status == 202 and own["status"] == "delivered" and own["instance_id"] == started["id"], own
    assert wait_status(call, started["id"], ("completed", "failed"), executor)["context_data"]["paid"] == {"n": 1}
