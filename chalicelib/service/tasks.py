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
from chalicelib.core.tasks import OPEN, STATUSES, callback_digest, callback_key, form_issues
from chalicelib.core.times import iso
from chalicelib.errors import Conflict, FieldErrors, Gone, InvalidInput, NotFound
from chalicelib.service.decisions import Deciding
from chalicelib.service.task_delivery import DEAD_TOKEN_ERRORS, Delivery, error_code

MAX_PAGE = 100
TASK_FIELDS = ("id", "instance_id", "workflow", "step_name", "kind", "title", "description", "form_schema", "assignee",
               "assignee_group", "candidate_groups", "priority", "status", "created_at", "due_at", "reminder_at",
               "completed_at", "completed_by", "comment", "output_data", "attempt", "claimed_by", "escalated_at",
               "reassigned_from", "reassign_reason", "output_namespace", "overwrites", "approvals", "decisions",
               "distinct_from", "assignments")
# Every stored attribute the task view shows: TASK_FIELDS and the public bookkeeping `public()` lets
# through. A listing reads only these (not the snapshot of instance data, the token or the index keys),
# so a new public attribute belongs here too; tests/integration/test_listing_projection.py checks that
# a listed task equals its detail view through a task's life.
TASK_VIEW_ATTRIBUTES = (*TASK_FIELDS, "tenant_id", "execution_arn", "revision", "escalation", "event_type",
                        "reassigned_by", "reassigned_at", "reminded_at", "closed_at", "closed_reason")
ESCALATION_ACTOR = "stepflow:escalation"
DEFAULT_OVERDUE_ERROR = "Stepflow.TaskOverdue"
CALLBACK_ACTOR = "stepflow:callback"
events_log = logging.getLogger("stepflow.events")


