"""The compiler's shared-context pass (CompileOptions.share_context): the first state assigns what every
payload repeats to the workflow variable `c`, and the states that run before it is assigned spell it out."""

from __future__ import annotations

import json
from typing import Any

SHARED = "$c"  # the workflow variable holding the payload's constant part
_SPELLED_ORDER = ("k", "w", "r", "s", "i.$", "x.$", "e.$")  # a payload spelled out, as in the default form
# Keys that end a state: Assign goes before the first of them that a state has.
_CONTINUATION = ("Catch", "OutputPath", "Next", "End", "Choices")


def assign_context(states: dict[str, Any], start: str, context: dict[str, Any]) -> None:
    """The first state assigns `c` (and so does its fallback, which continues in its place); those two and
    what runs inside the first state name the context in full, and every state does when sharing would
    not make the machine smaller."""
    first = states[start]
    ahead = {start: first}  # states that run before `c` is assigned
    for catcher in first.get("Catch", []):
        if states[catcher["Next"]]["Type"] == "Task":
            ahead[catcher["Next"]] = states[catcher["Next"]]
    _spell_out(ahead, context)
    # Sharing costs one Assign per state ahead and saves the context's size less "c.$":"$c" per payload
    # after them: a workflow of a step or two is smaller without it.
    size = len(json.dumps(context, separators=(",", ":")))
    if _shared_payloads(states) * (size - 10) <= len(ahead) * (size + 14):
        _spell_out(states, context)
        return
    assign = {"c": context}
    for name, state in ahead.items():
        if state["Type"] == "Choice":
            # A Choice assigns with the rule it takes; its own Assign is for the Default.
            state["Choices"] = [insert_before(rule, "Next", "Assign", assign) for rule in state["Choices"]]
        states[name] = insert_before(state, _CONTINUATION, "Assign", assign)


def _shared_payloads(states: dict[str, Any]) -> int:
    count = 0
    for state in states.values():
        parameters = state.get("Parameters")
        count += parameters is not None and parameters.get("Payload", parameters).get("c.$") == SHARED
        for branch in state.get("Branches", []):
            count += _shared_payloads(branch["States"])
    return count


def _spell_out(states: dict[str, Any], context: dict[str, Any]) -> None:
    """Replaces "c.$": "$c" in these states' payloads (and in every state nested in them) with the context."""
    for state in states.values():
        parameters = state.get("Parameters")
        if parameters is not None:
            payload = parameters.get("Payload", parameters)
            if payload.get("c.$") == SHARED:
                merged = {**context, **{k: v for k, v in payload.items() if k != "c.$"}}
                spelled = {k: merged.pop(k) for k in _SPELLED_ORDER if k in merged} | merged
                payload.clear()
                payload.update(spelled)
        for branch in state.get("Branches", []):
            _spell_out(branch["States"], context)


def insert_before(state: dict[str, Any], before: str | tuple[str, ...], key: str, value: Any) -> dict[str, Any]:
    """`state` with key: value before the first of `before` it has (at the end if none)."""
    anchors = (before,) if isinstance(before, str) else before
    out: dict[str, Any] = {}
    for k, v in state.items():
        if k in anchors and key not in out:
            out[key] = value
        out[k] = v
    out.setdefault(key, value)
    return out
