"""Human tasks through the API: the expense approval of the plugin reference, start to finish."""

from __future__ import annotations

import json
import time

from chalicelib.examples import bundled


def start_expense(api, amount, manager="bob"):
    status, body = api.post("/definitions", bundled()["expense_approval"])
    assert status in (200, 201), body
    status, started = api.post("/instances", {"definition_name": "expense_approval", "user_id": "alice",
                                              "input_data": {"requester": "alice", "manager": manager,
                                                             "amount": amount, "description": "Conference"}})
    assert status == 201, started
    return started["id"]


def only_task(api, query):
    return api.one_task(query)


def test_expense_approval_over_the_threshold_goes_through_manager_and_finance(api):
    instance_id = start_expense(api, 2500)
    waiting = api.wait(instance_id, until=("waiting", "failed"))
    assert waiting["status"] == "waiting" and waiting["current_step"] == "manager_approval"
    assert [i["id"] for i in api.get("/instances?status=waiting")[1]["items"]] == [instance_id]

    by_assignee = only_task(api, "assignee_id=bob")
    by_group = only_task(api, "assignee_group=managers")
    assert by_assignee["id"] == by_group["id"]
    task_id = by_assignee["id"]
    status, task = api.get(f"/tasks/{task_id}")
    assert status == 200
    assert task["form_schema"]["required"] == ["approved"]
    assert task["title"] == "Manager Approval" and task["description"] == "Approve the expense of alice"
    assert task["instance_id"] == instance_id and task["step_name"] == "manager_approval"
    assert task["due_date"] and task["status"] == "pending"
    assert "token" not in json.dumps(task) and "snapshot" not in task

    status, invalid = api.post(f"/tasks/{task_id}/complete", {"output_data": {"approved": "yes", "comments": 5},
                                                              "completed_by": "bob"})
    assert status == 422
    assert [i["location"] for i in invalid["detail"]["issues"]] == ["output_data.approved", "output_data.comments"]
    status, missing = api.post(f"/tasks/{task_id}/complete", {"output_data": {}, "completed_by": "bob"})
    assert status == 422 and missing["detail"]["issues"][0]["location"] == "output_data.approved"

    status, done = api.post(f"/tasks/{task_id}/complete", {"output_data": {"approved": True, "comments": "fine"},
                                                           "completed_by": "bob", "comment": "ok"})
    assert status == 200 and done["status"] == "completed" and done["completed_by"] == "bob"
    status, again = api.post(f"/tasks/{task_id}/complete", {"output_data": {"approved": True}, "completed_by": "eve"})
    assert status == 409 and "already completed" in again["detail"]

    # 2500 is over the threshold: finance is next, as a group task.
    waiting = api.wait(instance_id, until=("waiting",))
    assert waiting["current_step"] == "finance_approval", waiting
    finance = only_task(api, "assignee_group=finance")
    assert api.get("/tasks?assignee_group=finance&status=completed")[1]["items"] == []
    status, approval = api.get(f"/approvals/{finance['id']}")
    assert status == 200 and approval["step_name"] == "finance_approval"
    status, _ = api.post(f"/approvals/{finance['id']}/approve", {"decided_by": "carol", "comment": "paid"})
    assert status == 200

    done = api.wait(instance_id)
    assert done["status"] == "completed", done
    assert api.get("/instances?status=waiting")[1]["items"] == []
    data = done["context_data"]
    assert data["approved"] is True and data["comments"] == "fine"
    assert data["finance_approved"] is True and data["finance_comments"] == "paid"
    assert data["paid"] is True and data["paid_amount"] == 2500
    assert "rejected" not in data
    by_instance = api.get(f"/tasks?instance_id={instance_id}")[1]["items"]
    assert sorted(t["step_name"] for t in by_instance) == ["finance_approval", "manager_approval"]
    assert {t["status"] for t in by_instance} == {"completed"}


def test_a_rejection_takes_the_other_branch(api):
    instance_id = start_expense(api, 50, manager="dave")
    api.wait(instance_id, until=("waiting",))
    task = only_task(api, "assignee_id=dave")
    status, _ = api.post(f"/approvals/{task['id']}/reject", {"decided_by": "dave", "comment": "no receipt"})
    assert status == 200
    done = api.wait(instance_id)
    assert done["status"] == "completed"
    assert done["context_data"]["rejected"] is True and done["context_data"]["approved"] is False
    assert "paid" not in done["context_data"]
    assert [s["step_name"] for s in done["step_history"]][-1] == "rejected"


def test_small_expense_skips_finance(api):
    instance_id = start_expense(api, 100)
    api.wait(instance_id, until=("waiting",))
    task = only_task(api, "assignee_id=bob")
    assert api.post(f"/tasks/{task['id']}/complete", {"output_data": {"approved": True},
                                                      "completed_by": "bob"})[0] == 200
    done = api.wait(instance_id)
    assert done["status"] == "completed" and done["context_data"]["paid"] is True
    assert "finance_approval" not in {s["step_name"] for s in done["step_history"]}


