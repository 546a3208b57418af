"""Patches to moto's Step Functions executions: status-change notifications, and fewer threads per execution.

Notifications: moto emits no status-change events, and finding changes by listing every execution of
every state machine costs more with every execution ever run. Instead, listeners registered here are
told the ARN of an execution when it starts and when it ends (from the interpreter's own transitions).

Threads: moto runs an execution on a thread (ExecutionWorker) whose Program.eval starts a second thread
only to join it with the machine's TimeoutSeconds; each Task state runs on a third thread (for the
state's timeout). A waitForTaskToken task waits on that third thread, so a waiting execution holds three
threads. When the machine has no TimeoutSeconds (Stepflow's compiled machines set none), the second
thread only waits: here Program.eval runs the program on the execution's own thread. Likewise a state
whose TimeoutSeconds is the default (99999999 s, more than the year an execution may run) is evaluated
on the calling thread, as the original's thread would run it, joined without a timeout: one thread per
waiting execution, and no thread started per Lambda step. A state with its own TimeoutSeconds keeps its
thread (its timeout needs it); a heartbeat is awaited inside the task on either thread.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

LOG = logging.getLogger("stepflow_local")

_LISTENERS: list[Callable[[str], Any]] = []
_LISTENERS_LOCK = threading.Lock()
PRUNE_EVERY_SECONDS = 1.0
_last_prune = [0.0]


def add_listener(listener: Callable[[str], Any]) -> None:
    """listener(execution_arn) is called (on an interpreter thread) when an execution starts or ends."""
    with _LISTENERS_LOCK:
        _LISTENERS.append(listener)


def remove_listener(listener: Callable[[str], Any]) -> None:
    with _LISTENERS_LOCK:
        if listener in _LISTENERS:
            _LISTENERS.remove(listener)


def _notify(execution_arn: str) -> None:
    with _LISTENERS_LOCK:
        listeners = list(_LISTENERS)
    for listener in listeners:
        try:
            listener(execution_arn)
        except Exception:  # a listener must never break the interpreter thread that ran the execution
            LOG.exception("execution status listener failed")


def prune_threads(force: bool = False) -> None:
    """Drops ended threads from moto's TMP_THREADS, a module-level list moto appends every thread to."""
    now = time.monotonic()
    if not force and now - _last_prune[0] < PRUNE_EVERY_SECONDS:
        return
    _last_prune[0] = now
    from moto.stepfunctions.parser.utils import TMP_THREADS

    for thread in [t for t in list(TMP_THREADS) if not t.is_alive()]:
        try:
            TMP_THREADS.remove(thread)
        except ValueError:  # another thread pruned it first
            pass


def _notifying_start(original: Any) -> Any:
    @functools.wraps(original)
    def start(self: Any) -> None:
        original(self)
        _notify(self.exec_arn)

    start.__stepflow_patched__ = True  # type: ignore[attr-defined]
    return start


def _notifying_terminated(original: Any) -> Any:
    @functools.wraps(original)
    def terminated(self: Any) -> None:
        original(self)  # sets the final status and stop date first: listeners read them
        _notify(self.execution.exec_arn)
        prune_threads()

    terminated.__stepflow_patched__ = True  # type: ignore[attr-defined]
    return terminated


def _inline_program_eval(original: Any, program_class: type[Any]) -> Any:
    @functools.wraps(original)
    def eval(self: Any, env: Any) -> None:  # noqa: A001 - moto's method name
        if self.timeout_seconds is not None:
            return original(self, env)  # the join's timeout is the machine's TimeoutSeconds: keep it
        # What the original's worker thread runs, joined without a timeout: the same, on this thread.
        env.next_state_name = self.start_at.start_at_name
        return super(program_class, self).eval(env)

    eval.__stepflow_patched__ = True  # type: ignore[attr-defined]
    return eval