class TaskService(Deciding, Delivery):
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
        if record.get("kind") == "webhook":
            # No callback URL here: every viewer reads this view, and the URL completes the step.
            # Who may work the task reads it deliberately (callback_view, GET /tasks/{id}/callback).
            view["event_type"] = record.get("event_type")
        view["quorum"] = progress(record)
        view["overdue"] = bool(record.get("escalated_at")) or (
            record["status"] == "pending" and bool(record.get("due_at")) and record["due_at"] <= (now or iso(self._now())))
        return view

    def list(self, *, tenant: str | None, status: str | None = None, assignee_id: str | None = None,
             assignee_group: str | None = None, instance_id: str | None = None, overdue: bool = False,
             limit: int = 20, start: dict[str, Any] | None = None) -> dict[str, Any]:
        """One page of one tenant's tasks: one index query reading at most limit + 1 items.

        status is `pending` unless given (or by instance). Filters no index serves raise Unindexed.
        `start`/`next_cursor` are raw index keys: the API seals them (core/cursors.py).
        """
        if status is not None and status not in STATUSES:
            raise InvalidInput({"message": f"status must be one of {', '.join(STATUSES)}", "issues": []})
        family, value = task_index({"status": status, "assignee": assignee_id, "assignee_group": assignee_group,
                                    "instance_id": instance_id}, tenant=tenant, overdue=overdue)
        try:
            items, last = self._store.query(family.index, family.attribute, value, limit=limit + 1, start=start,
                                            attributes=TASK_VIEW_ATTRIBUTES)
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
        now = iso(self._now())
        return {"items": [self._present(r, now) for r in items], "limit": limit, "next_cursor": following}

    def metrics(self, *, tenant: str | None) -> dict[str, Any]:
        """Pending tasks per group, how many are overdue, and how long the oldest has been overdue:
        the tenant's counter item and one item of the overdue index, whatever the number of tasks."""
        counts = metrics_of(self._store.counters(tenant))
        oldest_items, _ = self._store.query(TASK_OVERDUE.index, TASK_OVERDUE.attribute, key_value(tenant, ()),
                                            limit=1, newest_first=False)
        oldest = oldest_items[0]["due_at"] if oldest_items else None
        age = (self._now() - datetime.fromisoformat(oldest.replace("Z", "+00:00"))).total_seconds() if oldest else None
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

    # -- the sweep ---------------------------------------------------------------------------
    def sweep(self) -> dict[str, int]:
        """Escalates due tasks once, sends due reminders once, redelivers interrupted completions.

        Reads only the sparse indexes, so its cost follows the number of due items, not all tasks.
        """
        now = self._now()
        stats = {"read": 0, "escalated": 0, "reminded": 0, "redelivered": 0}
        for record in self._due("by_due", "due_state", "due_at", now):
            stats["read"] += 1
            stats["escalated"] += self._escalate(record, now)
        for record in self._due("by_reminder", "reminder_state", "reminder_at", now):
            stats["read"] += 1
            try:
                self._store.transition(record["id"], expect={"status": "pending"}, require=("reminder_state",),
                                       set_={"reminded_at": iso(now)}, remove=("reminder_state",), after=record,
                                       before=record)
            except TransitionRefused:
                continue
            self._publisher.publish("task.reminder", {"task": public(record)})
            stats["reminded"] += 1
        read, stats["redelivered"] = self.redeliver(now)
        stats["read"] += read
        return stats

    def _due(self, index: str, key: str, field: str, upto: datetime):
        start = None
        while True:
            items, start = self._store.query(index, key, OPEN, upto=(field, iso(upto)), start=start,
                                             newest_first=False)
            yield from items
            if not start:
                return

    def _escalate(self, record: dict[str, Any], now: datetime) -> int:
        escalation = record.get("escalation") or {}
        action = escalation.get("action", "notify")
        changes: dict[str, Any] = {"escalated_at": iso(now), "overdue_state": OPEN}
        if action == "reassign":
            # To a person, or to a group whose members can then claim it.
            changes["reassigned_from"] = record.get("assignee")
            changes["assignee"] = escalation.get("assignee")
            if escalation.get("assignee_group"):
                changes["assignee_group"] = escalation["assignee_group"]
            changes["assignments"] = assignment_trail(record, "escalated", ESCALATION_ACTOR, {
                "assignee": changes["assignee"], "group": changes.get("assignee_group", record.get("assignee_group"))},
                "overdue", iso(now))
        after = {**record, **changes}
        try:
            # Only the sweep that removes due_state escalates: overlapping sweeps cannot both win.
            self._store.transition(record["id"], expect={"status": "pending"}, require=("due_state",),
                                   set_=changes, remove=("due_state",), after=after, before=record)
        except TransitionRefused:
            return 0
        self._publisher.publish("task.overdue", {"task": public(after), "action": action})
        if action == "complete":
            try:
                output = self._declared(after, dict(escalation.get("output") or {}))
                self._finish(after, output, ESCALATION_ACTOR, "completed when overdue")
            except (Conflict, Gone):
                pass
            except FieldErrors as exc:
                # Registration checks the configured output; data that arrived since can still collide.
                # The task stays pending and overdue for a person to finish.
                events_log.warning("escalation output refused", extra={
                    "task_id": record["id"], "fields": [i["location"] for i in exc.detail["issues"]]})
        elif action == "fail":
            self._fail(after, escalation.get("error") or DEFAULT_OVERDUE_ERROR)
        return 1

    def _fail(self, record: dict[str, Any], error: str) -> None:
        try:
            self._store.transition(record["id"], expect={"status": "pending"}, set_={"status": "expired",
                                   "completed_at": iso(self._now()), "completed_by": ESCALATION_ACTOR},
                                   remove=("overdue_state", "reminder_state"), after={**record, "status": "expired"}, before=record)
        except TransitionRefused:
            return
        try:
            self._machines.send_failure(record["token"], error, f"task '{record['step_name']}' was not done in time")
        except Exception as exc:  # noqa: BLE001 - a dead token means the workflow stopped waiting anyway
            if error_code(exc) not in DEAD_TOKEN_ERRORS:
                raise

    def for_instance(self, instance_id: str) -> builtins.list[dict[str, Any]]:
        now = iso(self._now())
        return [self._present(r, now) for r in self._store.for_instance(instance_id)]

    def purge(self, task_id: str) -> None:
        self._store.delete(task_id)
