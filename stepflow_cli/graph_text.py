"""Draws a workflow graph (the API's nodes and edges) as text: steps in dependency order, each with where it leads."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rich.console import Group
from rich.text import Text

SHAPES = {"machine": "▭", "human": "⬡", "gateway": "◇", "timer": "◷", "webhook": "⇄"}
STATE_STYLE = {"completed": "green", "current": "yellow", "waiting": "blue", "failed": "red",
               "canceled": "dim", "not_reached": "dim"}


def order(nodes: Sequence[Mapping[str, Any]], edges: Sequence[Mapping[str, Any]]) -> list[str]:
    """Node ids so that every edge points forward (Kahn's algorithm, ties in the API's order)."""
    ids = [n["id"] for n in nodes]
    incoming = {i: 0 for i in ids}
    for edge in edges:
        if edge["target"] in incoming:
            incoming[edge["target"]] += 1
    ready = [i for i in ids if incoming[i] == 0]
    placed: list[str] = []
    while ready:
        current = ready.pop(0)
        placed.append(current)
        for edge in edges:
            if edge["source"] == current and edge["target"] in incoming:
                incoming[edge["target"]] -= 1
                if incoming[edge["target"]] == 0:
                    ready.append(edge["target"])
    return placed + [i for i in ids if i not in placed]  # a cycle, should one ever come: still shown


def render(graph: Mapping[str, Any]) -> Group:
    nodes = {n["id"]: n for n in graph.get("nodes") or []}
    edges = list(graph.get("edges") or [])
    title = Text(str(graph.get("name") or graph.get("definition_name") or ""), style="bold")
    if graph.get("instance_id"):
        title.append(f"  instance {graph['instance_id']} ({graph.get('status')})", style="dim")
    elif graph.get("version"):
        title.append(f"  {graph['version']}", style="dim")
    lines = [title]
    for node_id in order(list(nodes.values()), edges):
        node = nodes[node_id]
        state = node.get("state")
        line = Text(f"{SHAPES.get(str(node.get('type')), '•')} ")
        line.append(str(node.get("label") or node_id), style=STATE_STYLE.get(str(state), "bold"))
        line.append(f"  ({node_id}, {node.get('type')})", style="dim")
        if state:
            line.append(f"  {state}", style=STATE_STYLE.get(str(state), ""))
        if node.get("is_terminal"):
            line.append("  end", style="dim")
        lines.append(line)
        outgoing = [e for e in edges if e["source"] == node_id]
        for index, edge in enumerate(outgoing):
            branch = Text("   └─▶ " if index == len(outgoing) - 1 else "   ├─▶ ")
            branch.append(str(edge["target"]))
            if edge.get("condition"):
                branch.append(f"  if {edge['condition']}", style="cyan")
            elif edge.get("is_default"):
                branch.append("  otherwise", style="cyan")
            lines.append(branch)
    return Group(*lines)
