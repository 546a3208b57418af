"""Multi-person decisions through the API: a quorum of approvals, four-eyes, and both under racing deciders."""

from __future__ import annotations

import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

FORM = {"type": "object", "required": ["approved"],
        "properties": {"approved": {"type": "boolean"}, "comments": {"type": "string"}}}


def board_spend(required=2, out_of=3, distinct_from=("requester",), name="board_spend"):
    review = {"id": "review", "type": "human", "title": "Board review", "form_schema": FORM,
              "approvals": {"required": required, "of": "board", **({"out_of": out_of} if out_of else {})},
              "distinct_from": list(distinct_from)}
    return {"name": name, "input_schema": {"type": "object", "properties": {"requester": {"type": "string"},
                                                                            "amount": {"type": "number"}}},
            "steps": [review, {"id": "book", "type": "machine", "task_type": "data.set", "depends_on": ["review"],
                               "config": {"values": {"booked": True}}}]}


def start(api, definition, requester="alice", user="alice"):
    status, body = api.post("/definitions", definition)
    assert status in (200, 201), body
    status, started = api.post("/instances", {"definition_name": definition["name"], "user_id": user,
                                              "input_data": {"requester": requester, "amount": 9000}})
    assert status == 201, started
    return started["id"], api.one_task(f"instance_id={started['id']}")


def approve(api, task_id, who, comment=None, approved=True):
    body = {"decided_by": who, **({"comment": comment} if comment else {})}
    return api.post(f"/approvals/{task_id}/{'approve' if approved else 'reject'}", body)


def test_two_of_three_completes_on_the_second_approval_and_a_third_gets_409(api):
    instance_id, task = start(api, board_spend())
    assert task["assignee_group"] == "board"
    status, view = api.get(f"/tasks/{task['id']}")
    assert view["quorum"] == {"required": 2, "of": "board", "out_of": 3, "approved": 0, "rejected": 0}
    assert view["distinct_from"] == [{"rule": "requester", "principal": "alice"}]

    status, first = approve(api, task["id"], "bob", "fine by me")
    assert status == 200 and first["status"] == "pending", first
    assert first["quorum"]["approved"] == 1 and [d["by"] for d in first["decisions"]] == ["bob"]
    status, twice = approve(api, task["id"], "bob")
    assert status == 403 and "already decided" in twice["detail"]

    status, second = approve(api, task["id"], "carol", "agreed")
    assert status == 200 and second["status"] == "completed" and second["completed_by"] == "carol"
    assert second["output_data"] == {"approved": True, "comments": "agreed"}
    assert [(d["by"], d["approved"]) for d in second["decisions"]] == [("bob", True), ("carol", True)]

    status, third = approve(api, task["id"], "dave")
    assert status == 409 and "already completed" in third["detail"]
    done = api.wait(instance_id)
    assert done["status"] == "completed" and done["context_data"]["approved"] is True
    assert done["context_data"]["booked"] is True
    assert len(api.get(f"/tasks/{task['id']}")[1]["decisions"]) == 2


def test_the_step_is_rejected_as_soon_as_the_quorum_is_out_of_reach(api):
    instance_id, task = start(api, board_spend())
    status, one = approve(api, task["id"], "bob", approved=False)
    assert status == 200 and one["status"] == "pending" and one["quorum"]["rejected"] == 1
    status, two = approve(api, task["id"], "carol", "no", approved=False)
    # 2 of 3 needed: with two rejections only one person is left, so the step ends rejected now.
    assert status == 200 and two["status"] == "completed" and two["output_data"] == {"approved": False, "comments": "no"}
    assert api.wait(instance_id)["context_data"]["approved"] is False


def test_without_out_of_the_first_rejection_decides(api):
    _, task = start(api, board_spend(out_of=None, name="board_veto"))
    assert approve(api, task["id"], "bob")[1]["status"] == "pending"
    status, vetoed = approve(api, task["id"], "carol", approved=False)
    assert status == 200 and vetoed["status"] == "completed" and vetoed["output_data"]["approved"] is False


