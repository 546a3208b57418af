"""Workflow graphs for people: Mermaid flowchart source plus the nodes and edges as data.

Pure: the output is a function of the definition alone, or of the definition and the statuses of an
instance's steps. Every piece of user text (titles, conditions) is written as a quoted Mermaid label
with entity codes for the characters Mermaid or HTML would read as syntax, so no title can break
the diagram, add statements (`style`, `click`, `%%{init}%%`) or inject markup.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from chalicelib.core.graph import build_graph
from chalicelib.core.model import Definition

FORMATS = ("mermaid", "json")

# Opening and closing brackets of each step type's node shape.
SHAPES: dict[str, tuple[str, str]] = {
    "machine": ("[", "]"),  # rectangle
    "human": ("{{", "}}"),  # hexagon
    "gateway": ("{", "}"),  # diamond (rhombus)
    "timer": ("([", "])"),  # stadium
    "webhook": ("[[", "]]"),  # subroutine
    "receive": ("[/", "/]"),  # parallelogram: input from outside
}

# Execution states of a step in an instance graph, each drawn with one Mermaid class.
STATE_STYLES: dict[str, str] = {
    "completed": "fill:#90EE90,stroke:#006400,color:#000000",
    "current": "fill:#FFD700,stroke:#B8860B,stroke-width:2px,color:#000000",
    "waiting": "fill:#ADD8E6,stroke:#1F4E79,stroke-width:2px,stroke-dasharray:6 3,color:#000000",
    "failed": "fill:#FF6B6B,stroke:#8B0000,stroke-width:2px,color:#000000",
    "canceled": "fill:#D3D3D3,stroke:#555555,stroke-dasharray:3 3,color:#333333",
    "not_reached": "fill:#FFFFFF,stroke:#A9A9A9,color:#666666",
}
STATES = tuple(STATE_STYLES)

# Entity codes for every character that is syntax somewhere in Mermaid's pipeline or in HTML:
# quotes end the label, '#' starts entity codes, '%' directives and comments, ':' is read by the
# `style ...:#...;` clean-up and by `fa:` icons, '$' math, '`' markdown strings, '|' edge labels,
# '<', '>' and '&' markup. Mermaid turns `#name;` / `#NN;` back into HTML entities, shown as text.
_ENTITIES = {
    '"': "#quot;", "#": "#35;", "%": "#37;", "&": "#amp;", "<": "#lt;", ">": "#gt;", "`": "#96;",
    ":": "#58;", "|": "#124;", "$": "#36;",
}
# Separators Mermaid (or the browser) would read as line breaks.
_BREAKS = {"\r", "\n", "\t", "\v", "\f", "\x85", "\u2028", "\u2029"}


def mermaid_text(text: str) -> str:
    """`text` as the inside of a quoted Mermaid label: one line, no character Mermaid reads as syntax."""
    out = []
    for char in text:
        if char in _ENTITIES:
            out.append(_ENTITIES[char])
        elif char in _BREAKS:
            out.append(" ")
        elif ord(char) < 32 or ord(char) == 127:
            continue  # other control characters carry nothing a person can read
        else:
            out.append(char)
    return "".join(out)


def node_ids(step_ids: list[str] | tuple[str, ...]) -> dict[str, str]:
    """Mermaid ids for step ids: `s_` + the id with '-' as '_' (so no keyword such as `end` and no
    arrow-like `--`); if two steps would share an id, every step is numbered instead (`s0`, `s1`...)."""
    ids = {step: "s_" + step.replace("-", "_") for step in step_ids}
    if len(set(ids.values())) < len(ids):
        ids = {step: f"s{i}" for i, step in enumerate(step_ids)}
    return ids


def step_state(step_status: str | None, instance_status: str | None) -> str:
    """An instance's step drawn as: completed, current, waiting, failed, canceled or not_reached.

    `step_status` is the step's status in the instance's step history (None: it never started);
    a step still open when the instance stopped (canceled, or failed elsewhere) counts as canceled,
    and one still open in the history of a completed instance (events can lag) as completed.
    """
    if step_status is None:
        return "not_reached"
    if step_status == "succeeded":
        return "completed"
    if step_status in ("failed", "timed_out"):
        return "failed"
    if step_status == "canceled":
        return "canceled"
    if instance_status == "completed":
        return "completed"  # the execution succeeded, so every step it entered finished
    if instance_status in ("canceled", "failed"):
        return "canceled"
    if step_status == "waiting":
        return "waiting"
    return "current"


def render(definition: Definition, *, states: Mapping[str, str] | None = None,
           graph_format: str = "mermaid") -> dict[str, Any]:
    """The graph of a definition: `mermaid_source` (only for the mermaid format), nodes and edges.

    With `states` (step id -> one of STATES, as `step_state` gives), each node carries its `state`
    and the Mermaid source colours it with a class; steps missing from `states` are not_reached.
    """
    if graph_format not in FORMATS:
        raise ValueError(f"graph_format must be one of {', '.join(FORMATS)}")
    graph = build_graph(definition)
    kinds = {step.id: step.type for step in definition.steps}
    ids = node_ids(graph.nodes)
    initial = {definition.initial_step} if definition.initial_step else set(graph.sources)
    terminal = set(definition.terminal_steps) if definition.terminal_steps else set(graph.sinks)
    gateways_with_conditions = {e.source for e in graph.edges if e.condition and kinds[e.source] == "gateway"}

    nodes = []
    for step_id in graph.nodes:
        step = definition.step(step_id)
        node = {"id": step_id, "label": step.label, "type": step.type, "is_initial": step_id in initial,
                "is_terminal": step_id in terminal, "mermaid_id": ids[step_id]}
        if states is not None:
            node["state"] = states.get(step_id, "not_reached")
        nodes.append(node)
    edges = []
    for edge in graph.edges:
        is_default = edge.condition is None and edge.source in gateways_with_conditions
        edges.append({"source": edge.source, "target": edge.target, "condition": edge.condition,
                      "is_default": is_default})

    result: dict[str, Any] = {"nodes": nodes, "edges": edges}
    if graph_format == "mermaid":
        result = {"mermaid_source": _mermaid(nodes, edges, ids, with_states=states is not None), **result}
    return result


def _mermaid(nodes: list[dict[str, Any]], edges: list[dict[str, Any]], ids: dict[str, str], *,
             with_states: bool) -> str:
    lines = ["flowchart TD"]
    for node in nodes:
        opening, closing = SHAPES[node["type"]]
        lines.append(f'    {ids[node["id"]]}{opening}"{mermaid_text(node["label"])}"{closing}')
    for edge in edges:
        label = edge["condition"] if edge["condition"] is not None else ("otherwise" if edge["is_default"] else None)
        arrow = f' -->|"{mermaid_text(label)}"| ' if label is not None else " --> "
        lines.append(f"    {ids[edge['source']]}{arrow}{ids[edge['target']]}")
    if with_states:
        # Every state's class is defined, so the source names all six; each used one gets its members.
        for state in STATES:
            lines.append(f"    classDef {state} {STATE_STYLES[state]}")
        for state in STATES:
            members = ",".join(ids[node["id"]] for node in nodes if node["state"] == state)
            if members:
                lines.append(f"    class {members} {state}")
    return "\n".join(lines) + "\n"


def render_instance(definition: Definition, step_statuses: Mapping[str, str], instance_status: str | None, *,
                    graph_format: str = "mermaid") -> dict[str, Any]:
    """An instance's graph: each step coloured by its execution state (see `step_state`)."""
    states = {step.id: step_state(step_statuses.get(step.id), instance_status) for step in definition.steps}
    return render(definition, states=states, graph_format=graph_format)