def test_reassign_claim_and_unclaim(api):
    instance_id = start_expense(api, 2500)
    api.wait(instance_id, until=("waiting",))
    task = only_task(api, "assignee_id=bob")
    status, moved = api.post(f"/tasks/{task['id']}/reassign", {"new_assignee": "erin", "reason": "holiday"})
    assert status == 200 and moved["assignee"] == "erin" and moved["reassigned_from"] == "bob"
    assert api.get("/tasks?assignee_id=bob")[1]["items"] == []
    assert only_task(api, "assignee_id=erin")["id"] == task["id"]
    assert api.post(f"/tasks/{task['id']}/complete", {"output_data": {"approved": True},
                                                      "completed_by": "erin"})[0] == 200

    api.wait(instance_id, until=("waiting",))
    finance = only_task(api, "assignee_group=finance")
    assert finance["assignee"] is None
    status, claimed = api.post(f"/tasks/{finance['id']}/claim", {"user": "frank"})
    assert status == 200 and claimed["assignee"] == "frank"
    assert api.post(f"/tasks/{finance['id']}/claim", {"user": "gina"})[0] == 409
    assert api.post(f"/tasks/{finance['id']}/unclaim", {"user": "gina"})[0] == 409
    status, released = api.post(f"/tasks/{finance['id']}/unclaim", {"user": "frank"})
    assert status == 200 and released["assignee"] is None


def test_task_errors_are_4xx(api):
    assert api.get("/tasks/nope")[0] == 404
    assert api.post("/tasks/nope/complete", {"output_data": {}, "completed_by": "x"})[0] == 404
    assert api.post("/tasks/nope/complete", {"output_data": {}})[0] == 422
    assert api.get("/tasks?status=weird")[0] == 422
    assert api.get("/tasks?cursor=not-a-cursor")[0] == 400
    assert api.get("/tasks?limit=0")[0] == 400


def test_metrics_count_pending_per_group(api):
    start_expense(api, 2500)
    start_expense(api, 20, manager="zoe")
    deadline = time.monotonic() + 20
    while (metrics := api.get("/tasks/metrics")[1])["pending_total"] != 2:  # each task is stored a moment later
        assert time.monotonic() < deadline, metrics
        time.sleep(0.1)
    assert metrics["pending_by_group"] == {"managers": 2}
    assert metrics["overdue_count"] == 0 and metrics["oldest_overdue_age_seconds"] is None


def test_the_manager_cannot_steer_the_expense_past_finance(api):
    """The manager decides `approved`; the amount being decided is not theirs to change."""
    instance_id = start_expense(api, 2500)
    api.wait(instance_id, until=("waiting",))
    task = only_task(api, "assignee_id=bob")

    status, refused = api.post(f"/tasks/{task['id']}/complete", {"output_data": {"approved": True, "amount": 1},
                                                                 "completed_by": "bob"})
    assert status == 422, refused
    assert [i["location"] for i in refused["detail"]["issues"]] == ["output_data.amount"]
    assert "amount" in refused["detail"]["issues"][0]["message"]
    # Nothing changed: the task still waits, and the instance still holds the amount it was started with.
    assert api.get(f"/tasks/{task['id']}")[1]["status"] == "pending"
    waiting = api.get(f"/instances/{instance_id}")[1]
    assert waiting["status"] == "waiting" and waiting["context_data"]["amount"] == 2500

    status, done = api.post(f"/tasks/{task['id']}/complete", {"output_data": {"approved": True},
                                                              "completed_by": "bob"})
    assert status == 200 and done["output_data"] == {"approved": True}
    waiting = api.wait(instance_id, until=("waiting", "completed", "failed"))
    assert waiting["current_step"] == "finance_approval", waiting
    finance = only_task(api, "assignee_group=finance")
    assert finance["step_name"] == "finance_approval" and finance["status"] == "pending"
    assert waiting["context_data"]["amount"] == 2500


def test_the_starter_cannot_seed_a_decision_of_the_expense(api):
    status, _ = api.post("/definitions", bundled()["expense_approval"])
    assert status in (200, 201)
    status, refused = api.post("/instances", {"definition_name": "expense_approval", "input_data": {
        "requester": "alice", "manager": "bob", "amount": 2500, "finance_approved": True}})
    assert status == 422 and refused["detail"]["issues"][0]["location"].startswith("input_data")


DUE_SOON = {
    "name": "due_soon", "version": "1.0.0",
    "steps": [{"id": "review", "type": "human", "title": "Review", "assignee_group": "reviewers", "due_in": 1,
               "form_schema": {"type": "object", "properties": {"approved": {"type": "boolean"}}}}],
    "edges": [], "initial_step": "review", "terminal_steps": ["review"],
}


