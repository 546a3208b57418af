"""Operational metrics: counters moved from the event log's stream, the sweep and webhook deliveries, read
back as Prometheus text (GET /metrics) and emitted as EMF for CloudWatch on AWS.

Off the request path: instance and step counters are moved by the stream consumer (app.lifecycle_events)
from the events the log already holds, so a request pays nothing for them. A counter update that fails is
logged and dropped (metrics must never fail the stream batch and so republish lifecycle events); a
redelivered batch may count an event twice. Task gauges come from the tasks table's own counter item.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from chalicelib.core import metrics

logger = logging.getLogger("stepflow.metrics")


class MetricsRecorder:
    def __init__(self, store: Any, instance_of: Callable[[str], Mapping[str, Any] | None],
                 task_metrics: Callable[[str | None], Mapping[str, Any]]):
        self._store = store
        self._instance_of = instance_of
        self._task_metrics = task_metrics
        self._known: set[str] = set()

    def _add(self, tenant: str | None, name: str, labels: Mapping[str, Any], fields: Mapping[str, float]) -> None:
        scope = tenant or metrics.SERVICE_WIDE
        try:
            if scope not in self._known:
                self._store.register_tenant(scope)
                self._known.add(scope)
            self._store.add(scope, metrics.key(name, labels), fields)
        except Exception as exc:  # noqa: BLE001 - see the module docstring
            logger.warning("metric not counted: %s (%s)", name, type(exc).__name__)

    def observe_changes(self, changes: Iterable[tuple[str, str, dict[str, Any] | None, dict[str, Any] | None]]
                        ) -> int:
        """Counts what the newly written log events say, given as (instance id, change, new, old); how
        many counters moved. Each instance is read once per batch, for its tenant and workflow."""
        instances: dict[str, Mapping[str, Any] | None] = {}
        moved = 0
        emf: list[tuple[str, str, float]] = []
        for instance_id, change, new, _ in changes:
            if change != "INSERT" or new is None or not metrics.counted(new):
                continue
            if instance_id not in instances:
                try:
                    instances[instance_id] = self._instance_of(instance_id) if instance_id else None
                except Exception as exc:  # noqa: BLE001 - see the module docstring
                    logger.warning("metrics: instance not read (%s)", type(exc).__name__)
                    instances[instance_id] = None
            record = instances[instance_id] or {}
            for name, labels, fields in metrics.from_event(new, record.get("definition_name")):
                self._add(record.get("tenant_id"), name, labels, fields)
                moved += 1
            emf += metrics.emf_values(new)
        from chalicelib.observability import emit_batch

        emit_batch(emf)  # the same figures for CloudWatch, once per batch
        return moved

    def webhook(self, tenant: str | None, ok: bool, given_up: bool) -> None:
        self._add(tenant, "webhook_deliveries_total", {"outcome": "delivered" if ok else "failed"}, {"value": 1})
        if given_up:
            self._add(tenant, "webhook_dead_letters_total", {}, {"value": 1})
            from chalicelib.observability import count

            count("WebhookDeadLetters")  # the CloudWatch alarm's metric (infra/monitoring.py)

    def sweep(self, seconds: float, stats: Mapping[str, Any]) -> None:
        self._add(None, "sweep_runs_total", {}, {"value": 1})
        self._add(None, "sweep_duration_seconds_total", {}, {"value": round(seconds, 6)})
        for name, value in sorted(stats.items()):
            if name == "failed_passes" or not isinstance(value, int | float) or isinstance(value, bool):
                continue
            self._add(None, "sweep_items_total", {"pass": name}, {"value": value})
        if stats.get("failed_passes"):
            self._add(None, "sweep_errors_total", {}, {"value": stats["failed_passes"]})

    def exposition(self, tenants: list[str | None] | None) -> str:
        """Prometheus text for `tenants` (None: every tenant with counters) and the service-wide counters."""
        scopes = self._store.tenants() if tenants is None else sorted({t or metrics.SERVICE_WIDE for t in tenants})
        if metrics.SERVICE_WIDE not in scopes:
            scopes = [*scopes, metrics.SERVICE_WIDE]
        counters = [(scope, item_key, fields) for scope in scopes for item_key, fields in self._store.read(scope)]
        tasks = {scope: self._task_metrics(None if scope == metrics.SERVICE_WIDE else scope) for scope in scopes}
        return metrics.render(counters, tasks)
