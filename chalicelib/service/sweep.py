"""The scheduled sweep's passes, each run on its own so that one failing pass leaves the others to run."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

log = logging.getLogger("stepflow.sweep")


def run_passes(passes: Mapping[str, Callable[[], Mapping[str, int] | int]]) -> dict[str, int]:
    """Runs every pass; a pass answering a number is counted under its name, one answering a mapping
    adds its counts. A pass that raises (AWS unavailable for a moment) is logged and counted in
    `failed_passes`: the next sweep repeats it."""
    stats: dict[str, int] = {"failed_passes": 0}
    for name, run in passes.items():
        try:
            result = run()
        except Exception:  # noqa: BLE001 - see the docstring
            log.exception("sweep pass %s failed; the next sweep repeats it", name)
            stats["failed_passes"] += 1
            continue
        if isinstance(result, Mapping):
            stats.update(result)
        else:
            stats[name] = result
    return stats
