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

from datetime import UTC, datetime
from typing import Any

from chalicelib.aws.conditional_update import TransitionRefused
from chalicelib.core.quorum import MAX_DECISIONS, approval_fields, outcome, refusal
from chalicelib.core.times import iso
from chalicelib.errors import Conflict, Forbidden, Gone

# Each lost race means another decision was recorded, so this bounds the deciders racing, not the work.
DECIDE_ATTEMPTS = MAX_DECISIONS
DEFAULT_LINK_SECONDS = 3 * 24 * 3600


class Deciding:
    """Uses TaskService's _store, _now, _present, _publisher, _finish, _declared, _require_pending, get,
    _link_key and _api_prefix."""

    _link_key: bytes
    _api_prefix: str
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


    # -- signed decision links ------------------------------------------------------------------------
    def mint_links(self, record: dict[str, Any], decider: str | None, expires_in: int | None,
                   minted_by: str | None) -> dict[str, Any]:
        """An approve and a reject link for `decider` (default: the task's assignee). Refused now when the
        task is not a pending approval or `decider` may not decide it, rather than when the link is used."""
        from chalicelib.core.links import DECISIONS, Link, new_nonce, sign

        _approval_fields(record)
        self._require_pending(record)
        decider = decider or record.get("assignee")
        if not decider:
            raise Conflict("the task has no assignee: name whose decision the links carry ('decider')")
        self.may_decide(record, decider)
        if minted_by and minted_by != decider:
            # Whoever four-eyes keeps from deciding may not hand the decision to someone else's link either
            # (a requester minting their approver's link would approve their own expense).
            self.may_decide(record, minted_by)
        expires_at = int(self._now().timestamp()) + int(expires_in or DEFAULT_LINK_SECONDS)
        nonce = new_nonce()  # one per pair: whichever of the two is used first spends both
        links = {decision: f"{self._api_prefix}/decide/{sign(self._link_key, Link(record['id'], decision, decider, expires_at, nonce, minted_by))}"
                 for decision in DECISIONS}
        self._publisher.publish("task.links_minted", {"task_id": record["id"], "decider": decider, "by": minted_by})
        return {"task_id": record["id"], "decider": decider, "expires_at": iso(datetime.fromtimestamp(expires_at, UTC)),
                "links": links}

    def open_link(self, token: str) -> tuple[Any, dict[str, Any]]:
        """(the link, its task) when the link may still decide: Forbidden when altered, Gone when expired
        or the task is gone, Conflict when it was used or the task is done; Forbidden by four-eyes."""
        from chalicelib.core.links import LinkRefused, verify

        try:
            link = verify(self._link_key, token, int(self._now().timestamp()))
        except LinkRefused as exc:
            raise (Gone if exc.kind == "expired" else Forbidden)(exc.message) from None
        record = self._store.get(link.task_id)
        if record is None:
            raise Gone("the task of this link no longer exists; nothing was changed")
        _require_unused(record, link.nonce)
        self._require_pending(record)
        self.may_decide(record, link.decider)
        return link, record

    def decide_by_link(self, token: str, comment: str | None) -> dict[str, Any]:
        """POST /decide/{token}: the link's decision, as its decider, once."""
        link, record = self.open_link(token)
        view = self.decide(link.task_id, link.approved, link.decider, comment, record=record,
                           link={"nonce": link.nonce, "minted_by": link.minted_by})
        return {"task_id": link.task_id, "decision": link.decision, "decided_by": link.decider, "task": view}


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
