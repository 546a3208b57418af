"""Operational metrics: which counter each write moves, and the Prometheus text exposition of them.

Pure: the service (service/metrics.py) hands over log events and measurements, this says which counter
items change by how much; and it renders stored counters as Prometheus text (format 0.0.4). Counters live
in items keyed by (tenant, metric, labels), changed by atomic ADDs on the write paths, so reading them is
one query whatever the number of instances or tasks.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from typing import Any

PREFIX = "stepflow_"
SERVICE_WIDE = "_"  # the tenant of service-wide counters (the sweep)
# Step durations in seconds: up to 5 minutes (a Lambda step's practical range); +Inf is implicit.
STEP_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
MAX_LABEL = 128

# name -> (type, help)
METRICS: dict[str, tuple[str, str]] = {
    "instances_started_total": ("counter", "Instances started, by workflow"),
    "instances_ended_total": ("counter", "Instances ended, by workflow and final status"),
    "instances_open": ("gauge", "Instances started and not ended (started minus ended), by workflow"),
    "step_duration_seconds": ("histogram", "Duration of machine step attempts, by task type"),
    "step_failures_total": ("counter", "Machine step attempts that failed, by task type and error"),
    "tasks_pending": ("gauge", "Open human tasks, by group (`all`: every open task)"),
    "tasks_overdue": ("gauge", "Open human tasks past their due time"),
    "tasks_oldest_overdue_age_seconds": ("gauge", "How long the oldest overdue task has been overdue"),
    "webhook_deliveries_total": ("counter", "Completion webhook attempts, by outcome (delivered, failed)"),
    "webhook_dead_letters_total": ("counter", "Completion webhooks given up after their last retry"),
    "sweep_runs_total": ("counter", "Sweep runs"),
    "sweep_duration_seconds_total": ("counter", "Time spent in sweeps"),
    "sweep_items_total": ("counter", "Items the sweep read and acted on, by pass"),
    "sweep_errors_total": ("counter", "Sweep passes that failed"),
}


def label(value: Any) -> str:
    return str(value if value is not None else "")[:MAX_LABEL]


def key(name: str, labels: Mapping[str, Any]) -> str:
    """The counter item's key within its tenant: the metric and its labels, in a stable order."""
    return f"{name}|" + json.dumps({k: label(v) for k, v in sorted(labels.items())}, separators=(",", ":"))


def parse_key(item_key: str) -> tuple[str, dict[str, str]]:
    name, _, labels = item_key.partition("|")
    return name, json.loads(labels or "{}")


def bucket_field(seconds: float) -> str:
    """The attribute of the one (non-cumulative) bucket a duration falls in: b0.. or binf."""
    for i, bound in enumerate(STEP_BUCKETS):
        if seconds <= bound:
            return f"b{i}"
    return "binf"


def counted(event: Mapping[str, Any]) -> bool:
    """Whether a log event moves a counter (the others need no read of their instance)."""
    return event.get("type") in ("instance.started", "instance.ended", "step.succeeded", "step.failed",
                                 "step.retried")


def from_event(event: Mapping[str, Any], workflow: str | None) -> list[tuple[str, dict[str, Any], dict[str, float]]]:
    """What one event of an instance's log moves: [(metric, labels, {field: increment})]."""
    kind, data = event.get("type"), event.get("data") or {}
    if kind == "instance.started":
        return [("instances_started_total", {"workflow": workflow}, {"value": 1})]
    if kind == "instance.ended":
        return [("instances_ended_total", {"workflow": workflow, "status": data.get("status")}, {"value": 1})]
    if kind in ("step.succeeded", "step.failed", "step.retried") and "duration_ms" in data:
        task_type = data.get("task_type")
        seconds = max(0.0, float(data["duration_ms"]) / 1000)
        moves = [("step_duration_seconds", {"task_type": task_type},
                  {bucket_field(seconds): 1, "count": 1, "sum": round(seconds, 6)})]
        if kind != "step.succeeded":
            moves.append(("step_failures_total", {"task_type": task_type, "error": data.get("error")}, {"value": 1}))
        return moves
    return []


