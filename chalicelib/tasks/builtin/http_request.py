"""http.request: call an HTTP(S) endpoint with urllib (no third-party client).

Output: ``{"status", "headers" (lower-cased names; repeated headers joined with ", "),
"body" (parsed JSON for application/json and */*+json, else text; None/"" when empty),
"elapsed_ms", "url" (the final URL, after redirects)}``.

Named errors:

* ``HttpStatusError``      the answer's status is not expected (default: not 2xx). An
                           unfollowed redirect (follow_redirects false, a redirect to a
                           non-http(s) scheme, a 307/308 for a non-GET) counts as such an answer.
* ``HttpTimeout``          no answer, or the body was not read, within ``timeout_seconds``.
                           The socket timeout bounds the connect and each read; the total is
                           checked between reads, so the worst case is about twice the timeout.
* ``HttpConnectionError``  DNS, connect, TLS or protocol failure.
* ``HttpResponseTooLarge`` the body is over ``max_response_bytes`` (known from Content-Length,
                           or after reading at most max+1 bytes; no more is ever read).

Egress: every URL (the first and each redirect target) goes through
``HttpClient.resolve_and_check(url)`` first. It allows everything for now; a policy plugs in
with ``HttpClient(resolve_and_check=...)`` (or a subclass), raising a StepError to refuse
(suggested name: ``HttpEgressDenied``). A policy that pins resolved addresses would also
override ``HttpClient.build_opener`` to connect to the checked address. No proxies (the
environment's *_proxy variables are ignored), no file:, ftp: or data: handlers at all.
Authorization, Cookie and Proxy-Authorization headers, and every header that carries a
credential, are dropped when a redirect leaves the original host.

Credentials: ``auth: {type: bearer|basic|header, credential: NAME, header?: NAME}`` sends the
named credential (resolved by the step runner, chalicelib/tasks/credentials.py) as
``Authorization: Bearer <value>``, as ``Authorization: Basic base64(<value>)`` (the value is
``user:password``), or as the value of ``header`` (default ``X-Api-Key``). ``{{ secrets.NAME }}``
placeholders work in any templated value too (a header, the URL, the body).
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from chalicelib.tasks.errors import INVALID_CONFIG, StepError
from chalicelib.tasks.registry import TaskContext, TaskType

ID = "http.request"

HTTP_STATUS_ERROR = "HttpStatusError"
HTTP_TIMEOUT = "HttpTimeout"
HTTP_CONNECTION_ERROR = "HttpConnectionError"
HTTP_RESPONSE_TOO_LARGE = "HttpResponseTooLarge"
HTTP_EGRESS_DENIED = "HttpEgressDenied"  # for the future egress policy; not raised here
ERRORS = (HTTP_STATUS_ERROR, HTTP_TIMEOUT, HTTP_CONNECTION_ERROR, HTTP_RESPONSE_TOO_LARGE)

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD")
DEFAULT_TIMEOUT_SECONDS = 10
MAX_TIMEOUT_SECONDS = 60
MIB = 1024 * 1024
DEFAULT_MAX_RESPONSE_BYTES = 1 * MIB
MAX_RESPONSE_BYTES = 5 * MIB
MAX_REDIRECTS = 5
READ_CHUNK = 64 * 1024
ERROR_BODY_SNIPPET = 512
USER_AGENT = "Stepflow/1.0"
_SENSITIVE_HEADERS = ("Authorization", "Cookie", "Proxy-authorization")
AUTH_TYPES = ("bearer", "basic", "header")
DEFAULT_AUTH_HEADER = "X-Api-Key"
# RFC 9110 token characters.
_HEADER_NAME_PATTERN = r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$"

CONFIG_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "method": {"enum": list(METHODS), "default": "GET", "description": "HTTP method."},
        "url": {
            "type": "string",
            "pattern": r"^[Hh][Tt][Tt][Pp][Ss]?://\S+$",
            "maxLength": 8192,
            "description": "http:// or https:// URL; {{ path }} placeholders are filled from the step input.",
        },
        "headers": {
            "type": "object",
            "propertyNames": {"pattern": _HEADER_NAME_PATTERN, "maxLength": 256},
            "additionalProperties": {"type": ["string", "number"]},
            "maxProperties": 100,
            "description": "Request headers; values are templated.",
        },
        "body": {
            "type": ["object", "array", "string", "null"],
            "description": (
                "Request body: an object or array is sent as JSON (Content-Type application/json unless set),"
                " a string as UTF-8 text (text/plain unless set)."
            ),
        },
        "timeout_seconds": {
            "type": "number",
            "exclusiveMinimum": 0,
            "maximum": MAX_TIMEOUT_SECONDS,
            "default": DEFAULT_TIMEOUT_SECONDS,
        },
        "max_response_bytes": {
            "type": "integer",
            "minimum": 0,
            "maximum": MAX_RESPONSE_BYTES,
            "default": DEFAULT_MAX_RESPONSE_BYTES,
        },
        "expect_status": {
            "type": "array",
            "items": {"type": "integer", "minimum": 100, "maximum": 599},
            "minItems": 1,
            "uniqueItems": True,
            "description": "Statuses that count as success; default any 2xx.",
        },
        "follow_redirects": {
            "type": "boolean",
            "default": True,
            "description": f"Follow up to {MAX_REDIRECTS} http(s) redirects.",
        },
        "auth": {
            "type": "object",
            "properties": {
                "type": {"enum": list(AUTH_TYPES), "description": "bearer, basic (the value is user:password) "
                                                                   "or header (the value as is, in `header`)"},
                "credential": {"type": "string", "pattern": r"^[A-Za-z][A-Za-z0-9_]{0,63}$",
                               "description": "The name of one of the tenant's credentials (POST /credentials)."},
                "header": {"type": "string", "pattern": _HEADER_NAME_PATTERN, "maxLength": 256,
                           "description": f"For type header; default {DEFAULT_AUTH_HEADER}."},
            },
            "required": ["type", "credential"],
            "additionalProperties": False,
            "description": "Authenticate with a stored credential; its value never appears in the run's data.",
        },
    },
    "required": ["url"],
    "additionalProperties": False,
}
INPUT_SCHEMA: dict[str, Any] = {"type": "object"}
OUTPUT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "status": {"type": "integer"},
        "headers": {"type": "object", "additionalProperties": {"type": "string"}},
        "body": {"description": "Parsed JSON for JSON responses, else text."},
        "elapsed_ms": {"type": "integer", "minimum": 0},
        "url": {"type": "string"},
    },
    "required": ["status", "headers", "body", "elapsed_ms"],
}


# --------------------------------------------------------------------------- client


class HttpClient:
    """Opens requests for http.request; the seam for egress policy and for tests.

    ``resolve_and_check(url)`` is called before the request and before following each
    redirect; raise (a StepError) to refuse. ``build_opener`` and ``open`` may be overridden.
    """

    def __init__(
        self,
        *,
        resolve_and_check: Callable[[str], None] | None = None,
        ssl_context: ssl.SSLContext | None = None,
        max_redirects: int = MAX_REDIRECTS,
    ):
        self._resolve_and_check = resolve_and_check
        self._ssl_context = ssl_context
        self.max_redirects = max_redirects

    def resolve_and_check(self, url: str) -> None:
        """Egress hook. Default: allow everything."""
        if self._resolve_and_check is not None:
            self._resolve_and_check(url)

    def build_opener(self, *, follow_redirects: bool = True) -> urllib.request.OpenerDirector:
        # Built by hand rather than with build_opener(): only http and https handlers exist,
        # and no ProxyHandler reads the environment.
        if self._ssl_context is None:
            self._ssl_context = ssl.create_default_context()
        opener = urllib.request.OpenerDirector()
        for handler in (
            urllib.request.ProxyHandler({}),
            urllib.request.UnknownHandler(),
            urllib.request.HTTPHandler(),
            urllib.request.HTTPSHandler(context=self._ssl_context),
            urllib.request.HTTPDefaultErrorHandler(),
            _RedirectHandler(self, follow_redirects),
            urllib.request.HTTPErrorProcessor(),
        ):
            opener.add_handler(handler)
        return opener

    def open(self, request: urllib.request.Request, *, timeout: float, follow_redirects: bool = True) -> Any:
        """The response (an http.client.HTTPResponse-like object). Non-2xx raise urllib's HTTPError."""
        return self.build_opener(follow_redirects=follow_redirects).open(request, timeout=timeout)


