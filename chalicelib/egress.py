"""Egress policy for outbound calls made on a workflow's behalf (http.request steps, completion webhooks).

* Only global unicast addresses are called on deployed stages. Refused everywhere, on every stage:
  link-local (169.254.0.0/16, fe80::/10) and cloud metadata (169.254.169.254, fd00:ec2::254,
  metadata.google.internal, metadata), 0.0.0.0/8 and ::, multicast, 192.0.0.0/24 (IETF protocol
  assignments, e.g. 192.0.0.192), 240.0.0.0/4, documentation, benchmarking and other special ranges.
* Private and loopback ranges (10/8, 172.16/12, 192.168/16, 127/8, 100.64/10, ::1, fc00::/7) only where
  the stage allows them (STEPFLOW_EGRESS_ALLOW_PRIVATE: default true on the local stage, false on
  deployed ones).
* An IPv6 address that carries an IPv4 one (IPv4-mapped ::ffff:a.b.c.d, IPv4-compatible ::a.b.c.d,
  6to4 2002::/16, Teredo 2001::/32, NAT64 64:ff9b::/96 and 64:ff9b:1::/48) is judged by the IPv4 it
  carries, so 2002:a9fe:a9fe:: is refused like 169.254.169.254.
* DNS is resolved once per connection, every resolved address is checked, and the socket connects
  to a checked address (no second lookup a rebinding DNS server could answer differently). TLS still
  verifies the certificate against the host name (SNI and hostname check are unchanged).
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import urllib.request
from typing import Any
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

ALWAYS_REFUSED_NETWORKS = tuple(ipaddress.ip_network(n) for n in (
    "169.254.0.0/16", "fe80::/10", "fd00:ec2::254/128", "0.0.0.0/8", "::/128", "224.0.0.0/4", "ff00::/8",
    "192.0.0.0/24", "240.0.0.0/4"))
PRIVATE_NETWORKS = tuple(ipaddress.ip_network(n) for n in (
    "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "127.0.0.0/8", "100.64.0.0/10", "::1/128", "fc00::/7"))
# Not globally reachable (IANA special-purpose registries), named rather than left to the running
# Python's is_global, whose tables differ between versions (3.11 calls 192.0.0.192 global).
NOT_GLOBAL_NETWORKS = tuple(ipaddress.ip_network(n) for n in (
    "192.0.2.0/24", "192.88.99.0/24", "198.18.0.0/15", "198.51.100.0/24", "203.0.113.0/24", "100::/64",
    "2001::/23", "2001:db8::/32", "3fff::/20", "5f00::/16", "fec0::/10"))
# IPv6 forms that carry an IPv4 address; the address is judged by the IPv4 it carries.
NAT64 = ipaddress.ip_network("64:ff9b::/96")
NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")
IPV4_COMPATIBLE = ipaddress.ip_network("::/96")
REFUSED_NAMES = frozenset({"metadata.google.internal", "metadata", "metadata.goog", "instance-data",
                           "instance-data.ec2.internal"})


class EgressDenied(OSError):
    """An outbound call to an address the policy refuses (an OSError: callers treat it as a failed connection)."""


def embedded_ipv4(ip: IPAddress) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address carries (empty for a plain one)."""
    if not isinstance(ip, ipaddress.IPv6Address):
        return []
    if ip.ipv4_mapped is not None:
        return [ip.ipv4_mapped]
    if ip.sixtofour is not None:
        return [ip.sixtofour]
    if ip.teredo is not None:
        return list(ip.teredo)  # (server, client); the client is stored XOR 0xffffffff, undone here
    value = int(ip)
    if ip in NAT64:
        return [ipaddress.IPv4Address(value & 0xFFFFFFFF)]
    if ip in NAT64_LOCAL:
        # RFC 6052 puts the IPv4 after a /48 prefix at bits 48-63 and 72-87 (bits 64-71 are zero);
        # gateways that use a /96 inside this prefix put it in the last 32 bits: check both.
        rfc6052 = ((value >> 64) & 0xFFFF) << 16 | (value >> 40) & 0xFFFF
        return [ipaddress.IPv4Address(rfc6052), ipaddress.IPv4Address(value & 0xFFFFFFFF)]
    if ip in IPV4_COMPATIBLE and value > 1:  # not :: or ::1
        return [ipaddress.IPv4Address(value)]
    return []


def _check_one(ip: IPAddress, allow_private: bool) -> None:
    if any(ip in net for net in ALWAYS_REFUSED_NETWORKS) or ip.is_link_local or ip.is_multicast \
            or ip.is_unspecified:
        raise EgressDenied(f"{ip} is a link-local, metadata, multicast or reserved address; calls to it are "
                           "never made")
    if any(ip in net for net in PRIVATE_NETWORKS) or ip.is_loopback:
        if allow_private:
            return
        raise EgressDenied(f"{ip} is a private or loopback address; this stage does not call those")
    if any(ip in net for net in NOT_GLOBAL_NETWORKS) or not ip.is_global:
        raise EgressDenied(f"{ip} is not a globally reachable address; calls to it are never made")


