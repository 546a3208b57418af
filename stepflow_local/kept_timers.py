"""Due times of Wait states that began before a restart: a run that continues an instance enters the
Wait again, and it ends when the original would have, not a whole wait later."""

from __future__ import annotations

import threading
import time
from datetime import datetime
from typing import Any

_DUE: dict[tuple[str, str], float] = {}  # (execution name, state name) -> due time, seconds since the epoch
_LOCK = threading.Lock()


def due_time(started_at: str, seconds: float, scale: float = 1.0) -> float:
    """When a Wait of `seconds` entered at `started_at` (ISO 8601) ends, at the runtime's time scale."""
    started = datetime.fromisoformat(started_at.replace("Z", "+00:00"))
    return started.timestamp() + max(0.0, float(seconds)) * scale


def keep(execution_name: str, state_name: str, due: float) -> None:
    """The Wait state `state_name` of the execution `execution_name` ends at `due` (epoch seconds)."""
    with _LOCK:
        _DUE[(execution_name, state_name)] = due


def kept(execution_name: str, state_name: str) -> float | None:
    with _LOCK:
        return _DUE.get((execution_name, state_name))


def deadline(env: Any) -> float | None:
    """The time.monotonic() deadline of the Wait moto's interpreter is entering in `env`, if its due time
    was kept (used once: the entry is removed)."""
    try:
        context = env.states.context_object.context_object_data
        key: tuple[str, str] = (str(context["Execution"]["Name"]), str((context.get("State") or {}).get("Name")))
    except (AttributeError, KeyError, TypeError):
        return None
    with _LOCK:
        due = _DUE.pop(key, None)
    if due is None:
        return None
    return time.monotonic() + (due - time.time())


def clear() -> None:
    with _LOCK:
        _DUE.clear()
