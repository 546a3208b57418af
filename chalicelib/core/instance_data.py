"""Instance data: the start input with every finished step's output merged in, in a fixed order."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def merge_instance_data(start_input: Mapping[str, Any], outputs: Mapping[str, Any], order: Sequence[str]) -> dict[str, Any]:
    """Shallow-merge each step's output over the input, in the definition's topological order.

    The order is the definition's (Kahn's order, declaration order breaking ties), never the order
    steps happened to finish in, so parallel branches give the same data on every run: when two
    branches write the same key, the step later in that order wins.
    """
    data = dict(start_input)
    for step_id in order:
        output = outputs.get(step_id)
        if isinstance(output, Mapping):
            data.update(output)
    return data


def get_path(data: Any, path: str) -> Any:
    """The value at a dotted path ("customer.name", "items.0"); KeyError when absent."""
    current = data
    for part in path.split("."):
        if isinstance(current, Mapping) and part in current:
            current = current[part]
        elif isinstance(current, list) and part.isdigit() and int(part) < len(current):
            current = current[int(part)]
        else:
            raise KeyError(path)
    return current


def set_path(data: dict[str, Any], path: str, value: Any) -> None:
    """Sets a dotted path, creating objects on the way ("address.city")."""
    parts = path.split(".")
    current = data
    for part in parts[:-1]:
        nxt = current.get(part)
        if not isinstance(nxt, dict):
            nxt = {}
            current[part] = nxt
        current = nxt
    current[parts[-1]] = value
