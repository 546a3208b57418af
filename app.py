"""Stepflow's composition root: the Chalice app, its blueprints and its Lambda functions."""

from __future__ import annotations

import time
from typing import Any

from chalice import Chalice, Rate

from chalicelib.api import (
    aliases,
    credentials,
    definitions,
    events,
    graphs,
    instances,
    kv,
    links,
    openapi,
    plugins,
    revisions,
    tasks,
    triggers,
    ui,
)
from chalicelib.api import audit as audit_routes
from chalicelib.api import health as health_routes
from chalicelib.api import metrics as metrics_routes
from chalicelib.api import schedules as schedule_routes
from chalicelib.api.auth import make_middleware
from chalicelib.api.http import chalice_refusals, json_response
from chalicelib.api.routing import accept_unlabelled_bodies, make_route_refusals
from chalicelib.core.payload import expand
from chalicelib.observability import (
    execution_keys,
    http_middleware,
    log_keys,
    logger,
    make_invocation_middleware,
    step_finished,
)
from chalicelib.service.sweep import run_passes
from chalicelib.wiring import Services

app = Chalice(app_name="stepflow")
services = Services()


def _services() -> Services:
    return services


_prefix = services.settings.api_prefix.rstrip("/")
for module in (definitions, revisions, aliases, schedule_routes, instances, plugins, tasks, graphs, events, triggers, credentials, kv, links):
    app.register_blueprint(module.create_blueprint(_services), url_prefix=_prefix or None)
app.register_blueprint(ui.create_blueprint(_services))  # the web UI at /ui, outside the API prefix
app.register_blueprint(openapi.create_blueprint(_services, lambda: app))  # /openapi.json and /docs, public
app.register_blueprint(audit_routes.create_blueprint(_services), url_prefix=_prefix or None)  # GET /audit
app.register_blueprint(health_routes.create_blueprint(_services))
app.register_blueprint(metrics_routes.create_blueprint(_services), url_prefix=_prefix or None)  # Prometheus text  # /healthz and /readyz, public, outside the API prefix
# Every handler, outermost: the stage's secrets refreshed when due, the Lambda context in every log line with
# no key left from an earlier invocation, and an X-Ray trace where tracing is on (chalicelib/observability.py).
app.register_middleware(make_invocation_middleware(services.refresh_secrets), "all")
app.register_middleware(http_middleware, "http")
app.register_middleware(chalice_refusals, "http")  # Chalice's own 405/415 as {"detail": ...}
# Unknown route 404, wrong method 405 with Allow, media type 415: before authentication (api/routing.py).
app.register_middleware(make_route_refusals(lambda: app), "http")
# The audit log (chalicelib/api/audit.py): just outside authentication, so every mutating request whose caller
# it identified is recorded once, whichever blueprint serves it, refused ones included.
app.register_middleware(audit_routes.make_middleware(
    _services, lambda method, path: app.routes[path][method].view_name if path in app.routes else path), "http")
# Authentication and the route guards (chalicelib/api/auth.py): inside the request log, so 401/403 are logged.
app.register_middleware(make_middleware(_services), "http")


@app.route("/health", methods=["GET"])
def health() -> Any:
    return json_response({"status": "healthy", "stage": services.settings.stage})


accept_unlabelled_bodies(app)  # after the last route: a body without its own Content-Type (curl -d) is read


@app.lambda_function(name="step_runner")
def step_runner(event: dict[str, Any], context: Any) -> dict[str, Any]:
    event = expand(event)  # compiled states send one-letter keys (chalicelib/core/payload.py)
    # Keys for this invocation's lines only: locally many steps and requests share one process.
    with execution_keys(event.get("execution"), workflow=event.get("workflow"), step=event.get("step")):
        try:
            result = services.step_runner.handle(event)
        except Exception as exc:
            logger.info("step failed", extra={"error": type(exc).__name__})
            step_finished(event.get("kind", "machine"), ok=False)
            raise
        step_finished(event.get("kind", "machine"), ok=True)
        return result


