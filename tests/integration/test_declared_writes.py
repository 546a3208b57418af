"""Declared writes through the API: forms, approvals, webhook events and callbacks write only what their
step declares, and a value the workflow already held changes only where the definition says it may."""

from __future__ import annotations

import json
from typing import Any

from tests.waiting import wait_for_task


def start(api, definition: dict[str, Any], input_data: dict[str, Any]) -> str:
    status, body = api.post("/definitions", definition)
    assert status in (200, 201), body
    status, started = api.post("/instances", {"definition_name": definition["name"], "input_data": input_data})
    assert status == 201, started
    return started["id"]


def callback(api, url: str, body: Any) -> tuple[int, Any]:
    response = api.client.http.post(url, body=json.dumps(body), headers={"content-type": "application/json"})
    return response.status_code, json.loads(response.body)


CORRECTION = {
    "name": "writes_correction",
    "input_schema": {"type": "object", "properties": {"amount": {"type": "number"}, "requester": {"type": "string"}}},
    "steps": [{"id": "correct", "type": "human", "overwrites": ["amount"],
               "form_schema": {"type": "object", "required": ["amount"],
                               "properties": {"amount": {"type": "number"}, "reason": {"type": "string"}}}}],
}


def test_a_field_declared_in_overwrites_may_be_changed_and_no_other(api):
    instance_id = start(api, CORRECTION, {"amount": 500, "requester": "alice"})
    task = wait_for_task(api, instance_id, "correct")
    assert task["overwrites"] == ["amount"] and task["output_namespace"] is None
    status, refused = api.post(f"/tasks/{task['id']}/complete", {
        "output_data": {"amount": 50, "requester": "mallory"}, "completed_by": "bob"})
    assert status == 422 and [i["location"] for i in refused["detail"]["issues"]] == ["output_data.requester"]
    assert api.get(f"/tasks/{task['id']}")[1]["status"] == "pending"
    status, _ = api.post(f"/tasks/{task['id']}/complete", {"output_data": {"amount": 50, "reason": "typo"},
                                                           "completed_by": "bob"})
    assert status == 200
    data = api.wait(instance_id)["context_data"]
    assert data == {"amount": 50, "requester": "alice", "reason": "typo"}


REVIEW = {
    "name": "writes_review",
    "input_schema": {"type": "object", "properties": {"amount": {"type": "number"}}},
    "steps": [
        {"id": "review", "type": "human", "output_namespace": "review_notes",
         "form_schema": {"type": "object", "properties": {"approved": {"type": "boolean"},
                                                          "amount": {"type": "number"}}}},
        {"id": "route", "type": "gateway", "depends_on": ["review"]},
        {"id": "accepted", "type": "machine", "task_type": "data.set", "config": {"values": {"outcome": "accepted"}},
         "depends_on": ["route"], "condition": "review_notes.approved == true"},
        {"id": "declined", "type": "machine", "task_type": "data.set", "config": {"values": {"outcome": "declined"}},
         "depends_on": ["route"]},
    ],
}


def test_an_output_namespace_keeps_the_answers_apart_from_the_data_they_judge(api):
    instance_id = start(api, REVIEW, {"amount": 10})
    task = wait_for_task(api, instance_id, "review")
    # `amount` is a form field here, kept under the namespace: it cannot reach the top-level amount.
    status, done = api.post(f"/tasks/{task['id']}/complete", {"output_data": {"approved": True, "amount": 1},
                                                              "completed_by": "bob"})
    assert status == 200 and done["output_data"] == {"review_notes": {"approved": True, "amount": 1}}
    data = api.wait(instance_id)["context_data"]
    assert data == {"amount": 10, "review_notes": {"approved": True, "amount": 1}, "outcome": "accepted"}


def test_an_approval_cannot_replace_a_decision_the_workflow_already_holds(api):
    definition = {"name": "writes_approval", "steps": [
        {"id": "review", "type": "human", "form_schema": {"type": "object", "properties": {
            "approved": {"type": "boolean"}, "comments": {"type": "string"}}}}]}
    # No input_schema: the starter put a decision into the data before anyone reviewed.
    instance_id = start(api, definition, {"approved": True})
    task = wait_for_task(api, instance_id, "review")
    status, refused = api.post(f"/approvals/{task['id']}/reject", {"decided_by": "carol", "comment": "no"})
    assert status == 422 and [i["location"] for i in refused["detail"]["issues"]] == ["output_data.approved"]
    assert "decided before this task opened" in refused["detail"]["issues"][0]["message"]
    assert api.get(f"/tasks/{task['id']}")[1]["status"] == "pending"


PAYMENT = {
    "name": "writes_payment",
    "steps": [
        {"id": "open", "type": "machine", "task_type": "data.set", "config": {"values": {"status": "open"}}},
        # The payment provider decides the status, so the definition lets it overwrite `status`.
        {"id": "pay", "type": "webhook", "event_type": "payment.received", "overwrites": ["status"],
         "depends_on": ["open"]},
        {"id": "note", "type": "webhook", "depends_on": ["pay"]},
        {"id": "route", "type": "gateway", "depends_on": ["note"]},
        {"id": "paid", "type": "machine", "task_type": "data.set", "config": {"values": {"outcome": "paid"}},
         "depends_on": ["route"], "condition": 'status == "paid"'},
        {"id": "unpaid", "type": "machine", "task_type": "data.set", "config": {"values": {"outcome": "unpaid"}},
         "depends_on": ["route"]},
    ],
}


def test_a_webhook_payload_lands_under_its_step_and_lifts_only_declared_fields(api):
    instance_id = start(api, PAYMENT, {"amount": 7})
    wait_for_task(api, instance_id, "pay")
    status, sent = api.post(f"/instances/{instance_id}/events", {"event_type": "payment.received",
                                                                 "data": {"status": "paid", "amount": 1}})
    assert status == 202, sent
    assert sent["completed"][0]["output_data"] == {"pay": {"status": "paid", "amount": 1}, "status": "paid"}
    note = wait_for_task(api, instance_id, "note")
    url = api.get(f"/tasks/{note['id']}/callback")[1]["callback_url"]
    # A callback body naming instance fields cannot replace them: it is kept under the step's id.
    status, _ = callback(api, url, {"status": "refunded", "amount": 0})
    assert status == 200
    done = api.wait(instance_id)
    assert done["status"] == "completed", done
    assert done["context_data"] == {"amount": 7, "status": "paid", "outcome": "paid",
                                    "pay": {"status": "paid", "amount": 1},
                                    "note": {"status": "refunded", "amount": 0}}


def test_a_webhook_whose_namespace_is_already_taken_is_refused_and_keeps_waiting(api):
    definition = {"name": "writes_taken", "steps": [{"id": "note", "type": "webhook"}]}
    instance_id = start(api, definition, {"note": "from the starter"})
    task = wait_for_task(api, instance_id, "note")
    url = api.get(f"/tasks/{task['id']}/callback")[1]["callback_url"]
    status, refused = callback(api, url, {"text": "hi"})
    assert status == 422 and refused["detail"]["issues"][0]["location"] == "output_data"
    status, refused = api.post(f"/instances/{instance_id}/events", {"step": "note", "data": {"text": "hi"}})
    assert status == 422 and "'note'" in refused["detail"]["issues"][0]["message"]
    assert api.get(f"/tasks/{task['id']}")[1]["status"] == "pending"
    assert api.get(f"/instances/{instance_id}")[1]["context_data"] == {"note": "from the starter"}
