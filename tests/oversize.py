"""Definitions whose state machine fits in 1 MiB with its ${...} placeholders and not once its ARNs are bound."""

from __future__ import annotations

from typing import Any

from chalicelib.core.compiler import compile_definition
from chalicelib.core.loading import revision_of
from chalicelib.core.model import Definition
from chalicelib.core.sizing import MAX_DEFINITION_BYTES, compiled_size, deployed_size

# Conditions are what a small body can make large: each comparison becomes a guarded Choice rule.
CONDITION = " and ".join(["amount > 1"] * 60)


def definition(machines: int, gateways: int, name: str = "oversize") -> dict[str, Any]:
    """`machines` machine steps in a chain (each Task state names the step runner's ARN), then a chain of
    gateways, each with a long condition onwards and a default branch to one shared last step."""
    steps: list[dict[str, Any]] = [
        {"id": f"m{i}", "type": "machine", "task_type": "util.log", "config": {"message": "x"},
         "depends_on": [f"m{i - 1}"] if i else []} for i in range(machines)]
    steps += [{"id": f"g{i}", "type": "gateway"} for i in range(gateways)]
    steps += [{"id": "end", "type": "machine", "task_type": "util.log", "config": {"message": "x"}},
              {"id": "done", "type": "machine", "task_type": "util.log", "config": {"message": "x"}}]
    edges = [{"source": f"m{machines - 1}", "target": "g0"}]
    edges += [{"source": f"g{i}", "target": f"g{i + 1}" if i + 1 < gateways else "done", "condition": CONDITION}
              for i in range(gateways)]
    edges += [{"source": f"g{i}", "target": "end"} for i in range(gateways)]
    return {"name": name, "steps": steps, "edges": edges}


def sizes(data: dict[str, Any], bindings: dict[str, str]) -> tuple[int, int]:
    """(unbound, bound) bytes of the compiled state machine."""
    model = Definition.model_validate(data)
    asl = compile_definition(model, revision_of(model))
    return compiled_size(asl), deployed_size(asl, bindings)


def only_too_large_when_bound(bindings: dict[str, str], machines: int = 600,
                              name: str = "oversize") -> dict[str, Any]:
    """The definition with the most gateways whose unbound state machine still fits: it must then be too
    large bound (the caller's ARNs add enough per step), which the returned definition guarantees."""
    low, high = 1, 400
    while low < high:  # the largest gateway count whose unbound size fits
        middle = (low + high + 1) // 2
        if sizes(definition(machines, middle, name), bindings)[0] <= MAX_DEFINITION_BYTES:
            low = middle
        else:
            high = middle - 1
    data = definition(machines, low, name)
    unbound, bound = sizes(data, bindings)
    assert unbound <= MAX_DEFINITION_BYTES < bound, (unbound, bound, "the ARNs add too little: use more machines")
    return data
