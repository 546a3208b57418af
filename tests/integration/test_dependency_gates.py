"""Exact dependency scheduling through the API on the emulated AWS: gated steps start when the steps they
depend on have finished, once, whatever else runs; failure, gateways, cancel and resume around gates."""

from __future__ import annotations

import json
import time
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.serving import serving


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
    assert "c__run" in state_names(compiled(api, definition))
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
        sleep_step("l", 1.0, "wide"), sleep_step("r", 0.0, "wide"),  # k must start while l sleeps, on a busy machine
        sleep_step("j", 0.0, "l", "r"), sleep_step("k", 0.0, "r"),
        {"id": "narrow", "type": "machine", "task_type": "util.log", "config": {"message": "narrow"},
         "depends_on": ["route"]},
        sleep_step("merge", 0.0, "j", "k", "narrow"),
    ]}


def test_a_gateway_that_skips_the_branch_of_a_gated_step_leaves_no_gate_waiting(api):
    definition = gated_branch("gated_branch")
    assert "j__run" in state_names(compiled(api, definition))
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
    assert "m__run" in state_names(asl) and "route__release" in state_names(asl)
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
    assert {"c__run", "a__release"} <= state_names(compiled(api, definition))
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
    with serving(Fragile) as url:
        definition = {"name": "crossed_fragile", "steps": [
            sleep_step("a", 0.1), sleep_step("b", 0.0),
            {"id": "c", "type": "machine", "task_type": "http.request", "depends_on": ["a", "b"],
             "config": {"url": f"{url}/fragile"}},
            sleep_step("d", 0.0, "b")]}
        assert "c__run" in state_names(compiled(api, definition))
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


def history_summary(api, instance_id: str, definition: dict[str, Any]):
    """The step records the execution history gives (what a view falls back to where the log falls short)."""
    import app as app_module
    from chalicelib.core.history import summarise

    record = app_module.services.instance_store.get(instance_id)
    events = app_module.services.machines.history(record["execution_arn"])
    return events, summarise(events, {s["id"]: s["type"] for s in definition["steps"]})


class FailsOnce(BaseHTTPRequestHandler):
    """Answers 503 to its first request and 200 after it."""

    requests = 0

    def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
        FailsOnce.requests += 1
        self.send_response(503 if FailsOnce.requests == 1 else 200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: Any) -> None:
        pass


def retried_once(name: str, url: str, *, a_seconds: float, b_seconds: float) -> dict[str, Any]:
    """c (an HTTP call to FailsOnce, retried once) depends on a and b; d follows b."""
    return {"name": name, "steps": [
        sleep_step("a", a_seconds), sleep_step("b", b_seconds),
        {"id": "c", "type": "machine", "task_type": "http.request", "depends_on": ["a", "b"],
         "config": {"url": f"{url}/once"}, "retry": {"max_attempts": 2, "interval_seconds": 1}},
        sleep_step("d", 0.0, "b")]}


def test_a_gated_step_whose_gate_is_open_when_it_comes_runs_in_its_own_state_retries_included(api):
    # c follows a (slow; d follows b) and waits for b (instant): its gate is complete when it registers, so
    # its own state runs it; its first attempt fails and the retry policy runs it again in the same state.
    FailsOnce.requests = 0
    with serving(FailsOnce) as url:
        definition = retried_once("open_gate", url, a_seconds=0.4, b_seconds=0.0)
        asl = compiled(api, definition)
        assert "c__run" in state_names(asl) and "c__gate" not in state_names(asl)
        register(api, definition)
        instance_id = start(api, "open_gate")
        done = api.wait(instance_id)
        assert done["status"] == "completed", done
        assert FailsOnce.requests == 2
        times = step_times(api, instance_id)
        assert times["c"]["started"] >= max(times["a"]["succeeded"], times["b"]["succeeded"])
        history = {s["step_name"]: s for s in done["step_history"]}
        assert history["c"]["status"] == "succeeded" and history["c"]["attempts"] == 2, history["c"]
        events, summary = history_summary(api, instance_id, definition)
        entered = [e["stateEnteredEventDetails"]["name"] for e in events if e["type"].endswith("StateEntered")]
        assert "c__run" not in entered and entered.count("c") == 1  # retried inside the state: one transition
        assert summary.steps["c"].status == "succeeded" and summary.steps["c"].attempts == 2
        assert summary.outputs["c"]["status"] == 200
        wait_for(lambda: gates_of(instance_id) == [], "the ended instance's gates to close")


def test_a_gate_that_opens_after_the_step_came_runs_it_in_its_run_state_with_every_output(api):
    # c follows a (instant) and waits for b (slow; d follows it), whose output it reads through a mapping.
    definition = {"name": "late_gate", "steps": [
        {"id": "a", "type": "machine", "task_type": "data.set", "config": {"values": {"from_a": 7}}},
        sleep_step("b", 0.5),
        {"id": "c", "type": "machine", "task_type": "data.set", "config": {"values": {"seen": True}},
         "depends_on": ["a", "b"],
         "input_mappings": [{"from_step": "b", "from_field": "slept_seconds", "to_field": "copied"}]},
        sleep_step("d", 0.0, "b")]}
    register(api, definition)
    instance_id = start(api, "late_gate")
    done = api.wait(instance_id)
    assert done["status"] == "completed", done
    times = step_times(api, instance_id)
    assert times["c"]["started"] >= times["b"]["succeeded"]
    assert done["context_data"]["from_a"] == 7 and done["context_data"]["seen"] is True
    history = {s["step_name"]: s for s in done["step_history"]}
    assert history["c"]["status"] == "succeeded" and history["c"]["attempts"] == 1
    events, summary = history_summary(api, instance_id, definition)
    entered = [e["stateEnteredEventDetails"]["name"] for e in events if e["type"].endswith("StateEntered")]
    assert entered.count("c") == 1 and entered.count("c__run") == 1
    record = summary.steps["c"]
    assert (record.status, record.attempts, record.error) == ("succeeded", 1, None), record
    started = [e for e in events if e["type"] == "LambdaFunctionScheduled" and '"opened"' in
               e["lambdaFunctionScheduledEventDetails"]["input"]]
    assert len(started) == 1
    wait_for(lambda: gates_of(instance_id) == [], "the ended instance's gates to close")


def test_a_gate_that_opens_late_is_caught_not_retried_by_the_steps_retry_policy(api):
    # c (retry: any error, twice) follows a (instant) and waits for b (slow): the opening is caught at once
    # (no retry interval, no attempt used); its run state fails once and the policy retries it there.
    FailsOnce.requests = 0
    with serving(FailsOnce) as url:
        definition = retried_once("late_gate_retried", url, a_seconds=0.0, b_seconds=0.5)
        register(api, definition)
        instance_id = start(api, "late_gate_retried")
        done = api.wait(instance_id)
        assert done["status"] == "completed", done
        assert FailsOnce.requests == 2
        events, summary = history_summary(api, instance_id, definition)
        entered = [e["stateEnteredEventDetails"]["name"] for e in events if e["type"].endswith("StateEntered")]
        assert entered.count("c") == 1 and entered.count("c__run") == 1
        opened = [e for e in events if e["type"] == "TaskFailed"
                  and e["taskFailedEventDetails"]["error"] == "Stepflow.GateOpen"]
        assert len(opened) == 1
        assert sum(1 for e in events if e["type"] == "TaskScheduled") == 1  # the opening was not retried
        record = summary.steps["c"]
        assert (record.status, record.attempts) == ("succeeded", 2), record
        history = {s["step_name"]: s for s in done["step_history"]}
        assert history["c"]["attempts"] == 2
