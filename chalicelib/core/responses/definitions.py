"""What the definition and catalog operations answer: definitions, dry runs, ASL, graphs, task types."""

from __future__ import annotations

from pydantic import Field

from chalicelib.core.model import Definition
from chalicelib.core.responses.common import Absent, Closed, JsonObject, NodeState, Open, StepType, Timestamp


class StepEdge(Closed):
    source: str
    target: str
    condition: str | None


class DefinitionSummary(Open):
    """A registered workflow as listed (its latest revision)."""

    name: str
    version: str
    revision: str
    description: str | None = None
    created_at: Timestamp | None = None
    created_by: str | None = None
    tenant_id: str | None = None
    steps: list[str] | Absent = None
    edges: list[StepEdge] | Absent = None
    initial_step: str | None = None
    terminal_steps: list[str] | Absent = None


class DefinitionDetail(Closed):
    """One revision of a workflow: the summary, the definition as stored and its state machine."""

    name: str
    version: str
    revision: str
    description: str | None
    created_at: Timestamp | None
    created_by: str | None
    tenant_id: str | None
    steps: list[str]
    edges: list[StepEdge]
    initial_step: str | None
    terminal_steps: list[str]
    definition: Definition
    state_machine_arn: str | None


class StateMachine(Open):
    """Amazon States Language; Lambda ARNs appear as ${Placeholders} bound at deployment."""

    StartAt: str
    States: dict[str, JsonObject]
    Comment: str | Absent = None


class DefinitionIssue(Closed):
    code: str
    location: str
    message: str
    hint: str


class ValidationResult(Closed):
    """A dry run: every issue at once; the revision and compiled ASL when there are none."""

    valid: bool
    issues: list[DefinitionIssue]
    revision: str | None
    asl: StateMachine | None


class GraphNode(Closed):
    id: str
    label: str
    type: StepType
    is_initial: bool
    is_terminal: bool
    mermaid_id: str
    state: NodeState | Absent = Field(None, description="Instance graphs only")


class GraphEdge(Closed):
    source: str
    target: str
    condition: str | None
    is_default: bool = Field(description="The edge a gateway takes when no condition holds")


class DefinitionGraph(Closed):
    name: str
    version: str | None
    revision: str | None
    mermaid_source: str | Absent = Field(None, description="With graph_format=mermaid (the default)")
    nodes: list[GraphNode]
    edges: list[GraphEdge]


class PluginManifest(Closed):
    """A task type of the catalog, with the JSON Schemas of its input, output and config."""

    id: str
    name: str
    category: str
    description: str
    inputSchema: JsonObject | None  # noqa: N815 - the catalog's spelling
    outputSchema: JsonObject | None  # noqa: N815
    configSchema: JsonObject | None  # noqa: N815
    errors: list[str] = Field(description="Error names the task type raises (what Retry/Catch match on)")
