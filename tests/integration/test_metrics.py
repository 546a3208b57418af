"""GET /metrics: Prometheus text that prometheus_client's parser reads, whose counters move as instances run,
steps fail, tasks open and the sweep runs; moved from the event log's stream, never by scanning; an admin
sees only its tenant's series, the scrape token every tenant's."""

from __future__ import annotations

import time
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from chalicelib.auth import Authenticator, mint
from stepflow_local.schedules import scheduled_event
from stepflow_local.streams import StreamPump, stream_handlers

FLOW = {"name": "metered", "steps": [
    {"id": "prepare", "type": "machine", "task_type": "data.set", "config": {"values": {"ok": False}}},
    {"id": "check", "type": "machine", "task_type": "data.assert", "depends_on": ["prepare"],
     "config": {"condition": "ok == true"}}]}
OK_FLOW = {"name": "metered_ok", "steps": [
    {"id": "prepare", "type": "machine", "task_type": "data.set", "config": {"values": {"ok": True}}}]}
GATE = {"name": "metered_gate", "steps": [
    {"id": "review", "type": "human", "assignee_group": "finance",
     "form_schema": {"type": "object", "properties": {"approved": {"type": "boolean"}}}}]}


def scrape(api: Any, bearer: str | None = None) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    headers = {"authorization": f"Bearer {bearer}"} if bearer else {}
    response = api.client.http.get("/workflows/metrics", headers=headers)
    assert response.status_code == 200, response.body
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    samples = {}
    for family in text_string_to_metric_families(response.body.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture
def pump(api, local_aws):
    import app as app_module

    return StreamPump(local_aws, stream_handlers(app_module.app, local_aws))


def until(check: Any, pump: StreamPump, timeout: float = 30.0) -> None:
    """Hands the log's stream over (as the local service does every half second) until `check` holds."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "the counters never moved"
        pump.poll()
        time.sleep(0.1)


def _run(api: Any, definition: dict[str, Any]) -> str:
    assert api.post("/definitions", definition)[0] in (200, 201)
    status, body = api.post("/instances", {"definition_name": definition["name"], "input_data": {}})
    assert status == 201, body
    return body["id"]


def test_counters_move_as_instances_steps_tasks_and_the_sweep_run(api, pump, local_aws):
    import app as app_module

    before = scrape(api)
    assert value(before, "stepflow_instances_started_total", tenant="_", workflow="metered") == 0

    failed = _run(api, FLOW)
    done = _run(api, OK_FLOW)
    assert api.wait(failed)["status"] == "failed" and api.wait(done)["status"] == "completed"
    gate = _run(api, GATE)
    api.one_task(f"instance_id={gate}")

    def moved() -> bool:
        s = scrape(api)
        return (value(s, "stepflow_instances_ended_total", tenant="_", workflow="metered", status="failed") == 1
                and value(s, "stepflow_instances_ended_total", tenant="_", workflow="metered_ok",
                          status="completed") == 1
                and value(s, "stepflow_instances_started_total", tenant="_", workflow="metered_gate") == 1
                and value(s, "stepflow_step_failures_total", tenant="_", task_type="data.assert",
                          error="Stepflow.AssertionFailed") >= 1)
    until(moved, pump)
    after = scrape(api)
    assert value(after, "stepflow_instances_open", tenant="_", workflow="metered_gate") == 1
    assert value(after, "stepflow_instances_open", tenant="_", workflow="metered") == 0
    # Step durations: a histogram per task type (two data.set attempts, cumulative buckets up to +Inf).
    count = value(after, "stepflow_step_duration_seconds_count", tenant="_", task_type="data.set")
    assert count == 2
    assert value(after, "stepflow_step_duration_seconds_bucket", tenant="_", task_type="data.set", le="+Inf") == count
    assert value(after, "stepflow_step_duration_seconds_sum", tenant="_", task_type="data.set") >= 0
    # Tasks: from the tasks table's counter item.
    assert value(after, "stepflow_tasks_pending", tenant="_", group="finance") == 1
    assert value(after, "stepflow_tasks_pending", tenant="_", group="all") >= 1

    stats = app_module.overdue_sweep(scheduled_event("overdue_sweep", local_aws.region), None)
    swept = scrape(api)
    assert value(swept, "stepflow_sweep_runs_total", tenant="_") == value(before, "stepflow_sweep_runs_total",
                                                                          tenant="_") + 1
    assert value(swept, "stepflow_sweep_duration_seconds_total", tenant="_") > 0
    for name, count in stats.items():
        if name != "failed_passes":
            assert value(swept, "stepflow_sweep_items_total", tenant="_", **{"pass": name}) == count


def test_webhook_deliveries_are_counted(api, pump):
    import app as app_module

    notifier = app_module.services.notifier
    record = {"id": "i-1", "tenant_id": "acme", "webhook_url": "http://receiver.invalid/hook",
              "definition_name": "x", "status": "completed"}
    store_updates: list[Any] = []
    original_store, original_post = notifier._store, notifier._post

    class Store:
        def update(self, *args: Any, **kwargs: Any) -> None:
            store_updates.append(args)

    notifier._store, notifier._post = Store(), lambda url, body, headers: 500
    try:
        for attempt in range(len(notifier.backoff) + 1):
            notifier.notify({**record, "notifications": [{"attempt": n + 1} for n in range(attempt)]})
        notifier._post = lambda url, body, headers: 204
        notifier.notify(record)
    finally:
        notifier._store, notifier._post = original_store, original_post
    samples = scrape(api)
    assert value(samples, "stepflow_webhook_deliveries_total", tenant="acme", outcome="failed") == len(notifier.backoff) + 1
    assert value(samples, "stepflow_webhook_deliveries_total", tenant="acme", outcome="delivered") == 1
    assert value(samples, "stepflow_webhook_dead_letters_total", tenant="acme") == 1


SECRET = "metrics-test-secret-0123456789-0123456789"


def test_admins_see_their_tenant_and_the_scrape_token_sees_all(api, pump, monkeypatch):
    import app as app_module

    app_module.services.auth = Authenticator("hs256", SECRET)
    from dataclasses import replace

    monkeypatch.setitem(app_module.services.__dict__, "settings",
                        replace(app_module.services.settings, metrics_token="scrape-token-0123456789"))
    try:
        def token(role: str, tenant: str) -> str:
            return mint(SECRET, f"{role}-{tenant}", roles=[role], tenant=tenant)

        for tenant in ("acme", "globex"):
            app_module.services.metrics.webhook(tenant, True, False)
        acme = scrape(api, token("admin", "acme"))
        assert {dict(labels)["tenant"] for _, labels in acme} <= {"acme", "_"}
        assert value(acme, "stepflow_webhook_deliveries_total", tenant="acme", outcome="delivered") == 1
        every = scrape(api, "scrape-token-0123456789")
        assert value(every, "stepflow_webhook_deliveries_total", tenant="globex", outcome="delivered") == 1
        assert api.client.http.get("/workflows/metrics", headers={"authorization": f"Bearer {token('editor', 'acme')}"}
                                   ).status_code == 403
        assert api.client.http.get("/workflows/metrics", headers={"authorization": "Bearer wrong"}).status_code == 401
        assert api.client.http.get("/workflows/metrics").status_code == 401
    finally:
        del app_module.services.auth


def test_the_same_figures_go_to_cloudwatch_as_emf_once_per_batch(api, pump, monkeypatch, capfd):
    import json as _json

    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    instance_id = _run(api, OK_FLOW)
    assert api.wait(instance_id)["status"] == "completed"
    blobs: list[dict] = []

    def emitted() -> bool:
        for line in capfd.readouterr().out.splitlines():
            if line.startswith("{") and '"_aws"' in line:
                blobs.append(_json.loads(line))
        names = {m["Name"] for b in blobs for d in b["_aws"]["CloudWatchMetrics"] for m in d["Metrics"]}
        return {"InstancesStarted", "InstancesEnded", "StepDuration"} <= names
    until(emitted, pump)
    batch = next(b for b in blobs if "StepDuration" in b)
    assert batch["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "Stepflow" and batch["service"] == "stepflow"
