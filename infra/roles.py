"""One IAM role per Lambda function, granting what that function's code calls (infra/code_actions.py) and no more.

The actions come from the code; this module only says on which resources each one is granted (the stage's
tables, state machines, bus, credential secrets and schedules; a task type's `<prefix>tasks-` resources), and
adds what running the function needs beyond its calls: writing its own log group, its traces, reading the
stream it consumes, sending to its own dead-letter queue, and passing a role where a call hands one to AWS.
An action the code calls that no rule here scopes stops the build: it is never granted on "*" by default.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from infra import monitoring

Resource = Any  # a CloudFormation ARN expression (str, Fn::Sub, Fn::GetAtt) or a list of them
LOG_ACTIONS = ("logs:CreateLogStream", "logs:PutLogEvents")  # into the function's own log group
STREAM_ACTIONS = ("dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator",
                  "dynamodb:ListStreams")  # what Lambda reads a stream consumer's stream with
QUEUE_ACTIONS = ("sqs:SendMessage",)  # Lambda sends a failed event, or a failed batch's place, to the queue
CONSUME_ACTIONS = ("sqs:ChangeMessageVisibility", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ReceiveMessage")
# AWS checks iam:PassRole when a call hands it a role: state machines get the execution role, schedules theirs.
PASSES_ROLE: dict[str, tuple[str, str]] = {
    "states:CreateStateMachine": ("StateMachineRole", "states.amazonaws.com"),
    "states:UpdateStateMachine": ("StateMachineRole", "states.amazonaws.com"),
    "scheduler:CreateSchedule": ("SchedulerRole", "scheduler.amazonaws.com"),
    "scheduler:UpdateSchedule": ("SchedulerRole", "scheduler.amazonaws.com"),
}
# (origin, action) -> the scope it is granted on (a statement each, its Sid). Step Functions' task-token calls
# and ListStateMachines, and Secrets Manager's ListSecrets (names and descriptions, never values), take no
# resource-level permissions: "*" is the narrowest AWS allows.
SCOPES: dict[tuple[str, str], str] = {
    **{("service", f"dynamodb:{a}"): "Tables" for a in (
        "BatchGetItem", "BatchWriteItem", "ConditionCheckItem", "DeleteItem", "DescribeTable", "GetItem", "PutItem",
        "Query", "UpdateItem")},
    **{("service", f"states:{a}"): "StateMachines" for a in (
        "CreateStateMachine", "CreateStateMachineAlias", "DescribeStateMachine", "DescribeStateMachineAlias",
        "ListExecutions", "PublishStateMachineVersion", "StartExecution", "UpdateStateMachine",
        "UpdateStateMachineAlias")},
    **{("service", f"states:{a}"): "Executions" for a in (
        "DescribeExecution", "GetExecutionHistory", "RedriveExecution", "StopExecution")},
    **{("service", f"states:{a}"): "Unscoped" for a in (
        "ListStateMachines", "SendTaskFailure", "SendTaskHeartbeat", "SendTaskSuccess")},
    ("service", "secretsmanager:ListSecrets"): "Unscoped",
    **{("service", f"secretsmanager:{a}"): "Credentials" for a in (
        "CreateSecret", "DeleteSecret", "DescribeSecret", "GetSecretValue", "PutSecretValue", "TagResource",
        "UpdateSecret")},
    ("stage", "secretsmanager:GetSecretValue"): "StageSecrets",
    ("service", "sqs:SendMessage"): "WebhookRetries",  # a completion webhook's next attempt, on its timer queue
    ("service", "events:PutEvents"): "LifecycleEvents",
    **{("service", f"scheduler:{a}"): "WorkflowSchedules" for a in (
        "CreateSchedule", "DeleteSchedule", "GetSchedule", "UpdateSchedule")},
    ("tasks", "s3:GetObject"): "TaskObjects",
    ("tasks", "s3:PutObject"): "TaskObjects",
    ("tasks", "sqs:SendMessage"): "TaskQueues",
    ("tasks", "sns:Publish"): "TaskTopics",
    ("tasks", "events:PutEvents"): "TaskEventBuses",
    ("tasks", "lambda:InvokeFunction"): "TaskFunctions",
    ("tasks", "ses:SendEmail"): "TaskEmail",
}


def _sub(text: str) -> dict[str, str]:
    return {"Fn::Sub": text}


def _here(service: str) -> str:
    return f"arn:${{AWS::Partition}}:{service}:${{AWS::Region}}:${{AWS::AccountId}}:"


def scope_resources(prefix: str, machine_prefix: str, tables: Sequence[Any], task_prefix: str,
                    scheduler_group: str = "default") -> dict[str, Resource]:
    """Each scope's resources for one stage: its own, named with its prefixes."""
    table_arns: list[Any] = []
    for table in tables:
        table_arns.append({"Fn::GetAtt": [table.logical_id, "Arn"]})
        if table.indexes:
            table_arns.append(_sub(f"${{{table.logical_id}.Arn}}/index/*"))
    machines = _here("states") + f"stateMachine:{machine_prefix}*"
    return {
        "Tables": table_arns,
        # name:version and name:alias qualify a state machine's ARN: versions run, aliases moved.
        "StateMachines": [_sub(machines), _sub(f"{machines}:*")],
        "Executions": _sub(_here("states") + f"execution:{machine_prefix}*:*"),
        "Unscoped": "*",
        "Credentials": _sub(_here("secretsmanager") + f"secret:{prefix}credentials/*"),
        "LifecycleEvents": {"Fn::GetAtt": ["EventBus", "Arn"]},
        "WorkflowSchedules": _sub(_here("scheduler") + f"schedule/{scheduler_group}/{machine_prefix}*"),
        "TaskObjects": _sub(f"arn:${{AWS::Partition}}:s3:::{task_prefix}*/*"),
        "TaskQueues": _sub(_here("sqs") + f"{task_prefix}*"),
        "TaskTopics": _sub(_here("sns") + f"{task_prefix}*"),
        "TaskEventBuses": _sub(_here("events") + f"event-bus/{task_prefix}*"),
        "TaskFunctions": [_sub(_here("lambda") + f"function:{task_prefix}*"),
                          _sub(_here("lambda") + f"function:{task_prefix}*:*")],
        "TaskEmail": _sub(_here("ses") + "identity/*"),
    }


