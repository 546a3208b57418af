"""Narrow, idempotent patches that make moto 5.2.5 a usable local Step Functions + Lambda runtime."""

from __future__ import annotations

import contextlib
import datetime
import decimal
import functools
import importlib
import inspect
import json
import logging
import math
import os
import threading
import time
import traceback
import uuid
from collections.abc import Iterator
from typing import Any

from stepflow_local import kept_timers

LOG = logging.getLogger("stepflow_local")

# The moto release these patches were written against. The patched names are private: the contract
# test (tests/integration/test_local_runtime.py) fails loudly when a moto upgrade changes them.
TESTED_MOTO_VERSION = "5.2.5"
TIME_SCALE_ENV = "STEPFLOW_LOCAL_TIME_SCALE"

_APPLY_LOCK = threading.Lock()
_APPLIED: set[str] = set()  # names of the patches already in place (each is applied once per process)

# Set while a runtime shuts down: wakes scaled Retry sleeps, which moto never interrupts itself.
_SLEEP_INTERRUPT = threading.Event()
# What each patch replaced, by "Class.method" (the contract test checks the originals' shape).
ORIGINALS: dict[str, Any] = {}
_time_scale_override: float | None = None


# --------------------------------------------------------------------------------------------- time


def time_scale() -> float:
    """Factor applied to Wait states and Retry intervals: an override, else $STEPFLOW_LOCAL_TIME_SCALE, else 1."""
    if _time_scale_override is not None:
        return _time_scale_override
    raw = os.environ.get(TIME_SCALE_ENV, "").strip()
    if not raw:
        return 1.0
    try:
        value = float(raw)
    except ValueError:
        LOG.warning("ignoring %s=%r: not a number", TIME_SCALE_ENV, raw)
        return 1.0
    if not math.isfinite(value) or value < 0:
        LOG.warning("ignoring %s=%r: must be a finite number >= 0", TIME_SCALE_ENV, raw)
        return 1.0
    return value


def set_time_scale(value: float | None) -> None:
    """Overrides the environment's time scale for this process (None: back to the environment)."""
    global _time_scale_override
    if value is not None and (not math.isfinite(value) or value < 0):
        raise ValueError("time scale must be a finite number >= 0")
    _time_scale_override = value


@contextlib.contextmanager
def scaled_time(value: float | None) -> Iterator[None]:
    """Temporarily overrides the time scale (restoring the previous override afterwards)."""
    previous = _time_scale_override
    set_time_scale(value)
    try:
        yield
    finally:
        set_time_scale(previous)


def interrupt_sleeps(interrupted: bool = True) -> None:
    """While set, patched Retry sleeps return at once (used when a runtime shuts down)."""
    if interrupted:
        _SLEEP_INTERRUPT.set()
    else:
        _SLEEP_INTERRUPT.clear()


def _scaled_sleep(seconds: float) -> None:
    seconds = max(0.0, float(seconds)) * time_scale()
    if seconds > 0:
        _SLEEP_INTERRUPT.wait(seconds)


class _ScaledTime:
    """Stands in for the `time` module inside moto's retrier module only: sleep is scaled, the rest is `time`."""

    sleep = staticmethod(_scaled_sleep)

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


def _scaled_wait_interval(self: Any, env: Any, wait_seconds: float) -> None:
    # Replaces WaitFunction._wait_interval. The original rounds elapsed time to whole seconds and re-enters
    # while time is left, so a fractional (scaled) wait would loop forever; this waits on the same event
    # (pulsed when the execution stops/ends) until a monotonic deadline. Slices of at most 1 s bound the
    # delay when a stop lands between the is_running() check and the wait and so misses the pulse.
    deadline = kept_timers.deadline(env)  # a Wait entered again after a restart keeps its due time
    if deadline is None:
        deadline = time.monotonic() + max(0.0, float(wait_seconds)) * time_scale()
    while env.is_running():
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return
        env.program_state_event.wait(min(remaining, 1.0))


def _patch_time_scale() -> None:
    from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
    from moto.stepfunctions.parser.asl.component.state.wait.wait_function import wait_function

    original = wait_function.WaitFunction.__dict__.get("_wait_interval")
    if original is _scaled_wait_interval:
        return
    _check_signature(original, ["self", "env", "wait_seconds"], "WaitFunction._wait_interval")
    if getattr(retrier_decl, "time", None) is not time:
        raise RuntimeError("moto's retrier_decl no longer uses the time module; re-check stepflow_local/moto_patches.py")
    ORIGINALS["WaitFunction._wait_interval"] = original
    # setattr: these are deliberate monkeypatches of moto internals.
    setattr(wait_function.WaitFunction, "_wait_interval", _scaled_wait_interval)  # noqa: B010
    setattr(retrier_decl, "time", _ScaledTime())  # noqa: B010


