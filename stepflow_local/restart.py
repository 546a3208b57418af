"""What a local service on a kept store does at start, before it serves: Step Functions (moto, in memory)
lost its state machines and executions, DynamoDB kept everything else. The state machines are created
again from the stored definitions, unfinished launches are finished, and every live instance continues
from its last completed step as a new run, its waiting timers keeping their due times."""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from chalicelib.core.definition_keys import instance_key
from stepflow_local import kept_timers
from stepflow_local.moto_patches import time_scale

LOG = logging.getLogger("stepflow_local")
CONTINUE_WORKERS = 4


@dataclass
class Recovery:
    state_machines: list[str] = field(default_factory=list)
    launches: dict[str, int] = field(default_factory=dict)
    continued: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def describe(self) -> str:
        if not (self.state_machines or self.continued or self.failed or any(self.launches.values())):
            return "Kept data: none yet (a new data directory)."
        parts = [f"{len(self.state_machines)} workflow(s) restored"]
        if self.continued:
            parts.append(f"{len(self.continued)} running instance(s) continued from their last completed step")
        started = self.launches.get("started", 0) + self.launches.get("found", 0)
        if started:
            parts.append(f"{started} interrupted start(s) finished")
        if self.failed:
            parts.append(f"{len(self.failed)} could not be continued yet (the sweep retries them)")
        return "Kept data: " + ", ".join(parts) + f" in {self.seconds:.1f} s."


def recover(services: Any) -> Recovery:
    """Brings Step Functions back in line with the kept store (see the module docstring)."""
    began = time.monotonic()
    report = Recovery()
    report.state_machines = services.definitions.restore_state_machines()
    report.launches = services.instances.recover_launches(grace=timedelta(0))

    def continue_one(record: dict[str, Any]) -> tuple[str, str | None, bool]:
        try:
            arn = services.instances.continue_lost(record, before_start=lambda run, summary, name: keep_timers(
                services, run, summary, name))
        except Exception:  # noqa: BLE001 - its launch intent stands: the sweep retries, then gives up cleanly
            LOG.warning("instance %s could not be continued now", record["id"], exc_info=True)
            return record["id"], None, False
        return record["id"], arn, True

    # Each continuation mostly waits on DynamoDB Local (another process): a few at a time overlap that.
    with ThreadPoolExecutor(max_workers=CONTINUE_WORKERS, thread_name_prefix="stepflow-continue") as pool:
        for instance_id, arn, ok in pool.map(continue_one, services.instances.lost_runs()):
            if not ok:
                report.failed.append(instance_id)
            elif arn:
                report.continued.append(instance_id)
    report.seconds = time.monotonic() - began
    return report


def keep_timers(services: Any, run: dict[str, Any], summary: Any, execution_name: str) -> list[str]:
    """Keeps the due time of each timer the lost run was waiting in, for the run about to start: a Wait of
    `seconds` that began at the step's recorded start ends then, at the runtime's time scale (a timer
    that waits `until` a timestamp keeps it by itself). The timers kept."""
    definition = services.loader.load(instance_key(run), run["revision"]).definition
    kept = []
    for step_id in summary.current_steps:
        record = summary.steps.get(step_id)
        try:
            step = definition.step(step_id)
        except KeyError:
            continue  # not in the revision the run executes
        seconds = getattr(step, "seconds", None)
        if step.type != "timer" or seconds is None or record is None or not record.started_at:
            continue
        kept_timers.keep(execution_name, step_id, kept_timers.due_time(record.started_at, seconds, time_scale()))
        kept.append(step_id)
    return kept