def patch_execution_events() -> None:
    from moto.stepfunctions.parser.backend.execution import BaseExecutionWorkerCommunication, Execution

    from stepflow_local.moto_contract import ORIGINALS
    from stepflow_local.moto_contract import check_signature as _check_signature

    start = Execution.__dict__.get("start")
    terminated = BaseExecutionWorkerCommunication.__dict__.get("terminated")
    if getattr(start, "__stepflow_patched__", False):
        return
    _check_signature(start, ["self"], "Execution.start")
    _check_signature(terminated, ["self"], "BaseExecutionWorkerCommunication.terminated")
    ORIGINALS["Execution.start"] = start
    ORIGINALS["BaseExecutionWorkerCommunication.terminated"] = terminated
    setattr(Execution, "start", _notifying_start(start))  # noqa: B010
    setattr(BaseExecutionWorkerCommunication, "terminated", _notifying_terminated(terminated))  # noqa: B010


def patch_program_thread() -> None:
    from moto.stepfunctions.parser.asl.component.program.program import Program

    from stepflow_local.moto_contract import ORIGINALS
    from stepflow_local.moto_contract import check_signature as _check_signature

    current = Program.__dict__.get("eval")
    if getattr(current, "__stepflow_patched__", False):
        return
    _check_signature(current, ["self", "env"], "Program.eval")
    if "timeout_seconds" not in getattr(Program, "__annotations__", {}):
        raise RuntimeError("moto's Program no longer has timeout_seconds; re-check stepflow_local/moto_executions.py")
    ORIGINALS["Program.eval"] = current
    setattr(Program, "eval", _inline_program_eval(current, Program))  # noqa: B010


_inline = threading.local()  # .next: the next Thread the state module makes runs on the calling thread


class _CallingThread:
    """What the state module's Thread(target=..., daemon=True) is when it may run inline: start() runs the
    target on the calling thread and returns when it is done, as the original's start(), then a join
    without a timeout would."""

    def __init__(self, target: Any, daemon: bool = True):
        self._target = target
        self.name = threading.current_thread().name
        self.daemon = daemon

    def start(self) -> None:
        self._target()

    def is_alive(self) -> bool:
        return False

    def join(self, timeout: float | None = None) -> None:
        return None


def _state_thread(*args: Any, **kwargs: Any) -> Any:
    if getattr(_inline, "next", False):
        _inline.next = False  # only the state's own thread: the states it runs decide for themselves
        return _CallingThread(*args, **kwargs)
    return threading.Thread(*args, **kwargs)


def _inline_default_timeout(original: Any, static_timeout: Any) -> Any:
    @functools.wraps(original)
    def evaluate(self: Any, env: Any) -> None:
        timeout = getattr(self, "timeout", None)
        _inline.next = timeout is not None and type(timeout) is static_timeout and timeout.is_default_value()
        try:
            return original(self, env)
        finally:
            _inline.next = False

    evaluate.__stepflow_patched__ = True  # type: ignore[attr-defined]
    return evaluate


def patch_state_thread() -> None:
    from moto.stepfunctions.parser.asl.component.common.timeouts.timeout import TimeoutSeconds
    from moto.stepfunctions.parser.asl.component.state.exec import execute_state

    from stepflow_local.moto_contract import ORIGINALS, check_signature

    current = execute_state.ExecutionState.__dict__.get("_evaluate_with_timeout")
    if getattr(current, "__stepflow_patched__", False):
        return
    check_signature(current, ["self", "env"], "ExecutionState._evaluate_with_timeout")
    if execute_state.Thread is not threading.Thread or not callable(getattr(TimeoutSeconds, "is_default_value", None)):
        raise RuntimeError("moto changed how a state runs on its thread; re-check stepflow_local/moto_executions.py")
    ORIGINALS["ExecutionState._evaluate_with_timeout"] = current
    setattr(execute_state, "Thread", _state_thread)  # noqa: B010
    setattr(execute_state.ExecutionState, "_evaluate_with_timeout",  # noqa: B010
            _inline_default_timeout(current, TimeoutSeconds))


def execution_events_patched() -> bool:
    from moto.stepfunctions.parser.backend.execution import BaseExecutionWorkerCommunication, Execution

    return all(getattr(f, "__stepflow_patched__", False)
               for f in (Execution.__dict__.get("start"), BaseExecutionWorkerCommunication.__dict__.get("terminated")))