def check_address(address: str, *, allow_private: bool) -> None:
    """EgressDenied unless the policy lets this stage call the address (an IPv4 inside an IPv6 too)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    carried = embedded_ipv4(ip)
    for inner in carried:
        try:
            _check_one(inner, allow_private)
        except EgressDenied as exc:
            raise EgressDenied(f"{ip} carries {inner}: {exc}") from None
    if not carried:
        _check_one(ip, allow_private)


def check_host(host: str) -> None:
    name = host.strip("[]").rstrip(".").lower()
    if name in REFUSED_NAMES:
        raise EgressDenied(f"'{name}' is a cloud metadata host; calls to it are never made")


def resolve(host: str, port: int, *, allow_private: bool) -> list[tuple[Any, ...]]:
    """getaddrinfo once; every address checked (one refused address refuses the host)."""
    check_host(host)
    try:
        infos = socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise OSError(f"cannot resolve {host}: {exc}") from None
    if not infos:
        raise OSError(f"cannot resolve {host}")
    for info in infos:
        address = info[4][0]
        if not isinstance(address, str):  # an address of neither IPv4 nor IPv6: nothing the policy can vet
            raise EgressDenied(f"{host} resolves to an address that is not IP")
        check_address(address, allow_private=allow_private)
    return infos


def check_url(url: str, *, allow_private: bool) -> None:
    """Resolves and checks a URL's host (a pre-flight check; connections check again themselves)."""
    parts = urlsplit(url)
    if not parts.hostname:
        raise EgressDenied("the URL has no host")
    resolve(parts.hostname, parts.port or (443 if parts.scheme == "https" else 80), allow_private=allow_private)


def guarded_create_connection(allow_private: bool):  # type: ignore[no-untyped-def]
    """A socket.create_connection that resolves once, checks, and connects to a checked address."""

    def create_connection(address: tuple[str, int], timeout: Any = socket._GLOBAL_DEFAULT_TIMEOUT,  # type: ignore[attr-defined]
                          source_address: Any = None) -> socket.socket:
        host, port = address
        error: OSError | None = None
        for family, kind, proto, _, sockaddr in resolve(host, port, allow_private=allow_private):
            sock = socket.socket(family, kind, proto)
            try:
                if timeout is not socket._GLOBAL_DEFAULT_TIMEOUT:  # type: ignore[attr-defined]
                    sock.settimeout(timeout)
                if source_address:
                    sock.bind(source_address)
                sock.connect(sockaddr)  # the checked address, not the name
                return sock
            except OSError as exc:
                error = exc
                sock.close()
        raise error or OSError(f"cannot connect to {host}")

    return create_connection


def _connection_class(base: type[http.client.HTTPConnection], allow_private: bool) -> Any:
    class Guarded(base):  # type: ignore[valid-type,misc]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._create_connection = guarded_create_connection(allow_private)

    return Guarded


class GuardedHTTPHandler(urllib.request.HTTPHandler):
    handler_order = 400  # opens before a plain HTTPHandler in the same opener

    def __init__(self, allow_private: bool):
        super().__init__()
        self._conn = _connection_class(http.client.HTTPConnection, allow_private)

    def http_open(self, req: Any) -> Any:
        return self.do_open(self._conn, req)


class GuardedHTTPSHandler(urllib.request.HTTPSHandler):
    handler_order = 400

    def __init__(self, allow_private: bool, context: Any = None):
        super().__init__(context=context)
        self._tls_context = context  # kept here: HTTPSHandler's own copy is private
        self._conn = _connection_class(http.client.HTTPSConnection, allow_private)

    def https_open(self, req: Any) -> Any:
        return self.do_open(self._conn, req, context=self._tls_context)


def http_client(allow_private: bool) -> Any:
    """The http.request step's HttpClient under this policy: a pre-flight check of every URL (the first
    and each redirect target) refused as HttpEgressDenied, and connections pinned to checked addresses."""
    from chalicelib.tasks.builtin.http_request import HTTP_EGRESS_DENIED, HttpClient
    from chalicelib.tasks.errors import StepError

    class EgressHttpClient(HttpClient):
        def resolve_and_check(self, url: str) -> None:
            try:
                check_url(url, allow_private=allow_private)
            except EgressDenied as exc:
                raise StepError(HTTP_EGRESS_DENIED, str(exc)) from None
            except OSError:
                pass  # a name that does not resolve: the connection reports it as HttpConnectionError

        def build_opener(self, *, follow_redirects: bool = True) -> urllib.request.OpenerDirector:
            opener = super().build_opener(follow_redirects=follow_redirects)
            context = self._ssl_context
            opener.add_handler(GuardedHTTPHandler(allow_private))
            opener.add_handler(GuardedHTTPSHandler(allow_private, context))
            return opener

    return EgressHttpClient()
