"""The deployment template's operations part (infra/monitoring.py): tracing is active everywhere, state
machines log errors without execution data, the API logs access and is throttled per stage, and the
alarms and dashboard docs/operations.md describes exist, each on a metric the service or AWS emits."""

from __future__ import annotations

import json
from typing import Any

import pytest

from infra import build as infra_build
from infra import monitoring


@pytest.fixture(scope="module")
def template(local_runtime) -> dict[str, Any]:
    import app  # noqa: F401 - the app reads its settings at import: inside the runtime

    return infra_build.build("dev").template


def _resources(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in template["Resources"].items() if v.get("Type") == kind}


def test_tracing_is_active_and_state_machines_log_errors_without_data(template):
    functions = [v for v in template["Resources"].values() if "FunctionName" in v.get("Properties", {})]
    assert functions and all(f["Properties"]["Tracing"] == "Active" for f in functions)
    machines = _resources(template, "AWS::StepFunctions::StateMachine")
    assert machines
    for machine in machines.values():
        props = machine["Properties"]
        assert props["TracingConfiguration"] == {"Enabled": True}
        assert props["LoggingConfiguration"]["Level"] == "ERROR"
        assert props["LoggingConfiguration"]["IncludeExecutionData"] is False
    policy = template["Resources"]["StateMachineRole"]["Properties"]["Policies"]
    granted = {a for p in policy for s in p["PolicyDocument"]["Statement"] for a in
               ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])}
    assert {"logs:CreateLogDelivery", "xray:PutTraceSegments"} <= granted
    api = template["Resources"]["RestAPI"]["Properties"]
    assert api["TracingEnabled"] is True and "$context.requestId" in api["AccessLogSetting"]["Format"]
    assert api["MethodSettings"][0]["ThrottlingRateLimit"] == monitoring.DEFAULT_THROTTLE[0]
    for group in ("StateMachineLogGroup", "ApiAccessLogGroup"):
        assert template["Resources"][group]["Properties"]["RetentionInDays"] == 14  # the dev stage's


def test_the_alarms_and_dashboard_exist_on_metrics_that_are_emitted(template):
    alarms = {v["Properties"]["AlarmName"]: v["Properties"] for v in
              _resources(template, "AWS::CloudWatch::Alarm").values()}
    for suffix in ("failed-steps", "api-5xx", "webhook-dead-letters", "throttles", "sweep-errors",
                   "ExecutionEventsDeadLetterQueue-depth", "LifecycleEventsFailedBatches-depth"):
        assert f"stepflow-dev-{suffix}" in alarms, sorted(alarms)
    # The EMF names the service writes (chalicelib/observability.py, service/metrics.py).
    import inspect

    from chalicelib import observability
    from chalicelib.service import metrics as metric_service

    emitted = inspect.getsource(observability) + inspect.getsource(metric_service)
    for alarm in alarms.values():
        if alarm.get("Namespace") == monitoring.NAMESPACE:
            assert f'"{alarm["MetricName"]}"' in emitted, alarm["MetricName"]
    throttles = alarms["stepflow-dev-throttles"]["Metrics"]
    assert {m["MetricStat"]["Metric"]["Dimensions"][0]["Value"] for m in throttles if "MetricStat" in m} == {
        v["Properties"]["FunctionName"] for v in template["Resources"].values()
        if "FunctionName" in v.get("Properties", {})}
    dashboard = _resources(template, "AWS::CloudWatch::Dashboard")["OperationsDashboard"]["Properties"]
    body = json.loads(dashboard["DashboardBody"]["Fn::Sub"])
    assert len(body["widgets"]) >= 6


def test_prod_is_throttled_higher_than_dev(local_runtime):
    import app  # noqa: F401

    prod = infra_build.build("prod").template["Resources"]["RestAPI"]["Properties"]["MethodSettings"][0]
    assert (prod["ThrottlingRateLimit"], prod["ThrottlingBurstLimit"]) == monitoring.THROTTLE["prod"]
