"""Reads a Step Functions execution history into per-step records, the current step and outputs."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from chalicelib.core.failures import public_error
from chalicelib.core.times import as_iso

# Suffixes the compiler gives to helper states of a step; "par__N" states belong to no step.
_HELPER_SUFFIXES = ("__fallback", "__merge", "__timed_out", "__end", "__done", "__gate", "__release", "__run")
# A step waiting at its gate (core/gates.py) has not started; a release state runs after it has ended.
_NOT_THE_STEP = ("__gate", "__release")
# A gated machine step's own state fails with this when its gate opens after it came (runtime/gates.py): not an
# attempt of the step, which `<step>__run` then runs.
_GATE_OPEN = "Stepflow.GateOpen"

STATUS_BY_EXECUTION = {
    "RUNNING": "running",
    "SUCCEEDED": "completed",
    "FAILED": "failed",
    "TIMED_OUT": "failed",
    "ABORTED": "canceled",
    "PENDING_REDRIVE": "failed",
}


@dataclass
class StepRecord:
    step_name: str
    status: str = "running"
    started_at: str | None = None
    completed_at: str | None = None
    attempts: int = 0
    error: dict[str, Any] | None = None
    output: Any = None
    fallback_used: bool = False

    def as_dict(self, *, with_output: bool = True) -> dict[str, Any]:
        record = {
            "step_name": self.step_name, "status": self.status, "started_at": self.started_at,
            "completed_at": self.completed_at, "attempts": self.attempts, "error": self.error,
            "fallback_used": self.fallback_used,
        }
        if with_output:
            record["output"] = self.output
        return record


@dataclass
class Summary:
    steps: dict[str, StepRecord] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)
    current_steps: list[str] = field(default_factory=list)
    error: dict[str, Any] | None = None


def _step_of(state_name: str) -> tuple[str | None, str]:
    if state_name.startswith("par__"):
        return None, ""
    for suffix in _HELPER_SUFFIXES:
        if state_name.endswith(suffix):
            return state_name[: -len(suffix)], suffix
    return state_name, ""


def _when(event: dict[str, Any]) -> str:
    return as_iso(event.get("timestamp")) or ""


def _json(text: Any) -> Any:
    try:
        return json.loads(text) if isinstance(text, str) else text
    except ValueError:
        return None


def summarise(events: list[dict[str, Any]], step_kinds: dict[str, str]) -> Summary:
    """Step records in the order steps were entered; owner of an event found via previousEventId."""
    summary = Summary()
    owner: dict[int, str] = {}
    open_steps: list[str] = []
    for event in events:
        kind = event["type"]
        previous = event.get("previousEventId")
        if kind.endswith("StateEntered"):
            name = event["stateEnteredEventDetails"]["name"]
            owner[event["id"]] = name
            step, suffix = _step_of(name)
            if step not in step_kinds or suffix in _NOT_THE_STEP:
                continue
            record = summary.steps.setdefault(step, StepRecord(step))
            if suffix == "":
                record.started_at = record.started_at or _when(event)
                record.status = "waiting" if step_kinds[step] in ("human", "webhook", "receive", "timer") else "running"
                if step not in open_steps:
                    open_steps.append(step)
            elif suffix == "__fallback":
                record.fallback_used = True
            elif suffix == "__run":  # the step's own state only waited at its gate: the step starts here
                record.started_at = _when(event)
                record.status = "running"
                if step not in open_steps:
                    open_steps.append(step)
            elif suffix == "__timed_out":
                record.status = "timed_out"
                record.error = {"error": "Stepflow.TaskTimedOut", "message": "not completed in time"}
            continue
        name = owner.get(previous) if previous is not None else None
        if name is not None:
            owner[event["id"]] = name
        step, suffix = _step_of(name) if name else (None, "")
        owned = summary.steps.get(step) if step else None
        if kind in ("TaskScheduled", "LambdaFunctionScheduled") and owned and suffix in ("", "__run"):
            owned.attempts += 1
        elif kind in ("TaskFailed", "LambdaFunctionFailed", "TaskTimedOut", "LambdaFunctionTimedOut") and owned:
            details: dict[str, Any] = next((v for k, v in event.items() if k.endswith("EventDetails")), {})
            if details.get("error") == _GATE_OPEN and suffix == "":
                owned.attempts -= 1
                continue
            owned.error = public_error(details.get("error"), details.get("cause"))
        elif kind.endswith("StateExited"):
            exited = event["stateExitedEventDetails"]["name"]
            step, suffix = _step_of(exited)
            if step not in summary.steps or suffix not in ("", "__fallback", "__done", "__run"):
                continue
            record = summary.steps[step]
            record.status = "succeeded"
            record.completed_at = _when(event)
            output = _step_output(_json(event["stateExitedEventDetails"].get("output")), step)
            if output is not None:
                record.output = output
                summary.outputs[step] = output
            if step in open_steps:
                open_steps.remove(step)
        elif kind in ("ExecutionFailed", "ExecutionTimedOut", "ExecutionAborted"):
            details = next((v for k, v in event.items() if k.endswith("EventDetails")), {}) or {}
            if kind != "ExecutionAborted":
                summary.error = public_error(details.get("error"), details.get("cause"))
            for open_step in open_steps:
                rec = summary.steps[open_step]
                if rec.status not in ("timed_out",):
                    rec.status = "canceled" if kind == "ExecutionAborted" else "failed"
                rec.completed_at = _when(event)
            open_steps = []
    summary.current_steps = open_steps
    return summary


def _step_output(state: Any, step: str) -> Any:
    # Inside a scope the state is {"steps": {...}, "data": {...}}; at a scope's end, the steps map.
    if isinstance(state, dict):
        steps = state.get("steps")
        if isinstance(steps, dict) and step in steps:
            return steps[step]
        if step in state and "data" not in state:
            return state[step]
    return None


# Event details that can carry a task token (a callback state's resolved parameters); never shown.
_HIDDEN_DETAILS = ("parameters",)


def history_event(event: dict[str, Any]) -> dict[str, Any]:
    """A history event as clients see it: times as ISO text, no resolved task parameters (they hold
    the task token, which completes the step)."""
    shown: dict[str, Any] = {}
    for key, value in event.items():
        if key == "timestamp":
            shown[key] = as_iso(value)
        elif key.endswith("EventDetails") and isinstance(value, dict):
            shown[key] = {k: v for k, v in value.items() if k not in _HIDDEN_DETAILS and "token" not in k.lower()}
        else:
            shown[key] = value
    return shown
