"""The built-in task catalog: util.log, util.sleep, data.set, data.assert, http.request."""

from __future__ import annotations

import http.client
import importlib.util
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from chalicelib.tasks.builtin.http_request import HttpClient
from chalicelib.tasks.errors import StepError
from chalicelib.tasks.registry import TaskContext, default_registry

HAVE_CONDITIONS = importlib.util.find_spec("chalicelib.core.conditions") is not None
needs_conditions = pytest.mark.skipif(
    not HAVE_CONDITIONS, reason="chalicelib/core/conditions.py (the condition language) is not there yet"
)


def ctx(config=None, data=None, **kwargs) -> TaskContext:
    return TaskContext(step_id="step1", execution_id="exec-1", config=config or {}, input=data or {}, **kwargs)


@pytest.fixture(scope="module")
def registry():
    return default_registry()


def step_error(registry, task_id, context) -> StepError:
    with pytest.raises(StepError) as info:
        registry.run(task_id, context)
    return info.value


# --------------------------------------------------------------------------- util.log


def test_util_log_renders_and_logs(registry):
    logged = []
    context = ctx(
        config={"message": "order {{ order.id }} for {{ order.total }}", "level": "warning"},
        data={"order": {"id": "A1", "total": 9.5}},
        log=lambda message, **fields: logged.append((message, fields)),
    )
    assert registry.run("util.log", context) == {}
    assert logged == [("order A1 for 9.5", {"level": "warning"})]


def test_util_log_default_level_and_default_logger(registry):
    context = ctx(config={"message": "hello"})
    assert registry.run("util.log", context) == {}
    assert context.logs == [{"message": "hello", "level": "info"}]


def test_util_log_config_issues(registry):
    issues = registry.validate_config("util.log", {"message": "", "level": "loud", "extra": 1})
    assert [i.path for i in issues] == ["config", "config.level", "config.message"]


# --------------------------------------------------------------------------- util.sleep


def test_util_sleep_uses_the_injected_sleep(registry):
    slept = []
    assert registry.run("util.sleep", ctx(config={"seconds": 2.5}, sleep=slept.append)) == {"slept_seconds": 2.5}
    assert registry.run("util.sleep", ctx(config={"seconds": "{{ wait }}"}, data={"wait": 3}, sleep=slept.append)) == {
        "slept_seconds": 3
    }
    assert registry.run("util.sleep", ctx(config={"seconds": 0}, sleep=slept.append)) == {"slept_seconds": 0}
    assert slept == [2.5, 3]


def test_util_sleep_bounds(registry):
    assert [i.path for i in registry.validate_config("util.sleep", {"seconds": 901})] == ["config.seconds"]
    assert [i.path for i in registry.validate_config("util.sleep", {"seconds": -1})] == ["config.seconds"]
    assert [i.path for i in registry.validate_config("util.sleep", {})] == ["config.seconds"]
    err = step_error(registry, "util.sleep", ctx(config={"seconds": "{{ wait }}"}, data={"wait": 5000}))
    assert err.error == "Stepflow.InvalidConfig"


# --------------------------------------------------------------------------- data.set


def test_data_set_outputs_rendered_values(registry):
    config = {"values": {"name": "{{ c.name }}", "age": "{{ c.age }}", "greeting": "hi {{ c.name }}", "fixed": [1]}}
    assert registry.run("data.set", ctx(config=config, data={"c": {"name": "Ann", "age": 41}})) == {
        "name": "Ann",
        "age": 41,
        "greeting": "hi Ann",
        "fixed": [1],
    }


def test_data_set_whole_object_from_a_placeholder(registry):
    assert registry.run("data.set", ctx(config={"values": "{{ obj }}"}, data={"obj": {"a": 1}})) == {"a": 1}
    err = step_error(registry, "data.set", ctx(config={"values": "{{ n }}"}, data={"n": 1}))
    assert err.error == "Stepflow.InvalidConfig"


def test_data_set_requires_values(registry):
    assert [i.path for i in registry.validate_config("data.set", {})] == ["config.values"]


# --------------------------------------------------------------------------- data.assert