@app.lambda_function(name="task_registrar")
def task_registrar(event: dict[str, Any], context: Any) -> dict[str, Any]:
    event = expand(event)
    # The event carries the task token: it is stored, never logged.
    with execution_keys(event.get("execution"), workflow=event.get("workflow"), step=event.get("step")):
        return services.task_registrar.handle(event)


@app.lambda_function(name="schedule_fired")
def schedule_fired(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """A workflow schedule is due (EventBridge Scheduler invokes this; locally the runtime does): starts its
    run for the scheduled time, once however often the same time fires."""
    with log_keys(workflow=event.get("definition")):
        result = services.schedules.fire(str(event.get("definition", ""))[:255], str(event.get("schedule_id", "")),
                                         str(event.get("scheduled_at", "")))
        logger.info("schedule fired", extra={"schedule": event.get("schedule_id"), **result})
        return result


@app.on_sqs_message(queue_arn=services.settings.webhook_retry_queue_arn, batch_size=1, name="webhook_retry")
def webhook_retry(event: Any) -> dict[str, int]:
    """A completion webhook retry is due (its SQS message's delay is over; locally the runtime's timer):
    sends it, or sets its timer again for the rest of a delay longer than SQS's 15 minutes. Raising
    leaves the message to SQS, which delivers it again (and after 5 receives, to the dead-letter queue)."""
    from collections import Counter

    from chalicelib.aws.retry_queue import parse_body

    parsed = [parse_body(record.body) for record in event]
    outcomes = dict(Counter("malformed" if p is None else services.notifier.retry(*p) for p in parsed))
    logger.info("webhook retry", extra=outcomes)
    return outcomes


@app.schedule(Rate(services.settings.sweep_minutes, unit=Rate.MINUTES), name="overdue_sweep")
def overdue_sweep(event: Any) -> dict[str, int]:
    """Escalates overdue tasks, sends reminders, redelivers interrupted completions and webhooks, finishes
    interrupted starts and endings, and settles instances whose status event was missed."""
    started = time.perf_counter()
    stats = run_passes({
        "tasks": services.tasks.sweep,
        "launches": services.instances.recover_launches,
        "endings_finished": services.instances.finish_endings,
        "notifications": services.instances.deliver_notifications,
        "reconciled": services.instances.reconcile,
        "schedule_runs_started": services.schedules.start_buffered,
    })
    logger.info("sweep", extra=stats)
    services.metrics.sweep(time.perf_counter() - started, stats)
    return stats


# Only ends: a RUNNING change needs nothing recorded, so it is not delivered (a Lambda run per start saved).
@app.on_cw_event({"source": ["aws.states"], "detail-type": ["Step Functions Execution Status Change"],
                  "detail": {"status": ["SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"]}},
                 name="execution_events")
def execution_events(event: Any) -> str | None:
    """Keeps the instance index in step with Step Functions (locally the runtime delivers these)."""
    with execution_keys(event.detail.get("executionArn")):
        return services.instances.on_execution_event(event.detail)


@app.on_dynamodb_record(stream_arn=services.settings.events_stream_arn, name="lifecycle_events",
                        starting_position="TRIM_HORIZON")
def lifecycle_events(event: Any) -> int:
    """Publishes the lifecycle events the instance event logs recorded to EventBridge: the log is the
    outbox (chalicelib/service/lifecycle.py; locally the runtime hands the stream over)."""
    from chalicelib.aws.event_store import instance_changes

    changes = instance_changes(event.to_dict()["Records"])
    published = services.lifecycle.publish_changes([change[1:] for change in changes])
    services.metrics.observe_changes(changes)  # after publishing: a metric never fails (and repeats) the batch
    return published


def register_bundled_examples() -> list[str]:
    """Registers the example workflows (the local service calls this at start)."""
    from chalicelib.examples import bundled

    return [services.definitions.register(data, created_by="stepflow")["name"] for data in bundled().values()]
