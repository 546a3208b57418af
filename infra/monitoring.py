"""The operations part of the deployment template: tracing, Step Functions and API Gateway logs, API
throttling, CloudWatch alarms and a dashboard (infra/build.py merges it in).

What each alarm means and what to do about it is in docs/operations.md; the names here are the ones it uses.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

NAMESPACE = "Stepflow"  # the EMF namespace chalicelib/observability.py writes
SERVICE_DIMENSION = {"Name": "service", "Value": "stepflow"}
# Per stage: requests per second the API accepts steadily, and in a burst (API Gateway method throttling).
THROTTLE = {"prod": (200, 400)}
DEFAULT_THROTTLE = (50, 100)
ACCESS_LOG_FORMAT = json.dumps({
    "requestId": "$context.requestId", "ip": "$context.identity.sourceIp", "method": "$context.httpMethod",
    "resource": "$context.resourcePath", "status": "$context.status", "latencyMs": "$context.responseLatency",
    "length": "$context.responseLength", "error": "$context.error.message"}, separators=(",", ":"))
# Step Functions' log delivery and X-Ray take no resource-level permissions: "*" is what AWS allows.
STATE_MACHINE_LOG_ACTIONS = ("logs:CreateLogDelivery", "logs:DeleteLogDelivery", "logs:DescribeLogGroups",
                             "logs:DescribeResourcePolicies", "logs:GetLogDelivery", "logs:ListLogDeliveries",
                             "logs:PutResourcePolicy", "logs:UpdateLogDelivery")
XRAY_ACTIONS = ("xray:GetSamplingRules", "xray:GetSamplingTargets", "xray:PutTelemetryRecords",
                "xray:PutTraceSegments")


def state_machine_settings() -> dict[str, Any]:
    """Merged into every state machine: errors logged without execution data (inputs and outputs may hold
    personal data), and X-Ray tracing."""
    return {
        "LoggingConfiguration": {
            "Level": "ERROR", "IncludeExecutionData": False,
            "Destinations": [{"CloudWatchLogsLogGroup": {"LogGroupArn": {"Fn::GetAtt": ["StateMachineLogGroup",
                                                                                          "Arn"]}}}]},
        "TracingConfiguration": {"Enabled": True},
    }


def state_machine_statements() -> list[dict[str, Any]]:
    return [{"Sid": "LogsAndTracing", "Effect": "Allow", "Action": list(STATE_MACHINE_LOG_ACTIONS + XRAY_ACTIONS),
             "Resource": "*"}]


def function_statements() -> list[dict[str, Any]]:
    """What active tracing needs of the functions' role."""
    return [{"Sid": "Tracing", "Effect": "Allow", "Action": ["xray:PutTelemetryRecords", "xray:PutTraceSegments"],
             "Resource": "*"}]


def resources(prefix: str, stage: str, retention_days: int, function_names: dict[str, str],
              queues: Sequence[str], sweep: str | None) -> dict[str, Any]:
    """Log groups, the API's stage settings, alarms and the dashboard. `function_names`: Chalice name ->
    deployed name; `queues`: logical ids of the dead-letter and failed-batch queues."""
    rate, burst = THROTTLE.get(stage, DEFAULT_THROTTLE)
    out: dict[str, Any] = {
        "StateMachineLogGroup": {"Type": "AWS::Logs::LogGroup", "Properties": {
            "LogGroupName": f"/aws/vendedlogs/states/{prefix}state-machines", "RetentionInDays": retention_days}},
        "ApiAccessLogGroup": {"Type": "AWS::Logs::LogGroup", "Properties": {
            "LogGroupName": f"/aws/apigateway/{prefix}access", "RetentionInDays": retention_days}},
        # Merged into Chalice's AWS::Serverless::Api.
        "RestAPI": {"Properties": {
            "TracingEnabled": True,
            "AccessLogSetting": {"DestinationArn": {"Fn::GetAtt": ["ApiAccessLogGroup", "Arn"]},
                                 "Format": ACCESS_LOG_FORMAT},
            "MethodSettings": [{"ResourcePath": "/*", "HttpMethod": "*", "ThrottlingRateLimit": rate,
                                "ThrottlingBurstLimit": burst, "MetricsEnabled": True}]}},
    }
    alarms = _alarms(prefix, function_names, queues, sweep)
    out.update(alarms)
    out["OperationsDashboard"] = {"Type": "AWS::CloudWatch::Dashboard", "Properties": {
        "DashboardName": f"{prefix}operations",
        "DashboardBody": {"Fn::Sub": json.dumps(_dashboard(function_names, queues, sweep), separators=(",", ":"))
                          .replace("QUEUE_NAME_OF_", "${").replace("_END_QUEUE", ".QueueName}")}}}
    return out


def queue_age_alarm(name: str, queue_logical_id: str, seconds: int, description: str) -> dict[str, Any]:
    """Fires when a queue's oldest message has waited `seconds`: its consumer is not keeping up (or fails)."""
    return _alarm(name, description, {
        "Namespace": "AWS/SQS", "MetricName": "ApproximateAgeOfOldestMessage", "Statistic": "Maximum",
        "Dimensions": [{"Name": "QueueName", "Value": {"Fn::GetAtt": [queue_logical_id, "QueueName"]}}]},
        threshold=seconds)


