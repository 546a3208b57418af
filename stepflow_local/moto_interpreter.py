"""Patches to moto's Step Functions interpreter: JSONPath parsed once, each definition parsed once, a stopped
execution's tasks woken and kept ABORTED, and one AWS client per service for its tasks instead of one per task."""

from __future__ import annotations

import functools
import importlib
import inspect
import threading
import time
from typing import Any

from stepflow_local.moto_contract import ORIGINALS, check_signature

# ----------------------------------------------------------------------------------------- jsonpath


def _memoised(parse: Any) -> Any:
    # jsonpath_ng ASTs are not mutated by find/update, so one parsed path can serve every execution.
    cached = functools.lru_cache(maxsize=4096)(parse)
    cached.__stepflow_memoised__ = True  # type: ignore[attr-defined]
    return cached


def patch_jsonpath() -> None:
    from moto.stepfunctions.parser.asl.component.common.path import result_path
    from moto.stepfunctions.parser.asl.utils import json_path

    # Both modules bind `parse` at import time (json_path: jsonpath_ng.ext.parse, result_path:
    # jsonpath_ng.parse), so the module attributes are what must be replaced.
    for module in (json_path, result_path):
        parse = getattr(module, "parse", None)
        if not callable(parse):
            raise RuntimeError(f"{module.__name__} no longer has `parse`; re-check stepflow_local/moto_interpreter.py")
        if not getattr(parse, "__stepflow_memoised__", False):
            ORIGINALS[f"{module.__name__}.parse"] = parse
            setattr(module, "parse", _memoised(parse))  # noqa: B010


def jsonpath_memoised() -> bool:
    """True when both of moto's JSONPath parse sites go through the cache."""
    from moto.stepfunctions.parser.asl.component.common.path import result_path
    from moto.stepfunctions.parser.asl.utils import json_path

    return all(getattr(getattr(m, "parse", None), "__stepflow_memoised__", False) for m in (json_path, result_path))


# ------------------------------------------------------------------------------------------ programs

PROGRAM_CACHE_SIZE = 256


def _parsed_once(original: Any) -> Any:
    """ExecutionWorker._get_evaluation_entrypoint with the definition's program parsed once per definition.

    moto parses the state machine's definition with its ANTLR grammar at every StartExecution: a tenth of
    the local service's CPU under load (one execution per started instance). The parsed program is a tree
    of declarations, built by the parser and only read while an execution runs (what changes as it runs
    lives in the execution's Environment and in objects each state makes per evaluation), so executions of
    one definition can share it, as they share the definition.
    """
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser

    @functools.lru_cache(maxsize=PROGRAM_CACHE_SIZE)
    def program(definition: str) -> Any:
        return AmazonStateLanguageParser.parse(definition)[0]

    # lru_cache does not hold other callers back while it computes a missing entry: executions of one
    # definition started together would each parse it. A parse is CPU under the GIL, so one at a time
    # costs nothing in parallelism.
    parsing = threading.Lock()

    @functools.wraps(original)
    def entrypoint(self: Any) -> Any:
        definition = self._evaluation_details.state_machine_details.definition
        if type(definition) is not str:
            return original(self)
        with parsing:
            return program(definition)

    entrypoint.__stepflow_patched__ = True  # type: ignore[attr-defined]
    entrypoint.cache_info = program.cache_info  # type: ignore[attr-defined]
    return entrypoint


def patch_programs() -> None:
    import inspect

    from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker

    current = ExecutionWorker.__dict__.get("_get_evaluation_entrypoint")
    if getattr(current, "__stepflow_patched__", False):
        return
    check_signature(current, ["self"], "ExecutionWorker._get_evaluation_entrypoint")
    if current is None or "AmazonStateLanguageParser.parse(" not in inspect.getsource(current):
        raise RuntimeError("moto's ExecutionWorker no longer parses its definition there; "
                           "re-check stepflow_local/moto_interpreter.py")
    ORIGINALS["ExecutionWorker._get_evaluation_entrypoint"] = current
    setattr(ExecutionWorker, "_get_evaluation_entrypoint", _parsed_once(current))  # noqa: B010


def programs_shared() -> bool:
    from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker

    return bool(getattr(ExecutionWorker.__dict__.get("_get_evaluation_entrypoint"), "__stepflow_patched__", False))


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


STOP_WAITS_FOR_START_SECONDS = 10.0


def _stop_once_started(original: Any) -> Any:
    @functools.wraps(original)
    def stop(self: Any, stop_date: Any, error: Any, cause: Any) -> None:
        # moto's worker makes its environment on the execution's thread, after StartExecution answered:
        # a StopExecution in between (a cancel right after a start, a shutdown) found no environment and
        # failed with AttributeError. Wait for it (the thread makes it first thing), then stop.
        deadline = time.monotonic() + STOP_WAITS_FOR_START_SECONDS
        while getattr(self, "env", None) is None and time.monotonic() < deadline:
            time.sleep(0.005)
        if getattr(self, "env", None) is None:
            raise RuntimeError("the execution never started; it cannot be stopped")
        original(self, stop_date=stop_date, error=error, cause=cause)

    stop.__stepflow_patched__ = True  # type: ignore[attr-defined]
    return stop


