"""The task-registering Lambda: records a waiting human, webhook or receive step with its task token."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from chalicelib.aws.conditional_update import TransitionRefused
from chalicelib.core.decisions import writes_of_step
from chalicelib.core.definition_keys import name_of
from chalicelib.core.due import DueDataError, due_from, parse_due
from chalicelib.core.instance_data import merge_instance_data
from chalicelib.core.model import HumanStep, ReceiveStep, WebhookStep
from chalicelib.core.payload import expand
from chalicelib.core.runs import run_of_execution
from chalicelib.core.tasks import callback_digest, callback_key, new_callback_nonce, resumed_state, task_id_for
from chalicelib.core.times import iso
from chalicelib.runtime.definitions import RevisionLoader
from chalicelib.tasks import templating
from chalicelib.tasks.errors import StepError, lambda_exception

events_log = logging.getLogger("stepflow.events")
KEPT = ("pending", "completed")  # an earlier run's task in these states is this run's (see _earlier_run)
TAKEOVER_RETRIES = 4


class CorrelationKeyMissing(Exception):
    """A receive step's correlation key names data the instance does not have: the step fails with this
    error (its name is the Step Functions error), since no event could ever be matched to it."""


class TaskRegistrar:
    def __init__(self, loader: RevisionLoader, store: Any, now: Callable[[], datetime],
                 send_success: Callable[[str, dict[str, Any]], None] | None = None, *,
                 events: Any = None, callback_secret: bytes = b"",
                 on_waiting: Callable[[str], None] | None = None,
                 tenant_of: Callable[[str], str | None] | None = None,
                 started_by_of: Callable[[str], str | None] | None = None,
                 deliver_completed: Callable[[dict[str, Any], dict[str, Any]], None] | None = None,
                 receivers: Any = None):
        self._loader = loader
        self._store = store
        self._now = now
        self._send_success = send_success
        self._events = events  # an EventStore: the instance's event log (None: no log)
        self._callback_secret = callback_secret  # callback keys derive from it (core/tasks.py callback_key)
        self._on_waiting = on_waiting  # the instance index shows `waiting` while a task is open
        self._tenant_of = tenant_of  # a task belongs to its instance's tenant
        self._started_by_of = started_by_of  # who started an instance (four-eyes: distinct_from started_by)
        # Hands a completed task of an earlier run to this run (TaskService.deliver_to_run): the
        # completion's delivery bookkeeping stays with the task service.
        self._deliver_completed = deliver_completed
        # A receive step's mailboxes (service/mailboxes.py MailboxService): it is listed in them before its
        # task is stored, so a sender that sees the task sees the receiver; once stored, it takes an event
        # kept for it or is marked ready.
        self._receivers = receivers

    def handle(self, event: dict[str, Any]) -> dict[str, Any]:
        event = expand(event)  # short keys from the compiled state; the long form still reads as it is
        loaded = self._loader.load(event["workflow"], event["revision"])
        step = loaded.definition.step(event["step"])
        execution = event.get("execution", "")
        start_input = event.get("input") or {}
        steps = event.get("steps") or {}
        data = merge_instance_data(start_input, steps, loaded.order)
        if step.id in steps and self._send_success is not None:
            # A resumed run: this step was done before, so it completes at once with its old output.
            self._send_success(event["token"], {"steps": steps, "data": data})
            return {"task_id": None, "carried": True}
        task_id = task_id_for(execution, step.id)
        instance_id, name = run_of_execution(execution)
        if name != instance_id:  # a later run (a resume or a continuation): an earlier run's task may be open
            kept = self._earlier_run(instance_id, task_id, step.id, event, {"input": start_input, "steps": steps},
                                     loaded.order)
            if kept is not None:
                return kept
        previous = self._store.get(task_id)
        now = self._now()
        record: dict[str, Any] = {
            "id": task_id,
            "instance_id": run_of_execution(execution)[0],  # a resumed run's execution is <id>--<run>
            "execution_arn": execution,
            # The workflow's name as the task shows it; its key (core/definition_keys.py) when scoped,
            # to load its definition by.
            "workflow": name_of(event["workflow"]),
            **({"workflow_key": event["workflow"]} if name_of(event["workflow"]) != event["workflow"] else {}),
            "revision": event["revision"],
            "step_name": step.id,
            "kind": step.type,
            "title": _text(step.label, data),
            "description": _text(step.description, data),
            "status": "pending",
            "created_at": iso(now),
            # A timed-out or retried attempt gets a new token; the record follows the current attempt.
            "attempt": (previous or {}).get("attempt", 0) + 1,
            "token": event["token"],
            # What a completion needs to resume the workflow without reading the execution.
            "snapshot": {"input": start_input, "steps": steps},
            # What a completion may write into instance data, checked against the snapshot.
            **writes_of_step(step).as_record(),
        }
        if self._tenant_of is not None:
            record["tenant_id"] = self._tenant_of(record["instance_id"])
        if isinstance(step, HumanStep):
            due = _due_date(step, data, now)
            record.update(
                form_schema=step.form_schema,
                assignee=_text(step.assignee, data),
                assignee_group=_text(step.assignee_group, data),
                candidate_groups=_groups(step.candidate_groups, data),
                priority=step.priority,
                due_at=iso(due) if due else None,
                reminder_at=iso(due - timedelta(seconds=step.reminder_before)) if due and step.reminder_before else None,
                escalation=step.escalation.model_dump() if step.escalation else None,
                context=_context(step, data),
            )
            self._multi_person(record, step, data)
            self._out_of_office(record, iso(now))
        if isinstance(step, WebhookStep):
            # The callback URL holds a key, never the token. Stored are a nonce the key derives from (with
            # the server secret) and the key's hash, which the by_callback_key index is keyed on: the
            # table alone hands out no working URL. A re-registered attempt of a task still pending
            # keeps its key, so a URL already handed out keeps working; a closed step's key died with it.
            live = previous if previous and previous.get("status") == "pending" and previous.get("callback_nonce") \
                else None
            nonce = live["callback_nonce"] if live else new_callback_nonce()
            record.update(event_type=step.event_type, callback_nonce=nonce,
                          callback_key=callback_digest(callback_key(self._callback_secret, nonce)))
        receiving = isinstance(step, ReceiveStep) and self._receivers is not None
        if isinstance(step, ReceiveStep):
            record.update(event_type=step.event_type, correlation_key=_correlation(step, data))
            if receiving:
                self._receivers.listen(record)
        self._store.put(record, before=previous)
        self._record_created(record)
        self._waiting(record["instance_id"])
        if receiving:
            self._receivers.waiting(record)
        # A waitForTaskToken state ignores the function's result; the token is not echoed.
        return {"task_id": task_id}

    def _multi_person(self, record: dict[str, Any], step: HumanStep, data: dict[str, Any]) -> None:
        """Quorum and four-eyes, fixed when the task opens: who is excluded is resolved from the data now,
        so a later change of the data cannot let the requester in."""
        if step.approvals is not None:
            record["approvals"] = step.approvals.model_dump()
            group = _text(step.approvals.of, data)
            if group and not record.get("assignee_group"):
                record["assignee_group"] = group
            elif group and group != record.get("assignee_group") and group not in record["candidate_groups"]:
                record["candidate_groups"].append(group)
        if step.distinct_from:
            from chalicelib.core.model import STARTED_BY
            from chalicelib.core.quorum import excluded

            starter = self._started_by_of(record["instance_id"]) \
                if STARTED_BY in step.distinct_from and self._started_by_of is not None else None
            record["distinct_from"] = excluded(step.distinct_from, data, starter)

    def _out_of_office(self, record: dict[str, Any], now: str) -> None:
        """A task for someone out of office goes to their delegate (one hop), noted in its assignments."""
        from chalicelib.core.quorum import OUT_OF_OFFICE_ACTOR, assignment_trail, out_of_office_delegate

        assignee, lookup = record.get("assignee"), getattr(self._store, "absence", None)
        if not assignee or lookup is None:
            return
        absence = lookup(record.get("tenant_id"), assignee)
        delegate = out_of_office_delegate(absence, now)
        if not delegate or delegate == assignee:
            return
        reason = (absence or {}).get("reason") or f"{assignee} is out of office"
        record["assignments"] = assignment_trail(record, "out_of_office", OUT_OF_OFFICE_ACTOR,
                                                 {"assignee": delegate, "group": record.get("assignee_group")}, reason, now)
        record.update(assignee=delegate, reassigned_from=assignee, reassign_reason=reason,
                      reassigned_by=OUT_OF_OFFICE_ACTOR, reassigned_at=now)

    def _earlier_run(self, instance_id: str, task_id: str, step_id: str, event: dict[str, Any],
                     snapshot: dict[str, Any], order: Any) -> dict[str, Any] | None:
        """The rule for a step that an earlier run of the instance already opened a task for.

        A run that continues an instance (its execution was lost: a local runtime restarted) re-enters
        the step its predecessor waited on. The task stays the same task: a pending one is taken over by
        this run (same id, place in the inbox, due date, assignee and reminders; this run's token and a
        new attempt, so a completion still holding the old record is refused and reloads), and a
        completed one is delivered to this run instead of being opened again. An expired or canceled
        task stays closed; this run opens a new one (a resumed failed instance does). None: no such task.
        """
        for _ in range(TAKEOVER_RETRIES):
            earlier = [t for t in self._store.for_instance(instance_id)
                       if t.get("step_name") == step_id and t["id"] != task_id and t.get("status") in KEPT]
            if not earlier:
                return None
            # The newest (only a continued pending task and a completed one could both exist, in that order).
            task = max(earlier, key=lambda t: (t.get("created_at") or "", t["status"] == "pending"))
            run = {"token": event["token"], "execution_arn": event.get("execution", ""),
                   "revision": event["revision"], "snapshot": snapshot}
            try:
                if task["status"] == "completed":
                    if self._deliver_completed is not None:
                        self._deliver_completed(task, run)
                    elif self._send_success is not None:
                        self._send_success(event["token"], resumed_state(snapshot, step_id, task["output_data"], order))
                    return {"task_id": task["id"], "carried": True}
                changes = {**run, "attempt": int(task.get("attempt") or 0) + 1}
                self._store.transition(task["id"], expect={"status": "pending", "attempt": task.get("attempt")},
                                       set_=changes, after={**task, **changes}, before=task)
            except TransitionRefused:
                continue  # completed (or taken over) meanwhile: read it again
            self._waiting(instance_id)
            return {"task_id": task["id"], "continued": True}
        raise TransitionRefused(f"task of {instance_id}/{step_id} kept changing")

    def _waiting(self, instance_id: str) -> None:
        if self._on_waiting is not None:
            try:
                self._on_waiting(instance_id)
            except Exception:  # noqa: BLE001 - the task is registered and the step waits; reads settle the status
                events_log.warning("instance status not updated to waiting", exc_info=True)

    def _record_created(self, record: dict[str, Any]) -> None:
        """task.created in the instance's event log: who and what, never the token, snapshot or callback
        key (every viewer reads the log; the key completes the step)."""
        instance_id, _ = run_of_execution(record["execution_arn"])
        if self._events is None or not instance_id:
            return
        data = {k: record.get(k) for k in ("kind", "title", "assignee", "assignee_group", "priority", "due_at",
                                           "event_type", "correlation_key") if record.get(k) is not None}
        data.update(task_id=record["id"], attempt=record["attempt"])
        try:
            self._events.append(instance_id, "task.created", data, step=record["step_name"])
        except Exception:  # noqa: BLE001 - the log is best effort; the task is registered
            events_log.exception("event not recorded", extra={"event_type": "task.created"})


def _correlation(step: ReceiveStep, data: dict[str, Any]) -> str | None:
    """The receive step's correlation key, rendered from instance data (as text: events carry it as text)."""
    if step.correlation_key is None:
        return None
    try:
        value = templating.render(step.correlation_key, data)
    except StepError as exc:
        raise CorrelationKeyMissing(f"receive step '{step.id}': {exc.message}") from None
    if value is None or value == "":
        raise CorrelationKeyMissing(f"receive step '{step.id}': its correlation key {step.correlation_key!r} is empty")
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))


