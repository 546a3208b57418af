"""The egress policy: link-local and metadata never, in any form; private ranges only where allowed; resolved once."""

from __future__ import annotations

import ipaddress
import socket
from http.server import BaseHTTPRequestHandler

import pytest

from chalicelib import egress
from chalicelib.outbound import post_json
from chalicelib.tasks.errors import StepError
from tests.serving import serving


def teredo(client_ipv4: str, server_ipv4: str = "65.54.227.120") -> str:
    """The Teredo (2001::/32) address of a client: server in bits 32-63, client XOR 0xffffffff last."""
    server = int(ipaddress.IPv4Address(server_ipv4))
    client = int(ipaddress.IPv4Address(client_ipv4)) ^ 0xFFFFFFFF
    return str(ipaddress.IPv6Address((0x20010000 << 96) | (server << 64) | client))


# Metadata / link-local in every form that carries an IPv4 address: refused on every stage.
METADATA_FORMS = {
    "ipv4": "169.254.169.254",
    "ipv4-mapped": "::ffff:169.254.169.254",
    "ipv4-mapped-hex": "::ffff:a9fe:a9fe",
    "ipv4-compatible": "::169.254.169.254",
    "6to4": "2002:a9fe:a9fe::",
    "6to4-with-host": "2002:a9fe:a9fe:1::1",
    "teredo-client": teredo("169.254.169.254"),
    "teredo-server": teredo("93.184.216.34", server_ipv4="169.254.169.254"),
    "nat64": "64:ff9b::a9fe:a9fe",
    "nat64-dotted": "64:ff9b::169.254.169.254",
    "nat64-local-last-32": "64:ff9b:1::a9fe:a9fe",
    "nat64-local-rfc6052": "64:ff9b:1:a9fe:a9:fe00::",
    "link-local-v4": "169.254.1.1",
    "link-local-v6": "fe80::1",
    "ec2-v6-metadata": "fd00:ec2::254",
    "unspecified": "0.0.0.0",
    "unspecified-v6": "::",
    "this-network": "0.1.2.3",
    "ietf-192.0.0.192": "192.0.0.192",
    "ietf-192.0.0.192-6to4": "2002:c000:c0::",
    "ietf-192.0.0.192-mapped": "::ffff:192.0.0.192",
    "multicast": "224.0.0.1",
    "multicast-v6": "ff02::1",
    "reserved-240": "240.0.0.1",
    "broadcast": "255.255.255.255",
}


@pytest.mark.parametrize("address", METADATA_FORMS.values(), ids=METADATA_FORMS.keys())
def test_link_local_metadata_and_special_addresses_are_always_refused(address):
    for allow in (True, False):
        with pytest.raises(egress.EgressDenied):
            egress.check_address(address, allow_private=allow)


# Private and loopback, plain and wrapped: the local stage may call them, a deployed stage never.
PRIVATE_FORMS = {
    "10/8": "10.1.2.3", "172.16/12": "172.16.0.1", "192.168/16": "192.168.1.1", "loopback": "127.0.0.1",
    "shared-100.64/10": "100.64.0.1", "loopback-v6": "::1", "ula": "fd12::1",
    "mapped-loopback": "::ffff:127.0.0.1", "6to4-10/8": "2002:0a00:0001::", "nat64-192.168": "64:ff9b::c0a8:0101",
    "teredo-10/8": teredo("10.0.0.1"), "compatible-10/8": "::10.0.0.1",
}


@pytest.mark.parametrize("address", PRIVATE_FORMS.values(), ids=PRIVATE_FORMS.keys())
def test_private_ranges_only_where_allowed(address):
    egress.check_address(address, allow_private=True)
    with pytest.raises(egress.EgressDenied):
        egress.check_address(address, allow_private=False)


# Not globally reachable and not private: refused on every stage.
NOT_GLOBAL = {
    "documentation": "192.0.2.10", "benchmarking": "198.18.0.1", "documentation-v6": "2001:db8::1",
    "6to4-relay-anycast": "192.88.99.1", "discard-v6": "100::1", "site-local-v6": "fec0::1",
    "6to4-of-documentation": "2002:c000:020a::",
}


@pytest.mark.parametrize("address", NOT_GLOBAL.values(), ids=NOT_GLOBAL.keys())
def test_other_non_global_addresses_are_refused(address):
    for allow in (True, False):
        with pytest.raises(egress.EgressDenied):
            egress.check_address(address, allow_private=allow)


# Global addresses pass, in every form (the wrapped ones carry a global IPv4).
GLOBAL = {
    "v4": "93.184.216.34", "v6": "2606:4700::1111", "mapped": "::ffff:93.184.216.34", "6to4": "2002:5db8:d822::",
    "nat64": "64:ff9b::5db8:d822", "teredo": teredo("93.184.216.34"),
}


@pytest.mark.parametrize("address", GLOBAL.values(), ids=GLOBAL.keys())
def test_global_addresses_pass_in_every_form(address):
    for allow in (True, False):
        egress.check_address(address, allow_private=allow)


def test_the_carried_ipv4_is_named_in_the_refusal():
    with pytest.raises(egress.EgressDenied) as refused:
        egress.check_address("2002:a9fe:a9fe::", allow_private=True)
    assert "169.254.169.254" in str(refused.value)
    metadata = ipaddress.IPv4Address("169.254.169.254")
    assert egress.embedded_ipv4(ipaddress.ip_address(teredo("169.254.169.254")))[-1] == metadata
    # 64:ff9b:1::/48 (RFC 6052): the IPv4 sits at bits 48-63 and 72-87, around the zero u-octet.
    assert metadata in egress.embedded_ipv4(ipaddress.ip_address("64:ff9b:1:a9fe:a9:fe00::"))
    assert metadata in egress.embedded_ipv4(ipaddress.ip_address("64:ff9b:1::a9fe:a9fe"))


def test_metadata_names_are_refused():
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


def test_an_address_that_is_not_ip_is_refused(monkeypatch):
    # getaddrinfo's answer for a Python built without IPv6: (family, bytes), an address no policy can vet.
    answers = [(socket.AF_INET6, socket.SOCK_STREAM, 6, "", (10, b"\x00" * 16))]
    monkeypatch.setattr(socket, "getaddrinfo", lambda *a, **k: answers)
    with pytest.raises(egress.EgressDenied, match="not IP"):
        egress.resolve("odd.example", 80, allow_private=True)


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
    with serving(Answer) as url:
        yield url


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
