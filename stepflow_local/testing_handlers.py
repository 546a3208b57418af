"""Tiny Lambda handlers for the local runtime's contract tests (Handler "stepflow_local.testing_handlers.<name>")."""

from __future__ import annotations

import threading
from typing import Any

_lock = threading.Lock()
_calls: dict[str, int] = {}


class MyError(Exception):
    """Step Functions should see this as the error name "MyError"."""


def echo(event: Any, context: Any) -> dict[str, Any]:
    """Returns the event and what the context object offers."""
    return {
        "event": event,
        "context": {
            "function_name": context.function_name,
            "aws_request_id": context.aws_request_id,
            "memory_limit_in_mb": context.memory_limit_in_mb,
            "invoked_function_arn": context.invoked_function_arn,
            "log_group_name": context.log_group_name,
            "remaining_ms": context.get_remaining_time_in_millis(),
        },
    }


def fail(event: Any, context: Any) -> None:
    """Raises MyError, or an exception class whose __name__ is event["error"] (what StepError does)."""
    name = (event or {}).get("error") if isinstance(event, dict) else None
    if name:
        raise type(name, (Exception,), {})(f"failed with {name}")
    raise MyError("it failed on purpose")


def flaky(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Raises MyError for the first event["failures"] calls with event["key"], then succeeds with the attempt number."""
    key = event["key"]
    with _lock:
        _calls[key] = attempt = _calls.get(key, 0) + 1
    if attempt <= int(event.get("failures", 1)):
        raise MyError(f"attempt {attempt} failed")
    return {"attempt": attempt}


def calls(key: str) -> int:
    with _lock:
        return _calls.get(key, 0)


def not_json(event: Any, context: Any) -> Any:
    return object()
