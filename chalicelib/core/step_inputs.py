"""The data each step of an instance was given, rebuilt from the instance's input and its steps' outputs."""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from chalicelib.core.graph import build_graph
from chalicelib.core.instance_data import get_path, merge_instance_data, set_path
from chalicelib.core.model import Definition


def step_inputs(definition: Definition, order: Sequence[str], start_input: Mapping[str, Any] | None,
                outputs: Mapping[str, Any], steps: Iterable[str]) -> dict[str, dict[str, Any]]:
    """For each of `steps`: the input merged with the outputs of the steps before it in the graph (its
    ancestors, in the definition's order), its input mappings applied. That is what the step runner hands
    a step: a step on a parallel branch never sees the other branch's outputs, so only ancestors count.
    Outputs are stored redacted, so nothing here holds a credential the instance data does not."""
    graph = build_graph(definition)
    by_id = {s.id: s for s in definition.steps}
    inputs: dict[str, dict[str, Any]] = {}
    for step_id in steps:
        if step_id not in by_id:
            continue
        before = graph.ancestors(step_id)
        seen = {s: o for s, o in outputs.items() if s in before}
        data = copy.deepcopy(merge_instance_data(dict(start_input or {}), seen, order))
        for mapping in getattr(by_id[step_id], "input_mappings", None) or []:
            try:
                value = get_path(seen[mapping.from_step], mapping.from_field)
            except KeyError:
                continue  # the step failed on it (its error says so): it was given nothing there
            set_path(data, mapping.to_field, copy.deepcopy(value))
        inputs[step_id] = data
    return inputs
