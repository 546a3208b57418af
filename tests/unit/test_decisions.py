"""Declared writes: a human or webhook completion writes only what its step declares, and never a value
the workflow already held when the task opened, unless the definition lets that step overwrite it."""

from __future__ import annotations

from chalicelib.core.decisions import Writes, decided_fields, writes_of_step
from chalicelib.core.model import Definition
from chalicelib.core.validation import parse_definition, validate_definition
from chalicelib.tasks.registry import default_registry

FORM = {"type": "object", "required": ["approved"],
        "properties": {"approved": {"type": "boolean"}, "comments": {"type": "string"}}}
# The expense approval's manager task: started with an amount, a machine step set `submitted`.
SNAPSHOT = {"input": {"requester": "alice", "amount": 2500}, "steps": {"submit": {"submitted": True}}}


def locations(issues):
    return [i["location"] for i in issues]


def test_a_form_writes_its_own_fields_and_nothing_else():
    writes = Writes.human(FORM)
    decided = decided_fields(SNAPSHOT, "manager_approval")
    assert decided == {"requester", "amount", "submitted"}
    assert writes.issues({"approved": True, "comments": "fine"}, decided) == []
    assert writes.recorded({"approved": True}) == {"approved": True}
    issues = writes.issues({"approved": True, "amount": 1, "zzz": 0}, decided)
    assert locations(issues) == ["output_data.amount", "output_data.zzz"]
    assert "'amount' is not a field this step writes" in issues[0]["message"]
    assert "approved, comments" in issues[0]["message"]


def test_a_form_field_the_workflow_already_decided_is_refused_unless_declared_overwritable():
    form = {"type": "object", "properties": {"approved": {"type": "boolean"}, "amount": {"type": "number"}}}
    decided = decided_fields(SNAPSHOT, "review")
    [issue] = Writes.human(form).issues({"approved": True, "amount": 1}, decided)
    assert issue == {"location": "output_data.amount",
                     "message": "'amount' was decided before this task opened; this step may not change it"}
    allowed = Writes.human(form, overwrites=["amount"])
    assert allowed.issues({"approved": True, "amount": 1}, decided) == []
    assert allowed.recorded({"approved": True, "amount": 1}) == {"approved": True, "amount": 1}


def test_what_this_same_step_wrote_earlier_is_its_own():
    snapshot = {"input": {"amount": 5}, "steps": {"review": {"approved": False}, "other": {"note": "x"}}}
    assert decided_fields(snapshot, "review") == {"amount", "note"}
    assert Writes.human(FORM).issues({"approved": True}, decided_fields(snapshot, "review")) == []
    # Another step's earlier answer is decided.
    assert locations(Writes.human(FORM).issues({"approved": True}, decided_fields(snapshot, "second"))) == [
        "output_data.approved"]
    assert decided_fields(None, "review") == set()


def test_a_step_without_a_form_writes_nothing_at_the_top_level():
    assert Writes.human(None).issues({}, set()) == []
    assert locations(Writes.human(None).issues({"note": "x"}, set())) == ["output_data.note"]
    assert locations(Writes.human({"type": "object"}).issues({"note": "x"}, set())) == ["output_data.note"]


def test_a_namespace_keeps_the_whole_submission_under_one_key():
    writes = Writes.human(FORM, namespace="manager_review")
    # Under the namespace a field named like a decided one replaces nothing.
    form = {"type": "object", "properties": {"approved": {"type": "boolean"}, "amount": {"type": "number"}}}
    scoped = Writes.human(form, namespace="manager_review")
    assert scoped.issues({"approved": True, "amount": 1}, {"amount"}) == []
    assert scoped.recorded({"approved": True, "amount": 1}) == {"manager_review": {"approved": True, "amount": 1}}
    # The form's fields still bound what may be submitted.
    assert locations(writes.issues({"approved": True, "extra": 1}, set())) == ["output_data.extra"]
    # Without a form a namespace takes any fields.
    assert Writes.human(None, namespace="notes").issues({"anything": 1}, set()) == []
    # The namespace itself is a write: it must not replace a value held already.
    [issue] = writes.issues({"approved": True}, {"manager_review"})
    assert issue["location"] == "output_data" and "'manager_review'" in issue["message"]


def test_overwrites_under_a_namespace_also_write_those_fields_at_the_top_level():
    form = {"type": "object", "properties": {"approved": {"type": "boolean"}, "priority": {"type": "integer"}}}
    writes = Writes.human(form, namespace="triage", overwrites=["priority"])
    assert writes.issues({"approved": True, "priority": 1}, {"priority"}) == []
    assert writes.recorded({"approved": True, "priority": 1}) == {"triage": {"approved": True, "priority": 1},
                                                                  "priority": 1}
    assert writes.recorded({"approved": True}) == {"triage": {"approved": True}}


