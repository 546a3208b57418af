"""Optional memory tracing of the local service, for finding leaks: with STEPFLOW_LOCAL_TRACE_MEMORY=DIR the
server's first SIGUSR1 starts tracing Python allocations (tracemalloc), and each SIGUSR1, the first included,
writes a snapshot to DIR (snapshot-1.pickle, snapshot-2.pickle, ...). What snapshot n holds and snapshot 1
does not was allocated since tracing began and is still alive: diff them with tracemalloc.Snapshot.load and
compare_to. Tracing slows the server and holds memory of its own; it is off unless asked for."""

from __future__ import annotations

import gc
import logging
import os
import signal
import threading
import tracemalloc
from pathlib import Path
from typing import Any

LOG = logging.getLogger("stepflow_local")

TRACE_ENV = "STEPFLOW_LOCAL_TRACE_MEMORY"
FRAMES_ENV = "STEPFLOW_LOCAL_TRACE_FRAMES"
DEFAULT_FRAMES = 6


def install_from_env() -> Path | None:
    """Starts tracing and the SIGUSR1 snapshot handler when $STEPFLOW_LOCAL_TRACE_MEMORY names a folder."""
    folder = os.environ.get(TRACE_ENV, "").strip()
    if not folder or threading.current_thread() is not threading.main_thread():
        return None
    target = Path(folder)
    target.mkdir(parents=True, exist_ok=True)
    frames = int(os.environ.get(FRAMES_ENV, "") or DEFAULT_FRAMES)
    taken = [0]

    def snapshot(signum: int, frame: Any) -> None:
        if not tracemalloc.is_tracing():
            tracemalloc.start(frames)
        taken[0] += 1
        path = target / f"snapshot-{taken[0]}.pickle"
        gc.collect()  # what is held, not garbage the collector has yet to reach
        tracemalloc.take_snapshot().dump(str(path))
        LOG.warning("memory snapshot written to %s", path)

    signal.signal(signal.SIGUSR1, snapshot)
    LOG.warning("memory tracing armed (%d frames): SIGUSR1 starts it and writes a snapshot to %s", frames, target)
    return target
