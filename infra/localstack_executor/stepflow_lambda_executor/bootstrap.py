"""One Lambda execution environment as a local process, speaking LocalStack's runtime protocol.

Started by executor.py under the function's Python (`-I -S`: no site-packages) with the environment
LocalStack gives a function. Standard library only. Like the Lambda Python runtime it puts the function's
code first on sys.path, then the runtime's own packages (boto3), imports the handler once, and calls it
once per invocation with the event and a context object. Protocol (as LocalStack's container init):
  - serves POST /invoke on 127.0.0.1:$STEPFLOW_EXECUTOR_PORT ({"invoke-id", "payload", ...}), answers at once;
  - reports to $LOCALSTACK_RUNTIME_ENDPOINT: status/<id>/ready after the import (status/<id>/error with
    the error when it fails), then per invocation: invocations/<request>/logs, then .../response or .../error.
A handler that outlives the function's timeout gets Sandbox.Timedout and the process starts afresh (a
thread cannot be stopped), as Lambda re-initialises an environment after a timeout.
"""

from __future__ import annotations

import importlib
import io
import json
import os
import queue
import sys
import threading
import time
import traceback
import urllib.request
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

RESTARTED = "STEPFLOW_EXECUTOR_RESTARTED"
# How executor.py starts this file, and how it starts itself again after a timeout.
INTERPRETER_FLAGS = ("-I", "-S", "-u")
ENDPOINT = os.environ.get("LOCALSTACK_RUNTIME_ENDPOINT", "").rstrip("/")
RUNTIME_ID = os.environ.get("LOCALSTACK_RUNTIME_ID", "")
# Calls to LocalStack must not go through a proxy from the environment.
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))
INVOCATIONS: queue.Queue[dict[str, Any]] = queue.Queue()


class Capture(io.TextIOBase):
    """stdout/stderr: written through to the process log, and kept per invocation for LocalStack's logs."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream
        self.kept: list[str] | None = None

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return "utf-8"

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self.stream.write(text)
        if self.kept is not None:
            self.kept.append(text)
        return len(text)

    def flush(self) -> None:
        self.stream.flush()


class Context:
    """The Lambda context object, with the attributes the Python runtime gives."""

    def __init__(self, request_id: str, function_arn: str, deadline: float) -> None:
        self.aws_request_id = request_id
        self.invoked_function_arn = function_arn
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "")
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        self.memory_limit_in_mb = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME", "")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME", "")
        self.identity = None
        self.client_context = None
        self._deadline = deadline

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def post(path: str, body: bytes) -> None:
    request = urllib.request.Request(f"{ENDPOINT}{path}", data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
    with OPENER.open(request, timeout=60) as response:
        response.read()


def function_frames(exc: BaseException) -> list[traceback.FrameSummary]:
    """The traceback without this file's frames: the function's own, as Lambda reports them."""
    return [frame for frame in traceback.extract_tb(exc.__traceback__) if frame.filename != __file__]


def error_payload(exc: BaseException, error_type: str | None = None, message: str | None = None) -> bytes:
    """The Python runtime's error document: errorType becomes the Step Functions error name."""
    return json.dumps({
        "errorMessage": str(exc) if message is None else message,
        "errorType": error_type or type(exc).__name__,
        "stackTrace": traceback.format_list(function_frames(exc)),
    }).encode()


def load_handler(name: str) -> Any:
    """Imports `module.function` (`folder/module.function` too); raises InitError with Lambda's error type."""
    module_name, _, function_name = name.replace("/", ".").rpartition(".")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise InitError(error_payload(exc, "Runtime.ImportModuleError",
                                      f"Unable to import module '{module_name}': {exc}")) from exc
    except SyntaxError as exc:
        raise InitError(error_payload(exc, "Runtime.UserCodeSyntaxError")) from exc
    except Exception as exc:  # noqa: BLE001 - any failure at import is the function's init error
        raise InitError(error_payload(exc)) from exc
    handler = getattr(module, function_name, None)
    if not callable(handler):
        raise InitError(json.dumps({"errorType": "Runtime.HandlerNotFound",
                                    "errorMessage": f"Handler '{function_name}' missing on module '{module_name}'"}
                                   ).encode())
    return handler


class InitError(Exception):
    def __init__(self, payload: bytes) -> None:
        super().__init__(payload.decode())
        self.payload = payload