TASK_DATA_ERROR = "Stepflow.TaskDataError"


def _due_date(step: HumanStep, data: dict[str, Any], now: datetime) -> datetime | None:
    """When the task is due: `due_in` from now, or `due_at` from the instance data. Data that gives no
    date fails the step with Stepflow.TaskDataError and a message naming the path (on_error catches it);
    no task is stored."""
    if step.due_in:
        return now + timedelta(seconds=step.due_in)
    if step.due_at is None:
        return None
    try:
        return due_from(parse_due(step.due_at), data)
    except DueDataError as exc:
        events_log.warning("task not opened: its due date is not in the data", extra={"step": step.id})
        raise lambda_exception(TASK_DATA_ERROR, f"step '{step.id}': {exc}") from None


def _groups(templates: list[str], data: dict[str, Any]) -> list[str]:
    """Candidate groups: literals, `{{ path }}`s of one group each, or of a list of groups
    (`"{{ reviewers }}"` with reviewers = ["ops", "audit"]); each once, in order. Bounded like the step's own list."""
    groups: list[str] = []
    for template in templates:
        value: Any = None
        if templating.is_single_placeholder(template):
            try:
                value = templating.render(template, data)
            except StepError:
                value = None
        values = value if isinstance(value, list) else [_text(template, data) if value is None else value]
        groups += [str(v) for v in values if v not in (None, "") and not isinstance(v, dict | list)]
    return list(dict.fromkeys(g[:255] for g in groups))[:20]


def _text(template: str | None, data: dict[str, Any]) -> str | None:
    """A literal, or a {{ path }} template filled from instance data; an empty result is None."""
    if template is None:
        return None
    try:
        value = templating.render(template, data)
    except StepError:
        return None  # the path is not in the data: the field stays unset rather than failing the step
    return str(value) if value not in (None, "") else None


MAX_CONTEXT_VALUE = 4096  # characters of JSON per shown value: a task item stays far below DynamoDB's 400 KB


def _context(step: HumanStep, data: dict[str, Any]) -> list[dict[str, Any]] | None:
    """What the decider sees, as the data is when the task opens (a snapshot: the task shows what was
    there to decide on, even if a parallel branch changes the data later). A missing path shows null."""
    if not step.context:
        return None
    shown = []
    for field in step.context:
        if field.path is not None:
            try:
                value = templating.resolve(data, field.path)
            except KeyError:
                value = None
        else:
            try:
                value = templating.render(field.template, data)
            except StepError:
                value = None
        if len(json.dumps(value, default=str)) > MAX_CONTEXT_VALUE:
            value = "(too large to show)"
        shown.append({"label": field.name, "value": value})
    return shown


def utc_now() -> datetime:
    return datetime.now(UTC)
