"""Generates the infra part of the deployment template from chalicelib.resources and the Chalice app.

`chalice package --merge-template` deep-merges what this writes into the template Chalice generates:
Chalice contributes the API, the Lambda functions (one per @app.lambda_function / @app.schedule /
@app.on_cw_event...), their schedules and log groups (no role: .chalice/config.json says manage_iam_role
false); this adds what Chalice cannot
know about, all of it derived from the same description the local runtime is created from:

- the DynamoDB tables and their indexes (resources.TABLES): point-in-time recovery on, TTL where a
  table declares ttl_attribute;
- the Step Functions execution role (lambda:InvokeFunction on our placeholder functions only) and one
  state machine per bundled workflow in statemachines/, named as the app names them at runtime, with
  its ${...} placeholders bound by DefinitionSubstitutions;
- the Stepflow event bus; the rule that feeds the instance index from Step Functions execution status
  changes (when the app defines `execution_events`) with its dead-letter queue;
- for every `@app.on_dynamodb_record` consumer of a table's stream (the event log's, read by
  `lifecycle_events`): the table's real StreamArn in place of the name the app declares, retries that
  split a failing batch, and an on-failure queue;
- for every function of the app: a fixed FunctionName (`{prefix}{name}`, as the local runtime names
  them, so ARNs are built with !Sub and nothing depends on a function to know another's ARN) and the
  environment chalicelib.config reads;
- the API's routing (infra/api_routes.py): an ANY method on every resource, a catch-all `/{proxy+}` and
  `/`, and gateway responses, so unknown paths, wrong methods and media types get the app's 404/405/415;
- who may call the API (infra/identity.py): a Cognito user pool, app client and role groups whose
  issuer, audience and JWKS go into every function's environment, or an existing identity provider's
  settings taken as stack parameters instead; the server secret is a parameter too (secrets NoEcho),
  so no secret is in the template;
- one IAM role per function (infra/roles.py): the actions its code calls, read off the code by
  infra/code_actions.py, on the stage's own tables, state machines, bus, credential secrets and schedules
  (a task type's on `<prefix>tasks-` resources), plus its own log group, traces, stream and queue.
- the stage's secrets (infra/stage_secrets.py): the server and webhook signing secrets generated in Secrets
  Manager unless parameters name existing ones, the HS256 key by ARN; functions get ARNs, never values;
- for every queue an app function consumes (resources.QUEUES: completion webhook retries, read by
  `webhook_retry`): the queue with a visibility timeout of six times the function's, its dead-letter
  queue (a message that failed 5 receives), and Chalice's SQS event bound to the queue itself;

Run: python -m infra.build --stage dev [--out build/infra/dev.json]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infra import api_routes, code_actions, identity, monitoring, roles, stage_secrets

ROOT = Path(__file__).resolve().parent.parent
CHALICE_CONFIG = ROOT / ".chalice" / "config.json"
STATEMACHINES = ROOT / "statemachines"
ASL_SUFFIX = ".asl.json"

API_FUNCTION = "api"  # the name given to Chalice's API handler (logical id APIHandler)
# Functions the lead adds to app.py; their extra wiring is generated as soon as they exist.
EXECUTION_EVENTS = "execution_events"  # Lambda fed by "Step Functions Execution Status Change" events
OVERDUE_SWEEP = "overdue_sweep"  # @app.schedule(..., name="overdue_sweep")
EXECUTION_STATUS_DETAIL_TYPE = "Step Functions Execution Status Change"
# The statuses the execution_events function acts on: a RUNNING change needs nothing recorded.
EXECUTION_END_STATUSES = ("SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED")
# Tables are kept when a stage's stack is deleted or a table must be replaced.
RETAIN_DATA_STAGES = frozenset({"prod"})
DLQ_RETENTION_SECONDS = 14 * 24 * 3600  # the SQS maximum
EVENT_MAX_AGE_SECONDS = 24 * 3600
EVENT_RETRY_ATTEMPTS = 185  # EventBridge's default and maximum
STREAM_CONSUMER = "DynamoDBEventConfig"  # the kind of an @app.on_dynamodb_record function
# A stream batch the function fails on is split (a bad record ends up alone) and retried this often;
# then its place in the stream goes to the function's on-failure queue (the log still holds the events).
STREAM_RETRY_ATTEMPTS = 10
SCHEDULE_FIRED = "schedule_fired"  # the function EventBridge Scheduler invokes for workflow schedules
MAX_QUEUE_DELAY_SECONDS = 900  # SQS's longest message delay
VISIBILITY_PER_TIMEOUT = 6  # AWS's advice for a queue a Lambda function reads: six times its timeout

# Stack parameter -> (the variable chalicelib.config reads, its declaration). Settings.from_env refuses
# to start a deployed stage without issuer, audience and keys (docs/security.md): the stack's own user
# pool provides them unless JwtIssuer names another provider (infra/identity.py). infra/deploy.py
# passes them from the deploying shell's environment.
PARAMETERS: dict[str, tuple[str, dict[str, Any]]] = {
    **identity.PARAMETERS,
    **stage_secrets.PARAMETERS,
}


@dataclass(frozen=True)
class AppFunction:
    """A Lambda function of the Chalice app, as `chalice package` emits it."""

    name: str  # the Chalice name (API_FUNCTION for the API handler)
    logical_id: str  # its resource in the generated template
    handler: str
    kind: str  # "api", "lambda", "schedule", "cloudwatch_event", or the event source's class name
    schedule: str | None = None  # the schedule expression of a "schedule"
    event_pattern: dict[str, Any] | None = None  # the pattern of a "cloudwatch_event"
    stream_table: str | None = None  # the table whose stream a STREAM_CONSUMER reads (its physical name)
    routes: tuple[str, ...] = ()  # the API handler's route paths (infra/api_routes.py sends every request to it)


@dataclass(frozen=True)
class Stage:
    """One Chalice stage's settings, resolved the way the deployed app resolves them."""

    name: str
    prefix: str
    environment: dict[str, str]
    retain_data: bool
    log_retention_days: int | None = None
    machine_prefix: str = ""  # state machine names (Settings.state_machine_prefix; the resource prefix by default)
    lambda_timeout: int = 60  # seconds (.chalice/config.json's lambda_timeout, the stage's or the global one)

    def function_name(self, function: str) -> str:
        return f"{self.prefix}{function}"


