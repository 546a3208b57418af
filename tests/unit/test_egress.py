"""The egress policy: link-local and metadata never; private ranges only where allowed; resolved once."""

from __future__ import annotations

import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from chalicelib import egress
from chalicelib.outbound import post_json
from chalicelib.tasks.errors import StepError


@pytest.mark.parametrize("address", ["169.254.169.254", "169.254.1.1", "fe80::1", "fd00:ec2::254",
                                     "::ffff:169.254.169.254", "0.0.0.0"])
def test_link_local_and_metadata_are_always_refused(address):
    for allow in (True, False):
        with pytest.raises(egress.EgressDenied):
            egress.check_address(address, allow_private=allow)


@pytest.mark.parametrize("address", ["10.1.2.3", "172.16.0.1", "192.168.1.1", "127.0.0.1", "::1", "fd12::1"])
def test_private_ranges_only_where_allowed(address):
    egress.check_address(address, allow_private=True)
    with pytest.raises(egress.EgressDenied):
        egress.check_address(address, allow_private=False)


def test_public_addresses_pass_and_metadata_names_are_refused():
    egress.check_address("93.184.216.34", allow_private=False)
    egress.check_address("2606:4700::1111", allow_private=False)
    for name in ("metadata.google.internal", "METADATA.google.internal."):
        with pytest.raises(egress.EgressDenied):
            egress.check_url(f"http://{name}/computeMetadata/v1/", allow_private=True)


def test_every_resolved_address_is_checked_and_the_connection_uses_it(monkeypatch):
    answers = [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", 80)),
               (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.5", 80))]
    monkeypatch.setattr(socket, "getaddrinfo", lambda *a, **k: answers)
    with pytest.raises(egress.EgressDenied):
        egress.resolve("rebind.example", 80, allow_private=False)
    # One lookup per connection: the socket connects to the address that was checked.
    calls = []
    monkeypatch.setattr(socket, "getaddrinfo", lambda *a, **k: calls.append(a) or [
        (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("169.254.169.254", 80))])
    with pytest.raises(egress.EgressDenied):
        egress.guarded_create_connection(True)(("evil.example", 80), 1)
    assert len(calls) == 1


class Answer(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802
        self._ok()

    def do_POST(self):  # noqa: N802
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self._ok()

    def _ok(self):
        body = b'{"ok": true}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def loopback():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Answer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_http_request_steps_and_webhooks_follow_the_stage(loopback):
    from chalicelib.tasks.builtin.http_request import HTTP_EGRESS_DENIED

    allowed, refused = egress.http_client(True), egress.http_client(False)
    allowed.resolve_and_check(loopback)
    with pytest.raises(StepError) as denied:
        refused.resolve_and_check(loopback)
    assert denied.value.error == HTTP_EGRESS_DENIED
    with pytest.raises(StepError):
        allowed.resolve_and_check("http://169.254.169.254/latest/meta-data/")
    # Even past the pre-flight check, the connection itself refuses.
    import urllib.request

    with pytest.raises(OSError):
        refused.open(urllib.request.Request(loopback), timeout=2)
    assert allowed.open(urllib.request.Request(loopback), timeout=2).status == 200
    assert post_json(loopback + "/hook", b"{}", {}, allow_private=True) == 200
    with pytest.raises(OSError):
        post_json(loopback + "/hook", b"{}", {}, allow_private=False)
    with pytest.raises(OSError):
        post_json("http://169.254.169.254/hook", b"{}", {}, allow_private=True)
