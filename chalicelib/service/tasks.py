"""Human tasks: the inbox, exactly-once completion, reassign/claim, approvals, metrics and the sweep."""

from __future__ import annotations

import builtins
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.aws.conditional_update import TransitionRefused
from chalicelib.aws.task_store import public
from chalicelib.core.decisions import Writes, decided_fields
from chalicelib.core.event_stream import callback_path
from chalicelib.core.listing import TASK_OVERDUE, key_value, metrics_of, range_value, task_index
from chalicelib.core.quorum import approval_fields, assignment_trail, progress
from chalicelib.core.tasks import STATUSES, callback_digest, callback_key, decision_field, form_issues
from chalicelib.core.times import iso
from chalicelib.errors import Conflict, FieldErrors, Gone, InvalidInput, NotFound
from chalicelib.service.decisions import Deciding
from chalicelib.service.task_delivery import Delivery
from chalicelib.service.task_sweep import Sweep

MAX_PAGE = 100
TASK_FIELDS = ("id", "instance_id", "workflow", "step_name", "kind", "title", "description", "form_schema", "assignee",
               "assignee_group", "candidate_groups", "priority", "status", "created_at", "due_at", "reminder_at",
               "completed_at", "completed_by", "comment", "output_data", "attempt", "claimed_by", "escalated_at",
               "reassigned_from", "reassign_reason", "output_namespace", "overwrites", "context", "approvals",
               "decisions", "distinct_from", "assignments")
# Every stored attribute the task view shows: TASK_FIELDS and the public bookkeeping `public()` lets
# through. A listing reads only these (not the snapshot of instance data, the token or the index keys),
# so a new public attribute belongs here too; tests/integration/test_listing_projection.py checks that
# a listed task equals its detail view through a task's life.
TASK_VIEW_ATTRIBUTES = (*TASK_FIELDS, "tenant_id", "execution_arn", "revision", "escalation", "event_type",
                        "reassigned_by", "reassigned_at", "reminded_at", "closed_at", "closed_reason",
                        "correlation_key")
CALLBACK_ACTOR = "stepflow:callback"
events_log = logging.getLogger("stepflow.events")