@dataclass
class Build:
    """The generated infra template, plus what was left out and why (printed by the CLI)."""

    stage: Stage
    template: dict[str, Any]
    functions: tuple[AppFunction, ...]
    notes: list[str] = field(default_factory=list)


# ------------------------------------------------------------------------------------------ inputs


def cfn_name(name: str) -> str:
    """The CamelCase logical id Chalice derives from a name (chalice.utils.to_cfn_resource_name)."""
    for separator in ("-", "_"):
        name = "".join(part[0].upper() + part[1:] for part in name.split(separator) if part)
    return re.sub(r"[^A-Za-z0-9]+", "", name)


def chalice_config(path: Path = CHALICE_CONFIG) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def resolve_stage(stage: str, config: dict[str, Any] | None = None) -> Stage:
    """The stage's environment (global, then the stage's own) and the resource prefix the app derives."""
    from chalicelib.config import Settings
    from chalicelib.resources import TABLES

    config = chalice_config() if config is None else config
    stages = config.get("stages", {})
    if stage not in stages:
        raise SystemExit(f"infra.build: no stage '{stage}' in .chalice/config.json (stages: {', '.join(stages)})")
    env = {**config.get("environment_variables", {}), **stages[stage].get("environment_variables", {})}
    env.setdefault("STEPFLOW_STAGE", stage)
    # Names only: the authentication settings come from stack parameters at deploy time.
    settings = Settings.from_env(env, check=False)
    prefix = env.get("STEPFLOW_RESOURCE_PREFIX", f"stepflow-{settings.stage}-")
    # Settings derives table names from the same prefix: a mismatch means config.py changed its rule.
    derived = {t.env_var: t.physical_name(prefix) for t in TABLES}
    read = {t.env_var: getattr(settings, f"{t.name}_table", None) for t in TABLES}
    if derived != read:
        raise SystemExit(f"infra.build: table names derived from prefix {prefix!r} differ from Settings: {read}")
    retention = stages[stage].get("log_retention_in_days", config.get("log_retention_in_days"))
    timeout = int(stages[stage].get("lambda_timeout", config.get("lambda_timeout", 60)))
    return Stage(stage, prefix, env, retain_data=stage in RETAIN_DATA_STAGES, log_retention_days=retention,
                 machine_prefix=settings.state_machine_prefix, lambda_timeout=timeout)


