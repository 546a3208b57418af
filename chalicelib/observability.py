"""Structured logs and CloudWatch metrics (Powertools Logger and EMF Metrics), shared by every handler."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit, single_metric

logger = Logger(service="stepflow")
metrics = Metrics(namespace="Stepflow", service="stepflow")


def http_middleware(event: Any, get_response: Callable[[Any], Any]) -> Any:
    """One structured line per request with its status and duration; metrics flushed per request."""
    started = time.perf_counter()
    context = getattr(event, "context", None) or {}
    logger.append_keys(request_id=context.get("requestId"), path=event.path, method=event.method)
    try:
        response = get_response(event)
    finally:
        logger.remove_keys(["request_id", "path", "method"])
    elapsed_ms = round((time.perf_counter() - started) * 1000, 1)
    logger.info("request", extra={"status": response.status_code, "elapsed_ms": elapsed_ms,
                                  "path": event.path, "method": event.method})
    metrics.add_metric(name="Requests", unit=MetricUnit.Count, value=1)
    if response.status_code >= 500:
        metrics.add_metric(name="ServerErrors", unit=MetricUnit.Count, value=1)
    metrics.flush_metrics()
    return response


def step_finished(kind: str, ok: bool) -> None:
    # One metric with its own dimension: the shared Metrics object keeps dimensions between calls.
    with single_metric(name="StepsRun" if ok else "StepsFailed", unit=MetricUnit.Count, value=1,
                       namespace="Stepflow") as metric:
        metric.add_dimension(name="kind", value=kind)
