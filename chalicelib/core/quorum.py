"""Multi-person decisions without AWS: who may decide a task (four-eyes), and when the decisions so far
settle it (quorum)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

MAX_DECISIONS = 100  # a task's decisions list stays a small part of its item
MAX_ASSIGNMENTS = 50  # the newest changes of who works a task are kept
OUT_OF_OFFICE_ACTOR = "stepflow:out-of-office"


def approval_fields(form_schema: Mapping[str, Any] | None) -> tuple[str, str | None] | None:
    """(the boolean decision field, the comment field or None) of an approval form; None: not one.

    An approval is a form with a boolean `approved` (or `*_approved`) field."""
    properties = (form_schema or {}).get("properties") or {}
    if not isinstance(properties, Mapping):
        return None
    decision = next((name for name, spec in properties.items()
                     if (name == "approved" or name.endswith("_approved")) and isinstance(spec, Mapping)
                     and spec.get("type") == "boolean"), None)
    if decision is None:
        return None
    comment = next((n for n in properties if n in ("comments", "comment") or n.endswith("_comments")), None)
    return decision, comment


def refusal(record: Mapping[str, Any], who: str | None) -> str | None:
    """Why `who` may not decide this task (None: they may).

    The people a `distinct_from` rule names (the requester, who started the instance) never decide it,
    and nobody decides a task twice: a quorum counts people, not clicks."""
    if who is None:
        return None
    for rule in record.get("distinct_from") or ():
        if rule.get("principal") == who:
            return (f"'{who}' is this task's {rule.get('rule')}; four-eyes: the step must be decided "
                    "by someone else")
    for decision in record.get("decisions") or ():
        if decision.get("by") == who:
            return f"'{who}' already decided this task; each person decides once"
    return None


def outcome(record: Mapping[str, Any], decisions: Sequence[Mapping[str, Any]]) -> bool | None:
    """True: approved (the quorum is met); False: rejected (it can no longer be met); None: still open.

    Without `approvals`, one decision settles the task. With `out_of`, a rejection ends it only once
    fewer approvers are left than still needed; without it, the first rejection does (a veto)."""
    approvals = record.get("approvals") or {}
    required = int(approvals.get("required") or 1)
    yes = sum(1 for d in decisions if d.get("approved") is True)
    no = sum(1 for d in decisions if d.get("approved") is False)
    if yes >= required:
        return True
    out_of = approvals.get("out_of")
    if out_of is None:
        return False if no else None
    return False if no > int(out_of) - required else None


def progress(record: Mapping[str, Any]) -> dict[str, Any] | None:
    """The quorum as a task view shows it: needed, approved, rejected; None for a one-person task."""
    approvals = record.get("approvals")
    if not approvals:
        return None
    decisions = record.get("decisions") or []
    return {"required": approvals.get("required"), "of": approvals.get("of"), "out_of": approvals.get("out_of"),
            "approved": sum(1 for d in decisions if d.get("approved") is True),
            "rejected": sum(1 for d in decisions if d.get("approved") is False)}


def excluded(rules: Sequence[str], data: Mapping[str, Any], started_by: str | None) -> list[dict[str, str]]:
    """The people `distinct_from` names, resolved when the task opens: [{rule, principal}] (a path whose
    value is missing or not text excludes nobody)."""
    from chalicelib.core.model import STARTED_BY

    resolved = []
    for rule in rules:
        if rule == STARTED_BY:
            value: Any = started_by
        else:
            value = data
            for part in rule.split("."):
                value = value.get(part) if isinstance(value, Mapping) else None
        if isinstance(value, str) and value:
            resolved.append({"rule": rule, "principal": value})
    return resolved


def assignment_trail(record: Mapping[str, Any], action: str, by: str | None, to: Mapping[str, Any],
                     reason: str | None, at: str) -> list[dict[str, Any]]:
    """The task's audit trail of who works it, with one change more: who changed it, when, from whom to
    whom, and why (the oldest entries go past MAX_ASSIGNMENTS)."""
    entry = {"action": action, "by": by, "at": at, "reason": reason,
             "from": {"assignee": record.get("assignee"), "group": record.get("assignee_group")}, "to": dict(to)}
    return [*(record.get("assignments") or []), entry][-MAX_ASSIGNMENTS:]


def out_of_office_delegate(absence: Mapping[str, Any] | None, now: str) -> str | None:
    """The delegate while an out-of-office entry holds (from `starts_at`, if given, until `until`)."""
    if not absence or not absence.get("delegate"):
        return None
    if absence.get("starts_at") and now < absence["starts_at"]:
        return None
    if absence.get("until") and now >= absence["until"]:
        return None
    return str(absence["delegate"])