def _alarm(name: str, description: str, metric: dict[str, Any] | None = None, *,
           metrics: list[dict[str, Any]] | None = None, threshold: float = 1, periods: int = 1) -> dict[str, Any]:
    properties: dict[str, Any] = {
        "AlarmName": name, "AlarmDescription": description, "ComparisonOperator": "GreaterThanOrEqualToThreshold",
        "Threshold": threshold, "EvaluationPeriods": periods, "TreatMissingData": "notBreaching"}
    if metrics is not None:
        properties["Metrics"] = metrics
    else:
        properties.update({"Period": 300, "Statistic": "Sum", **(metric or {})})
    return {"Type": "AWS::CloudWatch::Alarm", "Properties": properties}


def _lambda_metric(metric: str, function: str, label: str) -> dict[str, Any]:
    return {"Id": label, "ReturnData": False, "MetricStat": {"Period": 300, "Stat": "Sum", "Metric": {
        "Namespace": "AWS/Lambda", "MetricName": metric, "Dimensions": [{"Name": "FunctionName", "Value": function}]}}}


def _alarms(prefix: str, function_names: dict[str, str], queues: Sequence[str], sweep: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "FailedExecutionsAlarm": _alarm(
            f"{prefix}failed-steps", "Workflow steps failed for good (Stepflow StepsFailed): instances are failing",
            {"Namespace": NAMESPACE, "MetricName": "StepsFailed",
             "Dimensions": [SERVICE_DIMENSION, {"Name": "kind", "Value": "machine"}]}, threshold=5),
        "ServerErrorsAlarm": _alarm(
            f"{prefix}api-5xx", "The API answered 5xx (Stepflow ServerErrors): read the request log by request_id",
            {"Namespace": NAMESPACE, "MetricName": "ServerErrors", "Dimensions": [SERVICE_DIMENSION]}),
        "WebhookDeadLettersAlarm": _alarm(
            f"{prefix}webhook-dead-letters", "A completion webhook was given up after its last retry",
            {"Namespace": NAMESPACE, "MetricName": "WebhookDeadLetters", "Dimensions": [SERVICE_DIMENSION]}),
    }
    throttles = [_lambda_metric("Throttles", name, f"t{i}") for i, name in enumerate(sorted(function_names.values()))]
    out["ThrottlesAlarm"] = _alarm(
        f"{prefix}throttles", "A Stepflow function was throttled (Lambda concurrency): raise its reserved or the "
        "account's concurrency", metrics=[*throttles, {"Id": "total", "Expression": "SUM(METRICS())",
                                                       "Label": "Throttles", "ReturnData": True}])
    if sweep:
        out["SweepErrorsAlarm"] = _alarm(
            f"{prefix}sweep-errors", "The overdue sweep failed: escalations, redeliveries and reconciliation wait",
            {"Namespace": "AWS/Lambda", "MetricName": "Errors",
             "Dimensions": [{"Name": "FunctionName", "Value": sweep}]})
    for queue in queues:
        out[f"{queue}DepthAlarm"] = _alarm(
            f"{prefix}{queue}-depth", f"Messages wait in {queue}: events or batches Stepflow could not handle",
            {"Namespace": "AWS/SQS", "MetricName": "ApproximateNumberOfMessagesVisible", "Statistic": "Maximum",
             "Dimensions": [{"Name": "QueueName", "Value": {"Fn::GetAtt": [queue, "QueueName"]}}]})
    return out


def _dashboard(function_names: dict[str, str], queues: Sequence[str], sweep: str | None) -> dict[str, Any]:
    def widget(title: str, metrics: list[list[Any]], x: int, y: int, stat: str = "Sum") -> dict[str, Any]:
        return {"type": "metric", "x": x, "y": y, "width": 12, "height": 6, "properties": {
            "title": title, "metrics": metrics, "stat": stat, "period": 300, "region": "${AWS::Region}"}}

    service = ["service", "stepflow"]
    widgets = [
        widget("Requests and 5xx", [[NAMESPACE, "Requests", *service], [NAMESPACE, "ServerErrors", *service]], 0, 0),
        widget("Steps run and failed", [[NAMESPACE, "StepsRun", *service, "kind", "machine"],
                                        [NAMESPACE, "StepsFailed", *service, "kind", "machine"]], 12, 0),
        widget("Lambda errors", [["AWS/Lambda", "Errors", "FunctionName", name]
                                 for name in sorted(function_names.values())], 0, 6),
        widget("Lambda throttles", [["AWS/Lambda", "Throttles", "FunctionName", name]
                                    for name in sorted(function_names.values())], 12, 6),
        widget("Dead-letter and failed-batch queues", [
            ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", f"QUEUE_NAME_OF_{queue}_END_QUEUE"]
            for queue in queues], 0, 12, stat="Maximum"),
        widget("Webhook dead letters", [[NAMESPACE, "WebhookDeadLetters", *service]], 12, 12),
    ]
    if sweep:
        widgets.append(widget("Sweep duration (ms)", [["AWS/Lambda", "Duration", "FunctionName", sweep]], 0, 18,
                              stat="Maximum"))
    return {"widgets": widgets}