class TaskService(Deciding, Delivery, Sweep):
    def __init__(self, store: Any, machines: Any, loader: Any, publisher: Any, now: Callable[[], datetime], *,
                 events: Any = None, instances: Any = None, api_prefix: str = "/workflows",
                 callback_secret: bytes = b"", link_secret: bytes = b""):
        self._store = store
        self._machines = machines
        self._loader = loader
        self._publisher = publisher
        self._now = now
        self._events = events  # an EventStore: instance event logs (None: no log)
        # An InstanceStore: a completion watches its instance in the same transaction, and that watch
        # confirms the delivery (None: the completion confirms it itself; see task_delivery.py).
        self._instances = instances
        self._api_prefix = api_prefix
        self._callback_secret = callback_secret  # derives a webhook step's callback key from its nonce
        self._link_key = link_secret  # signs one-click decision links (core/links.py)

    # -- reading -----------------------------------------------------------------------------
    def get(self, task_id: str) -> dict[str, Any]:
        record = self._store.get(task_id)
        if record is None:
            raise NotFound(f"no task '{task_id}'")
        return record

    def view(self, task_id: str) -> dict[str, Any]:
        return self._present(self.get(task_id))

    def present(self, record: dict[str, Any]) -> dict[str, Any]:
        """The view of a task record the caller has just read (a route's guard): no second read."""
        return self._present(record)

    def _present(self, record: dict[str, Any], now: str | None = None) -> dict[str, Any]:
        """`now`: the instant overdue is judged at; a page passes one for all its tasks (formatting the
        clock for each task with a due date added about 6 us to each, two thirds of the rest of its view)."""
        # Every documented field is present (null when unset), whatever the stored item omits.
        view = {name: record.get(name) for name in TASK_FIELDS} | public(record)
        view["due_date"] = record.get("due_at")  # the plugin DTO's name for it
        if record.get("kind") in ("webhook", "receive"):
            # No callback URL here: every viewer reads this view, and the URL completes the step.
            # Who may work the task reads it deliberately (callback_view, GET /tasks/{id}/callback).
            view["event_type"] = record.get("event_type")
        view["quorum"] = progress(record)
        view["overdue"] = bool(record.get("escalated_at")) or (
            record["status"] == "pending" and bool(record.get("due_at")) and record["due_at"] <= (now or iso(self._now())))
        return view

    def list(self, *, tenant: str | None, status: str | None = None, assignee_id: str | None = None,
             assignee_group: str | None = None, instance_id: str | None = None, overdue: bool = False,
             completed_by: str | None = None,
             limit: int = 20, start: dict[str, Any] | None = None) -> dict[str, Any]:
        """One page of one tenant's tasks: one index query reading at most limit + 1 items.

        status is `pending` unless given (or by instance). Filters no index serves raise Unindexed.
        `start`/`next_cursor` are raw index keys: the API seals them (core/cursors.py).
        """
        if status is not None and status not in STATUSES:
            raise InvalidInput({"message": f"status must be one of {', '.join(STATUSES)}", "issues": []})
        family, value = task_index({"status": status, "assignee": assignee_id, "assignee_group": assignee_group,
                                    "instance_id": instance_id, "completed_by": completed_by},
                                   tenant=tenant, overdue=overdue)
        now = iso(self._now())
        # The overdue list is the part of the due-date index due by now: right at the due time, sweep or not.
        upto = ("due_at", now) if family is TASK_OVERDUE else None
        try:
            items, last = self._store.query(family.index, family.attribute, value, limit=limit + 1, start=start,
                                            attributes=(*TASK_VIEW_ATTRIBUTES, "task_id"), upto=upto)
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ValidationException":  # a cursor of another index's shape
                raise InvalidInput({"message": "cursor is not valid for this query", "issues": []}) from None
            raise
        following = None
        if len(items) > limit:
            items, kept = items[:limit], items[limit - 1]
            # The index's hash key is the value queried and its range key derives from the view's fields:
            # neither is read.
            following = {"id": {"S": kept["id"]}, family.attribute: {"S": value},
                         family.range_key: {"S": range_value(family, kept)}}
        return {"items": [self._present(r, now) for r in self._with_members(items)], "limit": limit,
                "next_cursor": following}

    def _with_members(self, items: builtins.list[dict[str, Any]]) -> builtins.list[dict[str, Any]]:
        """A group page's membership items (core/listing.py) replaced by their tasks, read in one batch
        (bounded by the page), in the page's order; a task deleted meanwhile is left out."""
        wanted = [i["task_id"] for i in items if i.get("task_id")]
        if not wanted:
            return items
        tasks = self._store.get_many(wanted, TASK_VIEW_ATTRIBUTES)
        return [tasks[i["task_id"]] if i.get("task_id") else i for i in items
                if not i.get("task_id") or i["task_id"] in tasks]

    def metrics(self, *, tenant: str | None) -> dict[str, Any]:
        """Pending tasks per group, how many are overdue, and how long the oldest has been overdue.

        Reads the tenant's counter item (the escalated tasks are counted there), one item of the due-date
        index (the oldest due), and the tasks due by now that no sweep has escalated yet (the sweep's own
        sparse index, so this reads the sweep's backlog: what became due since the last sweep, never
        every task). So the count is right the moment a task passes its due date.
        """
        clock = self._now()
        now = iso(clock)
        counts = metrics_of(self._store.counters(tenant))
        oldest_items, _ = self._store.query(TASK_OVERDUE.index, TASK_OVERDUE.attribute, key_value(tenant, ()),
                                            limit=1, newest_first=False, upto=("due_at", now))
        counts["overdue_count"] += self._store.count_due(tenant, now)
        oldest = oldest_items[0]["due_at"] if oldest_items else None
        age = (clock - datetime.fromisoformat(oldest.replace("Z", "+00:00"))).total_seconds() if oldest else None
        return {**counts, "oldest_overdue_due_at": oldest,
                "oldest_overdue_age_seconds": round(age) if age is not None else None}

    # -- acting ------------------------------------------------------------------------------
    def complete(self, task_id: str, output: Any, completed_by: str, comment: str | None = None, *,
                 record: dict[str, Any] | None = None) -> dict[str, Any]:
        """`record`: the task as this request already read it (consistently); its write is conditional
        on the status and attempt it shows, so a record gone stale is refused, never overwritten."""
        record = record if record is not None and record.get("id") == task_id else self.get(task_id)
        self._require_pending(record)
        if record.get("approvals") and isinstance(output, dict):
            # A quorum step is decided vote by vote: its form's decision is this person's vote.
            fields = approval_fields(record.get("form_schema"))
            if fields and isinstance(output.get(fields[0]), bool):
                said = output.get(fields[1]) if fields[1] else None
                return self.decide(task_id, output[fields[0]], completed_by,
                                   said if isinstance(said, str) else comment, record=record)
        self.may_decide(record, completed_by)
        if record.get("kind") == "human":
            issues = form_issues(record.get("form_schema"), output)
            if issues:
                raise FieldErrors({"message": "the form has errors", "issues": issues})
        elif not isinstance(output, dict):
            raise FieldErrors({"message": "output_data must be an object", "issues": []})
        return self._finish(record, self._declared(record, output), completed_by, comment)

    def _declared(self, record: dict[str, Any], output: dict[str, Any]) -> dict[str, Any]:
        """The output as the step writes it into instance data; FieldErrors for what it may not write.

        Every completion passes here (form, approval, webhook, escalation): a decider cannot change
        what the workflow had already decided when the task opened.
        """
        writes = Writes.of_task(record)
        issues = writes.issues(output, decided_fields(record.get("snapshot"), record["step_name"]))
        if issues:
            raise FieldErrors({"message": "the output writes fields this step may not write", "issues": issues})
        return writes.recorded(output)

    # -- webhook steps ---------------------------------------------------------------------------
    def pending_webhooks(self, instance_id: str) -> builtins.list[dict[str, Any]]:
        """The instance's webhook tasks that wait now (stored records; for the services only)."""
        return [r for r in self._store.for_instance(instance_id)
                if r.get("kind") == "webhook" and r["status"] == "pending"]

    def complete_webhook(self, record: dict[str, Any], output: dict[str, Any], completed_by: str,
                         comment: str | None = None, *, received: dict[str, Any] | None = None) -> dict[str, Any]:
        """Completes a waiting webhook step with `output` as its output: exactly once, like any task.

        `received` (the event that completed it) is logged as event.received by the winner only.
        """
        if record.get("kind") != "webhook":
            raise Conflict("this task is not a webhook step")
        if not isinstance(output, dict):
            raise FieldErrors({"message": "the data must be an object", "issues": []})
        self._require_pending(record)
        return self._finish(record, self._declared(record, output), completed_by, comment, received=received)

    # -- receive steps ---------------------------------------------------------------------------
    def complete_received(self, record: dict[str, Any], output: dict[str, Any], completed_by: str, *,
                          received: dict[str, Any], consume: dict[str, Any]) -> dict[str, Any]:
        """Completes a waiting receive step with an event's data, in one transaction with `consume` (the
        mailbox write that takes the event): both or neither. TransitionRefused(part=1): the mailbox
        changed; Conflict/Gone: the step no longer waits; FieldErrors: the data writes what it may not."""
        if record.get("kind") != "receive":
            raise Conflict("this task is not a receive step")
        self._require_pending(record)
        return self._finish(record, self._declared(record, output), completed_by, None, received=received,
                            consume=consume)

    def by_callback_key(self, key: str) -> dict[str, Any]:
        """The webhook task a callback key was given to (the sparse by_callback_key index holds the key's
        hash while the step waits; a used or ended key is in it no more: NotFound)."""
        unknown = "no such callback: the key is unknown, was used, or its step has ended"
        if not key or len(key) > 128:
            raise NotFound(unknown)
        digest = callback_digest(key)
        found, _ = self._store.query("by_callback_key", "callback_key", digest, limit=1)
        if not found:
            # A task registered before keys were stored hashed holds its key as it is (and no nonce).
            found, _ = self._store.query("by_callback_key", "callback_key", key, limit=1)
            if found and not found[0].get("callback_nonce"):
                digest = key
            else:
                raise NotFound(unknown)
        record = self._store.get(found[0]["id"])  # the index lags; the table has the truth
        if record is None or not record.get("callback_key"):
            raise NotFound(unknown)
        if record["callback_key"] != digest:
            raise Gone("this callback belonged to an earlier attempt of the step; it no longer waits")
        return record

    def callback_view(self, task_id: str) -> dict[str, Any]:
        """Where an external system completes a waiting webhook step: a URL holding the key, never the token.

        Conflict when the task is not a webhook step or is done; Gone when it expired or was canceled.
        """
        record = self.get(task_id)
        if record.get("kind") != "webhook":
            raise Conflict("this task is not a webhook step; it has no callback")
        self._require_pending(record)
        if record.get("callback_nonce"):
            key = callback_key(self._callback_secret, record["callback_nonce"])
        elif record.get("callback_key"):
            key = record["callback_key"]  # registered before keys were stored hashed
        else:
            raise Gone("this step's callback is no longer live")
        return {"task_id": record["id"], "instance_id": record.get("instance_id"), "step_name": record["step_name"],
                "event_type": record.get("event_type"), "status": record["status"], "attempt": record.get("attempt"),
                "callback_url": callback_path(self._api_prefix, key)}

    def complete_callback(self, key: str, output: Any, *, record: dict[str, Any] | None = None) -> dict[str, Any]:
        """POST /callbacks/{key}: completes the webhook step the key was given to; the task's view."""
        if record is None or record.get("callback_key") not in (callback_digest(key), key):
            record = self.by_callback_key(key)
        return self.complete_webhook(record, output, CALLBACK_ACTOR, received={
            "source": "callback", "event_type": record.get("event_type"), "data": output})

    def require_pending(self, record: dict[str, Any]) -> None:
        """Conflict when the task is done, Gone when it expired or was canceled."""
        self._require_pending(record)

    def _require_pending(self, record: dict[str, Any]) -> None:
        status = record["status"]
        if status == "completed":
            raise Conflict(f"task already completed by {record.get('completed_by') or 'someone'}")
        if status in ("expired", "canceled"):
            raise Gone(f"task is {status}")

    def reassign(self, task_id: str, new_assignee: str | None, reason: str | None, by: str | None, *,
                 new_group: str | None = None, record: dict[str, Any] | None = None) -> dict[str, Any]:
        """Delegates the task to a person, a group, or both; the change joins the task's `assignments` trail."""
        record = record if record is not None and record.get("id") == task_id else self.get(task_id)
        self._require_pending(record)
        if new_assignee is None and new_group is None:
            raise InvalidInput({"message": "the request body is not valid", "issues": [
                {"code": "missing", "location": "new_assignee", "message": "name a new_assignee, a new_group, or both"}]})
        now = iso(self._now())
        to = {"assignee": new_assignee, "group": new_group or record.get("assignee_group")}
        changes = {"assignee": new_assignee, "reassigned_from": record.get("assignee"), "reassign_reason": reason,
                   "reassigned_by": by, "reassigned_at": now, "claimed_by": None,
                   "assignments": assignment_trail(record, "reassigned", by, to, reason, now)}
        if new_group is not None:
            changes["assignee_group"] = new_group
        self._change(record, changes)
        self._publisher.publish("task.reassigned", {"task_id": task_id, "assignee": new_assignee, "group": new_group})
        return self.view(task_id)

    def claim(self, task_id: str, user: str) -> dict[str, Any]:
        record = self.get(task_id)
        self._require_pending(record)
        if record.get("assignee") == user:
            return self._present(record)
        if record.get("assignee"):
            raise Conflict(f"task is assigned to {record['assignee']}; unclaim or reassign it first")
        self._change(record, {"assignee": user, "claimed_by": user}, expect_absent_assignee=True)
        return self.view(task_id)

    def unclaim(self, task_id: str, user: str) -> dict[str, Any]:
        record = self.get(task_id)
        self._require_pending(record)
        if record.get("claimed_by") != user:
            raise Conflict("only the person who claimed the task can unclaim it")
        self._change(record, {"assignee": None, "claimed_by": None})
        return self.view(task_id)

    def _change(self, record: dict[str, Any], changes: dict[str, Any], *, expect_absent_assignee: bool = False) -> None:
        expect = {"status": "pending", "attempt": record["attempt"]}
        if record.get("assignee") and not expect_absent_assignee:
            expect["assignee"] = record["assignee"]
        try:
            self._store.transition(record["id"], expect=expect, set_=changes, after={**record, **changes}, before=record,
                                   absent=("assignee",) if expect_absent_assignee else ())
        except TransitionRefused:
            raise Conflict("the task changed meanwhile; reload it") from None


    def for_instance(self, instance_id: str) -> builtins.list[dict[str, Any]]:
        now = iso(self._now())
        return [self._present(r, now) for r in self._store.for_instance(instance_id)]

    def purge(self, task_id: str) -> None:
        self._store.delete(task_id)



def _approval_fields(record: dict[str, Any]) -> tuple[str, str | None]:
    """An approval is a human task whose form has a boolean `approved` (or `*_approved`) field."""
    properties = (record.get("form_schema") or {}).get("properties") or {}
    decision = decision_field(record.get("form_schema"))
    if record.get("kind") != "human" or decision is None:
        raise Conflict("this task is not an approval (its form has no boolean 'approved' field); "
                       "complete it through /tasks/{id}/complete")
    comment = next((n for n in properties if n in ("comments", "comment") or n.endswith("_comments")), None)
    return decision, comment


