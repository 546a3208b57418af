"""Structured logs and CloudWatch metrics (Powertools Logger and EMF Metrics), shared by every handler.

Safe under threads, because the local service serves each request on its own thread and runs steps
on Step Functions' interpreter threads in the same process: per-request/per-invocation log keys live in
the calling thread's context (never in the shared formatter), each request flushes its own metrics
object, and every line is capped (chalicelib/log_caps.py).
"""

from __future__ import annotations

import contextlib
import contextvars
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit, single_metric
from aws_lambda_powertools.metrics.functions import is_metrics_disabled

from chalicelib.log_caps import capped_json

NAMESPACE, SERVICE = "Stepflow", "stepflow"

# `stepflow.*` stdlib loggers are children of this one: their records go through the same capped JSON.
logger = Logger(service=SERVICE, json_serializer=capped_json)


@contextlib.contextmanager
def log_keys(**keys: Any) -> Iterator[None]:
    """Adds keys to every line this thread logs until the block ends; other threads never see them.

    The shared formatter's append_keys would put one request's keys on every thread's lines and keep
    them after the request; these live in the thread's context and are put back as they were.
    """
    previous = dict(logger.thread_safe_get_current_keys())
    logger.thread_safe_append_keys(**{k: v for k, v in keys.items() if v is not None})
    try:
        yield
    finally:
        logger.thread_safe_clear_keys()
        if previous:
            logger.thread_safe_append_keys(**previous)


def invocation_keys(context: Any, **keys: Any) -> contextlib.AbstractContextManager[None]:
    """log_keys for one Lambda invocation: the function and its request id, plus `keys`."""
    return log_keys(function_name=getattr(context, "function_name", None),
                    function_request_id=getattr(context, "aws_request_id", None), **keys)


@contextlib.contextmanager
def _one_writer() -> Iterator[None]:
    # Metrics are printed to stdout, where the log handler writes too: holding the handler's lock keeps
    # an EMF blob and a log line from interleaving on one line when two threads write at once.
    handler = logger.registered_handler
    handler.acquire()
    try:
        yield
    finally:
        handler.release()


_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("stepflow_request_id", default=None)


def current_request_id() -> str | None:
    """The id of the request this thread serves (API Gateway's, or one made up locally)."""
    return _request_id.get()


def http_middleware(event: Any, get_response: Callable[[Any], Any]) -> Any:
    """One structured line per request with its status and duration; its own metrics, flushed per request."""
    started = time.perf_counter()
    context = getattr(event, "context", None) or {}
    # API Gateway gives every request an id; the local dev server gives none, so one is made up.
    request_id = context.get("requestId") or str(uuid.uuid4())
    token = _request_id.set(request_id)
    try:
        with log_keys(request_id=request_id, path=event.path, method=event.method):
            response = get_response(event)
            elapsed_ms = round((time.perf_counter() - started) * 1000, 1)
            logger.info("request", extra={"status": response.status_code, "elapsed_ms": elapsed_ms})
    finally:
        _request_id.reset(token)
    # A Metrics object shares its metric set across instances and threads: one request's flush could
    # serialise a set another thread was adding to. An EphemeralMetrics belongs to this request alone.
    request_metrics = EphemeralMetrics(namespace=NAMESPACE, service=SERVICE)
    request_metrics.add_metric(name="Requests", unit=MetricUnit.Count, value=1)
    if response.status_code >= 500:
        request_metrics.add_metric(name="ServerErrors", unit=MetricUnit.Count, value=1)
    with _one_writer():
        request_metrics.flush_metrics()
    return response


def step_finished(kind: str, ok: bool) -> None:
    if is_metrics_disabled():  # Powertools' single_metric prints even when metrics are turned off
        return
    # One metric with its own dimension (single_metric is its own object, flushed when the block ends).
    with _one_writer(), single_metric(name="StepsRun" if ok else "StepsFailed", unit=MetricUnit.Count, value=1,
                                      namespace=NAMESPACE) as metric:
        metric.add_dimension(name="kind", value=kind)


def count(name: str) -> None:
    """One EMF count of `name` (service dimension only), flushed at once: safe from any thread."""
    if is_metrics_disabled():
        return
    with _one_writer(), single_metric(name=name, unit=MetricUnit.Count, value=1, namespace=NAMESPACE):
        pass


def emit_batch(values: list[tuple[str, str, float]]) -> None:
    """One EMF blob of (name, MetricUnit member name, value) for one invocation (a stream batch): its own
    EphemeralMetrics object, flushed once under the writer's lock, so threads never share a metric set."""
    if is_metrics_disabled() or not values:
        return
    batch = EphemeralMetrics(namespace=NAMESPACE, service=SERVICE)
    for name, unit, value in values:
        batch.add_metric(name=name, unit=getattr(MetricUnit, unit), value=value)
    with _one_writer():
        batch.flush_metrics()
