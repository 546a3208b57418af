"""The pieces the tracing probes share: a UDP socket standing in for the X-Ray daemon with Lambda's trace
environment (run before `import app`), the wait for the handler's subsegment, and what that subsegment must be."""

from __future__ import annotations

import json

TRACE_ID, PARENT_ID = "1-5759e988-bd862e3fe1be46a994272793", "53995c3f42cd8ad8"

# Python source, first in a probe: the daemon socket and the environment Lambda gives a traced invocation.
DAEMON = f"""
import json, os, socket, sys, time
daemon = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
daemon.bind(("127.0.0.1", 0))
daemon.settimeout(0.2)
os.environ.update({{"AWS_LAMBDA_FUNCTION_NAME": "stepflow-dev-api", "LAMBDA_TASK_ROOT": os.getcwd(),
                   "AWS_XRAY_DAEMON_ADDRESS": "127.0.0.1:%d" % daemon.getsockname()[1],
                   "_X_AMZN_TRACE_ID": "Root={TRACE_ID};Parent={PARENT_ID};Sampled=1"}})
"""
# Python source, after the request: what the daemon received, until a handler subsegment or `wait` seconds.
RECEIVE = """
sent, deadline = [], time.monotonic() + wait
while time.monotonic() < deadline and not any("## " in s for s in sent):
    try:
        sent.append(daemon.recv(65536).decode())
    except socket.timeout:
        pass
"""


def check_handler_segment(sent: list[str], name: str) -> None:
    """The one subsegment named `name` is the handler's, under Lambda's trace, without captured responses."""
    segments = [json.loads(part) for datagram in sent for part in datagram.splitlines()[1:]]
    [handler] = [s for s in segments if s["name"] == name]
    assert handler["trace_id"] == TRACE_ID and handler["parent_id"] == PARENT_ID
    assert handler["annotations"] == {"ColdStart": True, "Service": "stepflow"}
    assert "metadata" not in handler  # responses are not captured: they hold users' data

