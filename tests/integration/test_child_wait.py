"""workflow.start with wait: the parent's step ends with its child, through the local runtime: the child's
output, its failure (catchable), and a parent canceled while it waits."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from tests.integration.test_catalog import outputs


def register(api, name: str, steps: list[dict[str, Any]], **extra: Any) -> None:
    status, body = api.post("/definitions", {"name": name, "steps": steps, **extra})
    assert status in (200, 201), body


def start(api, name: str, input_data: dict[str, Any] | None = None) -> str:
    status, body = api.post("/instances", {"definition_name": name, "input_data": input_data or {}})
    assert status == 201, body
    return body["id"]


def children(api, parent_id: str) -> list[dict[str, Any]]:
    status, page = api.get(f"/instances?origin_instance={parent_id}")
    assert status == 200, page
    return page["items"]


def settled(api, parent_id: str) -> dict[str, Any]:
    """The parent once it has ended. Here nothing delivers Step Functions' status changes (EventBridge on
    AWS, the local server's watcher under `make run`): reading an instance is what records its end, so
    each child is read to its end first, which answers the parent's wait."""
    until(lambda: children(api, parent_id))
    for child in children(api, parent_id):
        api.wait(child["id"], timeout=60)
    return api.wait(parent_id, timeout=60)


def until(check, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def test_the_parent_waits_for_the_child_and_goes_on_with_its_output(api):
    child = f"credit_{uuid.uuid4().hex[:6]}"
    # A timer first: the child is still running for a while after it starts, so the parent has to wait.
    register(api, child, [
        {"id": "pause", "type": "timer", "seconds": 60},
        {"id": "score", "type": "machine", "task_type": "data.set", "depends_on": ["pause"],
         "config": {"values": {"approved": "{{ amount_ok }}", "customer": "{{ customer }}"}}}])
    parent = f"order_{uuid.uuid4().hex[:6]}"
    register(api, parent, [
        {"id": "check", "type": "machine", "task_type": "workflow.start",
         "config": {"workflow": child, "input": {"customer": "{{ customer }}", "amount_ok": True}, "wait": True}},
        {"id": "after", "type": "machine", "task_type": "data.assert", "depends_on": ["check"],
         "config": {"condition": "output.approved == true"}}])
    parent_id = start(api, parent, {"customer": "c-17"})
    assert until(lambda: children(api, parent_id))
    assert api.get(f"/instances/{parent_id}")[1]["status"] == "running"  # waiting for the child
    done = settled(api, parent_id)
    assert done["status"] == "completed", done
    [spawned] = children(api, done["id"])
    finished = api.wait(spawned["id"])
    assert finished["status"] == "completed" and finished["completed_at"] <= done["completed_at"]
    step = outputs(api, done)["check"]
    assert step == {"instance_id": spawned["id"], "workflow": child, "status": "completed",
                    "output": finished["output"]}
    assert step["output"]["approved"] is True and step["output"]["customer"] == "c-17"
    # The step is one step in the parent's history, with its output; the helper state is not a step.
    status, body = api.get(f"/instances/{done['id']}")
    assert [s["step_name"] for s in body["step_history"]] == ["check", "after"]
    # The parent's task token, kept on the child's record, is in none of what the API shows of either.
    import app as app_module

    token = app_module.services.instance_store.get(spawned["id"])["parent_token"]
    assert token
    shown = [api.get(f"/instances/{i}")[1] for i in (done["id"], spawned["id"])]
    shown += [api.get(f"/instances/{i}/events")[1] for i in (done["id"], spawned["id"])]
    shown += [api.get(f"/instances?origin_instance={done['id']}")[1]]
    texts = [item.decode() if isinstance(item, bytes) else json.dumps(item) for item in shown]
    assert all(token not in text and "parent_token" not in text for text in texts)


def test_a_failed_child_fails_the_waiting_step_with_a_catchable_error(api):
    child = f"fragile_{uuid.uuid4().hex[:6]}"
    register(api, child, [{"id": "boom", "type": "machine", "task_type": "data.assert",
                           "config": {"condition": "amount < 10", "error": "Credit.Refused", "message": "too much"}}])
    plain = f"plain_{uuid.uuid4().hex[:6]}"
    register(api, plain, [{"id": "check", "type": "machine", "task_type": "workflow.start",
                           "config": {"workflow": child, "input": {"amount": "{{ amount }}"}, "wait": True}}])
    failed = settled(api, start(api, plain, {"amount": 50}))
    assert failed["status"] == "failed", failed
    assert failed["error"]["error"] == "Workflow.ChildFailed"
    assert "Credit.Refused" in failed["error"]["message"] and child in failed["error"]["message"]

    caught = f"caught_{uuid.uuid4().hex[:6]}"
    register(api, caught, [{"id": "check", "type": "machine", "task_type": "workflow.start",
                            "config": {"workflow": child, "input": {"amount": "{{ amount }}"}, "wait": True},
                            "fallback": {"task_type": "data.set",
                                         "config": {"values": {"fell_back": "{{ failure.error }}"}}}}])
    done = settled(api, start(api, caught, {"amount": 50}))
    assert done["status"] == "completed", done
    assert outputs(api, done)["check"] == {"fell_back": "Workflow.ChildFailed"}
    # A child that succeeds takes the same path without the fallback.
    ok = settled(api, start(api, caught, {"amount": 5}))
    assert ok["status"] == "completed" and outputs(api, ok)["check"]["status"] == "completed"


def test_canceling_the_waiting_parent_cancels_the_child_it_waits_for(api):
    child = f"review_{uuid.uuid4().hex[:6]}"
    register(api, child, [{"id": "approve", "type": "human", "title": "Approve"}])
    parent = f"outer_{uuid.uuid4().hex[:6]}"
    register(api, parent, [{"id": "check", "type": "machine", "task_type": "workflow.start",
                            "config": {"workflow": child, "wait": True}}])
    parent_id = start(api, parent)
    spawned = until(lambda: children(api, parent_id))
    assert spawned, "the child did not start"
    child_id = spawned[0]["id"]
    assert api.wait(child_id, until=("waiting",))["status"] == "waiting"
    status, body = api.post(f"/instances/{parent_id}/cancel", {"reason": "no longer needed"})
    assert status == 200, body
    ended = api.wait(child_id, until=("canceled", "completed", "failed"))
    assert ended["status"] == "canceled", ended
    assert parent_id in (ended.get("cancel_reason") or "")
    assert api.get(f"/instances/{parent_id}")[1]["status"] == "canceled"
    # A fire-and-forget child is not the parent's to cancel: it goes on.
    loose = f"loose_{uuid.uuid4().hex[:6]}"
    register(api, loose, [{"id": "check", "type": "machine", "task_type": "workflow.start",
                           "config": {"workflow": child}},
                          {"id": "hold", "type": "human", "title": "Hold", "depends_on": ["check"]}])
    loose_id = start(api, loose)
    assert api.wait(loose_id, until=("waiting",))["status"] == "waiting"
    free_child = children(api, loose_id)[0]["id"]
    assert api.wait(free_child, until=("waiting",))["status"] == "waiting"
    assert api.post(f"/instances/{loose_id}/cancel", {})[0] == 200
    assert api.get(f"/instances/{free_child}")[1]["status"] == "waiting"


def test_wait_is_a_literal_boolean(api):
    status, body = api.post("/definitions/validate", {"name": "check", "steps": [
        {"id": "w", "type": "machine", "task_type": "workflow.start",
         "config": {"workflow": "some_flow", "wait": "{{ wait }}"}}]})
    assert status == 200, body
    assert [(i["code"], i["location"]) for i in body["issues"]] == [("invalid_config", "steps[0].config.wait")]


def test_a_child_that_cannot_start_fails_the_waiting_step_with_the_named_error(api):
    parent = f"lost_{uuid.uuid4().hex[:6]}"
    register(api, parent, [{"id": "check", "type": "machine", "task_type": "workflow.start",
                            "config": {"workflow": "no_such_flow", "wait": True}}])
    failed = api.wait(start(api, parent), timeout=60)
    assert failed["status"] == "failed", failed
    assert failed["error"]["error"] == "Workflow.NotFound" and "no_such_flow" in failed["error"]["message"]
    assert children(api, failed["id"]) == []


def test_a_child_ending_while_its_parent_begins_to_wait_still_answers_the_parent(api):
    """The parent's step writes its token on the child, then reads the child's status; the child's end writes
    its status, then reads the token. Whichever order they cross in, one of the two answers the parent: here
    the end was decided on a record read before the token was written (the wait saw the child running)."""
    import app as app_module
    from chalicelib.core.times import iso

    child = f"slow_{uuid.uuid4().hex[:6]}"
    register(api, child, [{"id": "pause", "type": "timer", "seconds": 3600}])
    parent = f"waiter_{uuid.uuid4().hex[:6]}"
    register(api, parent, [{"id": "check", "type": "machine", "task_type": "workflow.start",
                            "config": {"workflow": child, "wait": True}}])
    parent_id = start(api, parent)
    store = app_module.services.instance_store
    spawned = until(lambda: children(api, parent_id))
    child_id = spawned[0]["id"]
    assert until(lambda: (store.get(child_id) or {}).get("parent_token"))
    stale = {k: v for k, v in store.get(child_id).items() if k not in ("parent_token", "parent_step")}
    output = {"verdict": "ok"}
    app_module.services.instances._end(stale, {"status": "completed", "completed_at": iso(datetime.now(UTC)),
                                                "output": output, "error": None, "context": output})
    done = api.wait(parent_id, timeout=30)
    assert done["status"] == "completed", done
    assert outputs(api, done)["check"]["output"] == output
