"""Delegation and out-of-office through the API: who works a task changes with a reason, and every
change stays on the task as its audit trail."""

from __future__ import annotations

from tests.integration.test_human_tasks import start_expense


def trail(task):
    return [(a["action"], a["by"], a["from"]["assignee"], a["to"]["assignee"], a["to"]["group"], a["reason"])
            for a in task["assignments"]]


def test_a_delegation_is_recorded_with_who_when_from_to_and_why(api):
    start_expense(api, 50, manager="bob")
    task = api.one_task("assignee_id=bob")
    status, moved = api.post(f"/tasks/{task['id']}/reassign", {"new_assignee": "erin", "reason": "on leave",
                                                               "reassigned_by": "bob"})
    assert status == 200 and moved["assignee"] == "erin"
    status, moved = api.post(f"/tasks/{task['id']}/reassign", {"new_group": "finance", "new_assignee": "fay",
                                                               "reason": "needs finance", "reassigned_by": "admin"})
    assert status == 200 and moved["assignee"] == "fay" and moved["assignee_group"] == "finance"
    shown = api.get(f"/tasks/{task['id']}")[1]
    assert trail(shown) == [("reassigned", "bob", "bob", "erin", "managers", "on leave"),
                            ("reassigned", "admin", "erin", "fay", "finance", "needs finance")]
    assert all(a["at"] for a in shown["assignments"]) and shown["assignments"][1]["from"]["group"] == "managers"
    assert api.one_task("assignee_group=finance")["id"] == task["id"]
    status, refused = api.post(f"/tasks/{task['id']}/reassign", {"reason": "nobody"})
    assert status == 422 and "new_assignee" in str(refused)
    assert len(api.get(f"/tasks/{task['id']}")[1]["assignments"]) == 2


def test_out_of_office_sends_new_tasks_to_the_delegate_until_it_is_removed(api):
    status, away = api.put("/users/bob/out-of-office", {"delegate": "carol", "reason": "holiday"})
    assert status == 200 and away["delegate"] == "carol" and away["until"] is None
    start_expense(api, 50, manager="bob")
    task = api.one_task("assignee_id=carol")
    assert task["assignee"] == "carol"
    shown = api.get(f"/tasks/{task['id']}")[1]
    assert trail(shown) == [("out_of_office", "stepflow:out-of-office", "bob", "carol", "managers", "holiday")]
    assert shown["reassigned_from"] == "bob"

    assert api.delete("/users/bob/out-of-office") == (200, {"user": "bob", "deleted": True})
    assert api.get("/users/bob/out-of-office")[0] == 404
    start_expense(api, 60, manager="bob")
    assert api.one_task("assignee_id=bob")["assignments"] is None


def test_an_out_of_office_that_has_not_started_or_is_refused_changes_nothing(api):
    assert api.put("/users/dora/out-of-office", {"delegate": "dora"})[0] == 422
    assert api.put("/users/dora/out-of-office", {"delegate": "eve", "until": "2001-01-01T00:00:00Z"})[0] == 422
    assert api.put("/users/dora/out-of-office", {"delegate": "eve", "until": "2099-01-01T00:00:00"})[0] == 422
    status, later = api.put("/users/dora/out-of-office", {"delegate": "eve", "starts_at": "2098-01-01T00:00:00Z"})
    assert status == 200 and later["starts_at"] == "2098-01-01T00:00:00.000Z"
    start_expense(api, 50, manager="dora")
    assert api.one_task("assignee_id=dora")["assignee"] == "dora"