def app_functions(app: Any = None) -> tuple[AppFunction, ...]:
    """Every Lambda function `chalice package` will emit for the app (importing app.py when not given)."""
    from chalice.app import CloudWatchEventConfig, DynamoDBEventConfig, ScheduledEventConfig

    if app is None:
        import app as app_module

        app = app_module.app
    found: list[AppFunction] = []
    if app.routes:
        found.append(AppFunction(API_FUNCTION, "APIHandler", "app.app", "api", routes=tuple(sorted(app.routes))))
    for function in app.pure_lambda_functions:
        found.append(AppFunction(function.name, cfn_name(function.name), function.handler_string, "lambda"))
    for source in app.event_sources:
        if isinstance(source, ScheduledEventConfig):
            expression = source.schedule_expression
            text = expression if isinstance(expression, str) else expression.to_string()
            found.append(AppFunction(source.name, cfn_name(source.name), source.handler_string, "schedule",
                                     schedule=text))
        elif isinstance(source, CloudWatchEventConfig):
            found.append(AppFunction(source.name, cfn_name(source.name), source.handler_string, "cloudwatch_event",
                                     event_pattern=dict(source.event_pattern)))
        elif isinstance(source, DynamoDBEventConfig):
            table = source.stream_arn.split(":table/", 1)[-1].split("/stream/", 1)[0]
            found.append(AppFunction(source.name, cfn_name(source.name), source.handler_string, STREAM_CONSUMER,
                                     stream_table=table))
        else:
            found.append(AppFunction(source.name, cfn_name(source.name), source.handler_string,
                                     type(source).__name__))
    return tuple(found)


def bundled_state_machines(folder: Path = STATEMACHINES) -> dict[str, dict[str, Any]]:
    """Workflow name -> compiled ASL (with its ${...} placeholders) of every statemachines/*.asl.json."""
    return {
        path.name[: -len(ASL_SUFFIX)]: json.loads(path.read_text(encoding="utf-8"))
        for path in sorted(folder.glob(f"*{ASL_SUFFIX}"))
    }


def placeholders_in(asl: Any) -> set[str]:
    return set(re.findall(r"\$\{([A-Za-z0-9_]+)\}", json.dumps(asl)))


# ---------------------------------------------------------------------------------------- template


def sub(text: str) -> dict[str, str]:
    return {"Fn::Sub": text}


def get_att(logical_id: str, attribute: str = "Arn") -> dict[str, list[str]]:
    return {"Fn::GetAtt": [logical_id, attribute]}


def function_arn(name: str) -> dict[str, str]:
    # Built from the known name, not !GetAtt: the functions and the execution role refer to each other.
    return sub(f"arn:${{AWS::Partition}}:lambda:${{AWS::Region}}:${{AWS::AccountId}}:function:{name}")


def state_machine_arn(name_pattern: str) -> dict[str, str]:
    return sub(f"arn:${{AWS::Partition}}:states:${{AWS::Region}}:${{AWS::AccountId}}:stateMachine:{name_pattern}")


def execution_arn(pattern: str) -> dict[str, str]:
    return sub(f"arn:${{AWS::Partition}}:states:${{AWS::Region}}:${{AWS::AccountId}}:execution:{pattern}")


def log_group_id(function: AppFunction) -> str:
    """The logical id of the log group Chalice creates for a function (log_retention_in_days set)."""
    return ("ApiHandler" if function.kind == "api" else function.logical_id) + "LogGroup"


def create_table_request(table: Any, physical_name: str) -> dict[str, Any]:
    """CreateTable arguments for a resources.Table: the local runtime's, when resources provides them."""
    return dict(table.create_table_request(physical_name))


