"""The local service's HTTP server: Chalice's request handling on a threaded, keep-alive, quiet server.

Chalice's dev server (chalice.local) translates each HTTP request into the API Gateway event the Lambda
receives and runs the app on it; that part is kept as is. What changes is the socket layer under it:
- a response leaves in one write on a socket without Nagle's algorithm (the dev server wrote the
  headers and the body separately, unbuffered, so every keep-alive request waited ~40 ms for the
  client's delayed ACK);
- the listen backlog is a real one, and each connection gets its own daemon thread;
- an idle keep-alive connection is closed after IDLE_SECONDS, so idle clients do not hold threads;
- no access line per request unless verbose; failures of the server itself are still logged;
- a followed read of an instance's events is streamed on the one connection (see `_stream`), where API
  Gateway can only answer it page by page.
"""

from __future__ import annotations

import logging
import os
import time
from http.server import ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

LOG = logging.getLogger("stepflow_local.http")

VERBOSE_ENV = "STEPFLOW_LOCAL_VERBOSE"
# Connections the kernel queues before the server accepts them. socketserver's default of 5 made a burst
# of a few dozen simultaneous requests (a team clicking "approve" at once) fail with connection resets.
LISTEN_BACKLOG = 128
IDLE_SECONDS = 60.0  # a keep-alive connection with no request for this long is closed (its thread ends)
STREAM_SECONDS_ENV = "STEPFLOW_LOCAL_STREAM_SECONDS"
BASE_PATH_ENV = "STEPFLOW_LOCAL_BASE_PATH"
# A streamed follow asks the app for the next page with this wait: when it passes with nothing new, a
# heartbeat goes out (proxies and browsers close connections that stay silent for long).
HEARTBEAT_SECONDS = 15.0
FOLLOW_HEADER = "Stepflow-Follow"
CONTINUATION_HEADERS = ("Stepflow-Cursor", "Stepflow-More", "Stepflow-Ended", "Stepflow-Instance-Status",
                        "Content-Length")


def stream_seconds_from_env() -> float | None:
    """How long a followed stream may stay open ($STEPFLOW_LOCAL_STREAM_SECONDS; unset: until the instance
    ends). Set it to try a client against API Gateway's behaviour, which ends every response by 29 s."""
    raw = os.environ.get(STREAM_SECONDS_ENV, "").strip()
    return float(raw) if raw else None


def verbose_from_env() -> bool:
    return os.environ.get(VERBOSE_ENV, "").strip().lower() in ("1", "true", "yes", "on")


class LocalHTTPServer(ThreadingHTTPServer):
    """http.server's ThreadingHTTPServer (a daemon thread per connection) with a real listen backlog."""

    request_queue_size = LISTEN_BACKLOG
    block_on_close = False  # shutdown must not wait for browsers holding keep-alive connections open
    closing = False  # set on shutdown: open streams end at their next page

    def shutdown(self) -> None:
        self.closing = True
        super().shutdown()


def base_path_from_env() -> str:
    """$STEPFLOW_LOCAL_BASE_PATH (e.g. `/dev`): the server answers under it, as API Gateway answers under
    its stage, and the app sees it in the request context's path as it would there."""
    raw = os.environ.get(BASE_PATH_ENV, "").strip().strip("/")
    return "/" + raw if raw else ""


def staged_gateway(app: Any, config: Any, base_path: str) -> Any:
    """The local gateway (stepflow_local/gateway.py), putting `base_path` in front of requestContext.path."""
    from stepflow_local.gateway import StepflowGateway

    class StagedGateway(StepflowGateway):
        def _generate_lambda_event(self, method: str, path: str, headers: Any, body: Any) -> Any:
            event = super()._generate_lambda_event(method, path, headers, body)
            event["requestContext"]["path"] = base_path + event["requestContext"]["path"]
            return event

    gateway = StagedGateway(app, config)
    gateway.base_path = base_path  # type: ignore[attr-defined]
    return gateway