class _RedirectHandler(urllib.request.HTTPRedirectHandler):
    def __init__(self, client: HttpClient, follow: bool):
        self.client = client
        self.follow = follow
        self.max_redirections = client.max_redirects  # type: ignore[misc]

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        # Returning None leaves the 3xx as the final answer (HTTPError -> status check).
        if not self.follow or urlsplit(newurl).scheme.lower() not in ("http", "https"):
            return None
        try:
            self.client.resolve_and_check(newurl)
        except BaseException:
            fp.close()
            raise
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        if new is None:
            return new
        carrying = getattr(req, "credential_headers", ())
        if urlsplit(newurl).netloc.lower() != urlsplit(req.full_url).netloc.lower():
            for name in (*_SENSITIVE_HEADERS, *carrying):
                new.headers.pop(name, None)
                new.unredirected_hdrs.pop(name, None)
        else:
            new.credential_headers = carrying  # type: ignore[attr-defined]  # a later off-host redirect drops them
        return new


# --------------------------------------------------------------------------- handler


def display_url(url: str) -> str:
    """The URL for messages: no credentials, no query string, no fragment."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        if parts.port:
            host = f"{host}:{parts.port}"
        return urlunsplit((parts.scheme, host, parts.path, "", ""))
    except ValueError:
        return "<invalid url>"


def _check_url(url: str) -> None:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError as exc:
        raise StepError(INVALID_CONFIG, f"config.url: {exc}") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise StepError(INVALID_CONFIG, "config.url: only http:// and https:// URLs are allowed")
    if not parts.hostname:
        raise StepError(INVALID_CONFIG, "config.url: the URL has no host")
    if parts.username is not None or parts.password is not None:
        raise StepError(INVALID_CONFIG, "config.url: credentials in the URL are not allowed; use a header")
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in url):
        raise StepError(INVALID_CONFIG, "config.url: the URL contains whitespace or control characters")


def _auth_header(auth: dict[str, Any] | None, secrets: dict[str, str]) -> tuple[str, str] | None:
    if not auth:
        return None
    name = auth.get("credential")
    value = secrets.get(name) if isinstance(name, str) else None
    if value is None:
        raise StepError(INVALID_CONFIG, f"config.auth.credential: the credential '{name}' was not resolved")
    kind = auth.get("type")
    if kind == "bearer":
        return "Authorization", f"Bearer {value}"
    if kind == "basic":
        return "Authorization", "Basic " + base64.b64encode(value.encode("utf-8")).decode("ascii")
    return str(auth.get("header") or DEFAULT_AUTH_HEADER), value


def _build_request(config: dict[str, Any], secrets: dict[str, str] | None = None) -> urllib.request.Request:
    method = config.get("method", "GET")
    url = config["url"]
    _check_url(url)
    secrets = secrets or {}
    headers: dict[str, str] = {"User-Agent": USER_AGENT}
    given = list((config.get("headers") or {}).items())
    auth = _auth_header(config.get("auth"), secrets)
    if auth is not None:
        given.append(auth)  # last: it replaces a header of the same name
    carrying: list[str] = []
    for name, value in given:
        text = value if isinstance(value, str) else json.dumps(value)
        if any(ch in text for ch in "\r\n\0"):
            raise StepError(INVALID_CONFIG, f"config.headers.{name}: header values cannot contain line breaks")
        # Case-insensitively replace a default (User-Agent) with the user's header.
        for existing in [k for k in headers if k.lower() == name.lower()]:
            del headers[existing]
        headers[name] = text
        if any(secret and secret in text for secret in secrets.values()):
            carrying.append(name.capitalize())  # urllib's spelling of header names
    lower = {k.lower() for k in headers}
    body = config.get("body")
    data = None
    if isinstance(body, (dict, list)):
        data = json.dumps(body, ensure_ascii=False, allow_nan=False).encode("utf-8")
        if "content-type" not in lower:
            headers["Content-Type"] = "application/json"
    elif isinstance(body, str):
        data = body.encode("utf-8")
        if "content-type" not in lower:
            headers["Content-Type"] = "text/plain; charset=utf-8"
    request = urllib.request.Request(url, data=data, headers=headers, method=method)
    request.credential_headers = tuple(carrying)  # type: ignore[attr-defined]  # dropped off-host (_RedirectHandler)
    return request


def _lower_headers(message: Any) -> dict[str, str]:
    result: dict[str, str] = {}
    if message is None:
        return result
    for name, value in message.items():
        key = name.lower()
        result[key] = f"{result[key]}, {value}" if key in result else str(value)
    return result


def _timeout_error(where: str, timeout: float) -> StepError:
    return StepError(HTTP_TIMEOUT, f"{where}: no answer within {timeout:g} seconds")


def _read_body(response: Any, limit: int, deadline: float, where: str, timeout: float) -> bytes:
    """At most ``limit`` bytes; reads at most limit+1 bytes in total, raising HttpResponseTooLarge past limit."""
    chunks: list[bytes] = []
    total = 0
    while True:
        if time.monotonic() > deadline:
            raise _timeout_error(where, timeout)
        try:
            chunk = response.read(min(READ_CHUNK, limit + 1 - total))
        except TimeoutError:
            raise _timeout_error(where, timeout) from None
        except (OSError, http.client.HTTPException) as exc:
            raise StepError(HTTP_CONNECTION_ERROR, f"{where}: reading the answer failed: {exc}") from None
        if not chunk:
            return b"".join(chunks)
        total += len(chunk)
        if total > limit:
            raise StepError(
                HTTP_RESPONSE_TOO_LARGE, f"{where}: the answer is larger than {limit} bytes", details={"limit": limit}
            )
        chunks.append(chunk)


def _content_type(headers: dict[str, str]) -> tuple[str, str | None]:
    value = headers.get("content-type", "")
    mime, _, params = value.partition(";")
    charset = None
    for param in params.split(";"):
        key, _, val = param.strip().partition("=")
        if key.strip().lower() == "charset" and val.strip():
            charset = val.strip().strip('"')
    return mime.strip().lower(), charset


def _decode_text(raw: bytes, charset: str | None) -> str:
    try:
        return raw.decode(charset or "utf-8", errors="replace")
    except LookupError:
        return raw.decode("utf-8", errors="replace")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _parse_body(raw: bytes, headers: dict[str, str]) -> Any:
    mime, charset = _content_type(headers)
    if mime == "application/json" or (mime.startswith("application/") and mime.endswith("+json")):
        if not raw.strip():
            return None
        try:
            return json.loads(raw, parse_constant=_reject_constant)
        except ValueError:
            pass  # declared JSON but is not: hand back the text
    return _decode_text(raw, charset)


def _status_ok(status: int, expect: list[int] | None) -> bool:
    return status in expect if expect else 200 <= status < 300


def make_handler(client: HttpClient | None = None) -> Callable[[TaskContext], dict[str, Any]]:
    http_client = client if client is not None else HttpClient()

    def handle(ctx: TaskContext) -> dict[str, Any]:
        config = ctx.config
        request = _build_request(config, ctx.secrets)
        where = f"{request.get_method()} {display_url(request.full_url)}"
        timeout = float(config.get("timeout_seconds", DEFAULT_TIMEOUT_SECONDS))
        limit = int(config.get("max_response_bytes", DEFAULT_MAX_RESPONSE_BYTES))
        expect = config.get("expect_status")
        follow = bool(config.get("follow_redirects", True))

        http_client.resolve_and_check(request.full_url)
        start = time.monotonic()
        deadline = start + timeout
        try:
            response = http_client.open(request, timeout=timeout, follow_redirects=follow)
        except urllib.error.HTTPError as exc:
            response = exc  # an answer, just not a 2xx one
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, TimeoutError):
                raise _timeout_error(where, timeout) from None
            raise StepError(HTTP_CONNECTION_ERROR, f"{where}: {exc.reason}") from None
        except TimeoutError:
            raise _timeout_error(where, timeout) from None
        except (OSError, http.client.HTTPException) as exc:
            raise StepError(HTTP_CONNECTION_ERROR, f"{where}: {exc or type(exc).__name__}") from None
        except ValueError as exc:  # e.g. http.client refusing a header
            raise StepError(INVALID_CONFIG, f"config: {exc}") from None

        try:
            status = int(getattr(response, "status", None) or response.code)
            headers = _lower_headers(getattr(response, "headers", None))
            final_url = response.geturl() if hasattr(response, "geturl") else request.full_url
            if not _status_ok(status, expect):
                snippet = _read_snippet(response, deadline)
                raise StepError(
                    HTTP_STATUS_ERROR,
                    f"{where} answered HTTP {status}" + (f": {snippet}" if snippet else ""),
                    details={"status": status, "headers": headers, "body": snippet},
                )
            declared = headers.get("content-length", "")
            if declared.isdigit() and int(declared) > limit:
                raise StepError(
                    HTTP_RESPONSE_TOO_LARGE,
                    f"{where}: the answer is {declared} bytes, more than {limit}",
                    details={"limit": limit, "content_length": int(declared)},
                )
            raw = b"" if request.get_method() == "HEAD" else _read_body(response, limit, deadline, where, timeout)
        finally:
            _close(response)
        return {
            "status": status,
            "headers": headers,
            "body": _parse_body(raw, headers),
            "elapsed_ms": round((time.monotonic() - start) * 1000),
            "url": final_url,
        }

    return handle


def _read_snippet(response: Any, deadline: float) -> str:
    """The start of an error answer, for the message; failures to read it are ignored."""
    if time.monotonic() > deadline:
        return ""
    try:
        raw = response.read(ERROR_BODY_SNIPPET)
    except Exception:  # noqa: BLE001 - best effort, the status is the error
        return ""
    if not raw:
        return ""
    text = raw.decode("utf-8", errors="replace").strip()
    return text + ("..." if len(raw) >= ERROR_BODY_SNIPPET else "")


def _close(response: Any) -> None:
    with contextlib.suppress(Exception):
        response.close()


def register(registry: Any, *, client: HttpClient | None = None) -> None:
    registry.register(
        TaskType(
            id=ID,
            name="HTTP request",
            category="integration",
            description=(
                "Calls an http(s) URL and outputs status, headers, body (parsed when JSON) and elapsed_ms."
                " Fails with HttpStatusError for an unexpected status (default: not 2xx)."
            ),
            config_schema=CONFIG_SCHEMA,
            input_schema=INPUT_SCHEMA,
            output_schema=OUTPUT_SCHEMA,
            handler=make_handler(client),
            errors=ERRORS,
            raw_config_keys=("auth",),
            credential_fields=("auth.credential",),
            examples=({"title": "Fetch a customer",
                       "config": {"url": "https://api.example.com/customers/{{ customer_id }}",
                                  "headers": {"Accept": "application/json"}},
                       "output": {"status": 200, "headers": {"content-type": "application/json"},
                                  "body": {"id": "c-1", "tier": "gold"}, "elapsed_ms": 84,
                                  "url": "https://api.example.com/customers/c-1"}},),
        )
    )
