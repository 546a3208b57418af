"""What changed between two stored revisions of a definition, step by step (the API stores; the CLI compares)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

MAX_VALUE = 60


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
    return text if len(text) <= MAX_VALUE else text[:MAX_VALUE - 1] + "…"


def _leaves(value: Any, prefix: str = "") -> dict[str, Any]:
    """Flattens nested mappings to dotted paths; lists stay whole (a reordered list is one change)."""
    if isinstance(value, Mapping) and value:
        found: dict[str, Any] = {}
        for key, item in value.items():
            found.update(_leaves(item, f"{prefix}.{key}" if prefix else str(key)))
        return found
    return {prefix: value}


def _field_changes(old: Any, new: Any, prefix: str = "") -> list[str]:
    before, after = _leaves(old, prefix), _leaves(new, prefix)
    changes = []
    for path in sorted(set(before) | set(after)):
        if path not in after:
            changes.append(f"{path} {_short(before[path])} → (removed)")
        elif path not in before:
            changes.append(f"{path} (new) → {_short(after[path])}")
        elif before[path] != after[path]:
            changes.append(f"{path} {_short(before[path])} → {_short(after[path])}")
    return changes


def changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[dict[str, Any]]:
    """[{change: added|removed|changed, what: "step <id>" | <field>, details: [...]}], in a stable order."""
    found: list[dict[str, Any]] = []
    for key in sorted((set(old) | set(new)) - {"steps"}):
        if old.get(key) != new.get(key):
            if key not in old:
                details = [f"{key} (new) → {_short(new[key])}"]
            elif key not in new:
                details = [f"{key} {_short(old[key])} → (removed)"]
            else:
                details = _field_changes(old[key], new[key], key)
            found.append({"change": "changed", "what": key, "details": details})
    old_steps = {s.get("id"): s for s in old.get("steps") or [] if isinstance(s, Mapping)}
    new_steps = {s.get("id"): s for s in new.get("steps") or [] if isinstance(s, Mapping)}
    for step_id, step in new_steps.items():
        if step_id not in old_steps:
            found.append({"change": "added", "what": f"step {step_id}", "details": []})
        elif old_steps[step_id] != step:
            found.append({"change": "changed", "what": f"step {step_id}",
                          "details": _field_changes(old_steps[step_id], step)})
    for step_id in old_steps:
        if step_id not in new_steps:
            found.append({"change": "removed", "what": f"step {step_id}", "details": []})
    if [s for s in old_steps if s in new_steps] != [s for s in new_steps if s in old_steps]:
        found.append({"change": "changed", "what": "step order", "details": []})
    return found