def table_resource(table: Any, stage: Stage) -> dict[str, Any]:
    # CreateTable's request and AWS::DynamoDB::Table share their property names and shapes.
    properties = create_table_request(table, table.physical_name(stage.prefix))
    properties["PointInTimeRecoverySpecification"] = {"PointInTimeRecoveryEnabled": True}
    if table.ttl_attribute:
        properties["TimeToLiveSpecification"] = {"AttributeName": table.ttl_attribute, "Enabled": True}
    if stage.retain_data:
        properties["DeletionProtectionEnabled"] = True
    policy = "Retain" if stage.retain_data else "Delete"
    if "StreamSpecification" in properties:  # CloudFormation names only the view type
        properties["StreamSpecification"] = {"StreamViewType": properties["StreamSpecification"]["StreamViewType"]}
    return {"Type": "AWS::DynamoDB::Table", "DeletionPolicy": policy, "UpdateReplacePolicy": policy,
            "Properties": properties}


def execution_role(stage: Stage, functions: Iterable[Any]) -> dict[str, Any]:
    """Step Functions' role: invoke our placeholder functions (and their versions), nothing else."""
    arns: list[Any] = []
    for function in functions:
        name = stage.function_name(function.name)
        arns += [function_arn(name), function_arn(f"{name}:*")]
    return {
        "Type": "AWS::IAM::Role",
        "Properties": {
            "Description": f"Stepflow {stage.name}: the role every Stepflow state machine runs as",
            "AssumeRolePolicyDocument": {
                "Version": "2012-10-17",
                "Statement": [{
                    "Effect": "Allow",
                    "Principal": {"Service": "states.amazonaws.com"},
                    "Action": "sts:AssumeRole",
                    "Condition": {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}},
                }],
            },
            "Policies": [{
                "PolicyName": "invoke-stepflow-functions",
                "PolicyDocument": {
                    "Version": "2012-10-17",
                    "Statement": [{"Effect": "Allow", "Action": "lambda:InvokeFunction", "Resource": arns}],
                },
            }],
        },
    }


def scheduler_role(stage: Stage) -> dict[str, Any]:
    """The role EventBridge Scheduler assumes to run workflow schedules: invoke schedule_fired, nothing else."""
    return {
        "Type": "AWS::IAM::Role",
        "Properties": {
            "Description": f"Stepflow {stage.name}: the role workflow schedules invoke schedule_fired with",
            "AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": [{
                "Effect": "Allow", "Principal": {"Service": "scheduler.amazonaws.com"}, "Action": "sts:AssumeRole",
                "Condition": {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}}]},
            "Policies": [{"PolicyName": "invoke-schedule-fired", "PolicyDocument": {"Version": "2012-10-17", "Statement": [{
                "Effect": "Allow", "Action": "lambda:InvokeFunction",
                "Resource": function_arn(stage.function_name(SCHEDULE_FIRED))}]}}],
        },
    }


def streamed_table(consumer: AppFunction, tables: Sequence[Any]) -> Any:
    """The table (resources.TABLES) whose stream a STREAM_CONSUMER reads."""
    streamed = [t for t in tables if t.stream_view and consumer.stream_table and consumer.stream_table.endswith(t.name)]
    if len(streamed) != 1:
        raise SystemExit(f"infra.build: '{consumer.name}' reads the stream of {consumer.stream_table!r}, "
                         f"which names no table with a stream in chalicelib/resources.py")
    return streamed[0]


def consumed_queue_resources(queue: Any, stage: Stage) -> dict[str, Any]:
    """An SQS queue an app function consumes, and its dead-letter queue (chalicelib.resources.Queue)."""
    return {
        queue.dead_letter_logical_id: {"Type": "AWS::SQS::Queue", "Properties": {
            "QueueName": queue.dead_letter_name(stage.prefix), "MessageRetentionPeriod": DLQ_RETENTION_SECONDS,
            "SqsManagedSseEnabled": True}},
        queue.logical_id: {"Type": "AWS::SQS::Queue", "Properties": {
            "QueueName": queue.physical_name(stage.prefix),
            # A message stays invisible while its consumer works on it: longer than the consumer may run.
            "VisibilityTimeout": VISIBILITY_PER_TIMEOUT * stage.lambda_timeout,
            "RedrivePolicy": {"deadLetterTargetArn": get_att(queue.dead_letter_logical_id),
                              "maxReceiveCount": queue.max_receives},
            "SqsManagedSseEnabled": True}},
    }


