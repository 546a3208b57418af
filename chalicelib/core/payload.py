"""The event a compiled Task state sends to the step runner or the task registrar: short keys, and their names.

Every Task state carries its own Parameters, so each key is paid for once per step in the state machine,
which Step Functions caps at 1 MiB. The keys are one letter, and what does not depend on the step (w, r,
i, e) arrives as one object under `c`, the workflow variable the first state assigns (core/compiler.py).
`expand` gives the handlers the flat long names, and passes events in the long form (from state machines
compiled before the keys were shortened, whose executions may still be running) through unchanged.
"""

from __future__ import annotations

from typing import Any

# Short key -> the name the handlers read.
KEYS = {
    "k": "kind",  # absent: "machine" (the step runner) or the step's own type (the registrar)
    "w": "workflow",
    "r": "revision",
    "s": "step",
    "i": "input",  # the start input, from $$.Execution.Input.input
    "x": "steps",  # the outputs of the steps finished so far, from $.steps (a list after a Parallel)
    "e": "execution",  # the execution ARN, from $$.Execution.Id
    "f": "failure",  # what a fallback caught
    "t": "token",  # a callback's task token
    "o": "outcome",  # what a waited-on child workflow's end answered (workflow.start with wait)
    "c": "context",  # w, r, i and e in one object: expand() lifts them to the top
    "g": "releases",  # the gated steps this step releases when it finishes (core/gates.py)
    "n": "waits",  # what a gate state waits for
}
LONG = {name: short for short, name in KEYS.items()}


def expand(event: dict[str, Any]) -> dict[str, Any]:
    """The event with long key names; a long-form event comes back as it is."""
    if "workflow" in event:
        return event
    shared = event.get("c")
    if isinstance(shared, dict):
        event = {**shared, **{key: value for key, value in event.items() if key != "c"}}
    expanded = {KEYS.get(key, key): value for key, value in event.items()}
    if isinstance(expanded.get("steps"), list):
        expanded["steps"] = merged_steps(expanded["steps"])
    return expanded


def merged_steps(steps: Any) -> dict[str, Any]:
    """The steps map of a state that a Parallel left as its branches' maps (nested where a branch ended
    with a Parallel): merged left to right, a later key winning, as States.JsonMerge would."""
    if not isinstance(steps, list):
        return dict(steps or {})
    merged: dict[str, Any] = {}
    for part in steps:
        merged.update(merged_steps(part))
    return merged
