"""What the definition and catalog operations answer: definitions, dry runs, ASL, graphs, task types."""

from __future__ import annotations

from typing import Literal

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
    namespace: str | None = Field(None, description="Names are unique per tenant and namespace")
    steps: list[str] | Absent = None
    edges: list[StepEdge] | Absent = None
    initial_step: str | None = None
    terminal_steps: list[str] | Absent = None
    revision_number: int | None = Field(None, description="Its number in the workflow's history")
    active: bool = Field(description="False once deactivated: new starts are refused")
    adhoc: Literal[True] | Absent = Field(None, description="An anonymous definition an inline start registered")
    adhoc_label: str | None | Absent = Field(None, description="The name its inline body gave, if any")


class DefinitionDetail(Closed):
    """One revision of a workflow: the summary, the definition as stored and its state machine."""

    name: str
    version: str
    revision: str
    description: str | None
    created_at: Timestamp | None
    created_by: str | None
    tenant_id: str | None
    namespace: str | None = Field(None, description="Names are unique per tenant and namespace")
    steps: list[str]
    edges: list[StepEdge]
    initial_step: str | None
    terminal_steps: list[str]
    revision_number: int | None = Field(description="Its number in the workflow's history")
    active: bool = Field(description="False once deactivated: new starts are refused")
    adhoc: Literal[True] | Absent = Field(None, description="An anonymous definition an inline start registered")
    adhoc_label: str | None | Absent = Field(None, description="The name its inline body gave, if any")
    definition: Definition
    state_machine_arn: str | None


class DefinitionRemoved(Closed):
    """A deactivated (or, with purge, removed) definition."""

    name: str
    active: bool
    purged: bool


class RevisionEntry(Closed):
    """One entry of a workflow's history (a restore is an entry of its own, equal to the one it restores)."""

    number: int = Field(description="1 for the first revision; the path's {rev} takes it or the content id")
    revision: str = Field(description="The content id: the same content always has the same id")
    version: str
    created_at: Timestamp
    created_by: str | None
    change: str = Field(description="One line: what changed from the revision before")
    restored_from: int | None
    source_format: Literal["json", "yaml"]


class RevisionDetail(RevisionEntry):
    """A revision as submitted (comments and key order kept), normalised, and compiled."""

    name: str
    source: str | None
    definition: Definition
    asl: StateMachine


class StepChange(Closed):
    id: str
    fields: list[str]


class StructuralDiff(Closed):
    steps_added: list[str]
    steps_removed: list[str]
    steps_changed: list[StepChange]
    edges_added: list[StepEdge]
    edges_removed: list[StepEdge]
    fields_changed: list[str] = Field(description="Top-level fields that differ (version, description, ...)")


class RevisionDiff(Closed):
    name: str
    from_: RevisionEntry = Field(alias="from")
    to: RevisionEntry
    source_diff: str = Field(description="A unified diff of the two sources as submitted")
    structural: StructuralDiff


class ExportedRevision(RevisionEntry):
    source: str | None


class DefinitionExport(Closed):
    """A document POST /definitions/import accepts; the definition's latest revision, and with
    history=true every revision, oldest first."""

    format: Literal["stepflow.definition/v1"]
    name: str
    version: str
    revision: str
    source: str | None
    source_format: Literal["json", "yaml"] | None
    definition: Definition
    revisions: list[ExportedRevision] | Absent = None


class DefinitionImported(Closed):
    name: str
    revision: str = Field(description="The content id of the latest revision, as in the document")
    revisions_created: int = Field(description="0: everything was there already")


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


class PluginExample(Closed):
    title: str
    config: JsonObject
    output: JsonObject | None = None


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
    examples: list[PluginExample] = Field(description="Configs to copy (each passes the config checks), with an "
                                                      "output they could give")


class PluginCategory(Closed):
    name: str
    count: int = Field(ge=1, description="How many task types it holds")


class AliasRoute(Closed):
    revision: int = Field(description="The revision's number")
    revision_id: str = Field(description="Its content id")
    version: str | None
    weight: int = Field(ge=0, le=100, description="The share of starts it takes, in percent")


class DefinitionAlias(Closed):
    """A name that routes starts to one or two revisions by weight; `live` follows the latest revision."""

    name: str
    alias: str
    follows_latest: bool = Field(description="True while `live` runs the latest revision (no routes set on it since)")
    routes: list[AliasRoute]
    updated_at: Timestamp | None
    updated_by: str | None
