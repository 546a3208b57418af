"""The local service's HTTP server: Chalice's request handling on a threaded, keep-alive, quiet server.

Chalice's dev server (chalice.local) translates each HTTP request into the API Gateway event the Lambda
receives and runs the app on it; that part is kept as is. What changes is the socket layer under it:
- a response leaves in one write on a socket without Nagle's algorithm (the dev server wrote the
  headers and the body separately, unbuffered, so every keep-alive request waited ~40 ms for the
  client's delayed ACK);
- the listen backlog is a real one, and each connection gets its own daemon thread;
- an idle keep-alive connection is closed after IDLE_SECONDS, so idle clients do not hold threads;
- no access line per request unless verbose; failures of the server itself are still logged.
"""

from __future__ import annotations

import logging
import os
from http.server import ThreadingHTTPServer
from typing import Any

LOG = logging.getLogger("stepflow_local.http")

VERBOSE_ENV = "STEPFLOW_LOCAL_VERBOSE"
# Connections the kernel queues before the server accepts them. socketserver's default of 5 made a burst
# of a few dozen simultaneous requests (a team clicking "approve" at once) fail with connection resets.
LISTEN_BACKLOG = 128
IDLE_SECONDS = 60.0  # a keep-alive connection with no request for this long is closed (its thread ends)


def verbose_from_env() -> bool:
    return os.environ.get(VERBOSE_ENV, "").strip().lower() in ("1", "true", "yes", "on")


class LocalHTTPServer(ThreadingHTTPServer):
    """http.server's ThreadingHTTPServer (a daemon thread per connection) with a real listen backlog."""

    request_queue_size = LISTEN_BACKLOG
    block_on_close = False  # shutdown must not wait for browsers holding keep-alive connections open


def handler_class(verbose: bool) -> type:
    """A ChaliceRequestHandler subclass: buffered single-write responses, TCP_NODELAY, quiet unless verbose."""
    from chalice.local import ChaliceRequestHandler

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
                from stepflow_local.gateway import StepflowGateway

                gateway = server.stepflow_gateway = StepflowGateway(app_object, config)
            self.local_gateway = gateway
            super(ChaliceRequestHandler, self).__init__(request, client_address, server)

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
