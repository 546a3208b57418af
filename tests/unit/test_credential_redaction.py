"""Credentials without AWS: references in step config, rendering, redaction, and http.request's auth."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from chalicelib.core.credentials import credential_issues, references
from chalicelib.core.model import Definition
from chalicelib.tasks.credentials import Redactor, value_problem
from chalicelib.tasks.errors import StepError
from chalicelib.tasks.registry import TaskContext, default_registry
from chalicelib.tasks.templating import render

VALUE = "v@lue/with+odd&chars=1"


def test_the_redactor_masks_the_value_and_the_forms_a_request_carries_it_in():
    redact = Redactor([VALUE])
    encoded = base64.b64encode(VALUE.encode()).decode()
    url_encoded = "v%40lue%2Fwith%2Bodd%26chars%3D1"
    text = f"plain {VALUE} b64 {encoded} url {url_encoded} json {json.dumps({'k': VALUE})}"
    assert redact.text(text) == 'plain *** b64 *** url *** json {"k": "***"}'
    quoted = Redactor(['say "hi" to-me'])
    assert quoted.text(json.dumps({"k": 'say "hi" to-me'})) == '{"k": "***"}'
    nested = {"a": [VALUE, {"b": f"x{VALUE}x", VALUE: 1}], "n": 5, "none": None}
    assert redact(nested) == {"a": ["***", {"b": "x***x", "***": 1}], "n": 5, "none": None}
    assert nested["a"][0] == VALUE  # a copy: the original is untouched
    assert not Redactor([]) and Redactor([]).text(VALUE) == VALUE


def test_values_are_bounded_and_distinctive():
    assert value_problem("abcdefgh") is None
    assert "at least 8" in value_problem("short")
    assert "8192" in value_problem("x" * 8193)
    assert "control" in value_problem("two\nlines-of-it")
    assert value_problem(12345678) == "the value must be a string"


def test_secrets_render_from_the_resolved_credentials_never_from_the_data():
    data = {"secrets": {"token": "from-the-data"}, "n": 1}
    assert render("Bearer {{ secrets.token }}", data, secrets={"token": "resolved"}) == "Bearer resolved"
    assert render("{{ n }}", data, secrets={}) == 1
    for secrets in (None, {}):
        with pytest.raises(StepError) as refused:
            render("{{ secrets.token }}", data, "config.url", secrets=secrets)
        assert refused.value.error == "Stepflow.TemplateError" and "from-the-data" not in refused.value.message


def test_references_are_found_with_their_location():
    registry = default_registry()
    config = {"url": "https://x.test/{{ secrets.in_url }}", "headers": {"X-Key": "{{ secrets.key }}"},
              "auth": {"type": "bearer", "credential": "bearer_one"}, "body": {"n": "{{ n }}"}}
    assert registry.credential_references("http.request", config) == [
        ("config.url", "in_url"), ("config.headers.X-Key", "key"), ("config.auth.credential", "bearer_one")]
    assert registry.credential_references("util.log", {"message": "{{ secrets.a.b }} {{ secrets }}"}) == [
        ("config.message", ""), ("config.message", "")]
    # data.assert's condition is code, not a template: nothing there is a reference.
    assert registry.credential_references("data.assert", {"condition": "x == '{{ secrets.k }}'"}) == []
    # A placeholder in auth.credential is not a name: the schema refuses it at registration.
    issues = registry.validate_config("http.request", {"url": "https://x.test",
                                                       "auth": {"type": "bearer", "credential": "{{ n }}"}})
    assert [i.path for i in issues] == ["config.auth.credential"]


def test_unknown_and_malformed_references_are_located_issues():
    definition = Definition.model_validate({"name": "d", "steps": [
        {"id": "call", "type": "machine", "task_type": "http.request",
         "config": {"url": "https://x.test", "auth": {"type": "basic", "credential": "known"}},
         "fallback": {"task_type": "util.log", "config": {"message": "{{ secrets.gone }}"}}},
        {"id": "note", "type": "machine", "task_type": "util.log", "depends_on": ["call"],
         "config": {"message": "{{ secrets.x.y }}"}}]})
    found = references(definition, default_registry())
    assert [(r.step, r.location, r.name) for r in found] == [
        ("call", "steps[0].config.auth.credential", "known"),
        ("call", "steps[0].fallback.config.message", "gone"),
        ("note", "steps[1].config.message", "")]
    issues = [i.as_dict() for i in credential_issues(found, {"known"})]
    assert [(i["code"], i["location"]) for i in issues] == [
        ("unknown_credential", "steps[0].fallback.config.message"),
        ("invalid_credential_reference", "steps[1].config.message")]
    assert issues[0]["message"] == "step 'call': no credential named 'gone'"


class _Recorder(BaseHTTPRequestHandler):
    seen: list[dict[str, Any]] = []
    redirect_to = ""

    def do_GET(self) -> None:  # noqa: N802
        self.seen.append({"path": self.path, "headers": dict(self.headers)})
        if self.path.startswith("/away"):
            self.send_response(302)
            self.send_header("Location", self.redirect_to)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if self.path.startswith("/here"):
            self.send_response(302)
            self.send_header("Location", "/away")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = json.dumps({"headers": dict(self.headers)}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def hosts() -> Iterator[tuple[str, str]]:
    """Two servers: one at 127.0.0.1 and one reached as localhost (another host for a redirect)."""
    _Recorder.seen = []
    servers = [ThreadingHTTPServer(("127.0.0.1", 0), _Recorder) for _ in range(2)]
    for server in servers:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    first = f"http://127.0.0.1:{servers[0].server_address[1]}"
    other = f"http://localhost:{servers[1].server_address[1]}"
    _Recorder.redirect_to = f"{other}/landed"
    yield first, other
    for server in servers:
        server.shutdown()
        server.server_close()


def run_http(config: dict[str, Any], secrets: dict[str, str]) -> dict[str, Any]:
    return default_registry().run("http.request", TaskContext(step_id="s", execution_id="e", config=config,
                                                              secrets=secrets))


@pytest.mark.parametrize(("auth", "header", "sent"), [
    ({"type": "bearer", "credential": "tok"}, "Authorization", f"Bearer {VALUE}"),
    ({"type": "basic", "credential": "tok"}, "Authorization", "Basic " + base64.b64encode(VALUE.encode()).decode()),
    ({"type": "header", "credential": "tok"}, "X-Api-Key", VALUE),
    ({"type": "header", "credential": "tok", "header": "X-Partner-Token"}, "X-Partner-Token", VALUE),
])
def test_http_request_sends_the_credential_as_its_auth_says(hosts, auth, header, sent):
    first, _ = hosts
    out = run_http({"url": f"{first}/ok", "headers": {header: "replaced by auth"}, "auth": auth}, {"tok": VALUE})
    assert out["status"] == 200 and _Recorder.seen[-1]["headers"][header] == sent


def test_a_redirect_to_another_host_drops_every_header_that_carries_a_credential(hosts):
    first, _ = hosts
    config = {"url": f"{first}/here", "auth": {"type": "header", "credential": "tok"},
              "headers": {"X-Other": "pre-{{ secrets.tok }}", "X-Plain": "kept"}}
    out = run_http(config, {"tok": VALUE})
    assert out["status"] == 200 and out["url"].endswith("/landed")
    here, away, landed = _Recorder.seen
    assert here["headers"]["X-Api-Key"] == VALUE and away["headers"]["X-Api-Key"] == VALUE  # the same host
    assert "X-Api-Key" not in landed["headers"] and "X-Other" not in landed["headers"]
    assert landed["headers"]["X-Plain"] == "kept"


def test_an_unresolved_auth_credential_fails_without_a_request(hosts):
    first, _ = hosts
    with pytest.raises(StepError) as refused:
        run_http({"url": f"{first}/ok", "auth": {"type": "bearer", "credential": "tok"}}, {})
    assert refused.value.error == "Stepflow.InvalidConfig" and _Recorder.seen == []
