"""Credentials through the API: stored in the emulated Secrets Manager, used by http.request at run time,
and found nowhere else (no response, event, log line, output or error of the run carries the value)."""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest

from chalicelib.auth import mint
from tests.auth_on import authentication
from tests.serving import serving

SECRET = "tok-7Hq2-Zx91-credential-value"
ROTATED = "tok-rotated-Qw55-second-value"
BASIC = "svc-user:pw-Lk83-basic-secret"
FORMS = (SECRET, base64.b64encode(SECRET.encode()).decode(), BASIC, base64.b64encode(BASIC.encode()).decode())


class Target(BaseHTTPRequestHandler):
    """Answers 200 when the request carries the expected credential, 401 otherwise; either way it echoes
    the request's headers in its body, as a careless API would (the run must redact them)."""

    expected: dict[str, str] = {}
    seen: list[dict[str, str]] = []

    def do_GET(self) -> None:  # noqa: N802
        headers = dict(self.headers)
        self.seen.append({"path": self.path, **headers})
        want = self.expected.get(self.path.split("?")[0])
        header, _, value = (want or "").partition(": ")
        ok = want is not None and headers.get(header) == value
        body = json.dumps({"ok": ok, "echo": headers}).encode()
        self.send_response(200 if ok else 401)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def target() -> Iterator[str]:
    Target.expected, Target.seen = {}, []
    with serving(Target) as url:
        yield url


def flow(url: str, name: str = "authed_call", credential: str = "api_token") -> dict[str, Any]:
    return {"name": name, "version": "1.0.0", "steps": [
        {"id": "bearer", "type": "machine", "task_type": "http.request",
         "config": {"url": f"{url}/bearer", "auth": {"type": "bearer", "credential": credential}}},
        {"id": "keyed", "type": "machine", "task_type": "http.request", "depends_on": ["bearer"],
         "config": {"url": f"{url}/keyed", "headers": {"X-Api-Key": "{{ secrets." + credential + " }}"}}},
        {"id": "basic", "type": "machine", "task_type": "http.request", "depends_on": ["keyed"],
         "config": {"url": f"{url}/basic", "auth": {"type": "basic", "credential": "basic_login"}}},
        {"id": "note", "type": "machine", "task_type": "util.log", "depends_on": ["basic"],
         "config": {"message": "calling with {{ secrets." + credential + " }} now"}},
    ]}


def create(api: Any, name: str, value: str, description: str = "") -> dict[str, Any]:
    status, body = api.post("/credentials", {"name": name, "value": value, "description": description})
    assert status == 201, body
    return body


def every_response(api: Any, instance_id: str, name: str,
                   credentials: tuple[str, ...] = ("api_token", "basic_login")) -> list[str]:
    """The body of every read the API offers about the run (and its definition and credentials)."""
    paths = [f"/instances/{instance_id}", f"/instances/{instance_id}?include_outputs=true",
             *(f"/instances/{instance_id}?input_of={step}" for step in ("bearer", "keyed", "basic", "note")),
             f"/instances/{instance_id}/result", f"/instances/{instance_id}/history",
             f"/instances/{instance_id}/graph", f"/instances/{instance_id}/events?limit=1000&wait=0",
             f"/tasks?instance_id={instance_id}", "/instances", f"/definitions/{name}",
             f"/definitions/{name}/asl", "/credentials", *(f"/credentials/{c}" for c in credentials)]
    bodies = []
    for path in paths:
        response = api.client.http.get(api.prefix + path)
        assert response.status_code in (200, 202), (path, response.body)
        bodies.append(response.body.decode() if isinstance(response.body, bytes) else str(response.body))
    return bodies


