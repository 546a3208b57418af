"""Exact dependency scheduling through the API on the emulated AWS: gated steps start when the steps they
depend on have finished, once, whatever else runs; failure, gateways, cancel and resume around gates."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
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


def gates_of(instance_id: str) -> list[dict[str, Any]]:
    import app as app_module

    return app_module.services.gate_store.for_instance(instance_id)


def wait_for(check, what: str, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def compiled(api, definition: dict[str, Any]) -> dict[str, Any]:
    status, body = api.post("/definitions/validate", definition)
    assert status == 200 and body["valid"], body
    return body["asl"]


def state_names(asl: dict[str, Any]) -> set[str]:
    names: set[str] = set()
    todo = [asl]
    while todo:
        scope = todo.pop()
        for name, state in scope["States"].items():
            names.add(name)
            todo.extend(state.get("Branches", []))
    return names


def test_a_failing_dependency_fails_the_instance_and_the_gated_step_never_starts(api):
    definition = {"name": "crossed_failing", "steps": [
        {"id": "a", "type": "machine", "task_type": "data.assert", "config": {"condition": "missing == 1"}},
        sleep_step("b", 0.0), sleep_step("c", 0.0, "a", "b"), sleep_step("d", 0.0, "b")]}
    assert "c__gate" in state_names(compiled(api, definition))
    register(api, definition)
    instance_id = start(api, "crossed_failing")
    done = api.wait(instance_id)
    assert done["status"] == "failed", done
    assert done["error"]["error"] != "Stepflow.GatesUnavailable"
    times = step_times(api, instance_id)
    assert "failed" in times["a"] and "c" not in times
    wait_for(lambda: gates_of(instance_id) == [], "the ended instance's gates to close")


def gated_branch(name: str) -> dict[str, Any]:
    """A gateway whose `wide` branch holds a gated step (j waits for l and r); `narrow` is the default."""
    return {"name": name, "steps": [
        {"id": "route", "type": "gateway"},
        {"id": "wide", "type": "machine", "task_type": "util.log", "config": {"message": "wide"},
         "depends_on": ["route"], "condition": "size == 'wide'"},
        sleep_step("l", 0.2, "wide"), sleep_step("r", 0.0, "wide"),
        sleep_step("j", 0.0, "l", "r"), sleep_step("k", 0.0, "r"),
        {"id": "narrow", "type": "machine", "task_type": "util.log", "config": {"message": "narrow"},
         "depends_on": ["route"]},
        sleep_step("merge", 0.0, "j", "k", "narrow"),
    ]}


def test_a_gateway_that_skips_the_branch_of_a_gated_step_leaves_no_gate_waiting(api):
    definition = gated_branch("gated_branch")
    assert "j__gate" in state_names(compiled(api, definition))
    register(api, definition)
    skipped = start(api, "gated_branch", {"size": "small"})
    taken = start(api, "gated_branch", {"size": "wide"})
    done = api.wait(skipped)
    assert done["status"] == "completed", done
    assert set(step_times(api, skipped)) == {"narrow", "merge"}
    done = api.wait(taken)
    assert done["status"] == "completed", done
    times = step_times(api, taken)
    assert set(times) == {"wide", "l", "r", "j", "k", "merge"}
    assert times["j"]["started"] >= times["l"]["succeeded"] and times["k"]["started"] < times["l"]["succeeded"]
    assert gates_of(skipped) == []
    wait_for(lambda: gates_of(taken) == [], "the ended instance's gates to close")


def test_a_gate_after_a_gateway_is_released_whichever_branch_ran(api):
    # m waits for the gateway's region (whichever branch ran or none) and for slow; the gateway's
    # region is not a step the runner runs, so a release state follows it.
    definition = {"name": "after_gateway", "steps": [
        {"id": "route", "type": "gateway"},
        {"id": "yes", "type": "machine", "task_type": "util.log", "config": {"message": "y"},
         "depends_on": ["route"], "condition": "go == true"},
        sleep_step("slow", 0.3), sleep_step("side", 0.0, "slow"), sleep_step("other_side", 0.0, "slow"),
        sleep_step("m", 0.0, "yes", "route", "slow"),
    ], "edges": []}
    definition["steps"][-1]["depends_on"] = ["yes", "slow"]
    definition["edges"] = [{"source": "route", "target": "m"}]
    asl = compiled(api, definition)
    assert "m__gate" in state_names(asl) and "route__release" in state_names(asl)
    register(api, definition)
    for go in (True, False):
        instance_id = start(api, "after_gateway", {"go": go})
        done = api.wait(instance_id)
        assert done["status"] == "completed", done
        times = step_times(api, instance_id)
        assert ("yes" in times) is go
        assert times["m"]["started"] >= times["slow"]["succeeded"]


def test_cancel_while_a_step_waits_at_its_gate_leaves_no_token(api):
    # c follows b and waits at its gate for the human step a, which nobody completes (d after a makes
    # the shape one that no series-parallel plan runs exactly).
    definition = {"name": "waits_for_a_person", "steps": [
        {"id": "a", "type": "human", "assignee": "ada"}, sleep_step("b", 0.0), sleep_step("c", 0.0, "a", "b"),
        sleep_step("d", 0.0, "a")]}
    assert {"c__gate", "a__release"} <= state_names(compiled(api, definition))
    register(api, definition)
    instance_id = start(api, "waits_for_a_person")
    gate = wait_for(lambda: [g for g in gates_of(instance_id) if g["token"]], "c to wait at its gate")[0]
    assert gate["sk"].endswith("#c") and gate["waits"] == ["a"] and gate["arrived"] == []
    api.one_task(f"instance_id={instance_id}")
    status, canceled = api.post(f"/instances/{instance_id}/cancel")
    assert status == 200 and canceled["status"] == "canceled", canceled
    wait_for(lambda: gates_of(instance_id) == [], "the canceled instance's gates to close")
    assert "c" not in step_times(api, instance_id)
    [task] = api.get(f"/tasks?instance_id={instance_id}")[1]["items"]
    assert task["status"] == "canceled"


class Fragile(BaseHTTPRequestHandler):
    """Answers `status` (503 until a test sets it to 200) and counts the requests."""

    status = 503
    requests = 0

    def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
        Fragile.requests += 1
        self.send_response(Fragile.status)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: Any) -> None:
        pass


def test_resume_of_a_failed_gated_step_runs_it_without_rerunning_its_dependencies(api):
    Fragile.status, Fragile.requests = 503, 0
    server = ThreadingHTTPServer(("127.0.0.1", 0), Fragile)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        definition = {"name": "crossed_fragile", "steps": [
            sleep_step("a", 0.1), sleep_step("b", 0.0),
            {"id": "c", "type": "machine", "task_type": "http.request", "depends_on": ["a", "b"],
             "config": {"url": f"http://127.0.0.1:{server.server_address[1]}/fragile"}},
            sleep_step("d", 0.0, "b")]}
        assert "c__gate" in state_names(compiled(api, definition))
        register(api, definition)
        instance_id = start(api, "crossed_fragile")
        failed = api.wait(instance_id)
        assert failed["status"] == "failed" and failed["error"]["error"] == "HttpStatusError", failed
        Fragile.status = 200
        status, resumed = api.post(f"/instances/{instance_id}/resume")
        assert status == 200, resumed
        done = api.wait(instance_id)
        assert done["status"] == "completed", done
        started = [e["step"] for e in events(api, instance_id) if e["type"] == "step.started"]
        assert sorted(started) == ["a", "b", "c", "c", "d"]  # only the failed gated step ran again
        assert Fragile.requests == 2
        history = {s["step_name"]: s["status"] for s in done["step_history"]}
        assert history == dict.fromkeys("abcd", "succeeded")
        wait_for(lambda: gates_of(instance_id) == [], "the ended instance's gates to close")
    finally:
        server.shutdown()


def test_a_gated_human_step_opens_its_task_once_its_dependencies_finish_and_the_graph_shows_it(api):
    # review depends on a and b (b also feeds d): it waits at a gate, then opens its task with both outputs.
    definition = {"name": "gated_review", "steps": [
        {"id": "a", "type": "machine", "task_type": "data.set", "config": {"values": {"from_a": 1}}},
        {"id": "b", "type": "machine", "task_type": "data.set", "config": {"values": {"from_b": 2}}},
        {"id": "review", "type": "human", "assignee": "ada", "depends_on": ["a", "b"],
         "form_schema": {"type": "object", "properties": {"ok": {"type": "boolean"}}},
         "title": "Check {{ from_a }} and {{ from_b }}"},
        sleep_step("d", 0.0, "b"),
        {"id": "after", "type": "machine", "task_type": "data.set", "config": {"values": {"done": True}},
         "depends_on": ["review"]}]}
    assert "review__gate" in state_names(compiled(api, definition))
    register(api, definition)
    instance_id = start(api, "gated_review")
    task = api.one_task(f"instance_id={instance_id}")
    assert task["step_name"] == "review" and task["title"] == "Check 1 and 2"
    status, graph = api.get(f"/instances/{instance_id}/graph")
    assert status == 200 and graph["current_steps"] == ["review"], graph
    status, body = api.post(f"/tasks/{task['id']}/complete", {"output_data": {"ok": True}, "completed_by": "ada"})
    assert status == 200, body
    done = api.wait(instance_id)
    assert done["status"] == "completed", done
    assert done["context_data"]["done"] is True and done["context_data"]["from_a"] == 1
    history = {s["step_name"]: s["status"] for s in done["step_history"]}
    assert history == {"a": "succeeded", "b": "succeeded", "review": "succeeded", "d": "succeeded",
                       "after": "succeeded"}
    assert api.get(f"/instances/{instance_id}/graph")[0] == 200
