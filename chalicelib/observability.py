"""Structured logs, CloudWatch metrics and X-Ray traces (Powertools Logger, EMF Metrics, Tracer) for every handler.

Safe under threads, because the local service serves each request on its own thread and runs steps
on Step Functions' interpreter threads in the same process: log keys appended after setup live in the
calling thread's context (never in the shared formatter), every invocation starts with none
(inject_lambda_context(clear_state=True)), each request flushes its own metrics object, and every line is
capped (chalicelib/log_caps.py). The tracer is created at the first traced invocation, and only where
tracing is on (a deployed function; POWERTOOLS_TRACE_DISABLED elsewhere): no X-Ray SDK import otherwise.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import os
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter
from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit, single_metric
from aws_lambda_powertools.metrics.functions import is_metrics_disabled

from chalicelib.log_caps import capped_json

if TYPE_CHECKING:
    from aws_lambda_powertools import Tracer

NAMESPACE, SERVICE = "Stepflow", "stepflow"
TRACE_DISABLED_ENV = "POWERTOOLS_TRACE_DISABLED"


class _ThreadScopedFormatter(LambdaPowertoolsFormatter):
    """Powertools' JSON formatter whose keys appended after setup belong to the appending thread.

    Powertools keeps append_keys (and the Lambda context inject_lambda_context adds) in the one shared
    formatter: in the local service, where requests and steps share a process, one invocation's keys would
    be on every thread's lines. Once sealed, append/remove/clear act on the calling thread's keys only;
    the service name and the other keys given at setup stay shared.
    """

    _sealed = False

    def seal(self) -> None:
        self._sealed = True

    def append_keys(self, **additional_keys: Any) -> None:
        if self._sealed:
            self.thread_safe_append_keys(**additional_keys)
        else:
            super().append_keys(**additional_keys)

    def remove_keys(self, keys: Iterable[str]) -> None:
        if self._sealed:
            self.thread_safe_remove_keys(keys)
        else:
            super().remove_keys(keys)

    def clear_state(self) -> None:
        if self._sealed:
            self.thread_safe_clear_keys()
        else:
            super().clear_state()


def _serialize(log: Any) -> str:
    return capped_json(log)


_formatter = _ThreadScopedFormatter(json_serializer=_serialize)
# `stepflow.*` stdlib loggers are children of this one: their records go through the same capped JSON.
logger = Logger(service=SERVICE, logger_formatter=_formatter)
_formatter.seal()


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


def execution_keys(execution: str | None, **keys: Any) -> contextlib.AbstractContextManager[None]:
    """log_keys naming a Step Functions execution: its ARN and the instance it runs, plus `keys`."""
    from chalicelib.core.runs import run_of_execution

    return log_keys(execution=execution, instance_id=run_of_execution(execution)[0] or None, **keys)


def tracing_enabled(env: Mapping[str, str] | None = None) -> bool:
    """Tracing is on in a deployed Lambda function (its template sets Tracing: Active) unless
    POWERTOOLS_TRACE_DISABLED says otherwise; off in the local service and tests (no X-Ray daemon there)."""
    env = os.environ if env is None else env
    if (env.get(TRACE_DISABLED_ENV) or "").strip().lower() in ("1", "true", "yes", "on"):
        return False
    return bool(env.get("AWS_LAMBDA_FUNCTION_NAME")) and not env.get("AWS_SAM_LOCAL") \
        and not env.get("AWS_CHALICE_CLI_MODE")


@functools.cache
def tracer() -> Tracer | None:
    """The Powertools Tracer, made at the first traced invocation (importing the X-Ray SDK costs a cold start
    about 100 ms: a function with tracing off never pays it). None when the X-Ray SDK is not installed (the
    Lambda package carries it, from requirements-lambda-extra.txt): the function then has Lambda's own
    segments only, and says so once."""
    try:
        import aws_xray_sdk  # noqa: F401 - Powertools imports it lazily, at the first trace: checked here
    except ImportError:
        logger.warning("tracing is on but the X-Ray SDK is not installed: no handler subsegments")
        return None
    from aws_lambda_powertools import Tracer

    return Tracer(service=SERVICE)


def _lambda_context(event: Any) -> Any:
    """The Lambda context of a Chalice event: a request's `lambda_context`, an event source's `context`."""
    for attribute in ("lambda_context", "context"):
        context = getattr(event, attribute, None)
        if hasattr(context, "aws_request_id") and hasattr(context, "function_name"):
            return context
    return None


def make_invocation_middleware(before: Callable[[], Any] | None = None) -> Callable[[Any, Callable[[Any], Any]], Any]:
    """Chalice middleware for every handler (event type "all"), outermost: `before` (the stage's secrets
    refreshed when due), then the Logger's inject_lambda_context(clear_state=True), so an invocation's lines
    carry its function and request id and never a key an earlier invocation on this thread left; and the
    Tracer's capture_lambda_handler where tracing is on (responses are not captured: they hold user data)."""

    def middleware(event: Any, get_response: Callable[[Any], Any]) -> Any:
        if before is not None:
            before()
        context = _lambda_context(event)
        if context is None:  # not a Lambda invocation (a direct call): nothing to inject, no earlier keys kept
            logger.thread_safe_clear_keys()
            return get_response(event)

        def handle(_event: Any, _context: Any) -> Any:
            return get_response(event)

        handle.__name__ = str(context.function_name or "handler")  # the trace's subsegment: "## <function>"
        handler = logger.inject_lambda_context(clear_state=True)(handle)
        traced = tracer() if tracing_enabled() else None
        if traced is not None:
            handler = traced.capture_lambda_handler(handler, capture_response=False)
        return handler(event, context)

    return middleware


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
        with log_keys(request_id=request_id, path=event.path, method=event.method,
                      instance_id=(event.uri_params or {}).get("instance_id")):
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