class FakeConditions:
    """Stands in for chalicelib.core.conditions: 'key' is true when data[key] is truthy."""

    def __init__(self):
        self.parsed = []

    def parse_condition(self, text):
        if not text.isidentifier():
            raise ValueError(f"cannot parse {text!r}")
        self.parsed.append(text)
        return text

    def evaluate(self, expr, data):
        return bool(data.get(expr))


def test_data_assert_with_injected_conditions():
    fake = FakeConditions()
    registry = default_registry(conditions=fake)
    assert registry.run("data.assert", ctx(config={"condition": "approved"}, data={"approved": True})) == {}
    err = step_error(registry, "data.assert", ctx(config={"condition": "approved"}, data={"approved": False}))
    assert (err.error, err.message) == ("Stepflow.AssertionFailed", "assertion failed: approved")
    err = step_error(
        registry,
        "data.assert",
        ctx(
            config={"condition": "approved", "error": "Order.NotApproved", "message": "order {{ id }} not approved"},
            data={"approved": False, "id": 7},
        ),
    )
    assert (err.error, err.message) == ("Order.NotApproved", "order 7 not approved")
    assert type(err.as_lambda_exception()).__name__ == "Order.NotApproved"


def test_data_assert_condition_is_not_templated():
    fake = FakeConditions()
    registry = default_registry(conditions=fake)
    err = step_error(registry, "data.assert", ctx(config={"condition": "{{ x }}"}, data={"x": "approved"}))
    assert err.error == "Stepflow.InvalidConfig"
    assert "{{ x }}" in err.message
    issues = registry.validate_config("data.assert", {"condition": "not valid"})
    assert [i.path for i in issues] == ["config.condition"]


def test_data_assert_error_name_rules(registry):
    for bad in ("States.ALL", "Lambda.Unknown", "bad-name", "1x", "x" * 65):
        issues = registry.validate_config("data.assert", {"condition": "a", "error": bad})
        assert [i.path for i in issues] == ["config.error"], bad
    assert registry.validate_config("data.assert", {"condition": "a", "error": "Order.Rejected_2"}) == []


@needs_conditions
def test_data_assert_with_the_condition_language(registry):
    data = {"amount": 1500, "status": "paid"}
    assert registry.run("data.assert", ctx(config={"condition": 'amount > 1000 and status == "paid"'}, data=data)) == {}
    err = step_error(registry, "data.assert", ctx(config={"condition": "amount > 2000"}, data=data))
    assert err.error == "Stepflow.AssertionFailed"


@needs_conditions
def test_data_assert_reports_unparsable_conditions(registry):
    issues = registry.validate_config("data.assert", {"condition": "amount >"})
    assert [i.path for i in issues] == ["config.condition"]
    err = step_error(registry, "data.assert", ctx(config={"condition": "amount >"}, data={"amount": 1}))
    assert err.error == "Stepflow.InvalidConfig"
    assert err.message.startswith("config.condition: ")


# --------------------------------------------------------------------------- http.request

