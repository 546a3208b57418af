"""Compares two revisions of a definition: a unified diff of their sources and a structural diff of steps
and edges, plus the one-line change summary a revision list shows."""

from __future__ import annotations

import difflib
from typing import Any

from chalicelib.core.graph import build_graph
from chalicelib.core.model import Definition

MAX_DIFF_LINES = 5000  # a diff of two 256 KiB sources stays readable and bounded
_TOP_LEVEL = ("version", "description", "input_schema", "initial_step", "terminal_steps")


def _steps(definition: Definition) -> dict[str, dict[str, Any]]:
    return {s["id"]: s for s in definition.model_dump(mode="json")["steps"]}


def _edges(definition: Definition) -> set[tuple[str, str, str | None]]:
    return {(e.source, e.target, e.condition) for e in build_graph(definition).edges}


def structural_diff(old: Definition, new: Definition) -> dict[str, Any]:
    """Steps added, removed and changed (with the fields that changed), edges added and removed, and the
    top-level fields that changed; lists in a stable order (steps as the newer revision declares them)."""
    before, after = _steps(old), _steps(new)
    changed = []
    for step_id, step in after.items():
        if step_id in before and before[step_id] != step:
            fields = sorted(k for k in set(step) | set(before[step_id]) if step.get(k) != before[step_id].get(k))
            changed.append({"id": step_id, "fields": fields})
    old_edges, new_edges = _edges(old), _edges(new)
    dumped_old, dumped_new = old.model_dump(mode="json"), new.model_dump(mode="json")

    def edge_list(edges: set[tuple[str, str, str | None]]) -> list[dict[str, Any]]:
        return [{"source": s, "target": t, "condition": c} for s, t, c in sorted(edges, key=lambda e: (e[0], e[1], e[2] or ""))]

    return {
        "steps_added": [s for s in after if s not in before],
        "steps_removed": [s for s in before if s not in after],
        "steps_changed": changed,
        "edges_added": edge_list(new_edges - old_edges),
        "edges_removed": edge_list(old_edges - new_edges),
        "fields_changed": [f for f in _TOP_LEVEL if dumped_old.get(f) != dumped_new.get(f)],
    }


def change_summary(old: Definition | None, new: Definition) -> str:
    """One line: what this revision changed relative to the one before it."""
    if old is None:
        return f"first revision: {len(new.steps)} step{'s' if len(new.steps) != 1 else ''}"
    diff = structural_diff(old, new)
    parts = []
    for key, label in (("steps_added", "added"), ("steps_removed", "removed")):
        if diff[key]:
            parts.append(f"{label} {', '.join(diff[key])}")
    if diff["steps_changed"]:
        parts.append(f"changed {', '.join(c['id'] for c in diff['steps_changed'])}")
    if diff["edges_added"] or diff["edges_removed"]:
        parts.append(f"edges +{len(diff['edges_added'])}/-{len(diff['edges_removed'])}")
    if diff["fields_changed"]:
        parts.append(f"{', '.join(diff['fields_changed'])} changed")
    return "; ".join(parts) or "no change to the steps"


def source_diff(old_source: str, new_source: str, old_label: str, new_label: str) -> str:
    """A unified diff of the two sources as submitted (cut at MAX_DIFF_LINES, with a note that it was)."""
    lines = list(difflib.unified_diff(old_source.splitlines(keepends=True), new_source.splitlines(keepends=True),
                                      fromfile=old_label, tofile=new_label))
    lines = [line if line.endswith("\n") else line + "\n" for line in lines]
    if len(lines) > MAX_DIFF_LINES:
        lines = [*lines[:MAX_DIFF_LINES], f"... {len(lines) - MAX_DIFF_LINES} more lines\n"]
    return "".join(lines)