def test_a_step_authenticates_with_a_credential_whose_value_appears_nowhere(api, target, caplog):
    caplog.set_level(logging.DEBUG)
    import app as app_module

    answers = [json.dumps(create(api, "api_token", SECRET, "the partner API")),
               json.dumps(create(api, "basic_login", BASIC))]
    Target.expected = {"/bearer": f"Authorization: Bearer {SECRET}", "/keyed": f"X-Api-Key: {SECRET}",
                       "/basic": f"Authorization: Basic {base64.b64encode(BASIC.encode()).decode()}"}
    status, registered = api.post("/definitions", flow(target))
    assert status == 201, registered
    status, started = api.post("/instances", {"definition_name": "authed_call", "input_data": {"n": 1}})
    assert status == 201, started
    done = api.wait(started["id"])
    assert done["status"] == "completed", done
    # The target saw the credential, in each form.
    assert [seen["path"] for seen in Target.seen] == ["/bearer", "/keyed", "/basic"]
    # Its echo of the headers reached the step output redacted, not dropped.
    outputs = api.get(f"/instances/{started['id']}?include_outputs=true")[1]
    text = json.dumps(outputs)
    assert '"Authorization": "Bearer ***"' in text and '"X-Api-Key": "***"' in text, text
    assert '"Authorization": "Basic ***"' in text

    answers += every_response(api, started["id"], "authed_call")
    stored = app_module.services.event_store.everything(started["id"])
    assert {"step.succeeded"} <= {event.get("type") for event in stored}, stored
    log = json.dumps(stored, default=str)
    lines = [record.getMessage() for record in caplog.records]
    lines += [logging.Formatter().formatException(r.exc_info) for r in caplog.records if r.exc_info]
    assert any("calling with *** now" in line for line in lines), "the util.log line, redacted"
    for form in FORMS:
        for where, texts in (("responses", answers), ("event log", [log]), ("log lines", lines)):
            assert not [t for t in texts if form in t], f"a credential value in the {where}"


def test_an_error_that_echoes_the_request_is_redacted(api, target, caplog):
    caplog.set_level(logging.DEBUG)
    create(api, "api_token", SECRET)
    Target.expected = {"/bearer": "Authorization: Bearer something-else"}  # refuses: answers 401 with the echo
    definition = {"name": "refused_call", "steps": [
        {"id": "bearer", "type": "machine", "task_type": "http.request",
         "config": {"url": f"{target}/bearer", "auth": {"type": "bearer", "credential": "api_token"}}}]}
    assert api.post("/definitions", definition)[0] == 201
    _, started = api.post("/instances", {"definition_name": "refused_call"})
    done = api.wait(started["id"])
    assert done["status"] == "failed" and done["error"]["error"] == "HttpStatusError", done
    assert "Bearer ***" in done["error"]["message"], done["error"]  # the echoed header, redacted
    texts = every_response(api, started["id"], "refused_call", ("api_token",))
    texts += [record.getMessage() for record in caplog.records]
    assert not [t for t in texts if SECRET in t]


def test_rotation_takes_effect_on_the_next_run_and_deleting_fails_later_runs_by_name(api, target):
    create(api, "api_token", SECRET)
    definition = {"name": "one_call", "steps": [
        {"id": "bearer", "type": "machine", "task_type": "http.request",
         "config": {"url": f"{target}/bearer", "auth": {"type": "bearer", "credential": "api_token"}}}]}
    assert api.post("/definitions", definition)[0] == 201
    status, rotated = api.put("/credentials/api_token", {"value": ROTATED, "description": "rotated"})
    assert status == 200 and rotated["description"] == "rotated" and "value" not in rotated, rotated
    Target.expected = {"/bearer": f"Authorization: Bearer {ROTATED}"}
    _, started = api.post("/instances", {"definition_name": "one_call"})
    assert api.wait(started["id"])["status"] == "completed"

    status, deleted = api.delete("/credentials/api_token")
    assert status == 200 and deleted == {"name": "api_token", "deleted": True}
    assert api.get("/credentials/api_token")[0] == 404
    _, again = api.post("/instances", {"definition_name": "one_call"})
    failed = api.wait(again["id"])
    assert failed["status"] == "failed", failed
    assert failed["error"]["error"] == "Stepflow.CredentialMissing"
    assert "'api_token' does not exist" in failed["error"]["message"]
    assert ROTATED not in json.dumps(failed) and len(Target.seen) == 1  # no call went out
    # The name is free again at once.
    create(api, "api_token", SECRET)