def test_a_webhook_payload_lands_under_the_step_id_unless_declared_otherwise():
    writes = Writes.webhook("payment")
    assert writes.issues({"amount": 1, "status": "paid"}, {"amount"}) == []
    assert writes.recorded({"amount": 1}) == {"payment": {"amount": 1}}
    assert Writes.webhook("payment", "bank").recorded({"amount": 1}) == {"bank": {"amount": 1}}
    lifted = Writes.webhook("payment", overwrites=["status"])
    assert lifted.recorded({"status": "paid", "amount": 1}) == {"payment": {"status": "paid", "amount": 1},
                                                                 "status": "paid"}
    assert locations(writes.issues({"x": 1}, {"payment"})) == ["output_data"]


def test_a_task_record_carries_the_declared_writes_of_its_step():
    definition = Definition.model_validate({"name": "w", "steps": [
        {"id": "review", "type": "human", "form_schema": FORM, "output_namespace": "review_notes",
         "overwrites": ["approved"]},
        {"id": "hook", "type": "webhook", "depends_on": ["review"]}]})
    review, hook = (writes_of_step(s) for s in definition.steps)
    assert review == Writes(frozenset({"approved", "comments"}), "review_notes", frozenset({"approved"}))
    assert hook == Writes(None, "hook")
    record = {"kind": "human", "step_name": "review", "form_schema": FORM, **review.as_record()}
    assert record["output_namespace"] == "review_notes" and record["overwrites"] == ["approved"]
    assert Writes.of_task(record) == review
    assert Writes.of_task({"kind": "webhook", "step_name": "hook", **hook.as_record()}) == hook
    # A record stored before steps declared their writes gets the defaults.
    assert Writes.of_task({"kind": "human", "step_name": "review", "form_schema": FORM}) == Writes.human(FORM)
    assert Writes.of_task({"kind": "webhook", "step_name": "hook"}) == Writes.webhook("hook")


def issues_of(data):
    definition, issues = parse_definition(data)
    assert definition is not None, issues
    return [(i.code, i.location, i.hint) for i in validate_definition(definition, default_registry())]


def test_registration_names_writes_that_could_never_be_made():
    assert issues_of({"name": "w", "steps": [
        {"id": "review", "type": "human", "form_schema": FORM, "overwrites": ["aproved", "amount"],
         "escalation": {"action": "complete", "output": {"approved": False, "amount": 0}}}]}) == [
        ("unknown_field", "steps[0].escalation.output.amount", "use fields of form_schema"),
        ("unknown_field", "steps[0].overwrites[0]", "did you mean 'approved'?"),
        ("unknown_field", "steps[0].overwrites[1]", "add it to form_schema.properties"),
    ]


def test_registration_names_form_fields_that_the_input_or_an_earlier_step_sets():
    form = {"type": "object", "properties": {"amount": {"type": "number"}, "ok": {"type": "boolean"},
                                             "checked": {"type": "boolean"}}}
    data = {"name": "w", "input_schema": {"type": "object", "properties": {"amount": {"type": "number"}}},
            "steps": [{"id": "check", "type": "machine", "task_type": "data.set", "config": {"values": {"checked": 1}}},
                      {"id": "review", "type": "human", "form_schema": form, "depends_on": ["check"]},
                      {"id": "amount", "type": "webhook", "depends_on": ["review"]}]}
    found = issues_of(data)
    assert [(code, location) for code, location, _ in found] == [
        ("decided_field", "steps[1].form_schema.properties.amount"),
        ("decided_field", "steps[1].form_schema.properties.checked"),
        ("decided_field", "steps[2]"),
    ]
    assert "overwrites" in found[0][2] and "output_namespace" in found[2][2]
    # Declared as overwritable, kept under a namespace, or renamed: valid.
    data["steps"][1]["overwrites"] = ["amount", "checked"]
    data["steps"][2]["output_namespace"] = "amount_callback"
    assert issues_of(data) == []


def test_a_mapping_reads_a_namespaced_output_by_its_namespace():
    data = {"name": "w", "steps": [
        {"id": "hook", "type": "webhook"},
        {"id": "use", "type": "machine", "task_type": "util.log", "config": {"message": "x"}, "depends_on": ["hook"],
         "input_mappings": [{"from_step": "hook", "from_field": "paid", "to_field": "paid"}]}]}
    assert [(c, loc) for c, loc, _ in issues_of(data)] == [("unknown_field", "steps[1].input_mappings[0].from_field")]
    data["steps"][1]["input_mappings"][0]["from_field"] = "hook.paid"
    assert issues_of(data) == []
