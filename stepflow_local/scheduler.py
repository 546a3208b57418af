"""A tiny scheduler: what EventBridge rules (periodic) and delayed SQS messages (once) would trigger on AWS,
the local runtime triggers itself."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

LOG = logging.getLogger("stepflow_local")


class ScheduledJob:
    """One callback run every `seconds` (fixed delay between the end of a run and the next start), or
    once (`once`: cancelled after its run)."""

    def __init__(self, scheduler: Scheduler, seconds: float, callback: Callable[[], Any], name: str,
                 once: bool = False):
        self.seconds = seconds
        self.once = once
        self.callback = callback
        self.name = name
        self.runs = 0
        self.failures = 0
        self.last_error: BaseException | None = None
        self.next_due = 0.0
        self._scheduler = scheduler
        self._cancelled = False

    @property
    def cancelled(self) -> bool:
        return self._cancelled

    def cancel(self) -> None:
        self._cancelled = True
        self._scheduler._wake()

    def run_once(self) -> None:
        """Runs the callback now, in the calling thread; errors are logged and kept, never raised."""
        try:
            self.callback()
        except Exception as exc:  # a failing sweep must not kill the scheduler: AWS would retry it next period
            self.failures += 1
            self.last_error = exc
            LOG.exception("scheduled job %s failed", self.name)
        finally:
            self.runs += 1

    def __repr__(self) -> str:
        return f"ScheduledJob({self.name!r}, every={self.seconds}s, runs={self.runs})"


class Scheduler:
    """Runs ScheduledJobs on one daemon thread between start() and stop()."""

    def __init__(self, thread_name: str = "stepflow-local-scheduler", guard: Any = None):
        self._thread_name = thread_name
        self._guard = guard if guard is not None else contextlib.nullcontext()
        self._jobs: list[ScheduledJob] = []
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._stopping = False

    @property
    def jobs(self) -> list[ScheduledJob]:
        with self._cond:
            return [job for job in self._jobs if not job.cancelled]

    def every(self, seconds: float, callback: Callable[[], Any], *, name: str | None = None,
              run_now: bool = False) -> ScheduledJob:
        if not seconds > 0:
            raise ValueError("seconds must be > 0")
        if not callable(callback):
            raise TypeError("callback must be callable")
        job = ScheduledJob(self, float(seconds), callback, name or str(getattr(callback, "__name__", "job")))
        with self._cond:
            job.next_due = time.monotonic() + (0.0 if run_now else job.seconds)
            self._jobs.append(job)
            self._cond.notify_all()
        return job

    def at(self, deadline: float, callback: Callable[[], Any], *, name: str) -> ScheduledJob:
        """Runs callback() once, not before the time.monotonic() `deadline` (nor before start())."""
        if not callable(callback):
            raise TypeError("callback must be callable")
        job = ScheduledJob(self, 0.0, callback, name, once=True)
        with self._cond:
            job.next_due = deadline
            self._jobs.append(job)
            self._cond.notify_all()
        return job

    def start(self) -> None:
        with self._cond:
            if self._thread is not None:
                return
            self._stopping = False
            now = time.monotonic()
            for job in self._jobs:  # jobs registered before start count their period from now
                job.next_due = max(job.next_due, now)
            self._thread = threading.Thread(target=self._run, name=self._thread_name, daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> bool:
        """Stops the thread after any callback in progress; True when it has ended within `timeout`."""
        with self._cond:
            thread, self._thread = self._thread, None
            self._stopping = True
            self._cond.notify_all()
        if thread is None or thread is threading.current_thread():
            return True
        thread.join(timeout)
        if thread.is_alive():
            LOG.warning("scheduler thread still busy after %.1fs (a callback is running long)", timeout)
            return False
        return True

    def _wake(self) -> None:
        with self._cond:
            self._cond.notify_all()

    def _run(self) -> None:
        while True:
            with self._cond:
                if self._stopping:
                    return
                self._jobs = [job for job in self._jobs if not job.cancelled]
                now = time.monotonic()
                due = [job for job in self._jobs if job.next_due <= now]
                if not due:
                    next_due = min((job.next_due for job in self._jobs), default=None)
                    self._cond.wait(None if next_due is None else next_due - now)
                    continue
            for job in sorted(due, key=lambda j: j.next_due):
                with self._cond:
                    if self._stopping:
                        return
                if job.cancelled:
                    continue
                with self._guard:
                    job.run_once()
                if job.once:
                    job.cancel()
                else:
                    job.next_due = time.monotonic() + job.seconds
