"""Time in moto's Step Functions interpreter: Wait states and Retry intervals scaled by a factor, and
sleeps that a shutting-down runtime can wake."""

from __future__ import annotations

import contextlib
import logging
import math
import os
import threading
import time
from collections.abc import Iterator
from typing import Any

from stepflow_local import kept_timers
from stepflow_local.moto_contract import ORIGINALS, check_signature

LOG = logging.getLogger("stepflow_local")

TIME_SCALE_ENV = "STEPFLOW_LOCAL_TIME_SCALE"
# Set while a runtime shuts down: wakes scaled Retry sleeps, which moto never interrupts itself.
_SLEEP_INTERRUPT = threading.Event()
_time_scale_override: float | None = None


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


def patch() -> None:
    from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
    from moto.stepfunctions.parser.asl.component.state.wait.wait_function import wait_function

    original = wait_function.WaitFunction.__dict__.get("_wait_interval")
    if original is _scaled_wait_interval:
        return
    check_signature(original, ["self", "env", "wait_seconds"], "WaitFunction._wait_interval")
    if getattr(retrier_decl, "time", None) is not time:
        raise RuntimeError("moto's retrier_decl no longer uses the time module; re-check stepflow_local/moto_time.py")
    ORIGINALS["WaitFunction._wait_interval"] = original
    # setattr: these are deliberate monkeypatches of moto internals.
    setattr(wait_function.WaitFunction, "_wait_interval", _scaled_wait_interval)  # noqa: B010
    setattr(retrier_decl, "time", _ScaledTime())  # noqa: B010