BIG = 2 * 1024 * 1024


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    release = threading.Event()

    def log_message(self, *args):  # keep test output quiet
        pass

    def _send(self, status, body=b"", content_type="text/plain; charset=utf-8", headers=()):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _route(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        path = self.path.split("?")[0]
        try:
            if path == "/json":
                self._send(200, b'{"ok": true, "n": 1}', "application/json")
            elif path == "/problem+json":
                self._send(200, b'{"title": "x"}', "application/problem+json")
            elif path == "/notjson":
                self._send(200, b"not json", "application/json")
            elif path == "/text":
                self._send(200, "héllo".encode("latin-1"), "text/plain; charset=latin-1")
            elif path == "/empty":
                self._send(204)
            elif path == "/echo":
                received = {
                    "method": self.command,
                    "body": body.decode(),
                    "content_type": self.headers.get("Content-Type"),
                    "x_token": self.headers.get("X-Token"),
                    "user_agent": self.headers.get("User-Agent"),
                }
                self._send(201, json.dumps(received).encode(), "application/json")
            elif path.startswith("/status/"):
                self._send(int(path.rsplit("/", 1)[1]), b"boom: something broke", "text/plain")
            elif path == "/multi":
                self._send(200, b"x", headers=[("X-Multi", "a"), ("X-Multi", "b")])
            elif path == "/slow":
                self.release.wait(5)
                self._send(200, b"late")
            elif path == "/big":
                self._send(200, b"x" * BIG)
            elif path == "/big-unsized":
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Connection", "close")
                self.end_headers()
                self.close_connection = True
                for _ in range(BIG // 65536):
                    self.wfile.write(b"y" * 65536)
            elif path == "/redirect":
                self._send(302, headers=[("Location", "/json")])
            elif path == "/redirect-file":
                self._send(302, headers=[("Location", "file:///etc/passwd")])
            else:
                self._send(404, b"no such route")
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _route


@pytest.fixture(scope="module")
def server():
    _Handler.release.clear()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        _Handler.release.set()
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


def http_run(registry, config, data=None):
    return registry.run("http.request", ctx(config=config, data=data))


def http_error(registry, config) -> StepError:
    return step_error(registry, "http.request", ctx(config=config))


def test_http_get_json(registry, server):
    out = http_run(registry, {"url": "{{ base }}/json?q=1"}, {"base": server})
    assert out["status"] == 200
    assert out["body"] == {"ok": True, "n": 1}
    assert out["headers"]["content-type"] == "application/json"
    assert out["headers"]["content-length"] == "20"
    assert isinstance(out["elapsed_ms"], int) and out["elapsed_ms"] >= 0
    assert out["url"] == f"{server}/json?q=1"
    json.dumps(out)


def test_http_body_parsing(registry, server):
    assert http_run(registry, {"url": f"{server}/problem+json"})["body"] == {"title": "x"}
    assert http_run(registry, {"url": f"{server}/notjson"})["body"] == "not json"
    assert http_run(registry, {"url": f"{server}/text"})["body"] == "héllo"
    empty = http_run(registry, {"url": f"{server}/empty"})
    assert (empty["status"], empty["body"]) == (204, "")
    head = http_run(registry, {"url": f"{server}/json", "method": "HEAD"})
    assert (head["status"], head["body"]) == (200, None)
    assert http_run(registry, {"url": f"{server}/multi"})["headers"]["x-multi"] == "a, b"


def test_http_post_json_and_text_bodies(registry, server):
    out = http_run(
        registry,
        {
            "method": "POST",
            "url": f"{server}/echo",
            "headers": {"X-Token": "{{ token }}"},
            "body": {"id": "{{ id }}", "tags": ["a"]},
        },
        {"token": "t-1", "id": 42},
    )
    assert out["status"] == 201
    assert out["body"]["method"] == "POST"
    assert json.loads(out["body"]["body"]) == {"id": 42, "tags": ["a"]}
    assert out["body"]["content_type"] == "application/json"
    assert out["body"]["x_token"] == "t-1"
    assert out["body"]["user_agent"] == "Stepflow/1.0"
    out = http_run(
        registry, {"method": "PUT", "url": f"{server}/echo", "body": "plain", "headers": {"user-agent": "me"}}
    )
    assert out["body"]["body"] == "plain"
    assert out["body"]["content_type"] == "text/plain; charset=utf-8"
    assert out["body"]["user_agent"] == "me"


def test_http_status_error(registry, server):
    err = http_error(registry, {"url": f"{server}/status/500?secret=s3cr3t"})
    assert err.error == "HttpStatusError"
    assert "500" in err.message and "boom" in err.message
    assert "s3cr3t" not in err.message
    assert err.details["status"] == 500
    assert http_error(registry, {"url": f"{server}/nowhere"}).details["status"] == 404
    # expect_status replaces the default 2xx.
    assert http_run(registry, {"url": f"{server}/status/404", "expect_status": [404]})["status"] == 404
    assert http_error(registry, {"url": f"{server}/json", "expect_status": [201]}).error == "HttpStatusError"


def test_http_timeout(registry, server):
    start = time.monotonic()
    err = http_error(registry, {"url": f"{server}/slow", "timeout_seconds": 0.2})
    assert err.error == "HttpTimeout"
    assert time.monotonic() - start < 2


def test_http_response_too_large(registry, server):
    err = http_error(registry, {"url": f"{server}/big", "max_response_bytes": 1000})
    assert err.error == "HttpResponseTooLarge"
    err = http_error(registry, {"url": f"{server}/big-unsized", "max_response_bytes": 1000})
    assert err.error == "HttpResponseTooLarge"
    assert len(http_run(registry, {"url": f"{server}/big", "max_response_bytes": BIG})["body"]) == BIG


def test_http_connection_refused(registry):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    err = http_error(registry, {"url": f"http://127.0.0.1:{port}/x", "timeout_seconds": 2})
    assert err.error == "HttpConnectionError"


def test_http_redirects(registry, server):
    out = http_run(registry, {"url": f"{server}/redirect"})
    assert (out["status"], out["body"], out["url"]) == (200, {"ok": True, "n": 1}, f"{server}/json")
    err = http_error(registry, {"url": f"{server}/redirect", "follow_redirects": False})
    assert (err.error, err.details["status"]) == ("HttpStatusError", 302)
    # Never to a non-http scheme: the 302 is the answer.
    err = http_error(registry, {"url": f"{server}/redirect-file"})
    assert (err.error, err.details["status"]) == ("HttpStatusError", 302)
    out = http_run(registry, {"url": f"{server}/redirect-file", "expect_status": [302]})
    assert out["headers"]["location"] == "file:///etc/passwd"


def test_http_resolve_and_check_sees_every_url(server):
    seen = []

    def policy(url):
        seen.append(url)
        if url.endswith("/json"):
            raise StepError("HttpEgressDenied", f"{url} is not allowed")

    registry = default_registry(http_client=HttpClient(resolve_and_check=policy))
    err = step_error(registry, "http.request", ctx(config={"url": f"{server}/redirect"}))
    assert err.error == "HttpEgressDenied"
    assert seen == [f"{server}/redirect", f"{server}/json"]


def test_http_invalid_urls(registry):
    issues = registry.validate_config("http.request", {"url": "file:///etc/passwd"})
    assert [i.path for i in issues] == ["config.url"]
    for url in ("ftp://example.com/x", "http://user:pw@example.com/", "http:///nohost", "http://example.com:99999/"):
        err = step_error(registry, "http.request", ctx(config={"url": "{{ u }}"}, data={"u": url}))
        assert err.error == "Stepflow.InvalidConfig", url


def test_http_limits_in_config(registry):
    issues = registry.validate_config(
        "http.request",
        {"url": "https://x.test", "timeout_seconds": 61, "max_response_bytes": 5 * 1024 * 1024 + 1, "method": "TRACE"},
    )
    assert [i.path for i in issues] == ["config.max_response_bytes", "config.method", "config.timeout_seconds"]


class _EndlessResponse:
    """A response that would stream forever; records how much was asked for."""

    status = 200

    def __init__(self):
        self.headers = http.client.HTTPMessage()
        self.headers["Content-Type"] = "text/plain"
        self.requested = []
        self.closed = False

    def read(self, n=-1):
        assert n is not None and n > 0, "never read without a bound"
        self.requested.append(n)
        return b"z" * n

    def geturl(self):
        return "http://fake.test/"

    def close(self):
        self.closed = True


class _FakeClient(HttpClient):
    def __init__(self, response):
        super().__init__()
        self.response = response
        self.opened = []

    def open(self, request, *, timeout, follow_redirects=True):
        self.opened.append((request.get_method(), request.full_url, timeout, follow_redirects))
        return self.response


def test_http_reads_at_most_max_plus_one_bytes():
    response = _EndlessResponse()
    client = _FakeClient(response)
    registry = default_registry(http_client=client)
    limit = 200_000
    err = step_error(registry, "http.request", ctx(config={"url": "http://fake.test/", "max_response_bytes": limit}))
    assert err.error == "HttpResponseTooLarge"
    assert sum(response.requested) == limit + 1
    assert response.closed
    assert client.opened == [("GET", "http://fake.test/", 10.0, True)]
