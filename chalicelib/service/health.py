"""Liveness and readiness: whether the process answers, and whether what it depends on answers in time."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Any

logger = logging.getLogger("stepflow.health")

OK, UNREACHABLE, TIMED_OUT = "ok", "unreachable", "timed_out"


def readiness(probes: Mapping[str, Callable[[], None]], deadline_seconds: float) -> dict[str, Any]:
    """Runs every probe at once and waits at most `deadline_seconds` for all of them.

    A probe that raises is `unreachable`, one still running at the deadline `timed_out` (its thread is
    left to finish on its own: a hung dependency must not hang the answer). What failed is logged with
    its error; the answer names the dependency and the verdict only, never the error's text.
    """
    started = time.monotonic()
    pool = ThreadPoolExecutor(max_workers=max(1, len(probes)), thread_name_prefix="readyz")
    try:
        futures = {name: pool.submit(probe) for name, probe in probes.items()}
        wait(futures.values(), timeout=deadline_seconds)
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    checks: dict[str, str] = {}
    for name, future in futures.items():
        if not future.done():
            checks[name] = TIMED_OUT
            logger.warning("readiness: %s did not answer within %.1f s", name, deadline_seconds)
        elif future.exception() is not None:
            checks[name] = UNREACHABLE
            error = future.exception()
            logger.warning("readiness: %s failed: %s", name, type(error).__name__)
        else:
            checks[name] = OK
    failing = sorted(name for name, verdict in checks.items() if verdict != OK)
    return {"status": "not_ready" if failing else "ready", "checks": checks, "failing": failing,
            "elapsed_ms": round((time.monotonic() - started) * 1000, 1)}