def test_registering_a_step_that_names_an_unknown_credential_is_refused_with_its_location(api, target):
    create(api, "api_token", SECRET)
    definition = flow(target, "unknowns", credential="no_such")
    status, body = api.post("/definitions", definition)
    assert status == 422, body
    issues = {(i["code"], i["location"]) for i in body["detail"]["issues"]}
    assert issues == {("unknown_credential", "steps[0].config.auth.credential"),
                      ("unknown_credential", "steps[1].config.headers.X-Api-Key"),
                      ("unknown_credential", "steps[2].config.auth.credential"),  # basic_login: not created
                      ("unknown_credential", "steps[3].config.message")}
    assert "step 'bearer': no credential named 'no_such'" in json.dumps(body)
    assert api.get("/definitions/unknowns")[0] == 404  # nothing stored
    status, dry = api.post("/definitions/validate", definition)  # the dry run says the same
    assert status == 200 and dry["valid"] is False and dry["asl"] is None, dry
    assert {(i["code"], i["location"]) for i in dry["issues"]} == issues
    create(api, "no_such", SECRET)
    create(api, "basic_login", BASIC)
    assert api.post("/definitions/validate", definition)[1]["valid"] is True
    bad = {"name": "malformed", "steps": [{"id": "a", "type": "machine", "task_type": "util.log",
                                           "config": {"message": "{{ secrets.a.b }}"}}]}
    status, body = api.post("/definitions", bad)
    assert status == 422 and body["detail"]["issues"][0]["code"] == "invalid_credential_reference", body
    # An instance field called `secrets` is not a way to a credential (nor to the data): still unknown.
    status, body = api.post("/instances", {"definition": {"name": "inline", "steps": [
        {"id": "a", "type": "machine", "task_type": "util.log", "config": {"message": "{{ secrets.other }}"}}]},
        "input_data": {"secrets": {"other": "x"}}})
    assert status == 422 and body["detail"]["issues"][0]["code"] == "unknown_credential", body


