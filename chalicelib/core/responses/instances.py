"""What the instance operations answer: views, pages, results, removal, execution history, graphs."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from chalicelib.core.responses.common import (
    Absent,
    Closed,
    Cursor,
    EndedStatus,
    Failure,
    InstanceStatus,
    JsonObject,
    LiveStatus,
    Open,
    StepStatus,
    Timestamp,
)
from chalicelib.core.responses.definitions import GraphEdge, GraphNode


class InstanceSummary(Open):
    """An instance as listed: what identifies it and where it stands; a listing may show less than the
    instance view does, so only these four are promised."""

    id: str
    definition_name: str
    status: InstanceStatus
    created_at: Timestamp
    namespace: str | None = None
    version: str | None = None
    started_at: Timestamp | None = None
    completed_at: Timestamp | None = None
    created_by: str | None = None
    tenant_id: str | None = None
    correlation_id: str | None = None
    deleted_at: Timestamp | None = None


class Progress(Closed):
    completed_steps: int
    skipped_steps: int = Field(description="Steps on branches not taken, once the instance completed")
    total_steps: int
    percent: int = Field(ge=0, le=100)


class StepRun(Closed):
    """One step's record in the instance's history."""

    step_name: str
    status: StepStatus
    started_at: Timestamp | None
    completed_at: Timestamp | None
    attempts: int
    error: Failure | None
    fallback_used: bool
    output: Any = Field(None, description="Left out with include_outputs=false")
    input: JsonObject | Absent = Field(None, description="On the step named by input_of: the data it was "
                                                                "given (the input merged with the outputs of the "
                                                                "steps before it, its input mappings applied)")


class Run(Closed):
    """One execution of the instance: the first start, a redrive or a resume."""

    execution_arn: str
    kind: Literal["start", "redrive", "resume"]
    started_at: Timestamp


class Notification(Closed):
    """One delivery attempt of the completion webhook."""

    attempt: int
    at: Timestamp
    url: str
    ok: bool
    status_code: int | Absent = None
    error: str | Absent = None
    next_attempt_at: Timestamp | Absent = None  # a failed attempt's: when the next one is due (none after the last)


class Instance(Closed):
    """An instance with its data, progress and step history."""

    id: str
    definition_name: str
    namespace: str | None = Field(None, description="The definition's namespace within its tenant")
    version: str | None
    status: InstanceStatus
    created_at: Timestamp
    started_at: Timestamp | None
    completed_at: Timestamp | None
    created_by: str | None
    tenant_id: str | None
    correlation_id: str | None
    webhook_url: str | None
    origin_instance: str | None
    origin_zone: str | None
    origin_tenant_id: str | None
    origin_reference: str | None
    retry_of: str | None
    retried_by: str | None
    deleted_at: Timestamp | None
    cancel_reason: str | None
    revision: str | None
    revision_number: int | None = Field(description="The number of the revision it runs (null: recorded before "
                                                    "numbers, or not known until its execution starts)")
    alias: str | None = Field(description="The alias it was started through (null: none)")
    current_step: str | None
    current_steps: list[str]
    context_data: JsonObject | None = Field(description="The instance data: the input merged with step outputs")
    input_data: JsonObject | None
    output: JsonObject | None
    error: Failure | None
    progress: Progress
    step_history: list[StepRun]
    runs: list[Run]
    notifications: list[Notification]
    continued_from: str | None = Field(None, description="The completed instance this one continues")
    continued_by: str | None = Field(None, description="The instance that continued this one (the latest)")
    purged: Literal[True] | Absent = Field(None, description="cancel?purge=true: the instance, its tasks and "
                                                            "events are removed; this is how it was last seen")


class InstancePage(Closed):
    items: list[InstanceSummary]
    limit: int
    offset: int
    next_cursor: Cursor


class InstanceRunning(Closed):
    """The instance has not ended yet: ask `result_url` again (the `Location` header, `Retry-After`
    seconds later). The URL is absolute-path: stage and API prefix included."""

    id: str
    status: LiveStatus
    workflow_name: str | None
    revision: str | None
    started_at: Timestamp | None
    result_url: str


class InstanceResult(Closed):
    """The instance has ended: its result (the instance data) when it completed, else its error."""

    id: str
    status: EndedStatus
    workflow_name: str | None
    revision: str | None
    started_at: Timestamp | None
    result: JsonObject | None
    error: Failure | None
    completed_at: Timestamp | None


class InstanceRemoved(Closed):
    """A soft delete (`deleted`), or with purge=true everything gone (`purged`)."""

    id: str
    deleted: Literal[True] | Absent = None
    purged: Literal[True] | Absent = None


class ExecutionHistoryPage(Closed):
    """Step Functions' own events of one run, task parameters left out."""

    instance_id: str
    run: int
    execution_arn: str | Absent = Field(None, description="Missing while the instance has no execution")
    events: list[JsonObject]
    next_cursor: Cursor


class InstanceGraph(Closed):
    instance_id: str
    definition_name: str
    status: InstanceStatus
    current_steps: list[str]
    mermaid_source: str | Absent = Field(None, description="With graph_format=mermaid (the default)")
    nodes: list[GraphNode]
    edges: list[GraphEdge]