def function_roles(stage: Stage, functions: Sequence[AppFunction], tables: Sequence[Any],
                   queues: dict[str, list[str]], config: dict[str, Any] | None = None,
                   consumed: Sequence[Any] = ()) -> dict[str, Any]:
    """One role per function: what its code calls (infra/code_actions.py) on the stage's resources, and what
    running it needs (infra/roles.py). Chalice makes none: .chalice/config.json says manage_iam_role false."""
    from chalicelib.config import Settings
    from chalicelib.resources import TASK_RESOURCE_INFIX

    config = chalice_config() if config is None else config
    if config.get("manage_iam_role", True) is not False:
        raise SystemExit("infra.build: .chalice/config.json must say \"manage_iam_role\": false: each function gets "
                         "its own role from infra/build.py, and a role Chalice made would be shared by all of them")
    settings = Settings.from_env(stage.environment, check=False)
    scopes = roles.scope_resources(stage.prefix, stage.machine_prefix, tables,
                                   f"{stage.prefix}{TASK_RESOURCE_INFIX}", settings.scheduler_group)
    scopes["StageSecrets"] = stage_secrets.readable_arns()  # exactly the secrets the environment names by ARN
    scopes["WebhookRetries"] = [get_att(queue.logical_id) for queue in consumed]  # resources.QUEUES in the stack
    out: dict[str, Any] = {}
    for function in functions:
        name = stage.function_name(function.name)
        stream = streamed_table(function, tables).logical_id if function.kind == STREAM_CONSUMER else None
        statements = [*roles.code_statements(code_actions.actions_of(function.handler), scopes),
                      *roles.running_statements(name, stream, queues.get(function.name, []),
                                                [q.logical_id for q in consumed if q.consumer == function.name])]
        out[roles.role_id(function.logical_id)] = roles.function_role(
            f"Stepflow {stage.name}: {function.name}, what its code calls and nothing more", statements)
    return out


def app_environment(stage: Stage, tables: Sequence[Any], functions: Sequence[Any]) -> dict[str, Any]:
    """The variables chalicelib.config reads, for every function (the local runtime exports the same)."""
    env: dict[str, Any] = {
        "STEPFLOW_STAGE": stage.environment.get("STEPFLOW_STAGE", stage.name),
        "STEPFLOW_RESOURCE_PREFIX": stage.prefix,
        "STEPFLOW_STATE_MACHINE_ROLE_ARN": get_att("StateMachineRole"),
        "STEPFLOW_EVENT_BUS": {"Ref": "EventBus"},
        **identity.environment(),
        **stage_secrets.environment(),
    }
    for table in tables:
        if table.env_var:
            env[table.env_var] = {"Ref": table.logical_id}
        if table.stream_env_var:
            env[table.stream_env_var] = get_att(table.logical_id, "StreamArn")
    for function in functions:
        if function.env_var:
            env[function.env_var] = function_arn(stage.function_name(function.name))
    return env