def test_a_task_is_overdue_in_lists_and_metrics_the_moment_it_passes_its_due_time(api):
    """No sweep runs here: the overdue list and the metrics read the due dates against the clock."""
    from datetime import UTC, datetime

    from chalicelib.core.times import iso

    assert api.post("/definitions", DUE_SOON)[0] in (200, 201)
    instance_id = api.post("/instances", {"definition_name": "due_soon", "input_data": {}})[1]["id"]
    task = only_task(api, f"instance_id={instance_id}")
    due_at = task["due_at"]
    deadline = time.monotonic() + 30
    while True:
        asked_at = iso(datetime.now(UTC))
        listed = [t["id"] for t in api.get("/tasks?overdue=true&limit=100")[1]["items"]]
        metrics = api.get("/tasks/metrics")[1]
        answered_at = iso(datetime.now(UTC))
        if asked_at >= due_at:  # asked after the due time: it is overdue in both, whatever the sweep did
            assert task["id"] in listed and metrics["overdue_count"] >= 1, (listed, metrics)
            assert metrics["oldest_overdue_due_at"] <= due_at
            break
        if answered_at < due_at:  # answered before the due time: not yet overdue
            assert task["id"] not in listed
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert api.get(f"/tasks/{task['id']}")[1]["overdue"] is True


def test_the_expense_task_shows_its_declared_context_and_nothing_else_of_the_data(api):
    instance_id = start_expense(api, 2500, manager="bob")
    task = only_task(api, f"instance_id={instance_id}")
    detail = api.get(f"/tasks/{task['id']}")[1]
    assert detail["context"] == [{"label": "Amount", "value": 2500}, {"label": "Requester", "value": "alice"},
                                 {"label": "Description", "value": "Conference"}]
    # The listing shows the same view; the rest of the instance data (the manager, the submit step's
    # output) is in no field of either.
    assert api.get(f"/tasks?instance_id={instance_id}")[1]["items"][0]["context"] == detail["context"]
    text = json.dumps(detail)
    assert "submitted" not in text and "snapshot" not in text and '"manager"' not in text
    # A snapshot: taken when the task opened, what the decider saw stays what was there to decide on.
    assert api.post(f"/approvals/{task['id']}/approve", {"decided_by": "bob", "comment": "fine"})[0] == 200
    deadline = time.monotonic() + 20
    while not (pending := [t for t in api.get(f"/tasks?instance_id={instance_id}")[1]["items"]
                           if t["status"] == "pending"]):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    [finance] = pending
    assert {"label": "Manager's comments", "value": "fine"} in finance["context"]


def test_a_context_field_that_is_not_a_path_or_template_is_refused_where_it_is(api):
    definition = {**DUE_SOON, "name": "bad_context"}
    definition["steps"] = [{**DUE_SOON["steps"][0], "context": ["amount", {"label": "x", "path": "a b"},
                                                               {"template": "{{ amount }}"}]}]
    status, body = api.post("/definitions", definition)
    assert status == 422, body
    locations = sorted(i["location"] for i in body["detail"]["issues"])
    assert locations == ["steps[0].context[1].path", "steps[0].context[2]"], body


def test_my_decisions_lists_the_tasks_a_person_completed(api):
    instance_id = start_expense(api, 40, manager="mona")
    task = only_task(api, f"instance_id={instance_id}")
    assert api.get("/tasks?completed_by=mona")[1]["items"] == []
    assert api.post(f"/approvals/{task['id']}/reject", {"decided_by": "mona", "comment": "no"})[0] == 200
    decided = api.get("/tasks?completed_by=mona")[1]["items"]
    assert [(t["id"], t["status"], t["output_data"]) for t in decided] == [
        (task["id"], "completed", {"approved": False, "comments": "no"})]
    assert api.get("/tasks?completed_by=mona&status=completed")[0] == 400  # one index serves it: alone


def test_a_task_is_found_by_each_of_its_candidate_groups(api):
    definition = {**DUE_SOON, "name": "offered", "steps": [{**DUE_SOON["steps"][0], "due_in": None,
                                                           "candidate_groups": ["auditors", "{{ team }}"]}]}
    assert api.post("/definitions", definition)[0] in (200, 201)
    instance_id = api.post("/instances", {"definition_name": "offered", "input_data": {"team": "ops"}})[1]["id"]
    task = only_task(api, f"instance_id={instance_id}")
    for group in ("reviewers", "auditors", "ops"):  # the primary group, a literal and one from the data
        assert [t["id"] for t in api.get(f"/tasks?assignee_group={group}")[1]["items"]] == [task["id"]], group
    assert api.get("/tasks?assignee_group=nobody")[1]["items"] == []
    assert api.post(f"/tasks/{task['id']}/complete", {"output_data": {"approved": True}, "completed_by": "ann"})[0] == 200
    assert api.get("/tasks?assignee_group=ops")[1]["items"] == []
    assert [t["id"] for t in api.get("/tasks?assignee_group=ops&status=completed")[1]["items"]] == [task["id"]]