def code_statements(actions: dict[str, frozenset[str]], resources: dict[str, Resource]) -> list[dict[str, Any]]:
    """The statements granting these (origin -> actions) on their scopes, one per scope, in SCOPES' order."""
    by_scope: dict[str, set[str]] = {}
    for origin, found in actions.items():
        for action in found:
            scope = SCOPES.get((origin, action))
            if scope is None:
                raise SystemExit(f"infra.roles: the code calls {action} ({origin}), which no scope in infra/roles.py "
                                 "grants it on: add the resources it may act on to SCOPES")
            by_scope.setdefault(scope, set()).add(action)
    order = list(dict.fromkeys(SCOPES.values()))
    statements = [{"Sid": scope, "Effect": "Allow", "Action": sorted(by_scope[scope]), "Resource": resources[scope]}
                  for scope in sorted(by_scope, key=order.index)]
    called = set().union(*actions.values()) if actions else set()
    for role_id, principal in sorted({PASSES_ROLE[a] for a in called if a in PASSES_ROLE}):
        statements.append({"Sid": f"Pass{role_id}", "Effect": "Allow", "Action": "iam:PassRole",
                           "Resource": {"Fn::GetAtt": [role_id, "Arn"]},
                           "Condition": {"StringEquals": {"iam:PassedToService": principal}}})
    return statements


def running_statements(function_name: str, stream_table: str | None, queues: Sequence[str],
                       consumes: Sequence[str] = ()) -> list[dict[str, Any]]:
    """What running the function needs beside its code's calls: its logs and traces, its stream, its queues,
    and the queues it consumes (Lambda's event source mapping reads them with the function's role)."""
    statements: list[dict[str, Any]] = [
        {"Sid": "Logs", "Effect": "Allow", "Action": list(LOG_ACTIONS),
         "Resource": _sub(_here("logs") + f"log-group:/aws/lambda/{function_name}:*")},
        *monitoring.function_statements(),
    ]
    if stream_table:
        statements.append({"Sid": "Stream", "Effect": "Allow", "Action": list(STREAM_ACTIONS),
                           "Resource": _sub(f"${{{stream_table}.Arn}}/stream/*")})
    if queues:
        statements.append({"Sid": "DeadLetters", "Effect": "Allow", "Action": list(QUEUE_ACTIONS),
                           "Resource": [{"Fn::GetAtt": [queue, "Arn"]} for queue in queues]})
    if consumes:
        statements.append({"Sid": "Consume", "Effect": "Allow", "Action": list(CONSUME_ACTIONS),
                           "Resource": [{"Fn::GetAtt": [queue, "Arn"]} for queue in consumes]})
    return statements


def role_id(function_logical_id: str) -> str:
    return f"{function_logical_id}Role"


def function_role(description: str, statements: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "Type": "AWS::IAM::Role",
        "Properties": {
            "Description": description,
            "AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": [{
                "Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]},
            "Policies": [{"PolicyName": "stepflow", "PolicyDocument": {"Version": "2012-10-17",
                                                                         "Statement": statements}}],
        },
    }