def handler_class(verbose: bool) -> type:
    """A ChaliceRequestHandler subclass: buffered single-write responses, TCP_NODELAY, quiet unless verbose."""
    from chalice.local import ChaliceRequestHandler, LocalGatewayException

    class LocalRequestHandler(ChaliceRequestHandler):
        # StreamRequestHandler: a buffered wfile, flushed once per request by handle_one_request, so the
        # status line, headers and body go out together; and TCP_NODELAY on the accepted socket, so the
        # flush is sent at once rather than after the client's delayed ACK of a previous segment.
        wbufsize = -1
        disable_nagle_algorithm = True
        timeout = IDLE_SECONDS

        def __init__(self, request: Any, client_address: Any, server: Any, app_object: Any, config: Any) -> None:
            # One gateway per server, not per connection: it only holds the app, the config and the route table.
            # Ours sends unknown paths and OPTIONS to the app, as the deployed API Gateway does (gateway.py).
            gateway = getattr(server, "stepflow_gateway", None)
            if gateway is None:
                gateway = server.stepflow_gateway = staged_gateway(app_object, config, base_path_from_env())
            self.local_gateway = gateway
            super(ChaliceRequestHandler, self).__init__(request, client_address, server)

        def _generic_handle(self) -> None:
            headers, body = self._parse_payload()
            base = getattr(self.local_gateway, "base_path", "")
            if base and not (self.path == base or self.path.startswith((base + "/", base + "?"))):
                self._send_http_response(404, {"Content-Type": "application/json"},
                                         '{"detail": "not found: every path starts with ' + base + '"}')
                return
            path = self.path[len(base):] or "/"
            try:
                response = self.local_gateway.handle_request(method=self.command, path=path, headers=headers,
                                                             body=body)
            except LocalGatewayException as exc:
                self._send_error_response(exc)
                return
            merged = {**response["headers"], **response["multiValueHeaders"]}
            if self.command == "GET" and response["statusCode"] == 200 and merged.get(FOLLOW_HEADER) == "true" \
                    and merged.get("Stepflow-Ended") != "true":
                self._stream(path, headers, merged, response["body"] or "")
                return
            response = self._handle_binary(response)
            self._send_http_response(response["statusCode"], merged, response["body"])

        # The base class bound its own handler to these names: bind this one.
        do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = do_PATCH = do_OPTIONS = _generic_handle

        def _stream(self, path: str, request_headers: dict[str, str], first_headers: dict[str, Any], first_body: str) -> None:
            """Writes a followed read's pages on this connection as they come, until the instance ends.

            The first page is the app's answer; each next one is the same request from the page's cursor
            (`after`), asked with a wait of HEARTBEAT_SECONDS: an empty page becomes a heartbeat (an SSE
            comment, or an empty NDJSON line). Ends (the last chunk) when a page says the log has ended,
            after $STEPFLOW_LOCAL_STREAM_SECONDS, or when the server stops; the client resumes from its
            cursor as it would after API Gateway's limit.
            """
            sse = str(first_headers.get("Content-Type", "")).startswith("text/event-stream")
            heartbeat = b": heartbeat\n\n" if sse else b"\n"
            limit = stream_seconds_from_env()
            ends_at = None if limit is None else time.monotonic() + limit
            self.send_response(200)
            for name, value in first_headers.items():
                if name not in CONTINUATION_HEADERS:
                    self.send_header(name, value)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self.wfile.flush()  # from here on the socket is written directly: nothing is left in a buffer
            parts = urlsplit(path)
            params = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in ("after", "wait")]
            body, cursor = first_body, first_headers.get("Stepflow-Cursor")
            try:
                while True:
                    self._chunk(body.encode("utf-8") if body else heartbeat)
                    remaining = None if ends_at is None else ends_at - time.monotonic()
                    if self.server.closing or (remaining is not None and remaining <= 0):
                        break
                    wait = HEARTBEAT_SECONDS if remaining is None else max(0.0, min(HEARTBEAT_SECONDS, remaining))
                    query = urlencode([*params, *([("after", cursor)] if cursor else []), ("wait", f"{wait:.3f}")])
                    page = self.local_gateway.handle_request(method="GET", path=f"{parts.path}?{query}",
                                                             headers=request_headers, body=None)
                    page_headers = {**page["headers"], **page["multiValueHeaders"]}
                    if page["statusCode"] != 200:  # 204: ended with nothing more; an error: the client asks again
                        break
                    body = page["body"] or ""
                    if sse and body.startswith("retry:"):
                        body = body.split("\n\n", 1)[1]  # said once, in the first page
                    cursor = page_headers.get("Stepflow-Cursor") or cursor
                    if page_headers.get("Stepflow-Ended") == "true":
                        if body:
                            self._chunk(body.encode("utf-8"))
                        break
                self.connection.sendall(b"0\r\n\r\n")
            except OSError:  # BrokenPipeError, ConnectionResetError, a timeout
                self.close_connection = True  # the client went away: nothing more to write

        def _chunk(self, data: bytes) -> None:
            self.connection.sendall(b"%x\r\n%s\r\n" % (len(data), data))

        def log_request(self, code: Any = "-", size: Any = "-") -> None:
            if verbose:
                LOG.info('"%s" %s %s', self.requestline, code, size)

        def log_error(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's signature
            # Malformed requests and timeouts: worth a line whether or not access lines are on.
            LOG.warning("%s: " + format, self.address_string(), *args)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            if verbose:
                LOG.info("%s: " + format, self.address_string(), *args)

    return LocalRequestHandler


def create_server(app: Any, config: Any, host: str, port: int, *, verbose: bool = False) -> Any:
    """A chalice.local.LocalDevServer for `app` on our server and handler classes (binds the port now)."""
    from chalice.local import CustomLocalChalice, LocalChalice, LocalDevServer

    if not isinstance(app, LocalChalice):
        # What chalice.local.create_local_server does: current_request becomes thread-local, since
        # requests on different connections run on different threads against the one app object.
        CustomLocalChalice.__bases__ = (LocalChalice, app.__class__)
        app.__class__ = CustomLocalChalice
    return LocalDevServer(app, config, host, port, handler_cls=handler_class(verbose), server_cls=LocalHTTPServer)
