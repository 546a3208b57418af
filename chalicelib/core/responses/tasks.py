"""What the task and event operations answer: task views, pages, metrics, callbacks, accepted events."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from chalicelib.core.model import Approvals, Escalation
from chalicelib.core.responses.common import Absent, Closed, Cursor, JsonObject, Open, TaskStatus, Timestamp


class ContextValue(Closed):
    """One value a human step shows beside its form."""

    label: str
    value: Any


class TaskSummary(Open):
    """A human task or waiting webhook step as listed."""

    id: str
    instance_id: str
    step_name: str
    kind: Literal["human", "webhook", "receive"] = Field(
        description="human: a form; webhook: a waiting webhook step; receive: a step waiting for an event")
    status: TaskStatus
    created_at: Timestamp
    workflow: str | None = None
    title: str | None = None
    assignee: str | None = None
    assignee_group: str | None = None
    priority: int | None = None
    due_at: Timestamp | None = None
    overdue: bool | Absent = None


class TaskDecision(Open):
    """One person's decision on an approval (a quorum counts these)."""

    by: str | None
    approved: bool
    at: Timestamp
    comment: str | None = None
    via: Literal["link"] | Absent = Field(None, description="Decided through a signed link")
    link_minted_by: str | None = Field(None, description="Who created the link it came through")


class Excluded(Closed):
    """Someone a four-eyes rule keeps from deciding the task."""

    rule: str = Field(description="The distinct_from entry: an instance-data path, or started_by")
    principal: str


class Quorum(Closed):
    required: int
    of: str | None
    out_of: int | None
    approved: int
    rejected: int


class Assignment(Closed):
    """One change of who works a task: reassigned (by a person), out_of_office (the assignee's delegate took
    it when it opened) or escalated (the overdue sweep)."""

    action: Literal["reassigned", "out_of_office", "escalated"]
    by: str | None
    at: Timestamp
    reason: str | None
    from_: dict[str, str | None] = Field(alias="from", description="{assignee, group} before")
    to: dict[str, str | None] = Field(description="{assignee, group} after")


class Task(TaskSummary):
    """A task with its form and how it was worked. Never its token or callback URL."""

    workflow: str | None
    title: str | None
    description: str | None
    form_schema: JsonObject | None = Field(description="A JSON Schema the output is checked against")
    assignee: str | None
    assignee_group: str | None
    candidate_groups: list[str] | None
    priority: int | None
    due_at: Timestamp | None
    due_date: Timestamp | None = Field(description="due_at under the name the task DTO uses")
    overdue: bool
    reminder_at: Timestamp | None
    completed_at: Timestamp | None
    completed_by: str | None
    comment: str | None
    output_data: JsonObject | None
    attempt: int | None
    claimed_by: str | None
    escalated_at: Timestamp | None
    reassigned_from: str | None
    reassign_reason: str | None
    output_namespace: str | None
    overwrites: list[str] | None
    context: list[ContextValue] | None = Field(
        None, description="What the step declares the decider sees, as the data was when the task opened")
    event_type: str | None = Field(None, description="Webhook steps only")
    execution_arn: str | Absent = None
    revision: str | Absent = None
    tenant_id: str | None = None
    escalation: Escalation | None = None
    reassigned_by: str | None = None
    reassigned_at: Timestamp | None = None
    reminded_at: Timestamp | None = None
    closed_at: Timestamp | None = None
    closed_reason: str | None = None
    quorum: Quorum | None = Field(None, description="Approvals so far against the step's quorum (null: one decides)")
    approvals: Approvals | None = None
    decisions: list[TaskDecision] | None = None
    distinct_from: list[Excluded] | None = None
    assignments: list[Assignment] | None = Field(None, description="Who changed who works the task, oldest first")


class TaskPage(Closed):
    items: list[TaskSummary]
    limit: int
    next_cursor: Cursor


class TaskMetrics(Closed):
    pending_by_group: dict[str, int]
    pending_total: int
    overdue_count: int
    oldest_overdue_due_at: Timestamp | None
    oldest_overdue_age_seconds: int | None


class TaskCallback(Closed):
    """Where an external system completes a waiting webhook step (the URL is a capability)."""

    task_id: str
    instance_id: str | None
    step_name: str
    event_type: str | None
    status: TaskStatus
    attempt: int | None
    callback_url: str


EventStatus = Literal["delivered", "kept", "duplicate"]


class EventAccepted(Closed):
    """The steps the event completed: its webhook steps, or its receive step (none yet when it is kept
    for the receive step, which takes it when it starts waiting)."""

    instance_id: str
    status: EventStatus = Field(description="delivered: a step took it; kept: until its receive step waits; "
                                            "duplicate: an event with this id was taken or kept already")
    completed: list[Task] | Absent = None
    id: str | Absent = Field(None, description="The event's id (yours, or one given to it); receive steps only")
    step_name: str | Absent = None
    task_id: str | Absent = None
    expires_at: Timestamp | Absent = Field(None, description="kept: dropped then if no receive step took it")


class EventPublished(Closed):
    """Where an event sent to whichever instance waits for it went."""

    status: EventStatus = Field(description="delivered: a waiting receive step took it; kept: none waits yet; "
                                            "duplicate: an event with this id was taken or kept already")
    id: str
    instance_id: str | Absent = None
    step_name: str | Absent = None
    task_id: str | Absent = None
    completed: list[Task] | Absent = None
    expires_at: Timestamp | Absent = None


class CallbackAccepted(Closed):
    """All a callback key's holder learns: its step is done."""

    task_id: str
    step_name: str
    status: TaskStatus
    completed_at: Timestamp | None


class DecisionLinks(Closed):
    """One-click links for one decider; each URL is a capability (signed, expiring, single-use)."""

    task_id: str
    decider: str = Field(description="Whose decision a link carries: the decision is recorded as theirs")
    expires_at: Timestamp
    links: dict[Literal["approve", "reject"], str]


class LinkDecided(Closed):
    task_id: str
    decision: Literal["approve", "reject"]
    decided_by: str
    task: Task


class Absence(Closed):
    """A person's out-of-office entry: tasks opened for them while it holds go to the delegate."""

    user: str
    delegate: str
    starts_at: Timestamp | None
    until: Timestamp | None
    reason: str | None
    set_by: str | None
    set_at: Timestamp


class AbsenceRemoved(Closed):
    user: str
    deleted: Literal[True]
