"""The pure rules of multi-person decisions and signed decision links."""

from __future__ import annotations

import pytest

from chalicelib.core.links import Link, LinkRefused, sign, verify
from chalicelib.core.quorum import approval_fields, excluded, out_of_office_delegate, outcome, refusal

KEY = b"k" * 32


def votes(*approved):
    return [{"by": f"p{i}", "approved": a} for i, a in enumerate(approved)]


@pytest.mark.parametrize(("approvals", "decided", "settled"), [
    (None, votes(True), True),
    (None, votes(False), False),
    ({"required": 2}, votes(True), None),
    ({"required": 2}, votes(True, True), True),
    ({"required": 2}, votes(True, False), False),  # without out_of a rejection is a veto
    ({"required": 2, "out_of": 3}, votes(False), None),  # two of the three may still approve
    ({"required": 2, "out_of": 3}, votes(False, True), None),
    ({"required": 2, "out_of": 3}, votes(False, False), False),  # one left, two needed
    ({"required": 2, "out_of": 3}, votes(False, True, True), True),
    ({"required": 3, "out_of": 3}, votes(True, True, False), False),
])
def test_the_quorum_settles_when_met_or_out_of_reach(approvals, decided, settled):
    assert outcome({"approvals": approvals}, decided) is settled


def test_who_may_not_decide_and_why():
    record = {"distinct_from": [{"rule": "requester", "principal": "alice"}], "decisions": [{"by": "bob"}]}
    assert "requester" in refusal(record, "alice") and "four-eyes" in refusal(record, "alice")
    assert "already decided" in refusal(record, "bob")
    assert refusal(record, "carol") is None and refusal({}, "alice") is None


def test_distinct_from_resolves_paths_and_the_starter_and_skips_what_is_not_a_name():
    data = {"requester": "alice", "expense": {"submitter": "sam"}, "amount": 5}
    assert excluded(["requester", "expense.submitter", "started_by", "amount", "missing.path"], data, "zoe") == [
        {"rule": "requester", "principal": "alice"}, {"rule": "expense.submitter", "principal": "sam"},
        {"rule": "started_by", "principal": "zoe"}]


def test_an_approval_form_is_one_with_a_boolean_decision():
    assert approval_fields({"properties": {"finance_approved": {"type": "boolean"}, "finance_comments": {}}}) == (
        "finance_approved", "finance_comments")
    assert approval_fields({"properties": {"approved": {"type": "string"}}}) is None
    assert approval_fields(None) is None


def test_an_out_of_office_holds_from_its_start_until_its_end():
    absence = {"delegate": "carol", "starts_at": "2026-03-01T00:00:00.000Z", "until": "2026-03-08T00:00:00.000Z"}
    assert out_of_office_delegate(absence, "2026-02-28T23:59:59.000Z") is None
    assert out_of_office_delegate(absence, "2026-03-02T09:00:00.000Z") == "carol"
    assert out_of_office_delegate(absence, "2026-03-08T00:00:00.000Z") is None
    assert out_of_office_delegate(None, "2026-03-02T09:00:00.000Z") is None


def test_a_link_verifies_only_as_signed_and_until_it_expires():
    link = Link("t1", "approve", "bob", 2_000, "n1", "ed")
    token = sign(KEY, link)
    assert verify(KEY, token, 1_999) == link
    with pytest.raises(LinkRefused) as expired:
        verify(KEY, token, 2_000)
    assert expired.value.kind == "expired"
    payload, mac = token.split(".")
    for bad in (f"{payload}x.{mac}", f"{payload}.{mac[:-2]}", token + ".x", "", "x" * 2000):
        with pytest.raises(LinkRefused) as refused:
            verify(KEY, bad, 0)
        assert refused.value.kind == "tampered"
    with pytest.raises(LinkRefused):
        verify(b"other" * 8, token, 0)
    # A decision other than approve/reject is refused even when signed.
    with pytest.raises(LinkRefused):
        verify(KEY, sign(KEY, Link("t1", "maybe", "bob", 2_000, "n1", None)), 0)
