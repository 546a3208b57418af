"""The event a compiled Task state sends to the step runner or the task registrar: short keys, and their names.

Every Task state carries its own Parameters, so each key is paid for once per step in the state machine,
which Step Functions caps at 1 MiB. The keys are one letter; `expand` gives the handlers the long names,
and passes events in the long form (from state machines compiled before the keys were shortened, whose
executions may still be running) through unchanged.
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
    "x": "steps",  # the outputs of the steps finished so far, from $.steps
    "e": "execution",  # the execution ARN, from $$.Execution.Id
    "f": "failure",  # what a fallback caught
    "t": "token",  # a callback's task token
}
LONG = {name: short for short, name in KEYS.items()}


def expand(event: dict[str, Any]) -> dict[str, Any]:
    """The event with long key names; a long-form event comes back as it is."""
    if "workflow" in event:
        return event
    return {KEYS.get(key, key): value for key, value in event.items()}
