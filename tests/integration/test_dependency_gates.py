"""Exact dependency scheduling through the API on the emulated AWS: gated steps start when the steps they
depend on have finished, once, whatever else runs; failure, gateways, cancel and resume around gates."""

from __future__ import annotations

import json
from typing import Any


def sleep_step(step_id: str, seconds: float, *deps: str, **extra: Any) -> dict[str, Any]:
    return {"id": step_id, "type": "machine", "task_type": "util.sleep", "config": {"seconds": seconds},
            "depends_on": list(deps), **extra}


def register(api, definition: dict[str, Any]) -> None:
    status, body = api.post("/definitions", definition)
    assert status in (200, 201), body


def start(api, name: str, input_data: dict[str, Any] | None = None) -> str:
    status, body = api.post("/instances", {"definition_name": name, "input_data": input_data or {}})
    assert status == 201, body
    return body["id"]


def step_times(api, instance_id: str) -> dict[str, dict[str, str]]:
    """step -> {"started": time, "succeeded": time} from the instance's event log."""
    out: dict[str, dict[str, str]] = {}
    for event in events(api, instance_id):
        if event["type"] in ("step.started", "step.succeeded", "step.failed"):
            out.setdefault(event["step"], {})[event["type"].split(".")[1]] = event["seq"]
    return out


def events(api, instance_id: str) -> list[dict[str, Any]]:
    response = api.client.http.get(f"{api.prefix}/instances/{instance_id}/events?limit=1000")
    assert response.status_code == 200, response.body
    return [json.loads(line) for line in response.body.decode().splitlines()]


# a -> c <- b -> d: no series-parallel plan runs d as soon as b ends and c as soon as a and b end.
CROSSED = {"name": "crossed", "steps": [
    sleep_step("a", 1.0), sleep_step("b", 0.0), sleep_step("c", 0.0, "a", "b"), sleep_step("d", 0.0, "b")]}


def test_a_gated_step_starts_after_all_its_dependencies_and_others_do_not_wait(api):
    register(api, CROSSED)
    instance_id = start(api, "crossed")
    done = api.wait(instance_id)
    assert done["status"] == "completed", done
    times = step_times(api, instance_id)
    assert set(times) == {"a", "b", "c", "d"}
    assert times["c"]["started"] >= max(times["a"]["succeeded"], times["b"]["succeeded"])
    assert times["d"]["started"] < times["a"]["succeeded"]  # d waits for b alone, not for a
    history = {s["step_name"]: s for s in done["step_history"]}
    assert all(history[s]["status"] == "succeeded" and history[s]["attempts"] == 1 for s in "abcd"), history
