"""moto's Lambda runs our handlers in this process, as the Lambda Python runtime would (no Docker)."""

from __future__ import annotations

import datetime
import decimal
import importlib
import json
import time
import traceback
import uuid
from typing import Any

from stepflow_local.moto_contract import ORIGINALS, check_signature


class LambdaContext:
    """The attributes and method of the Lambda Python runtime's context object that handlers use."""

    def __init__(self, fn: Any, request_id: str):
        self.function_name: str = fn.function_name
        self.function_version: str = str(getattr(fn, "version", "$LATEST"))
        self.invoked_function_arn: str = fn.function_arn
        self.memory_limit_in_mb: int = int(getattr(fn, "memory_size", 128) or 128)
        self.aws_request_id: str = request_id
        self.log_group_name: str = getattr(fn, "logs_group_name", f"/aws/lambda/{fn.function_name}")
        today = datetime.datetime.now(datetime.UTC)
        self.log_stream_name: str = f"{today:%Y/%m/%d}/[{self.function_version}]{request_id.replace('-', '')}"
        self.identity = None
        self.client_context = None
        self.timeout_seconds: float = float(getattr(fn, "timeout", 3) or 3)
        self._deadline = time.monotonic() + self.timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


class _HandlerError(Exception):
    """A failure the Lambda runtime reports under its own error type (import errors and the like)."""

    def __init__(self, error_type: str, message: str):
        super().__init__(message)
        self.error_type = error_type


def resolve_handler(handler: str) -> Any:
    """Imports `module.attr` (module path may use '/' or '.') the way the Lambda Python runtime does."""
    module_path, _, attr = (handler or "").rpartition(".")
    if not module_path or not attr:
        raise _HandlerError("Runtime.MalformedHandlerName", f"Bad handler '{handler}': not enough values to unpack")
    module_name = module_path.replace("/", ".")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise _HandlerError("Runtime.ImportModuleError", f"Unable to import module '{module_name}': {exc}") from exc
    except SyntaxError as exc:
        raise _HandlerError("Runtime.UserCodeSyntaxError", f"Syntax error in module '{module_name}': {exc}") from exc
    function = getattr(module, attr, None)
    if function is None:
        raise _HandlerError("Runtime.HandlerNotFound", f"Handler '{attr}' missing on module '{module_name}'")
    if not callable(function):
        raise _HandlerError("Runtime.HandlerNotFound", f"Handler '{attr}' on module '{module_name}' is not callable")
    return function


class _LambdaEncoder(json.JSONEncoder):
    # The Lambda Python runtime serialises Decimal (what boto3's DynamoDB resource returns) as a number.
    def default(self, o: Any) -> Any:
        if isinstance(o, decimal.Decimal):
            return int(o) if o == o.to_integral_value() else float(o)
        return super().default(o)


def _error_payload(error_type: str, message: str, request_id: str, tb: Any = None) -> str:
    stack = traceback.format_list(traceback.extract_tb(tb)[1:]) if tb is not None else []
    return json.dumps({"errorMessage": message, "errorType": error_type, "requestId": request_id, "stackTrace": stack})


def _invoke_in_process(self: Any, event: Any = None) -> tuple[str, bool, str]:
    """Replaces LambdaFunction._invoke_lambda: runs the function's Handler in this process.

    moto's LambdaFunction.invoke passes the already-decoded request body (or the string "{}" for an
    empty one) and expects (response payload as JSON text, errored, log text); when errored it sets
    FunctionError "Handled", and Step Functions takes the payload's errorType as the error name.
    """
    if event is None or event == "{}":  # moto's stand-in for an empty payload; Lambda delivers {}
        event = {}
    request_id = str(uuid.uuid4())
    started = time.perf_counter()
    errored = False
    error_line = ""
    try:
        handler = resolve_handler(self.handler)
        result = handler(event, LambdaContext(self, request_id))
        try:
            payload = json.dumps(result, cls=_LambdaEncoder, ensure_ascii=False)
        except (TypeError, ValueError) as exc:
            raise _HandlerError("Runtime.MarshalError", f"Unable to marshal response: {exc}") from exc
    except _HandlerError as exc:
        errored = True
        payload = _error_payload(exc.error_type, str(exc), request_id)
        error_line = f"[ERROR] {exc.error_type}: {exc}\n"
    except (Exception, SystemExit) as exc:  # noqa: BLE001 - any handler failure is a Lambda error, as on AWS
        errored = True
        payload = _error_payload(type(exc).__name__, str(exc), request_id, exc.__traceback__)
        error_line = f"[ERROR] {type(exc).__name__}: {exc}\n"
    elapsed_ms = (time.perf_counter() - started) * 1000
    logs = (
        f"START RequestId: {request_id} Version: $LATEST\n{error_line}"
        f"END RequestId: {request_id}\nREPORT RequestId: {request_id}\tDuration: {elapsed_ms:.2f} ms"
    )
    return payload, errored, logs


_invoke_in_process.__stepflow_in_process__ = True  # type: ignore[attr-defined]


def patch() -> None:
    from moto.awslambda.models import LambdaFunction

    current = LambdaFunction.__dict__.get("_invoke_lambda")
    if getattr(current, "__stepflow_in_process__", False):
        return
    check_signature(current, ["self", "event"], "LambdaFunction._invoke_lambda")
    ORIGINALS["LambdaFunction._invoke_lambda"] = current
    setattr(LambdaFunction, "_invoke_lambda", _invoke_in_process)  # noqa: B010


def lambda_in_process() -> bool:
    """True when moto's Lambda runs handlers in this process."""
    from moto.awslambda.models import LambdaFunction

    return bool(getattr(LambdaFunction.__dict__.get("_invoke_lambda"), "__stepflow_in_process__", False))
