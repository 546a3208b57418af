"""Pure human-task rules: form errors, the resumed state, who may act, index keys."""

from __future__ import annotations

from chalicelib.core.tasks import form_issues, may_act, resumed_state, task_id_for

FORM = {"type": "object", "required": ["approved"],
        "properties": {"approved": {"type": "boolean"}, "comments": {"type": "string", "maxLength": 5}}}


def test_form_issues_name_each_field():
    assert form_issues(FORM, {"approved": True}) == []
    assert form_issues(FORM, {"comments": "far too long"}) == [
        {"location": "output_data.approved", "message": "'approved' is a required property"},
        {"location": "output_data.comments", "message": "'far too long' is too long"},
    ]
    assert form_issues(FORM, ["not", "an", "object"])[0]["location"] == "output_data"
    assert form_issues(None, {"anything": 1}) == []


def test_resumed_state_records_the_output_and_recomputes_data_in_order():
    snapshot = {"input": {"amount": 5, "approved": None}, "steps": {"submit": {"submitted": True}}}
    state = resumed_state(snapshot, "review", {"approved": True}, ["submit", "review"])
    assert state == {"steps": {"submit": {"submitted": True}, "review": {"approved": True}},
                     "data": {"amount": 5, "approved": True, "submitted": True}}
    assert snapshot["steps"] == {"submit": {"submitted": True}}  # the stored snapshot is not changed


def test_may_act_assignee_group_member_or_admin():
    record = {"assignee": "bob", "assignee_group": "managers", "candidate_groups": ["leads"]}
    assert may_act(record, "bob")
    assert may_act(record, "eve", ["leads"])
    assert may_act(record, "eve", ["managers"])
    assert not may_act(record, "eve", ["finance"])
    assert may_act(record, "eve", admin=True)


def test_task_ids_are_stable_per_execution_step():
    assert task_id_for("arn:1", "review") == task_id_for("arn:1", "review")
    assert task_id_for("arn:1", "review") != task_id_for("arn:2", "review")