def invoke(handler: Any, invocation: dict[str, Any], out: Capture, err: Capture) -> bool:
    """Runs one invocation and reports it; True when it timed out (the process must start afresh)."""
    request_id = invocation.get("invoke-id", "")
    timeout = float(os.environ.get("AWS_LAMBDA_FUNCTION_TIMEOUT") or 3)
    started = time.monotonic()
    context = Context(request_id, invocation.get("invoked-function-arn", ""), started + timeout)
    os.environ["_X_AMZN_TRACE_ID"] = invocation.get("trace-id", "")
    out.kept = err.kept = kept = []
    print(f"START RequestId: {request_id} Version: {context.function_version}", file=out)
    outcome: dict[str, bytes] = {}

    def call() -> None:
        if isinstance(handler, InitError):  # the import failed again after a restart
            outcome["error"] = handler.payload
            return
        try:
            payload = invocation.get("payload") or "{}"
            result = handler(json.loads(payload), context)
        except Exception as exc:  # noqa: BLE001 - an unhandled function error, reported as Lambda does
            outcome["error"] = error_payload(exc)
            trace = "".join(traceback.format_list(function_frames(exc)))
            print(f"[ERROR] {type(exc).__name__}: {exc}\nTraceback (most recent call last):\n{trace}", file=err)
            return
        try:
            outcome["response"] = json.dumps(result).encode()
        except (TypeError, ValueError) as exc:
            outcome["error"] = error_payload(exc, "Runtime.MarshalError", f"Unable to marshal response: {exc}")

    worker = threading.Thread(target=call, name=f"invocation-{request_id}", daemon=True)
    worker.start()
    worker.join(timeout)
    timed_out = worker.is_alive()
    if timed_out:
        outcome = {"error": json.dumps({
            "errorType": "Sandbox.Timedout",
            "errorMessage": f"RequestId: {request_id} Error: Task timed out after {timeout:.2f} seconds"}).encode()}
    elapsed_ms = (time.monotonic() - started) * 1000
    print(f"END RequestId: {request_id}\nREPORT RequestId: {request_id}\tDuration: {elapsed_ms:.2f} ms", file=out)
    out.kept = err.kept = None
    post(f"/invocations/{request_id}/logs", json.dumps({"logs": "".join(kept)}).encode())
    if "response" in outcome:
        post(f"/invocations/{request_id}/response", outcome["response"])
    else:
        post(f"/invocations/{request_id}/error", outcome["error"])
    return timed_out


def serve_invocations(handler: Any, out: Capture, err: Capture) -> None:
    while True:
        if invoke(handler, INVOCATIONS.get(), out, err):
            out.flush()
            err.flush()
            os.environ[RESTARTED] = "1"
            os.execv(sys.executable, [sys.executable, *INTERPRETER_FLAGS, __file__])


class InvokeRequests(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        if self.path != "/invoke":
            self.send_error(404)
            return
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        INVOCATIONS.put(json.loads(body))
        self.send_response(202)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass


def exit_with_parent(parent: int) -> None:
    """Ends this environment when LocalStack is gone (killed without stopping its environments)."""
    while os.getppid() == parent:
        time.sleep(1)
    os._exit(0)


def main() -> int:
    sys.path[:0] = [path for path in (os.environ.get("LAMBDA_TASK_ROOT"), os.environ.get("LAMBDA_RUNTIME_DIR"))
                    if path]
    out, err = Capture(sys.stdout), Capture(sys.stderr)
    sys.stdout, sys.stderr = out, err
    threading.Thread(target=exit_with_parent, args=(os.getppid(),), daemon=True).start()
    # Listening before reporting ready: LocalStack may send the first invocation right after.
    server = HTTPServer(("127.0.0.1", int(os.environ["STEPFLOW_EXECUTOR_PORT"])), InvokeRequests)
    restarted = os.environ.pop(RESTARTED, None) is not None
    handler: Any
    try:
        handler = load_handler(os.environ.get("_HANDLER", ""))
    except InitError as exc:
        print(f"init error: {exc}", file=err)
        if not restarted:
            post(f"/status/{RUNTIME_ID}/error", exc.payload)
            return 1
        handler = exc
    if not restarted:
        post(f"/status/{RUNTIME_ID}/ready", b"")
    threading.Thread(target=serve_invocations, args=(handler, out, err), daemon=True).start()
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