def patch_stop() -> None:
    from moto.stepfunctions.parser.asl.eval.callback.callback import CallbackEndpoint, CallbackPoolManager
    from moto.stepfunctions.parser.asl.eval.environment import Environment
    from moto.stepfunctions.parser.asl.eval.program_state import ProgramStopped
    from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker

    worker_stop = ExecutionWorker.__dict__.get("stop")
    if not getattr(worker_stop, "__stepflow_patched__", False):
        check_signature(worker_stop, ["self", "stop_date", "error", "cause"], "ExecutionWorker.stop")
        ORIGINALS["ExecutionWorker.stop"] = worker_stop
        setattr(ExecutionWorker, "stop", _stop_once_started(worker_stop))  # noqa: B010

    set_stop = Environment.__dict__.get("set_stop")
    set_error = Environment.__dict__.get("set_error")
    if getattr(set_stop, "__stepflow_patched__", False):
        return
    check_signature(set_stop, ["self", "stop_date", "cause", "error"], "Environment.set_stop")
    check_signature(set_error, ["self", "error"], "Environment.set_error")
    if not callable(getattr(CallbackEndpoint, "interrupt_all", None)) or "_pool" not in getattr(
            CallbackPoolManager, "__annotations__", {}):
        raise RuntimeError("moto changed its callback endpoints; re-check stepflow_local/moto_interpreter.py")
    ORIGINALS["Environment.set_stop"], ORIGINALS["Environment.set_error"] = set_stop, set_error
    setattr(Environment, "set_error", _stopped_stays_stopped(set_error, ProgramStopped))  # noqa: B010
    setattr(Environment, "set_stop", _interrupt_callbacks_on_stop(set_stop))  # noqa: B010


# ------------------------------------------------------------------------------------------ task failure


def _failure_with_cause(original: Any) -> Any:
    @functools.wraps(original)
    def send_task_failure(self: Any) -> Any:
        # moto's response handler reads only the token and the error: the cause (a child workflow's error
        # message, say) was dropped, where Step Functions keeps it as the failed task's and execution's cause.
        from moto.stepfunctions.responses import EmptyResult

        backend = self.stepfunction_backend
        given = {"error": self._get_param("error")}
        if "cause" in inspect.signature(backend.send_task_failure).parameters:  # the executing backend takes it
            given["cause"] = self._get_param("cause")
        backend.send_task_failure(self._get_param("taskToken"), **given)
        return EmptyResult()

    send_task_failure.__stepflow_patched__ = True  # type: ignore[attr-defined]
    return send_task_failure


def patch_task_failure() -> None:
    from moto.stepfunctions.responses import StepFunctionResponse

    current = StepFunctionResponse.__dict__.get("send_task_failure")
    if getattr(current, "__stepflow_patched__", False):
        return
    check_signature(current, ["self"], "StepFunctionResponse.send_task_failure")
    ORIGINALS["StepFunctionResponse.send_task_failure"] = current
    setattr(StepFunctionResponse, "send_task_failure", _failure_with_cause(current))  # noqa: B010


# ------------------------------------------------------------------------------------------ clients

# The interpreter's modules that bind moto's boto_client_for at import (the tasks it runs call AWS with it).
CLIENT_MODULES = (
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.lambda_eval_utils",
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_aws_sdk",
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_dynamodb",
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_events",
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_sfn",
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_sns",
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_sqs",
)
_CLIENTS: dict[tuple[Any, ...], Any] = {}
_CLIENTS_LOCK = threading.Lock()


def _shared_clients(original: Any) -> Any:
    """boto_client_for, returning one client per (region, service, endpoint) for the process.

    moto's version builds a new boto3 client for every task it runs (a Lambda step, a waitForTaskToken
    send): about 5 ms of CPU each, a tenth of the local service's CPU under load, and unsafe, since it
    uses boto3's default session from many interpreter threads at once. Its clients differ only in
    region, service and endpoint (the credentials and config are constants, and state_credentials is
    not used), and a botocore client is safe to share between threads once made.
    """
    from moto.core.models import botocore_stubber
    from moto.settings import moto_server_port

    @functools.wraps(original)
    def boto_client_for(region: str, service: str, state_credentials: Any = None) -> Any:
        key = (region, service, None if botocore_stubber.enabled else moto_server_port())
        client = _CLIENTS.get(key)
        if client is None:
            with _CLIENTS_LOCK:
                client = _CLIENTS.get(key)
                if client is None:
                    client = _CLIENTS[key] = original(region, service, state_credentials)
        return client

    boto_client_for.__stepflow_patched__ = True  # type: ignore[attr-defined]
    return boto_client_for


def patch_clients() -> None:
    from moto.stepfunctions.parser.asl.utils import boto_client

    current = boto_client.boto_client_for
    if getattr(current, "__stepflow_patched__", False):
        return
    check_signature(current, ["region", "service", "state_credentials"], "boto_client.boto_client_for")
    modules = [importlib.import_module(name) for name in CLIENT_MODULES]
    for module in modules:
        if getattr(module, "boto_client_for", None) is not current:
            raise RuntimeError(f"{module.__name__} no longer uses boto_client_for; re-check stepflow_local/moto_interpreter.py")
    ORIGINALS["boto_client.boto_client_for"] = current
    shared = _shared_clients(current)
    for module in (boto_client, *modules):
        setattr(module, "boto_client_for", shared)  # noqa: B010


def shared_clients() -> list[Any]:
    """The clients the interpreter has made so far (a test that hooks botocore's events hooks these too:
    a client copies its session's event hooks when it is made, not later)."""
    with _CLIENTS_LOCK:
        return list(_CLIENTS.values())


def clients_shared() -> bool:
    """True when every interpreter module that makes AWS clients gets the shared ones."""
    from moto.stepfunctions.parser.asl.utils import boto_client

    return all(getattr(getattr(importlib.import_module(name), "boto_client_for", None), "__stepflow_patched__", False)
               for name in (boto_client.__name__, *CLIENT_MODULES))