def emf_values(event: Mapping[str, Any]) -> list[tuple[str, str, float]]:
    """The CloudWatch (EMF) figures of one log event: (metric, unit, value), service dimension only."""
    kind, data = event.get("type"), event.get("data") or {}
    if kind == "instance.started":
        return [("InstancesStarted", "Count", 1.0)]
    if kind == "instance.ended":
        status = str(data.get("status") or "")
        ended: list[tuple[str, str, float]] = [("InstancesEnded", "Count", 1.0)]
        return ended + ([("InstancesFailed", "Count", 1.0)] if status == "failed" else [])
    if kind in ("step.succeeded", "step.failed", "step.retried") and "duration_ms" in data:
        values = [("StepDuration", "Milliseconds", max(0.0, float(data["duration_ms"])))]
        return values + ([("StepAttemptsFailed", "Count", 1.0)] if kind != "step.succeeded" else [])
    return []


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(labels: Mapping[str, Any]) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{k}="{_escape(label(v))}"' for k, v in sorted(labels.items())) + "}"


def _number(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def render(counters: Iterable[tuple[str, str, Mapping[str, float]]],
           tasks: Mapping[str, Mapping[str, Any]]) -> str:
    """Prometheus text: `counters` are stored items as (tenant, key, fields); `tasks` each tenant's task
    metrics (TaskService.metrics). Every series carries its tenant; service-wide ones have tenant="_"."""
    series: dict[str, list[str]] = {name: [] for name in METRICS}
    open_by: dict[tuple[str, str], float] = {}
    for tenant, item_key, fields in sorted(counters, key=lambda c: (c[0], c[1])):
        name, labels = parse_key(item_key)
        if name not in METRICS:
            continue
        labels = {"tenant": tenant, **labels}
        if name == "step_duration_seconds":
            running = 0.0
            for i, bound in enumerate(STEP_BUCKETS):
                running += fields.get(f"b{i}", 0)
                series[name].append(f"{PREFIX}{name}_bucket{_labels({**labels, 'le': _number(bound)})} {_number(running)}")
            series[name].append(f"{PREFIX}{name}_bucket{_labels({**labels, 'le': '+Inf'})} "
                                f"{_number(fields.get('count', 0))}")
            series[name].append(f"{PREFIX}{name}_sum{_labels(labels)} {_number(fields.get('sum', 0))}")
            series[name].append(f"{PREFIX}{name}_count{_labels(labels)} {_number(fields.get('count', 0))}")
            continue
        value = fields.get("value", 0)
        series[name].append(f"{PREFIX}{name}{_labels(labels)} {_number(value)}")
        if name in ("instances_started_total", "instances_ended_total"):
            sign = 1 if name == "instances_started_total" else -1
            slot = (tenant, labels.get("workflow", ""))
            open_by[slot] = open_by.get(slot, 0) + sign * value
    for (tenant, workflow), value in sorted(open_by.items()):
        series["instances_open"].append(
            f"{PREFIX}instances_open{_labels({'tenant': tenant, 'workflow': workflow})} {_number(max(0.0, value))}")
    for tenant, found in sorted(tasks.items()):
        for group, count in sorted((found.get("pending_by_group") or {}).items()):
            series["tasks_pending"].append(f"{PREFIX}tasks_pending{_labels({'tenant': tenant, 'group': group})} "
                                           f"{_number(count)}")
        series["tasks_pending"].append(f"{PREFIX}tasks_pending{_labels({'tenant': tenant, 'group': 'all'})} "
                                       f"{_number(found.get('pending_total', 0) or 0)}")
        series["tasks_overdue"].append(f"{PREFIX}tasks_overdue{_labels({'tenant': tenant})} "
                                       f"{_number(found.get('overdue_count', 0) or 0)}")
        age = found.get("oldest_overdue_age_seconds")
        series["tasks_oldest_overdue_age_seconds"].append(
            f"{PREFIX}tasks_oldest_overdue_age_seconds{_labels({'tenant': tenant})} {_number(age or 0)}")
    lines: list[str] = []
    for name, (kind, text) in METRICS.items():
        lines += [f"# HELP {PREFIX}{name} {text}", f"# TYPE {PREFIX}{name} {kind}", *series[name]]
    return "\n".join(lines) + "\n"