# ----------------------------------------------------------------------------------------- jsonpath


def _memoised(parse: Any) -> Any:
    # jsonpath_ng ASTs are not mutated by find/update, so one parsed path can serve every execution.
    cached = functools.lru_cache(maxsize=4096)(parse)
    cached.__stepflow_memoised__ = True  # type: ignore[attr-defined]
    return cached


def _patch_jsonpath() -> None:
    from moto.stepfunctions.parser.asl.component.common.path import result_path
    from moto.stepfunctions.parser.asl.utils import json_path

    # Both modules bind `parse` at import time (json_path: jsonpath_ng.ext.parse, result_path:
    # jsonpath_ng.parse), so the module attributes are what must be replaced.
    for module in (json_path, result_path):
        parse = getattr(module, "parse", None)
        if not callable(parse):
            raise RuntimeError(f"{module.__name__} no longer has `parse`; re-check stepflow_local/moto_patches.py")
        if not getattr(parse, "__stepflow_memoised__", False):
            ORIGINALS[f"{module.__name__}.parse"] = parse
            setattr(module, "parse", _memoised(parse))  # noqa: B010


def jsonpath_memoised() -> bool:
    """True when both of moto's JSONPath parse sites go through the cache."""
    from moto.stepfunctions.parser.asl.component.common.path import result_path
    from moto.stepfunctions.parser.asl.utils import json_path

    return all(getattr(getattr(m, "parse", None), "__stepflow_memoised__", False) for m in (json_path, result_path))


# ------------------------------------------------------------------------------------------- lambda


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


def _patch_lambda() -> None:
    from moto.awslambda.models import LambdaFunction

    current = LambdaFunction.__dict__.get("_invoke_lambda")
    if getattr(current, "__stepflow_in_process__", False):
        return
    _check_signature(current, ["self", "event"], "LambdaFunction._invoke_lambda")
    ORIGINALS["LambdaFunction._invoke_lambda"] = current
    setattr(LambdaFunction, "_invoke_lambda", _invoke_in_process)  # noqa: B010


def lambda_in_process() -> bool:
    """True when moto's Lambda runs handlers in this process."""
    from moto.awslambda.models import LambdaFunction

    return bool(getattr(LambdaFunction.__dict__.get("_invoke_lambda"), "__stepflow_in_process__", False))


# ------------------------------------------------------------------------------------ step functions


def _interrupt_callbacks_on_stop(original: Any) -> Any:
    @functools.wraps(original)
    def set_stop(self: Any, stop_date: Any, cause: Any, error: Any) -> None:
        original(self, stop_date=stop_date, cause=cause, error=error)
        # A stopped execution's waitForTaskToken task otherwise waits on its callback endpoint until
        # TimeoutSeconds (default 99999999 s), keeping interpreter threads alive forever. Waking the
        # endpoints lets those threads see the stopped environment and end, as the task does on AWS.
        pool = getattr(self.callback_pool_manager, "_pool", None) or {}
        for endpoint in list(pool.values()):
            endpoint.interrupt_all()

    set_stop.__stepflow_patched__ = True  # type: ignore[attr-defined]
    return set_stop


def _stopped_stays_stopped(original: Any, stopped_type: type) -> Any:
    @functools.wraps(original)
    def set_error(self: Any, error: Any) -> None:
        # On AWS an aborted execution stays ABORTED. In moto a task that fails after StopExecution (a
        # Lambda still running, or a callback task woken by the stop above) would turn it into FAILED.
        if isinstance(self._program_state, stopped_type):
            return
        original(self, error=error)

    set_error.__stepflow_patched__ = True  # type: ignore[attr-defined]
    return set_error


def _patch_stop() -> None:
    from moto.stepfunctions.parser.asl.eval.callback.callback import CallbackEndpoint, CallbackPoolManager
    from moto.stepfunctions.parser.asl.eval.environment import Environment
    from moto.stepfunctions.parser.asl.eval.program_state import ProgramStopped

    set_stop = Environment.__dict__.get("set_stop")
    set_error = Environment.__dict__.get("set_error")
    if getattr(set_stop, "__stepflow_patched__", False):
        return
    _check_signature(set_stop, ["self", "stop_date", "cause", "error"], "Environment.set_stop")
    _check_signature(set_error, ["self", "error"], "Environment.set_error")
    if not callable(getattr(CallbackEndpoint, "interrupt_all", None)) or "_pool" not in getattr(
            CallbackPoolManager, "__annotations__", {}):
        raise RuntimeError("moto changed its callback endpoints; re-check stepflow_local/moto_patches.py")
    ORIGINALS["Environment.set_stop"], ORIGINALS["Environment.set_error"] = set_stop, set_error
    setattr(Environment, "set_error", _stopped_stays_stopped(set_error, ProgramStopped))  # noqa: B010
    setattr(Environment, "set_stop", _interrupt_callbacks_on_stop(set_stop))  # noqa: B010


