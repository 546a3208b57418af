"""Narrow, idempotent patches that make moto 5.2.5 a usable local Step Functions + Lambda runtime.

Each concern has its module; this one applies them all once per process and re-exports what callers use:
moto_time (Wait/Retry time scale), moto_lambda (handlers in-process), moto_interpreter (JSONPath cache,
StopExecution, shared clients), moto_dynamodb (one request at a time, plain item responses),
moto_transactions (item-level rollback), moto_executions (status notifications, threads per execution),
moto_index (sorted query indexes), moto_execution_index (Step Functions lookups by dict), moto_secret_pages
(ListSecrets pages that hold still while secrets are deleted).
"""

from __future__ import annotations

import functools
import threading
from typing import Any

from stepflow_local import moto_dynamodb, moto_expressions, moto_interpreter, moto_lambda, moto_time, moto_transactions
from stepflow_local.moto_contract import ORIGINALS, TESTED_MOTO_VERSION, check_signature
from stepflow_local.moto_interpreter import jsonpath_memoised
from stepflow_local.moto_lambda import lambda_in_process
from stepflow_local.moto_time import TIME_SCALE_ENV, interrupt_sleeps, scaled_time, set_time_scale, time_scale

__all__ = [
    "DYNAMODB_LOCK", "ORIGINALS", "TESTED_MOTO_VERSION", "TIME_SCALE_ENV", "applied", "apply", "dynamodb_serialised",
    "enable_step_functions_execution", "interrupt_sleeps", "jsonpath_memoised", "lambda_in_process", "scaled_time",
    "set_time_scale", "step_functions_execution_enabled", "time_scale",
]

_APPLY_LOCK = threading.Lock()
_APPLIED: set[str] = set()  # names of the patches already in place (each is applied once per process)
_check_signature = check_signature  # the name stepflow_local's older modules import

# One DynamoDB request at a time, process-wide (stepflow_local/moto_dynamodb.py says why).
DYNAMODB_LOCK = moto_dynamodb.DYNAMODB_LOCK


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


def dynamodb_serialised() -> bool:
    """True when moto's DynamoDB handles one request at a time."""
    return moto_dynamodb.serialised()


def _patch_execution_events() -> None:
    from stepflow_local.moto_executions import patch_execution_events

    patch_execution_events()


def _patch_program_thread() -> None:
    from stepflow_local.moto_executions import patch_program_thread

    patch_program_thread()


def _patch_state_thread() -> None:
    from stepflow_local.moto_executions import patch_state_thread

    patch_state_thread()


def _patch_query_index() -> None:
    from stepflow_local.moto_index import patch

    patch(check_signature)


def _patch_execution_index() -> None:
    from stepflow_local.moto_execution_index import patch

    patch(check_signature)


def _patch_variables() -> None:
    from stepflow_local.moto_variables import patch

    patch(check_signature)


def _patch_secret_pages() -> None:
    from stepflow_local.moto_secret_pages import patch

    patch(check_signature)


def _listed_once(original: Any) -> Any:
    # moto lists a response class's methods (inspect.getmembers) on every request of every service, to check
    # that the action exists: about 0.1 ms each time, for the same list. Kept per class: a response class's
    # functions are fixed once apply() has run (the patches replace methods, never add or remove one), and
    # the one caller only tests membership.
    cached = functools.lru_cache(maxsize=256)(original)
    cached.__stepflow_patched__ = True  # type: ignore[attr-defined]
    return cached


def _patch_method_names() -> None:
    from moto.core import responses

    current = responses.method_names_from_class
    if getattr(current, "__stepflow_patched__", False):
        return
    check_signature(current, ["clazz"], "method_names_from_class")
    ORIGINALS["responses.method_names_from_class"] = current
    setattr(responses, "method_names_from_class", _listed_once(current))  # noqa: B010


_PATCHES: dict[str, Any] = {
    "jsonpath": moto_interpreter.patch_jsonpath,
    "lambda": moto_lambda.patch,
    "time_scale": moto_time.patch,
    "stop": moto_interpreter.patch_stop,
    "task_failure": moto_interpreter.patch_task_failure,
    "interpreter_clients": moto_interpreter.patch_clients,
    "interpreter_programs": moto_interpreter.patch_programs,
    "dynamodb": moto_dynamodb.patch_lock,
    "dynamodb_results": moto_dynamodb.patch_plain_results,
    "dynamodb_expressions": moto_expressions.patch,
    "dynamodb_transactions": moto_transactions.patch,
    "dynamodb_untracked": moto_dynamodb.patch_tracking,
    "method_names": _patch_method_names,
    "execution_events": _patch_execution_events,
    "program_thread": _patch_program_thread,
    "state_thread": _patch_state_thread,
    "query_index": _patch_query_index,
    "variables": _patch_variables,  # stepflow_local/moto_variables.py
    "execution_index": _patch_execution_index,  # stepflow_local/moto_execution_index.py
    "secret_pages": _patch_secret_pages,  # stepflow_local/moto_secret_pages.py
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
