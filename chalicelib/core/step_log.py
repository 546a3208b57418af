"""Folds an instance's event log (what the step runner and task registrar record as it happens) into
the same per-step records the execution history gives, so a view needs no history read.

Gateways (Choice states) and timers (Wait states) write nothing: their records are inferred from the
graph. A gateway or timer was entered when a predecessor succeeded over an edge that was taken (a
gateway's edge is taken when its condition holds on the data the gateway saw, the default otherwise),
and it is done once a step after it was entered. Where the log cannot tell (an output too large for
the log, a condition that cannot be evaluated), `Fold.needs_history` says so and the caller reads the
execution history for that view only.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from chalicelib.core.conditions import ConditionError, evaluate, parse_condition
from chalicelib.core.graph import build_graph, is_route, structural_kinds
from chalicelib.core.history import StepRecord, Summary
from chalicelib.core.instance_data import merge_instance_data
from chalicelib.core.model import Definition

SILENT = ("gateway", "timer")  # states that write no event
CALLBACK = ("human", "webhook", "receive")
OPEN = ("running", "waiting")
TIMED_OUT_ERROR = "Stepflow.TaskTimedOut"


class Fold:
    """The summary and whether the log fell short (the caller then reads the history)."""

    def __init__(self, summary: Summary, needs_history: bool):
        self.summary = summary
        self.needs_history = needs_history

    @property
    def open_steps(self) -> list[str]:
        return list(self.summary.current_steps)


def fold(events: Iterable[Mapping[str, Any]], definition: Definition, order: Sequence[str],
         start_input: Mapping[str, Any] | None, *, ended: str | None = None,
         error: dict[str, Any] | None = None) -> Fold:
    """Step records from the log. `ended` (completed/failed/canceled) closes what is still open the way
    the execution's end did; `error` is the instance's error (a timed-out step names itself in it)."""
    kinds = {s.id: s.type for s in definition.steps}
    branching = structural_kinds(definition)  # a human step that routes on its outcome branches too
    records: dict[str, StepRecord] = {}
    first_seen: dict[str, str] = {}
    truncated = False
    for event in events:
        step, kind, data = event.get("step"), event.get("type"), event.get("data") or {}
        if kind == "instance.started" and (data.get("run") in ("resume", "redrive")):
            # A new run: what the failed run left open ended with it.
            for record in records.values():
                if record.status in OPEN:
                    record.status = "failed"
            continue
        if not step or step not in kinds:
            continue
        at = event.get("at")
        if step not in records:
            records[step] = StepRecord(step)
            first_seen[step] = event.get("seq") or ""
        record = records[step]
        fallback = bool(data.get("fallback"))
        if kind == "step.started":
            record.status = "running"
            record.started_at = record.started_at or at
            record.completed_at = None
            if fallback:
                record.fallback_used = True
            else:
                record.attempts = int(data.get("attempt") or record.attempts + 1)
        elif kind == "step.retried":
            record.error = {"error": data.get("error"), "message": data.get("message")}
        elif kind == "step.failed":
            record.error = {"error": data.get("error"), "message": data.get("message")}
            if not data.get("fallback_follows"):
                record.status, record.completed_at = "failed", at
        elif kind == "step.succeeded":
            record.status, record.completed_at = "succeeded", at
            output = data.get("output")
            truncated = truncated or _truncated(data)
            record.output = output
        elif kind == "task.created":
            record.status = "waiting"
            record.started_at = record.started_at or at
            record.completed_at = None
            record.attempts = max(record.attempts, 1)
        elif kind == "task.completed":
            record.status, record.completed_at = "succeeded", at
            truncated = truncated or _truncated(data)
            record.output = data.get("output")
    graph = build_graph(definition)
    position = {s: i for i, s in enumerate(order)}
    outputs = {s: r.output for s, r in records.items() if r.status == "succeeded" and r.output is not None}
    entered: dict[str, bool] = {s: s in records for s in order}
    unsure = False

    def taken(source: str, target: str) -> bool:
        """Whether the edge source -> target was followed (source has succeeded)."""
        nonlocal unsure
        if branching.get(source) != "gateway":
            return True
        edges = graph.out_edges(source)
        # Evidence first: a branch whose first step was entered is the one taken.
        chosen = [e.target for e in edges if entered.get(e.target) and e.target in records]
        if chosen:
            return target in chosen
        seen = merge_instance_data(dict(start_input or {}), {s: o for s, o in outputs.items()
                                                            if s in graph.ancestors(source)}, order)
        for edge in edges:
            if edge.condition is None or is_route(edge.condition):  # a route is known taken by evidence only
                continue
            try:
                if evaluate(parse_condition(edge.condition), seen):
                    return edge.target == target
            except (ConditionError, TypeError, ValueError):
                unsure = True
                return False
        return any(e.condition is None and e.target == target for e in edges)

    # Silent steps in graph order: entered when a predecessor succeeded over a taken edge.
    for step in order:
        if kinds.get(step) not in SILENT or step in records:
            continue
        preds = graph.preds[step]
        if any(records.get(p) is not None and records[p].status in OPEN for p in preds):
            continue  # a parallel branch into it is still running
        reached = not preds or any(_done(records, p) and taken(p, step) for p in preds)
        if not reached:
            continue
        entered[step] = True
        record = records[step] = StepRecord(step, "waiting" if kinds[step] == "timer" else "succeeded",
                                            attempts=0)
        record.started_at = max((records[p].completed_at or "" for p in preds if p in records), default="") or None
        if record.status == "succeeded":
            record.completed_at = record.started_at
    # A step something after it was entered from is done (its own end may not be logged yet).
    for step in order:
        if step not in records or records[step].status not in OPEN:
            continue
        record = records[step]
        later = [records[s] for s in graph.succs[step] if s in records]
        if later:
            record.status = "succeeded"
            record.completed_at = record.completed_at or min((r.started_at or "" for r in later), default="") or None
    if ended:
        for step, record in records.items():
            if record.status not in OPEN:
                continue
            if ended == "completed":
                record.status = "succeeded"
            elif ended == "canceled":
                record.status = "canceled"
            elif error and error.get("error") == TIMED_OUT_ERROR and f"'{step}'" in str(error.get("message")):
                record.status, record.error = "timed_out", {"error": TIMED_OUT_ERROR,
                                                            "message": "not completed in time"}
            else:
                record.status = "failed"
    ordered = sorted(records.values(), key=lambda r: (r.started_at or "~", position.get(r.step_name, 0)))
    summary = Summary(steps={r.step_name: r for r in ordered},
                      outputs={s: r.output for s, r in records.items() if r.status == "succeeded"
                               and r.output is not None},
                      current_steps=[r.step_name for r in ordered if r.status in OPEN])
    failed = [r for r in ordered if r.status == "failed" and r.error]
    summary.error = failed[-1].error if failed else None
    return Fold(summary, truncated or unsure)


def _done(records: Mapping[str, StepRecord], step: str) -> bool:
    record = records.get(step)
    return record is not None and record.status == "succeeded"


def _truncated(data: Mapping[str, Any]) -> bool:
    # bounded_data replaces data above its cap with {"truncated": true, "bytes": n}
    return bool(data.get("truncated")) and "bytes" in data


def close_open(summary: Summary, ended: str) -> None:
    """What an end leaves of steps still open: succeeded (completed), canceled, or failed."""
    for record in summary.steps.values():
        if record.status in OPEN:
            record.status = {"completed": "succeeded", "canceled": "canceled"}.get(ended, "failed")
    summary.current_steps = []


MACHINE_LIMIT = timedelta(minutes=15)  # a Lambda step cannot run longer than its function may


def may_have_ended(summary: Summary, definition: Definition, now: datetime) -> bool:
    """Whether a live instance's execution may have ended without the log showing it: nothing is open,
    a timer waits (it ends on its own), or an open step is past the time it could last."""
    if not summary.current_steps:
        return True
    for step_id in summary.current_steps:
        step = definition.step(step_id)
        record = summary.steps[step_id]
        if step.type == "timer":
            return True
        limits = [v for v in (getattr(step, "timeout_seconds", None), getattr(step, "heartbeat_seconds", None)) if v]
        limit = min(limits) if limits else None
        if step.type == "machine":
            limit = limit or MACHINE_LIMIT.total_seconds()
        if limit and record.started_at:
            started = datetime.fromisoformat(record.started_at.replace("Z", "+00:00"))
            if now - started >= timedelta(seconds=limit):
                return True
    return False