def enable_step_functions_execution() -> None:
    """Makes moto *run* state machines process-wide (server-mode launchers; mock_aws takes it as config)."""
    from moto.core.config import default_user_config

    # Replace the nested dict rather than mutate it: mock_aws snapshots these dicts and restores them.
    current = dict(default_user_config.get("stepfunctions", {}))
    current["execute_state_machine"] = True
    default_user_config["stepfunctions"] = current  # type: ignore[typeddict-item]


def step_functions_execution_enabled() -> bool:
    from moto.core.config import default_user_config

    return bool(default_user_config.get("stepfunctions", {}).get("execute_state_machine", False))


# ----------------------------------------------------------------------------------------- dynamodb

# One DynamoDB request at a time, process-wide. moto evaluates a ConditionExpression and applies the
# update as separate Python steps on shared dicts, so two threads could both pass the check (two
# winners of one task), and a Query/Scan could iterate a table while a put resized it ("dictionary
# changed size during iteration"). DynamoDB itself is atomic per item; serialising the emulation is
# the simplest way to be at least as strict. Re-entrant: nothing inside a DynamoDB call calls back
# into DynamoDB today, but a deadlock would be far worse than a nested acquire.
DYNAMODB_LOCK = threading.RLock()


def _serialised(original: Any) -> Any:
    @functools.wraps(original)
    def call_action(self: Any) -> Any:
        with DYNAMODB_LOCK:
            return original(self)

    call_action.__stepflow_serialised__ = True  # type: ignore[attr-defined]
    return call_action


def _patch_dynamodb() -> None:
    from moto.dynamodb.responses import DynamoHandler

    current = DynamoHandler.__dict__.get("call_action")
    if getattr(current, "__stepflow_serialised__", False):
        return
    # Every DynamoDB operation, from the app's boto3 clients or from a state machine's dynamodb:
    # integration, reaches the backend through this method (the response is serialised inside it too).
    _check_signature(current, ["self"], "DynamoHandler.call_action")
    ORIGINALS["DynamoHandler.call_action"] = current
    setattr(DynamoHandler, "call_action", _serialised(current))  # noqa: B010


def dynamodb_serialised() -> bool:
    """True when moto's DynamoDB handles one request at a time."""
    from moto.dynamodb.responses import DynamoHandler

    return bool(getattr(DynamoHandler.__dict__.get("call_action"), "__stepflow_serialised__", False))


# -------------------------------------------------------------------------------------------- apply


def _check_signature(function: Any, expected: list[str], what: str) -> None:
    if function is None:
        raise RuntimeError(f"moto no longer defines {what}; re-check stepflow_local/moto_patches.py")
    names = list(inspect.signature(function).parameters)
    if names != expected:
        raise RuntimeError(
            f"moto changed {what}{tuple(names)} (patched for moto {TESTED_MOTO_VERSION} with {tuple(expected)}); "
            "re-check stepflow_local/moto_patches.py"
        )


def _patch_execution_events() -> None:
    from stepflow_local.moto_executions import patch_execution_events

    patch_execution_events()


def _patch_program_thread() -> None:
    from stepflow_local.moto_executions import patch_program_thread

    patch_program_thread()


def _patch_query_index() -> None:
    from stepflow_local.moto_index import patch

    patch(_check_signature)


def _patch_transactions() -> None:
    from stepflow_local.moto_transactions import patch

    patch(_check_signature)


def _patch_variables() -> None:
    from stepflow_local.moto_variables import patch

    patch(_check_signature)


_PATCHES = {
    "jsonpath": _patch_jsonpath,
    "lambda": _patch_lambda,
    "time_scale": _patch_time_scale,
    "stop": _patch_stop,
    "dynamodb": _patch_dynamodb,
    "execution_events": _patch_execution_events,  # stepflow_local/moto_executions.py
    "program_thread": _patch_program_thread,
    "query_index": _patch_query_index,  # stepflow_local/moto_index.py
    "transactions": _patch_transactions,  # stepflow_local/moto_transactions.py
    "variables": _patch_variables,  # stepflow_local/moto_variables.py
}


def apply() -> None:
    """Applies every patch once per process (later calls do nothing)."""
    with _APPLY_LOCK:
        for name, patch in _PATCHES.items():
            if name not in _APPLIED:
                patch()
                _APPLIED.add(name)


def applied() -> frozenset[str]:
    return frozenset(_APPLIED)
