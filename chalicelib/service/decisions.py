"""Approvals: each decision recorded on its task with one conditional write, four-eyes and quorum
checked against what was read (TaskService's deciding half, mixed into it).

A decision appends to the task's `decisions` on the condition that `decision_count` is still what this
request read. A decision that does not settle the task is just that write; the one that settles it
(the quorum met, or out of reach) is the completing write itself (Delivery._finish, which alone sends
the token), on the same condition. So two deciders racing on the last vote cannot both complete it,
and none of them is counted twice: the loser reads the task again and is judged against it (already
decided, four-eyes, or the task is done).
"""

from __future__ import annotations

from typing import Any

from chalicelib.aws.conditional_update import TransitionRefused
from chalicelib.core.quorum import MAX_DECISIONS, approval_fields, outcome, refusal
from chalicelib.core.times import iso
from chalicelib.errors import Conflict, Forbidden

# Each lost race means another decision was recorded, so this bounds the deciders racing, not the work.
DECIDE_ATTEMPTS = MAX_DECISIONS


class Deciding:
    """Uses TaskService's _store, _now, _present, _publisher, _finish, _declared, _require_pending and get."""

    _store: Any
    _now: Any
    _publisher: Any
    _present: Any
    _finish: Any
    _declared: Any
    _require_pending: Any
    get: Any

    def approval(self, task_id: str, *, record: dict[str, Any] | None = None) -> dict[str, Any]:
        record = record if record is not None and record.get("id") == task_id else self.get(task_id)
        _approval_fields(record)
        return self._present(record)  # type: ignore[no-any-return]

    def may_decide(self, record: dict[str, Any], who: str | None) -> None:
        """Forbidden with the reason when `who` may not decide the task (four-eyes, decided already)."""
        reason = refusal(record, who)
        if reason:
            raise Forbidden(reason)

    def decide(self, task_id: str, approved: bool, by: str, comment: str | None, *,
               record: dict[str, Any] | None = None, link: dict[str, Any] | None = None) -> dict[str, Any]:
        """Records `by`'s decision; completes the task when it settles the quorum. `link`: the signed link
        it came through ({nonce, minted_by}), kept with the decision so that link is spent."""
        record = record if record is not None and record.get("id") == task_id else self.get(task_id)
        decision_field, comment_field = _approval_fields(record)
        for _ in range(DECIDE_ATTEMPTS):
            if link is not None:
                _require_unused(record, link["nonce"])
            self._require_pending(record)
            self.may_decide(record, by)
            entry: dict[str, Any] = {"by": by, "approved": approved, "at": iso(self._now())}
            if comment is not None:
                entry["comment"] = comment
            if link is not None:
                entry.update(via="link", link=link["nonce"], link_minted_by=link.get("minted_by"))
            earlier = list(record.get("decisions") or [])
            if len(earlier) >= MAX_DECISIONS:
                raise Conflict("this task has as many decisions as it can hold")
            decisions, count = [*earlier, entry], record.get("decision_count")
            counted = ({"decision_count": count}, ()) if count is not None else ({}, ("decision_count",))
            changes = {"decisions": decisions, "decision_count": len(decisions)}
            settled = outcome(record, decisions)
            try:
                if settled is None:
                    after = {**record, **changes}
                    self._store.transition(task_id, expect={"status": "pending", "attempt": record["attempt"],
                                                            **counted[0]},
                                           absent=counted[1], set_=changes, after=after, before=record)
                    self._publisher.publish("task.decided", {"task_id": task_id, "by": by, "approved": approved})
                    return self._present(after)  # type: ignore[no-any-return]
                output: dict[str, Any] = {decision_field: settled}
                if comment is not None and comment_field:
                    output[comment_field] = comment
                return self._finish(record, self._declared(record, output), by, comment,  # type: ignore[no-any-return]
                                    also_set=changes, also_expect=counted[0], also_absent=counted[1])
            except (TransitionRefused, Conflict):
                # Another decision (or the completion) got there first: judged again on the task as it is now.
                record = self.get(task_id)
        raise Conflict("the task kept changing while it was being decided; reload it")


def _require_unused(record: dict[str, Any], nonce: str) -> None:
    for decision in record.get("decisions") or ():
        if decision.get("link") == nonce:
            raise Conflict(f"this link was already used (by {decision.get('by')} at {decision.get('at')}); "
                           "it decides once")


def _approval_fields(record: dict[str, Any]) -> tuple[str, str | None]:
    """An approval is a human task whose form has a boolean `approved` (or `*_approved`) field."""
    fields = approval_fields(record.get("form_schema")) if record.get("kind") == "human" else None
    if fields is None:
        raise Conflict("this task is not an approval (its form has no boolean 'approved' field); "
                       "complete it through /tasks/{id}/complete")
    return fields