def build(stage_name: str, *, functions: Sequence[AppFunction] | None = None,
          config: dict[str, Any] | None = None, state_machines: dict[str, dict[str, Any]] | None = None,
          resources: Any = None) -> Build:
    """The infra template for one stage (pass `functions` to build for an app other than app.py's)."""
    from chalicelib.aws.state_machines import StateMachines

    if resources is None:
        from chalicelib import resources
    stage = resolve_stage(stage_name, config)
    functions = tuple(app_functions() if functions is None else functions)
    machines = bundled_state_machines() if state_machines is None else state_machines
    tables = tuple(resources.TABLES)
    placeholder_functions = tuple(f for f in resources.FUNCTIONS if f.placeholder)
    by_name = {f.name: f for f in functions}
    notes: list[str] = []

    missing = [f.name for f in resources.FUNCTIONS if f.name not in by_name]
    if missing:
        raise SystemExit(f"infra.build: resources.FUNCTIONS names {missing} but app.py does not define them")

    out: dict[str, Any] = {}  # logical id -> resource
    outputs: dict[str, Any] = {}

    for table in tables:
        out[table.logical_id] = table_resource(table, stage)
        outputs[f"{table.logical_id}Name"] = {"Value": {"Ref": table.logical_id}}

    out["StateMachineRole"] = execution_role(stage, placeholder_functions)
    out["StateMachineRole"]["Properties"]["Policies"].append({
        "PolicyName": "logs-and-tracing", "PolicyDocument": {"Version": "2012-10-17",
                                                            "Statement": monitoring.state_machine_statements()}})
    outputs["StateMachineRoleArn"] = {"Value": get_att("StateMachineRole")}

    namer = StateMachines(None, "", stage.machine_prefix)  # the app's own naming rule
    known = {f.placeholder: f for f in placeholder_functions}
    for workflow, asl in machines.items():
        used = placeholders_in(asl)
        unknown = used - set(known)
        if unknown:
            raise SystemExit(f"infra.build: {workflow} uses placeholders {sorted(unknown)} no function provides")
        logical_id = f"{cfn_name(workflow)}StateMachine"
        properties: dict[str, Any] = {
            "StateMachineName": namer.machine_name(workflow),
            "StateMachineType": "STANDARD",
            "RoleArn": get_att("StateMachineRole"),
            "Definition": asl,
            **monitoring.state_machine_settings(),
        }
        if used:
            properties["DefinitionSubstitutions"] = {
                name: function_arn(stage.function_name(known[name].name)) for name in sorted(used)
            }
        out[logical_id] = {"Type": "AWS::StepFunctions::StateMachine", "Properties": properties}
        outputs[f"{logical_id}Arn"] = {"Value": {"Ref": logical_id}}

    out.update(identity.resources(stage.prefix, retain=stage.retain_data))
    outputs.update(identity.outputs())
    out.update(stage_secrets.resources(stage.prefix, retain=stage.retain_data))
    outputs.update(stage_secrets.outputs())

    out["EventBus"] = {"Type": "AWS::Events::EventBus", "Properties": {"Name": f"{stage.prefix}bus"}}
    outputs["EventBusName"] = {"Value": {"Ref": "EventBus"}}

    queues: list[str] = []
    function_queues: dict[str, list[str]] = {}  # the queues Lambda sends a function's failures to
    function_extra: dict[str, dict[str, Any]] = {}
    consumer = by_name.get(EXECUTION_EVENTS)
    if consumer is None:
        notes.append(f"app.py defines no '{EXECUTION_EVENTS}' function: the execution status rule and its "
                     "dead-letter queue are left out until it does")
    elif consumer.kind not in ("lambda", "cloudwatch_event"):
        notes.append(f"'{EXECUTION_EVENTS}' is a {consumer.kind}: no execution status rule is generated for it")
    else:
        queue = f"{consumer.logical_id}DeadLetterQueue"
        queues.append(queue)
        rule_name = f"{stage.prefix}execution-status"
        rule_arn = sub(f"arn:${{AWS::Partition}}:events:${{AWS::Region}}:${{AWS::AccountId}}:rule/{rule_name}")
        out[queue] = {
            "Type": "AWS::SQS::Queue",
            "Properties": {
                "QueueName": f"{stage.prefix}{EXECUTION_EVENTS}-dlq",
                "MessageRetentionPeriod": DLQ_RETENTION_SECONDS,
                "SqsManagedSseEnabled": True,
            },
        }
        outputs[f"{queue}Url"] = {"Value": {"Ref": queue}}
        # EventBridge's undeliverable events, and events the function failed on after Lambda's two async
        # retries, both land in the queue: the instance index can be repaired from it.
        out[f"{queue}Policy"] = {
            "Type": "AWS::SQS::QueuePolicy",
            "Properties": {
                "Queues": [{"Ref": queue}],
                "PolicyDocument": {
                    "Version": "2012-10-17",
                    "Statement": [{
                        "Effect": "Allow",
                        "Principal": {"Service": "events.amazonaws.com"},
                        "Action": "sqs:SendMessage",
                        "Resource": get_att(queue),
                        "Condition": {"ArnEquals": {"aws:SourceArn": rule_arn}},
                    }],
                },
            },
        }
        function_queues[consumer.name] = [queue]
        function_extra[consumer.name] = {"DeadLetterQueue": {"Type": "SQS", "TargetArn": get_att(queue)}}
        pattern_filter = {"detail": {"stateMachineArn": [{"prefix": state_machine_arn(stage.machine_prefix)}],
                                     "status": list(EXECUTION_END_STATUSES)}}
        retry = {"MaximumEventAgeInSeconds": EVENT_MAX_AGE_SECONDS, "MaximumRetryAttempts": EVENT_RETRY_ATTEMPTS}
        if consumer.kind == "cloudwatch_event":
            # Chalice emits a SAM CloudWatchEvent (no dead-letter queue, every state machine in the account).
            # Merged into it: an EventBridgeRule with the same pattern narrowed to our state machines.
            function_extra[consumer.name]["Events"] = {f"{consumer.logical_id}Event": {
                "Type": "EventBridgeRule",
                "Properties": {
                    "RuleName": rule_name,
                    "Pattern": pattern_filter,
                    "DeadLetterConfig": {"Arn": get_att(queue)},
                    "RetryPolicy": retry,
                },
            }}
        else:
            rule = "ExecutionStatusRule"
            out[rule] = {
                "Type": "AWS::Events::Rule",
                "Properties": {
                    "Name": rule_name,
                    "Description": "Step Functions execution status changes of Stepflow's state machines",
                    "EventPattern": {
                        "source": ["aws.states"],
                        "detail-type": [EXECUTION_STATUS_DETAIL_TYPE],
                        **pattern_filter,
                    },
                    "State": "ENABLED",
                    "Targets": [{
                        "Id": EXECUTION_EVENTS,
                        "Arn": get_att(consumer.logical_id),
                        "DeadLetterConfig": {"Arn": get_att(queue)},
                        "RetryPolicy": retry,
                    }],
                },
            }
            out[f"{rule}Permission"] = {
                "Type": "AWS::Lambda::Permission",
                "Properties": {
                    "Action": "lambda:InvokeFunction",
                    "FunctionName": {"Ref": consumer.logical_id},
                    "Principal": "events.amazonaws.com",
                    "SourceArn": get_att(rule),
                },
            }

    for consumer in (f for f in functions if f.kind == STREAM_CONSUMER):
        table = streamed_table(consumer, tables)
        queue = f"{consumer.logical_id}FailedBatches"
        queues.append(queue)
        function_queues[consumer.name] = [queue]
        out[queue] = {"Type": "AWS::SQS::Queue", "Properties": {
            "QueueName": f"{stage.prefix}{consumer.name}-failed", "MessageRetentionPeriod": DLQ_RETENTION_SECONDS,
            "SqsManagedSseEnabled": True}}
        outputs[f"{queue}Url"] = {"Value": {"Ref": queue}}
        # Merged into Chalice's own event (same name): the real stream in place of the one the app names.
        function_extra[consumer.name] = {"Events": {cfn_name(f"{consumer.name}-dynamodb-event-source"): {
            "Type": "DynamoDB",
            "Properties": {
                "Stream": get_att(table.logical_id, "StreamArn"),
                "StartingPosition": "TRIM_HORIZON",
                "BisectBatchOnFunctionError": True,
                "MaximumRetryAttempts": STREAM_RETRY_ATTEMPTS,
                "DestinationConfig": {"OnFailure": {"Destination": get_att(queue)}},
            },
        }}}

    consumed: list[Any] = []  # resources.QUEUES whose consumer app.py defines
    for queue in getattr(resources, "QUEUES", ()):
        consumer = by_name.get(queue.consumer)
        if consumer is None or consumer.kind != "SQSEventConfig":
            notes.append(f"app.py defines no @app.on_sqs_message '{queue.consumer}': queue {queue.name} is left out")
            continue
        consumed.append(queue)
        out.update(consumed_queue_resources(queue, stage))
        outputs[f"{queue.logical_id}Url"] = {"Value": {"Ref": queue.logical_id}}
        # Merged into Chalice's own event (same name): the queue's ARN from the queue itself, so the
        # mapping is made after it.
        function_extra[consumer.name] = {"Events": {cfn_name(f"{consumer.name}-sqs-event-source"): {
            "Type": "SQS", "Properties": {"Queue": get_att(queue.logical_id), "BatchSize": 1}}}}
        # A retry waits 15 minutes at most before it is delivered (and set again for the rest of a longer
        # delay): a message older than twice that is one webhook_retry does not take or keeps failing on.
        out[f"{queue.logical_id}AgeAlarm"] = monitoring.queue_age_alarm(
            f"{stage.prefix}{queue.name}-late", queue.logical_id, 2 * MAX_QUEUE_DELAY_SECONDS,
            f"Messages in {queue.name} wait past their time: {queue.consumer} does not take them or fails on them")

    sweep = by_name.get(OVERDUE_SWEEP)
    if sweep is None:
        notes.append(f"app.py defines no '{OVERDUE_SWEEP}' schedule yet: Chalice adds it (function, EventBridge "
                     "schedule, log group) to the package as soon as it does; nothing here needs to change")
    elif sweep.kind != "schedule":
        notes.append(f"'{OVERDUE_SWEEP}' is a {sweep.kind}, not an @app.schedule: it has no schedule")

    # Chalice's own resources, completed: names, environment, log groups, the role's policies.
    if stage.log_retention_days is None:
        raise SystemExit(f"infra.build: set log_retention_in_days for stage '{stage.name}' in .chalice/config.json "
                         "(Chalice then creates every function's log group with that retention)")
    environment = app_environment(stage, tables, resources.FUNCTIONS)
    for queue in consumed:
        environment[queue.env_var] = {"Ref": queue.logical_id}  # the queue's URL
    if SCHEDULE_FIRED in by_name:  # workflow schedules: one EventBridge Scheduler schedule each
        out["SchedulerRole"] = scheduler_role(stage)
        environment["STEPFLOW_SCHEDULE_FIRED_ARN"] = function_arn(stage.function_name(SCHEDULE_FIRED))
        environment["STEPFLOW_SCHEDULER_ROLE_ARN"] = get_att("SchedulerRole")
    for function in functions:
        name = stage.function_name(function.name)
        out[function.logical_id] = {"Properties": {
            "FunctionName": name,
            "Tracing": "Active",
            "Environment": {"Variables": environment},
            "Role": get_att(roles.role_id(function.logical_id)),  # its own (.chalice/config.json: manage_iam_role false)
            **function_extra.get(function.name, {}),
        }}
        # Chalice names it /aws/lambda/${<logical id>}, and for the API handler it refers to a logical id
        # that does not exist (ApiHandler, renamed APIHandler): the function's name is known, use it.
        out[log_group_id(function)] = {"Properties": {"LogGroupName": f"/aws/lambda/{name}"}}
    api = by_name.get(API_FUNCTION)
    if api is not None:  # every request reaches the app, which answers 404/405/415 (infra/api_routes.py)
        out["RestAPI"] = {"Properties": {"DefinitionBody": api_routes.definition_body(api.routes)}}
    out.update(function_roles(stage, functions, tables, function_queues, config, consumed))
    watched = monitoring.resources(
        stage.prefix, stage.name, stage.log_retention_days,
        {f.name: stage.function_name(f.name) for f in functions},
        [*queues, *(q.dead_letter_logical_id for q in consumed)],
        stage.function_name(OVERDUE_SWEEP) if sweep is not None and sweep.kind == "schedule" else None)
    # Both shape the API (routing: its DefinitionBody; monitoring: tracing, logs, throttling): merge them.
    if "RestAPI" in out and "RestAPI" in watched:
        watched["RestAPI"]["Properties"] = {**watched["RestAPI"]["Properties"], **out["RestAPI"]["Properties"]}
    out.update(watched)

    template = {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Transform": "AWS::Serverless-2016-10-31",
        "Description": f"Stepflow {stage.name}: API, Lambda functions, tables, state machines and events "
                       "(generated by infra/build.py from chalicelib/resources.py; do not edit)",
        "Parameters": {name: declaration for name, (_, declaration) in PARAMETERS.items()},
        "Rules": identity.rules(),
        "Conditions": {**identity.conditions(), **stage_secrets.conditions()},
        "Resources": out,
        "Outputs": outputs,
    }
    return Build(stage, template, functions, notes)


def write(result: Build, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result.template, indent=2) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.build", description=__doc__.splitlines()[0])
    parser.add_argument("--stage", default="dev")
    parser.add_argument("--out", type=Path, default=None, help="default: build/infra/<stage>.json")
    args = parser.parse_args(argv)
    result = build(args.stage)
    path = args.out or ROOT / "build" / "infra" / f"{args.stage}.json"
    write(result, path)
    kinds = ", ".join(f"{f.name} ({f.kind})" for f in result.functions)
    print(f"infra.build: wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path} "
          f"for stage {args.stage} (prefix {result.stage.prefix}); functions: {kinds}")
    for note in result.notes:
        print(f"infra.build: note: {note}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