def test_credential_requests_are_checked_and_values_are_never_answered(api):
    assert api.post("/credentials", {"name": "1bad", "value": SECRET})[0] == 422
    assert api.post("/credentials", {"name": "a-b", "value": SECRET})[0] == 422
    assert api.post("/credentials", {"name": "x" * 65, "value": SECRET})[0] == 422
    status, body = api.post("/credentials", {"name": "short", "value": "abc"})
    assert status == 422 and body["detail"]["issues"][0]["location"] == "value", body
    assert api.post("/credentials", {"name": "big", "value": "v" * 8193})[0] == 422
    assert api.post("/credentials", {"name": "ctl", "value": "line-one\nline-two"})[0] == 422
    assert api.post("/credentials", {"name": "nov"})[0] == 422
    assert api.post("/credentials", {"name": "extra", "value": SECRET, "tenant_id": "x"})[0] == 422
    assert api.post("/credentials", {"name": "desc", "value": SECRET, "description": 5})[0] == 422
    assert api.post("/credentials", ["not", "an", "object"])[0] == 422
    assert api.post("/credentials", raw="{not json")[0] == 400
    created = create(api, "good_one", SECRET, "d")
    assert set(created) == {"name", "description", "created_at", "created_by", "rotated_at"}
    assert api.post("/credentials", {"name": "good_one", "value": SECRET})[0] == 409
    assert api.put("/credentials/good_one", {})[0] == 422
    assert api.put("/credentials/good_one", {"value": "tiny"})[0] == 422
    assert api.put("/credentials/missing", {"value": SECRET})[0] == 404
    assert api.get("/credentials/missing")[0] == 404
    assert api.get("/credentials/..%2F..%2Fetc")[0] == 404
    assert api.delete("/credentials/missing")[0] == 404
    assert api.get("/credentials?cursor=not-a-token")[0] == 400
    assert api.get("/credentials?limit=0")[0] == 400
    for i in range(3):
        create(api, f"paged_{i}", SECRET)
    names, cursor, pages = [], None, 0
    while True:
        status, page = api.get("/credentials?limit=2" + (f"&cursor={cursor}" if cursor else ""))
        assert status == 200 and len(page["items"]) <= 2, page
        names += [item["name"] for item in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert sorted(names) == ["good_one", "paged_0", "paged_1", "paged_2"] and pages >= 2
    assert SECRET not in json.dumps(page)


def test_deleting_a_credential_already_paged_past_skips_none_of_the_rest(api):
    """Someone deletes a credential from an earlier page while another pages on: the next page starts after the
    last one listed, so every credential that was there throughout is listed exactly once."""
    for i in range(5):
        create(api, f"keep_{i}", SECRET)
    status, first = api.get("/credentials?limit=2")
    assert status == 200 and len(first["items"]) == 2 and first["next_cursor"], first
    gone = first["items"][0]["name"]
    assert api.delete(f"/credentials/{gone}")[0] == 200
    names, cursor = [item["name"] for item in first["items"]], first["next_cursor"]
    while cursor:
        status, page = api.get(f"/credentials?limit=2&cursor={cursor}")
        assert status == 200, page
        names += [item["name"] for item in page["items"]]
        cursor = page["next_cursor"]
    assert sorted(names) == [f"keep_{i}" for i in range(5)], names


# -- tenants (authentication on) --------------------------------------------------------------------

JWT_SECRET = "test-secret-0123456789-0123456789-abcdef"


def bearer(role: str, tenant: str) -> str:
    return mint(JWT_SECRET, f"user-{role}-{tenant}", roles=[role], tenant=tenant)


def call(api: Any, method: str, path: str, token: str, body: Any = None) -> tuple[int, Any]:
    kwargs: dict[str, Any] = {"headers": {"content-type": "application/json", "authorization": f"Bearer {token}"}}
    if body is not None:
        kwargs["body"] = json.dumps(body)
    response = getattr(api.client.http, method.lower())(api.prefix + path, **kwargs)
    return response.status_code, json.loads(response.body)


@pytest.fixture
def secured(api: Any) -> Iterator[Any]:
    with authentication(JWT_SECRET):
        yield api


def test_a_tenant_never_sees_nor_uses_another_tenants_credential(secured, target):
    api = secured
    acme, globex = bearer("editor", "acme"), bearer("editor", "globex")
    status, created = call(api, "POST", "/credentials", acme, {"name": "api_token", "value": SECRET})
    assert status == 201 and created["created_by"] == "user-editor-acme", created
    # globex: not listed, not found, not usable; refused in the same words as a name nobody has.
    assert call(api, "GET", "/credentials", globex)[1]["items"] == []
    assert call(api, "GET", "/credentials/api_token", globex)[0] == 404
    assert call(api, "PUT", "/credentials/api_token", globex, {"value": ROTATED})[0] == 404
    assert call(api, "DELETE", "/credentials/api_token", globex)[0] == 404
    one = {"name": "globex_call", "steps": [{"id": "bearer", "type": "machine", "task_type": "http.request",
                                             "config": {"url": f"{target}/bearer",
                                                        "auth": {"type": "bearer", "credential": "api_token"}}}]}
    status, foreign = call(api, "POST", "/definitions", globex, one)
    nobody = json.loads(json.dumps(one).replace("api_token", "nobody_has"))
    status_nobody, unknown = call(api, "POST", "/definitions", globex, nobody)
    assert status == status_nobody == 422
    assert json.dumps(foreign).replace("api_token", "X") == json.dumps(unknown).replace("nobody_has", "X")
    # acme's own definition runs with acme's credential.
    Target.expected = {"/bearer": f"Authorization: Bearer {SECRET}"}
    own = {**one, "name": "acme_call"}
    assert call(api, "POST", "/definitions", acme, own)[0] == 201
    status, started = call(api, "POST", "/instances", acme, {"definition_name": "acme_call"})
    assert status == 201, started
    import time

    deadline = time.monotonic() + 30
    while (body := call(api, "GET", f"/instances/{started['id']}", acme)[1])["status"] not in ("completed", "failed"):
        assert time.monotonic() < deadline, body
        time.sleep(0.1)
    assert body["status"] == "completed", body
    # Roles: a viewer reads metadata, only an editor writes.
    viewer = bearer("viewer", "acme")
    assert call(api, "GET", "/credentials/api_token", viewer)[0] == 200
    assert call(api, "POST", "/credentials", viewer, {"name": "other", "value": SECRET})[0] == 403
    assert call(api, "PUT", "/credentials/api_token", viewer, {"value": ROTATED})[0] == 403
    assert call(api, "DELETE", "/credentials/api_token", viewer)[0] == 403