def test_the_requester_may_not_approve_their_own_expense(api):
    instance_id, task = start(api, board_spend(required=1, out_of=None, name="own_expense"))
    status, refused = approve(api, task["id"], "alice")
    assert status == 403 and "requester" in refused["detail"] and "four-eyes" in refused["detail"]
    # Through the form as well, and nothing changed.
    status, refused = api.post(f"/tasks/{task['id']}/complete", {"output_data": {"approved": True},
                                                                 "completed_by": "alice"})
    assert status == 403
    assert api.get(f"/tasks/{task['id']}")[1]["decisions"] is None
    status, done = approve(api, task["id"], "bob")
    assert status == 200 and done["status"] == "completed"
    assert api.wait(instance_id)["status"] == "completed"


def test_four_eyes_on_a_plain_form_and_on_who_started_the_instance(api):
    definition = board_spend(required=1, out_of=None, distinct_from=("started_by",), name="started_by_rule")
    del definition["steps"][0]["approvals"]
    _, task = start(api, definition, requester="alice", user="zoe")
    assert api.get(f"/tasks/{task['id']}")[1]["distinct_from"] == [{"rule": "started_by", "principal": "zoe"}]
    status, refused = api.post(f"/tasks/{task['id']}/complete", {"output_data": {"approved": True},
                                                                 "completed_by": "zoe"})
    assert status == 403 and "started_by" in refused["detail"]
    status, done = api.post(f"/tasks/{task['id']}/complete", {"output_data": {"approved": True}, "completed_by": "alice"})
    assert status == 200 and done["status"] == "completed"


def test_a_quorum_needs_an_approval_form(api):
    definition = board_spend()
    definition["steps"][0]["form_schema"] = {"type": "object", "properties": {"note": {"type": "string"}}}
    status, refused = api.post("/definitions", definition)
    assert status in (400, 422) and "approval form" in str(refused)


@pytest.fixture
def eager_switches():
    # Every 10 us rather than 5 ms: a check-then-write race shows within a few rounds.
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    yield
    sys.setswitchinterval(previous)


def test_racing_deciders_never_double_count_nor_double_complete(api, eager_switches):
    import app as app_module
    from chalicelib.errors import Conflict, Forbidden

    services = app_module.services
    sent = []
    real_send = services.machines.send_success

    def counting(token, output):
        sent.append(token)
        return real_send(token, output)

    services.machines.send_success = counting
    try:
        for round_ in range(3):
            instance_id, task = start(api, board_spend(required=2, out_of=6, name=f"race_{round_}"))
            # Six people approve at once, one of them from three places, and the requester tries too.
            deciders = ["bob", "carol", "dave", "erin", "frank", "gina", "bob", "bob", "alice"]
            barrier = threading.Barrier(len(deciders))
            outcomes = []

            def decide(who, task_id=task["id"], barrier=barrier, outcomes=outcomes):
                barrier.wait()
                try:
                    outcomes.append(("ok", services.tasks.decide(task_id, True, who, None)["status"]))
                except Conflict:
                    outcomes.append(("409", who))
                except Forbidden:
                    outcomes.append(("403", who))

            with ThreadPoolExecutor(len(deciders)) as pool:
                list(pool.map(decide, deciders))
            record = services.tasks.get(task["id"])
            people = [d["by"] for d in record["decisions"]]
            assert len(people) == 2 and len(set(people)) == 2 and "alice" not in people, people
            assert record["status"] == "completed" and record["completed_by"] == people[-1]
            assert [o for o in outcomes if o[0] == "ok"].count(("ok", "completed")) == 1, outcomes
            # The requester is refused: 403, or 409 when the task was already done by the time she was judged.
            assert ("403", "alice") in outcomes or ("409", "alice") in outcomes
            assert api.wait(instance_id)["status"] == "completed"
        assert len(sent) == 3 and len(set(sent)) == 3  # one SendTaskSuccess per task
    finally:
        services.machines.send_success = real_send
