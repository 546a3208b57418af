"""What runs before what in a definition, and which fields each step declares it produces."""

from __future__ import annotations

from typing import Any

from chalicelib.core.decisions import writes_of_step
from chalicelib.core.graph import Graph
from chalicelib.core.model import Definition, HumanStep, MachineStep, ReceiveStep, WebhookStep


def declared_output_fields(step: Any, catalog: Any) -> set[str] | None:
    """Fields a step is known to produce, or None when its output is open-ended."""
    if isinstance(step, MachineStep):
        if step.task_type == "data.set" and isinstance(step.config.get("values"), dict):
            return set(step.config["values"])
        try:
            schema = catalog.get(step.task_type).output_schema
        except Exception:  # noqa: BLE001 - unknown task types are reported elsewhere
            return None
        if isinstance(schema, dict) and schema.get("additionalProperties") is False:
            return set(schema.get("properties", {}))
        return None
    if isinstance(step, HumanStep | WebhookStep | ReceiveStep):
        writes = writes_of_step(step)
        if writes.namespace is not None:
            return {writes.namespace, *writes.overwrites}
        return set(writes.fields or ())
    return None



class Upstream:
    """What runs before what, and what each step declares it produces: computed once, on first use.

    Checks that ask "is X upstream of Y" for every step share one topological pass (graph.ancestor_bits)
    instead of walking the graph from each step, which kept registration quadratic in the step count.
    """

    def __init__(self, definition: Definition, graph: Graph, order: list[str], catalog: Any):
        self._graph = graph
        self._order = order
        self._catalog = catalog
        self._steps: dict[str, Any] = {}
        for step in definition.steps:
            self._steps.setdefault(step.id, step)  # the first of a repeated id, as Definition.step finds it
        self._position = {n: i for i, n in enumerate(graph.nodes)}
        self._bits: dict[str, int] | None = None
        self._outputs: dict[str, set[str] | None] = {}
        self._setters: dict[str, int] | None = None

    def ancestors_mask(self, step_id: str) -> int:
        if self._bits is None:
            self._bits = self._graph.ancestor_bits(self._order)
        return self._bits[step_id]

    def runs_before(self, earlier: str, later: str) -> bool:
        return bool(self.ancestors_mask(later) >> self._position[earlier] & 1)

    def outputs(self, step_id: str) -> set[str] | None:
        if step_id not in self._outputs:
            self._outputs[step_id] = declared_output_fields(self._steps[step_id], self._catalog)
        return self._outputs[step_id]

    def first_upstream_setter(self, name: str, step_id: str) -> str | None:
        """The earliest declared step upstream of `step_id` that declares it produces `name`, or None."""
        if self._setters is None:
            # Field -> bitset of the steps that declare it: built once, for every callback step to ask.
            self._setters = {}
            for node, position in self._position.items():
                for field_name in self.outputs(node) or ():
                    self._setters[field_name] = self._setters.get(field_name, 0) | (1 << position)
        mask = self.ancestors_mask(step_id) & self._setters.get(name, 0)
        if not mask:
            return None
        return self._graph.nodes[(mask & -mask).bit_length() - 1]  # the lowest bit: declared first
