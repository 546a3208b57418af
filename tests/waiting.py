"""Waiting on a condition in tests that drive the API: a step's task once it is stored, never a sleep."""

from __future__ import annotations

import time
from typing import Any


def wait_for_task(api: Any, instance_id: str, step: str, timeout: float = 20.0) -> dict[str, Any]:
    """The pending task of `step` in the instance; a step shows as waiting a moment before it is stored."""
    deadline = time.monotonic() + timeout
    while True:
        items = api.get(f"/tasks?instance_id={instance_id}")[1]["items"]
        found = [t for t in items if t["step_name"] == step and t["status"] == "pending"]
        if found:
            return found[0]
        assert time.monotonic() < deadline, f"step {step} never waited: {items}"
        time.sleep(0.1)
