"""The deployment template and the local stack come from one description and cannot drift apart.

The infra part of the template is built in-process by infra/build.py and compared with what
stepflow_local.LocalRuntime creates in moto from chalicelib.resources: tables (names modulo the stage
prefix, keys, indexes, TTL), functions (names, handlers), the environment the app reads, schedules,
and the state machines the API itself creates. The real `chalice package` output is checked too, when
the Python 3.12 packaging venv exists (make package / make check-package create it).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from typing import Any

import pytest

from chalicelib import resources
from chalicelib.config import PACKAGING_ENV
from infra import build as infra_build
from infra import deploy as infra_deploy
from infra import package as infra_package
from tests.templates import Resolver, deployed_settings, reference_problems
from tests.templates import references as template_references
from tests.xray_probe import DAEMON, RECEIVE, check_handler_segment

ROOT = Path(__file__).resolve().parents[2]
STAGE = "dev"
DEPLOY_PYTHON = ROOT / "build" / "venv-deploy" / "bin" / "python"
SAM_PYTHON = ROOT / "build" / "venv-sam" / "bin" / "python"
PACKAGE_TIMEOUT = 180  # seconds; `chalice package` of one stage takes ~8-12 s on 2 cores with a warm wheel cache
PACKAGE_INPUTS = ("app.py", "chalicelib", "statemachines", "infra", ".chalice/config.json", "requirements.txt",
                  "requirements-lambda-extra.txt")


# ----------------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def app_module(local_runtime):
    # The app reads its settings once, at import: import it only inside the runtime, as every test does.
    import app

    return app


@pytest.fixture(scope="module")
def infra(app_module) -> infra_build.Build:
    return infra_build.build(STAGE)


def by_type(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {lid: r for lid, r in template["Resources"].items() if r.get("Type") == kind}


def without_prefix(name: str, prefix: str) -> str:
    assert name.startswith(prefix), (name, prefix)
    return name[len(prefix):]


def references(value: Any) -> set[str]:
    """Logical ids a value refers to (Ref, Fn::GetAtt, ${X} and ${X.Attr} in Fn::Sub), not parameters."""
    return template_references(value, infra_build.PARAMETERS)


# What a deployment passes for the stack's parameters (infra/deploy.py reads them from the environment):
# an existing identity provider's settings; the stack's own user pool needs none of them.
PARAMETER_VALUES = {"AuthMode": "jwks", "JwtIssuer": "https://issuer.example", "JwtAudience": "stepflow",
                    "JwksUrl": "https://issuer.example/.well-known/jwks.json", "JwtSecretArn": "",
                    "ServerSecretArn": "", "WebhookSecretArn": ""}
OWN_POOL: dict[str, str] = {}


# ------------------------------------------------------------------------------------------- tables


def test_tables_match_the_local_runtime(local_runtime, infra):
    ddb = local_runtime.client("dynamodb")
    tables = by_type(infra.template, "AWS::DynamoDB::Table")
    assert set(tables) == {t.logical_id for t in resources.TABLES}
    assert sorted(ddb.list_tables()["TableNames"]) == sorted(local_runtime.table_names.values())
    for table in resources.TABLES:
        packaged = tables[table.logical_id]["Properties"]
        local = ddb.describe_table(TableName=local_runtime.table_names[table.name])["Table"]
        assert without_prefix(packaged["TableName"], infra.stage.prefix) == \
            without_prefix(local["TableName"], local_runtime.prefix) == table.name
        assert packaged["KeySchema"] == local["KeySchema"]
        assert sorted(packaged["AttributeDefinitions"], key=str) == sorted(local["AttributeDefinitions"], key=str)
        assert packaged["BillingMode"] == local["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
        local_indexes = {i["IndexName"]: (i["KeySchema"], i["Projection"])
                         for i in local.get("GlobalSecondaryIndexes", [])}
        packaged_indexes = {i["IndexName"]: (i["KeySchema"], i["Projection"])
                            for i in packaged.get("GlobalSecondaryIndexes", [])}
        assert packaged_indexes == local_indexes
        assert set(packaged_indexes) == {i.name for i in table.indexes}
        ttl = ddb.describe_time_to_live(TableName=local["TableName"])["TimeToLiveDescription"]
        if table.ttl_attribute:
            assert packaged["TimeToLiveSpecification"] == {"AttributeName": table.ttl_attribute, "Enabled": True}
            assert ttl == {"TimeToLiveStatus": "ENABLED", "AttributeName": table.ttl_attribute}
        else:
            assert "TimeToLiveSpecification" not in packaged and ttl["TimeToLiveStatus"] == "DISABLED"
        assert packaged["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}


def test_prod_keeps_its_data_and_dev_does_not(app_module):
    prod = infra_build.build("prod")
    dev = infra_build.build("dev")
    for table in resources.TABLES:
        kept = prod.template["Resources"][table.logical_id]
        assert kept["DeletionPolicy"] == kept["UpdateReplacePolicy"] == "Retain"
        assert kept["Properties"]["DeletionProtectionEnabled"] is True
        assert kept["Properties"]["TableName"] == table.physical_name("stepflow-prod-")
        assert dev.template["Resources"][table.logical_id]["DeletionPolicy"] == "Delete"


# ---------------------------------------------------------------------------- functions and environment


def test_functions_match_the_local_runtime(local_runtime, infra):
    lam = local_runtime.client("lambda")
    declared = {f.name: f for f in infra.functions}
    for function in resources.FUNCTIONS:
        local = lam.get_function(FunctionName=local_runtime.function_names[function.name])["Configuration"]
        assert declared[function.name].handler == function.handler == local["Handler"]
        packaged = infra.template["Resources"][declared[function.name].logical_id]["Properties"]
        assert without_prefix(packaged["FunctionName"], infra.stage.prefix) == \
            without_prefix(local["FunctionName"], local_runtime.prefix) == function.name
    # Every function of the app gets a fixed name, the app's environment and a log group named after it.
    for function in infra.functions:
        packaged = infra.template["Resources"][function.logical_id]["Properties"]
        assert packaged["FunctionName"] == infra.stage.function_name(function.name)
        log_group = infra.template["Resources"][infra_build.log_group_id(function)]["Properties"]
        assert log_group["LogGroupName"] == f"/aws/lambda/{packaged['FunctionName']}"


def test_every_function_gets_the_environment_the_local_runtime_exports(local_runtime, infra):
    resolve = Resolver(infra.template, local_runtime.account_id, local_runtime.region, PARAMETER_VALUES)
    local_env = {k: v for k, v in local_runtime.env.items()
                 if k.startswith("STEPFLOW_") and k != "STEPFLOW_LOCAL_RUNTIME"}
    for function in infra.functions:
        env = resolve(infra.template["Resources"][function.logical_id]["Properties"]["Environment"]["Variables"])
        assert set(local_env) <= set(env), f"{function.name} misses {set(local_env) - set(env)}"
        for name, value in local_env.items():
            if name == "STEPFLOW_STATE_MACHINE_ROLE_ARN":
                assert env[name] == "<StateMachineRole.Arn>"
            elif name in {t.stream_env_var for t in resources.TABLES if t.stream_env_var}:
                table = next(t for t in resources.TABLES if t.stream_env_var == name)
                assert env[name] == f"<{table.logical_id}.StreamArn>"
                assert value == local_runtime.stream_arns[table.name]
            elif name == "STEPFLOW_STAGE":
                assert (value, env[name]) == (local_runtime.stage, STAGE)
            else:
                assert value.replace(local_runtime.prefix, "{prefix}") == env[name].replace(
                    infra.stage.prefix, "{prefix}"), name
        assert env["STEPFLOW_EVENT_BUS"] == f"{infra.stage.prefix}bus"
    # What the deployed app reads from that environment names the template's resources.
    env = resolve(infra.template["Resources"]["StepRunner"]["Properties"]["Environment"]["Variables"])
    settings = deployed_settings(local_runtime, infra.template, env)
    tables = by_type(infra.template, "AWS::DynamoDB::Table")
    assert {getattr(settings, f"{t.name}_table") for t in resources.TABLES} == {
        t["Properties"]["TableName"] for t in tables.values()}
    assert settings.state_machine_prefix == infra.stage.prefix


def test_the_template_takes_authentication_and_secrets_from_parameters(local_runtime, infra):
    """An existing provider's issuer, audience and keys are stack parameters bound into every function's
    environment (the stack's own pool otherwise: test_deploy_identity.py); secrets come by ARN
    (test_stage_secrets.py); the deployed app refuses to start without each required one."""
    from chalicelib.config import Settings, SettingsError

    declared = infra.template["Parameters"]
    assert set(declared) == set(infra_build.PARAMETERS) == set(PARAMETER_VALUES)
    for optional in ("JwtIssuer", "JwtAudience", "JwksUrl", "JwtSecretArn", "ServerSecretArn", "WebhookSecretArn"):
        assert declared[optional]["Default"] == "", optional  # empty: the stack's user pool, generated secrets
    from_pool = {"STEPFLOW_JWT_ISSUER": "JwtIssuer", "STEPFLOW_JWT_AUDIENCE": "JwtAudience",
                 "STEPFLOW_JWKS_URL": "JwksUrl"}
    generated = {"STEPFLOW_SERVER_SECRET_ARN": ("GenerateServerSecret", "ServerSecret"),
                 "STEPFLOW_WEBHOOK_SECRET_ARN": ("GenerateWebhookSecret", "WebhookSecret")}
    for function in infra.functions:
        env = infra.template["Resources"][function.logical_id]["Properties"]["Environment"]["Variables"]
        for parameter, (variable, _) in infra_build.PARAMETERS.items():
            if variable in from_pool:
                condition, _, otherwise = env[variable]["Fn::If"]
                assert (condition, otherwise) == ("UseCognito", {"Ref": parameter}), (function.name, variable)
            elif variable in generated:
                assert env[variable] == {"Fn::If": [generated[variable][0], {"Ref": generated[variable][1]},
                                                    {"Ref": parameter}]}, (function.name, variable)
            else:
                assert env[variable] == {"Ref": parameter}, (function.name, variable)
    resolve = Resolver(infra.template, local_runtime.account_id, local_runtime.region, PARAMETER_VALUES)
    assert not resolve.condition("UseCognito")
    env = resolve(infra.template["Resources"]["APIHandler"]["Properties"]["Environment"]["Variables"])
    settings = deployed_settings(local_runtime, infra.template, env)
    assert (settings.auth_mode, settings.jwt_issuer, settings.jwt_audience, settings.jwks_url) == (
        "jwks", "https://issuer.example", "stepflow", "https://issuer.example/.well-known/jwks.json")
    assert settings.server_secret.startswith("ServerSecret-") and settings.webhook_secret.startswith("WebhookSecret-")
    for variable in ("STEPFLOW_JWT_ISSUER", "STEPFLOW_JWT_AUDIENCE", "STEPFLOW_JWKS_URL"):
        with pytest.raises(SettingsError, match=variable):
            deployed_settings(local_runtime, infra.template, {**env, variable: ""})
    # Settings given the ARN but not the value (nobody read the secret) refuse to start.
    with pytest.raises(SettingsError, match="STEPFLOW_SERVER_SECRET_ARN is set but its value was not read"):
        Settings.from_env(env)


class FakeStore:
    """infra.deploy.SecretStore's interface, keeping what it is given."""

    def __init__(self, lengths: dict[str, int] | None = None):
        self.kept: dict[str, str] = {}
        self.lengths = lengths or {}

    def put(self, variable: str, value: str) -> str:
        self.kept[variable] = value
        return f"arn:aws:secretsmanager:us-east-1:123456789012:secret:{variable.lower()}-AbCdEf"

    def length(self, arn: str) -> int | None:
        return self.lengths.get(arn)


def test_a_first_deployment_needs_no_parameter_and_an_update_keeps_them(capsys):
    """Nothing is required: the stack's pool signs tokens and the stack generates its secrets; a secret given
    in the shell is stored in Secrets Manager and passed by ARN (never as a value); an existing provider must
    be named whole; an update keeps what it is not given."""
    assert infra_deploy.stack_parameters({}, updating=False) == []
    store = FakeStore()
    given = {"STEPFLOW_JWT_ISSUER": "https://issuer.example", "STEPFLOW_JWT_AUDIENCE": "stepflow",
             "STEPFLOW_SERVER_SECRET": "s" * 40, "STEPFLOW_JWKS_URL": "https://issuer.example/jwks.json"}
    created = {p["ParameterKey"]: p["ParameterValue"]
               for p in infra_deploy.stack_parameters(given, updating=False, store=store)}
    assert created == {"JwtIssuer": "https://issuer.example", "JwtAudience": "stepflow",
                       "ServerSecretArn": store.put("STEPFLOW_SERVER_SECRET", "s" * 40),
                       "JwksUrl": "https://issuer.example/jwks.json"}
    assert store.kept == {"STEPFLOW_SERVER_SECRET": "s" * 40} and "s" * 40 not in json.dumps(created)
    assert "stored STEPFLOW_SERVER_SECRET in Secrets Manager" in capsys.readouterr().out
    kept = infra_deploy.stack_parameters({}, updating=True)
    assert kept == [{"ParameterKey": p, "UsePreviousValue": True} for p in infra_build.PARAMETERS]
    # A stack made from an older template keeps only the parameters it has.
    assert infra_deploy.stack_parameters({}, updating=True, previous={"AuthMode"}) == [
        {"ParameterKey": "AuthMode", "UsePreviousValue": True}]
    # An update may change one setting of the provider it keeps (CloudFormation's Rules check the result) ...
    changed = infra_deploy.stack_parameters({"STEPFLOW_JWT_AUDIENCE": "new-client"}, updating=True)
    assert {p["ParameterKey"]: p.get("ParameterValue", "kept") for p in changed} == {
        **{p: "kept" for p in infra_build.PARAMETERS}, "JwtAudience": "new-client"}
    # ... and only --own-pool clears the provider, for the stack's pool: an empty variable means "keep".
    switched = infra_deploy.stack_parameters({}, updating=True, own_pool=True)
    assert {p["ParameterKey"]: p.get("ParameterValue", "kept") for p in switched} == {
        "AuthMode": "jwks", "JwtIssuer": "", "JwtAudience": "", "JwksUrl": "", "JwtSecretArn": "",
        "ServerSecretArn": "kept", "WebhookSecretArn": "kept"}
    with pytest.raises(SystemExit, match="contradict"):
        infra_deploy.stack_parameters({"STEPFLOW_JWT_ISSUER": "https://issuer.example"}, updating=True, own_pool=True)
    short_arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:short-AbCdEf"
    refused = {
        "STEPFLOW_JWT_AUDIENCE": {**given, "STEPFLOW_JWT_AUDIENCE": ""},
        "STEPFLOW_JWKS_URL": {**given, "STEPFLOW_JWKS_URL": ""},
        "STEPFLOW_JWT_SECRET (or STEPFLOW_JWT_SECRET_ARN) with STEPFLOW_AUTH=hs256": {**given, "STEPFLOW_AUTH": "hs256"},
        "set STEPFLOW_JWT_ISSUER too": {"STEPFLOW_JWT_AUDIENCE": "stepflow"},
        "STEPFLOW_AUTH must be jwks": {"STEPFLOW_AUTH": "hs256"},
        "STEPFLOW_SERVER_SECRET must be at least 32 bytes": {**given, "STEPFLOW_SERVER_SECRET": "short"},
        "STEPFLOW_JWT_SECRET must be at least": {**given, "STEPFLOW_AUTH": "hs256", "STEPFLOW_JWT_SECRET": "x"},
        "the secret STEPFLOW_SERVER_SECRET_ARN names must be at least 32 bytes": {
            **given, "STEPFLOW_SERVER_SECRET": "", "STEPFLOW_SERVER_SECRET_ARN": short_arn},
        "not both": {**given, "STEPFLOW_SERVER_SECRET_ARN": short_arn},
    }
    for message, env in refused.items():
        store = FakeStore({short_arn: 8})
        with pytest.raises(SystemExit, match=re.escape(message)):
            infra_deploy.stack_parameters(env, updating=False, store=store)
        assert store.kept == {}  # nothing stored when anything is refused


def test_every_reference_in_the_infra_part_resolves(infra):
    """Every Ref, GetAtt, Sub variable, condition and DependsOn names something declared, and the
    Cognito resources are named only where UseCognito holds (the packaged templates: further below)."""
    assert reference_problems(infra.template) == []
    broken = json.loads(json.dumps(infra.template))  # the check can fail: the pool named unconditionally
    broken["Resources"]["APIHandler"]["Properties"]["Environment"]["Variables"]["STEPFLOW_JWT_AUDIENCE"] = {
        "Ref": "UserPoolClient"}
    broken["Outputs"]["Oops"] = {"Value": {"Fn::GetAtt": ["NoSuchThing", "Arn"]}}
    assert reference_problems(broken) == [
        "Resources/APIHandler/Properties/Environment/Variables/STEPFLOW_JWT_AUDIENCE: Ref to 'UserPoolClient', "
        "which exists only when UseCognito holds",
        "Outputs/Oops/Value: Fn::GetAtt to 'NoSuchThing', which the template does not declare"]


def test_registering_the_examples_takes_a_token_the_stage_accepts():
    """The deployed API refuses requests without a bearer token, so seeding needs one (or is skipped)."""
    from chalicelib.auth import Authenticator

    assert infra_deploy.seeding_token(None, {}, {}) is None
    assert infra_deploy.seeding_token(None, {}, {"STEPFLOW_AUTH": "jwks", "STEPFLOW_JWT_SECRET": "s" * 40}) is None
    assert infra_deploy.seeding_token(None, {}, {"STEPFLOW_SEED_TOKEN": "given"}) == "given"
    env = {"STEPFLOW_AUTH": "hs256", "STEPFLOW_JWT_SECRET": "s" * 40, "STEPFLOW_JWT_ISSUER": "https://iss.example",
           "STEPFLOW_JWT_AUDIENCE": "stepflow"}
    token = infra_deploy.seeding_token(None, {}, env)
    claims = Authenticator("hs256", "s" * 40, issuer="https://iss.example", audience="stepflow").verify(token)
    assert "admin" in claims["roles"] and claims["tenant_id"] == "default"
    assert Authenticator("hs256", "s" * 40).verify(
        infra_deploy.seeding_token(None, {}, {**env, "STEPFLOW_SEED_TENANT": "acme"}))["tenant_id"] == "acme"


# ------------------------------------------------------------------------------------ state machines


def test_state_machines_are_the_ones_the_api_manages(local_aws, infra, app_module):
    """Registering the bundled examples through the service names and compiles the machines as the template does."""
    from chalicelib.service.definitions import bind_placeholders

    machines = by_type(infra.template, "AWS::StepFunctions::StateMachine")
    bundled = infra_build.bundled_state_machines()
    assert len(machines) == len(bundled) > 0
    app_module.register_bundled_examples()
    sfn = local_aws.client("stepfunctions")
    # Other tests of the session may have left machines of their own: look at the bundled workflows'.
    local = {m["name"]: m["stateMachineArn"]
             for page in sfn.get_paginator("list_state_machines").paginate() for m in page["stateMachines"]}
    local_by_workflow = {workflow: local.get(f"{local_aws.prefix}{workflow}") for workflow in bundled}
    assert all(local_by_workflow.values()), local_by_workflow
    arns = {f.placeholder: local_aws.function_arns[f.name] for f in resources.FUNCTIONS if f.placeholder}
    for resource in machines.values():
        props = resource["Properties"]
        workflow = without_prefix(props["StateMachineName"], infra.stage.prefix)
        assert props["StateMachineType"] == "STANDARD"
        assert props["RoleArn"] == {"Fn::GetAtt": ["StateMachineRole", "Arn"]}
        # The template's definition, bound as CloudFormation binds it, is what the API deployed locally.
        deployed = json.loads(sfn.describe_state_machine(stateMachineArn=local_by_workflow[workflow])["definition"])
        assert bind_placeholders(props["Definition"], arns) == deployed
        used = infra_build.placeholders_in(props["Definition"])
        assert set(props.get("DefinitionSubstitutions", {})) == used
        for placeholder, value in props.get("DefinitionSubstitutions", {}).items():
            function = next(f for f in resources.FUNCTIONS if f.placeholder == placeholder)
            assert value == infra_build.function_arn(infra.stage.function_name(function.name))


def test_execution_role_may_only_invoke_our_functions(infra):
    role = infra.template["Resources"]["StateMachineRole"]["Properties"]
    assert role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {"Service": "states.amazonaws.com"}
    statements = [s for p in role["Policies"] for s in p["PolicyDocument"]["Statement"]]
    # Besides invoking: delivering its error logs and traces (infra/monitoring.py; no resource-level permissions).
    assert [s["Action"] for s in statements][0] == "lambda:InvokeFunction"
    assert [s["Sid"] for s in statements[1:]] == ["LogsAndTracing"]
    assert all(a.startswith(("logs:", "xray:")) for a in statements[1]["Action"])
    names = {f"{infra.stage.prefix}{f.name}" for f in resources.FUNCTIONS if f.placeholder}
    allowed = {value["Fn::Sub"].rsplit(":function:", 1)[1] for value in statements[0]["Resource"]}
    assert allowed == names | {f"{name}:*" for name in names}


def test_workflow_schedules_get_a_scheduler_role_that_invokes_schedule_fired_only(infra):
    built = infra.template["Resources"]
    role = built["SchedulerRole"]["Properties"]
    assert role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {"Service": "scheduler.amazonaws.com"}
    statements = [s for p in role["Policies"] for s in p["PolicyDocument"]["Statement"]]
    assert [(s["Action"], s["Resource"]) for s in statements] == [
        ("lambda:InvokeFunction", infra_build.function_arn(infra.stage.function_name("schedule_fired")))]
    policy = {s["Sid"]: s for p in built["APIHandlerRole"]["Properties"]["Policies"]
              for s in p["PolicyDocument"]["Statement"]}
    assert set(policy["WorkflowSchedules"]["Action"]) == {"scheduler:CreateSchedule", "scheduler:UpdateSchedule",
                                                          "scheduler:DeleteSchedule"}
    assert policy["WorkflowSchedules"]["Resource"]["Fn::Sub"].endswith(f":schedule/default/{infra.stage.prefix}*")
    assert policy["PassSchedulerRole"]["Resource"] == {"Fn::GetAtt": ["SchedulerRole", "Arn"]}
    assert policy["PassSchedulerRole"]["Condition"] == {"StringEquals": {"iam:PassedToService": "scheduler.amazonaws.com"}}
    env = built["APIHandler"]["Properties"]["Environment"]["Variables"]
    assert env["STEPFLOW_SCHEDULER_ROLE_ARN"] == {"Fn::GetAtt": ["SchedulerRole", "Arn"]}
    assert env["STEPFLOW_SCHEDULE_FIRED_ARN"] == infra_build.function_arn(infra.stage.function_name("schedule_fired"))


def test_webhook_retries_get_a_delayed_queue_read_by_webhook_retry_with_dead_letters_and_alarms(local_runtime, infra):
    """Retries on real timers when deployed: a message per retry on a queue webhook_retry reads, a
    dead-letter queue for one it keeps failing on, and alarms on both besides the given-up webhooks'."""
    from chalicelib.config import Settings

    built, queue = infra.template["Resources"], resources.WEBHOOK_RETRIES
    (consumer,) = [f for f in infra.functions if f.name == queue.consumer]
    assert (consumer.kind, consumer.handler) == ("SQSEventConfig", "app.webhook_retry")
    props = built[queue.logical_id]["Properties"]
    assert props["QueueName"] == f"{infra.stage.prefix}webhook-retries" and props["SqsManagedSseEnabled"] is True
    assert props["VisibilityTimeout"] >= 6 * infra.stage.lambda_timeout  # longer than webhook_retry may run
    assert props["RedrivePolicy"] == {"deadLetterTargetArn": {"Fn::GetAtt": [queue.dead_letter_logical_id, "Arn"]},
                                      "maxReceiveCount": 5}
    dead = built[queue.dead_letter_logical_id]["Properties"]
    assert dead["QueueName"] == f"{infra.stage.prefix}webhook-retries-dlq"
    assert dead["MessageRetentionPeriod"] == infra_build.DLQ_RETENTION_SECONDS
    # Chalice's SQS event of the function, bound to the queue itself, one message per invocation.
    (name, event), = built[consumer.logical_id]["Properties"]["Events"].items()
    assert name == "WebhookRetrySqsEventSource"
    assert event == {"Type": "SQS", "Properties": {"Queue": {"Fn::GetAtt": [queue.logical_id, "Arn"]}, "BatchSize": 1}}
    # Every function can queue a retry: the deployed settings name the queue by URL, and the name the app
    # subscribes webhook_retry to is the template's queue.
    resolve = Resolver(infra.template, local_runtime.account_id, local_runtime.region, PARAMETER_VALUES)
    for function in infra.functions:
        env = built[function.logical_id]["Properties"]["Environment"]["Variables"]
        assert env[queue.env_var] == {"Ref": queue.logical_id}, function.name
    settings = Settings.from_env(resolve(built["APIHandler"]["Properties"]["Environment"]["Variables"]), check=False)
    assert settings.webhook_retry_queue == props["QueueName"] and settings.webhook_retry_queue_url
    # Who sends a retry may send to this queue only (derived from the code: tests/integration/test_function_roles.py);
    # the consumer's event source mapping reads it with the consumer's own role.
    def policy(function: Any) -> dict[str, Any]:
        return {s["Sid"]: s for p in built[f"{function.logical_id}Role"]["Properties"]["Policies"]
                for s in p["PolicyDocument"]["Statement"]}

    senders = [f.name for f in infra.functions if "WebhookRetries" in policy(f)]
    assert {"api", "overdue_sweep", "webhook_retry"} <= set(senders)
    for function in infra.functions:
        sids = policy(function)
        if "WebhookRetries" in sids:
            assert sids["WebhookRetries"]["Action"] == ["sqs:SendMessage"]
            assert sids["WebhookRetries"]["Resource"] == [{"Fn::GetAtt": [queue.logical_id, "Arn"]}]
        assert ("Consume" in sids) == (function.name == queue.consumer), function.name
    consume = policy(consumer)["Consume"]
    assert set(consume["Action"]) == {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes",
                                      "sqs:ChangeMessageVisibility"}
    assert consume["Resource"] == [{"Fn::GetAtt": [queue.logical_id, "Arn"]}]
    # Alarms: a message that went to the dead-letter queue, messages kept waiting, webhooks given up.
    depth = built[f"{queue.dead_letter_logical_id}DepthAlarm"]["Properties"]
    assert depth["MetricName"] == "ApproximateNumberOfMessagesVisible"
    assert depth["Dimensions"] == [{"Name": "QueueName", "Value": {"Fn::GetAtt": [queue.dead_letter_logical_id,
                                                                                  "QueueName"]}}]
    late = built[f"{queue.logical_id}AgeAlarm"]["Properties"]
    assert (late["AlarmName"], late["MetricName"], late["Threshold"]) == (
        f"{infra.stage.prefix}webhook-retries-late", "ApproximateAgeOfOldestMessage", 1800)
    assert built["WebhookDeadLettersAlarm"]["Properties"]["MetricName"] == "WebhookDeadLetters"


def test_function_roles_are_scoped_to_our_resources(infra):
    built = infra.template["Resources"]
    api = {s["Sid"]: s for p in built["APIHandlerRole"]["Properties"]["Policies"] for s in p["PolicyDocument"]["Statement"]}
    table_ids = {t.logical_id for t in resources.TABLES}
    assert references(api["Tables"]["Resource"]) == table_ids
    assert all(a.startswith("dynamodb:") for a in api["Tables"]["Action"])
    prefix_arns = [r["Fn::Sub"].rsplit(":stateMachine:", 1)[1] for r in api["StateMachines"]["Resource"]]
    assert prefix_arns == [f"{infra.stage.prefix}*", f"{infra.stage.prefix}*:*"]  # versions and aliases too
    assert api["Executions"]["Resource"]["Fn::Sub"].endswith(f":execution:{infra.stage.prefix}*:*")
    assert api["PassStateMachineRole"]["Resource"] == {"Fn::GetAtt": ["StateMachineRole", "Arn"]}
    assert api["PassStateMachineRole"]["Condition"] == {"StringEquals": {"iam:PassedToService": "states.amazonaws.com"}}
    assert api["LifecycleEvents"] == {"Sid": "LifecycleEvents", "Effect": "Allow",
                                      "Action": ["events:PutEvents"], "Resource": {"Fn::GetAtt": ["EventBus", "Arn"]}}
    # Credentials: every Secrets Manager action but listing on the stage's own credential secrets only.
    assert api["Credentials"]["Resource"]["Fn::Sub"].endswith(f":secret:{infra.stage.prefix}credentials/*")
    assert api["Logs"]["Resource"]["Fn::Sub"].endswith(f":log-group:/aws/lambda/{infra.stage.prefix}api:*")
    for function in infra.functions:
        role = built[f"{function.logical_id}Role"]["Properties"]
        assert role["AssumeRolePolicyDocument"]["Statement"] == [{
            "Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]
        statements = [s for p in role["Policies"] for s in p["PolicyDocument"]["Statement"]]
        unscoped = {a for s in statements if s["Resource"] == "*" for a in s["Action"]}
        # No resource-level permissions exist for these: "*" is the narrowest AWS allows.
        assert unscoped <= {"states:ListStateMachines", "states:SendTaskSuccess", "states:SendTaskFailure",
                            "states:SendTaskHeartbeat", "secretsmanager:ListSecrets", "xray:PutTelemetryRecords",
                            "xray:PutTraceSegments"}, function.name
    # The stream consumer reads its own table's stream only.
    (consumer,) = (f for f in infra.functions if f.kind == infra_build.STREAM_CONSUMER)
    stream = next(s for p in built[f"{consumer.logical_id}Role"]["Properties"]["Policies"]
                  for s in p["PolicyDocument"]["Statement"] if s["Sid"] == "Stream")
    assert stream["Resource"] == {"Fn::Sub": "${EventsTable.Arn}/stream/*"}
    assert set(stream["Action"]) == {"dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator",
                                     "dynamodb:ListStreams"}


def test_the_template_scopes_task_types_to_task_resources(infra):
    policies = infra.template["Resources"]["StepRunnerRole"]["Properties"]["Policies"]
    statements = {s["Sid"]: s for p in policies for s in p["PolicyDocument"]["Statement"]}
    named = f"{infra.stage.prefix}{resources.TASK_RESOURCE_INFIX}*"

    def arns(sid: str) -> list[str]:
        found = statements[sid]["Resource"]
        return [r["Fn::Sub"] for r in (found if isinstance(found, list) else [found])]

    assert arns("TaskObjects") == [f"arn:${{AWS::Partition}}:s3:::{named}/*"]
    assert [a.rsplit(":", 1)[1] for a in arns("TaskQueues") + arns("TaskTopics")] == [named, named]
    assert arns("TaskEventBuses")[0].endswith(f":event-bus/{named}")
    assert [a.split(":function:", 1)[1] for a in arns("TaskFunctions")] == [named, f"{named}:*"]
    assert arns("TaskEmail")[0].endswith(":identity/*")
    # The stack's own functions are not task resources: nothing of its prefix but <prefix>tasks- is granted.
    assert not any(f"{infra.stage.prefix}{f.name}".startswith(named[:-1]) for f in resources.FUNCTIONS)


def test_the_event_log_stream_feeds_the_lifecycle_events_function(infra, local_runtime):
    """The app's stream consumer reads the events table's real stream, from its start, with failing
    batches split and, once retries are spent, their place recorded in a queue."""
    consumers = [f for f in infra.functions if f.kind == infra_build.STREAM_CONSUMER]
    assert [f.name for f in consumers] == ["lifecycle_events"]
    assert consumers[0].stream_table == local_runtime.table_names["events"]
    built = infra.template["Resources"]
    table = built[resources.EVENTS.logical_id]["Properties"]
    assert table["StreamSpecification"] == {"StreamViewType": "NEW_AND_OLD_IMAGES"}
    (name, event), = built["LifecycleEvents"]["Properties"]["Events"].items()
    assert name == "LifecycleEventsDynamodbEventSource"  # Chalice's own event, merged into
    props = event["Properties"]
    assert event["Type"] == "DynamoDB" and props["Stream"] == {"Fn::GetAtt": ["EventsTable", "StreamArn"]}
    assert props["StartingPosition"] == "TRIM_HORIZON" and props["BisectBatchOnFunctionError"] is True
    assert props["MaximumRetryAttempts"] == infra_build.STREAM_RETRY_ATTEMPTS
    assert props["DestinationConfig"] == {"OnFailure": {"Destination": {
        "Fn::GetAtt": ["LifecycleEventsFailedBatches", "Arn"]}}}
    queue = built["LifecycleEventsFailedBatches"]["Properties"]
    assert queue["QueueName"] == "stepflow-dev-lifecycle_events-failed" and queue["SqsManagedSseEnabled"] is True
    dead_letters = next(s for p in built["LifecycleEventsRole"]["Properties"]["Policies"]
                        for s in p["PolicyDocument"]["Statement"] if s["Sid"] == "DeadLetters")
    assert dead_letters["Resource"] == [{"Fn::GetAtt": ["LifecycleEventsFailedBatches", "Arn"]}]


def test_the_infra_part_has_no_circular_dependencies(infra):
    graph = {lid: references(r) - {lid} for lid, r in infra.template["Resources"].items()}
    done: set[str] = set()

    def visit(node: str, path: tuple[str, ...]) -> None:
        assert node not in path, f"circular dependency: {' -> '.join((*path, node))}"
        if node in done or node not in graph:
            return
        for nxt in graph[node]:
            visit(nxt, (*path, node))
        done.add(node)

    for node in graph:
        visit(node, ())


# -------------------------------------------------------------------------------- schedules and rules


def test_schedules_are_the_ones_the_local_runtime_delivers(local_runtime, infra, app_module):
    schedules = {f.name: f.schedule for f in infra.functions if f.kind == "schedule"}
    assert infra_build.OVERDUE_SWEEP in schedules, f"app.py has no @app.schedule named {infra_build.OVERDUE_SWEEP}"
    from stepflow_local.schedules import deliver_schedules

    before = set(map(id, local_runtime.scheduler.jobs))
    names = deliver_schedules(app_module.app, local_runtime)
    try:
        assert set(names) == set(schedules)
    finally:  # the session runtime must not go on sweeping for the rest of the suite
        for job in local_runtime.scheduler.jobs:
            if id(job) not in before:
                job.cancel()
    for expression in schedules.values():
        assert re.fullmatch(r"(rate|cron)\(.+\)", expression), expression


def test_execution_status_rule_follows_the_execution_events_function(app_module):
    functions = (
        infra_build.AppFunction("api", "APIHandler", "app.app", "api"),
        *(infra_build.AppFunction(f.name, infra_build.cfn_name(f.name), f.handler, "lambda")
          for f in resources.FUNCTIONS),
        infra_build.AppFunction("overdue_sweep", "OverdueSweep", "app.overdue_sweep", "schedule",
                                schedule="rate(5 minutes)"),
        infra_build.AppFunction("execution_events", "ExecutionEvents", "app.execution_events", "lambda"),
    )
    built = infra_build.build(STAGE, functions=functions).template["Resources"]
    rule = built["ExecutionStatusRule"]["Properties"]
    assert rule["EventPattern"]["source"] == ["aws.states"]
    assert rule["EventPattern"]["detail-type"] == ["Step Functions Execution Status Change"]
    prefix = rule["EventPattern"]["detail"]["stateMachineArn"][0]["prefix"]["Fn::Sub"]
    assert prefix.endswith(":stateMachine:stepflow-dev-")
    # Ends only, as the app's own pattern says (the local runtime honours that one).
    assert rule["EventPattern"]["detail"]["status"] == ["SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"]
    target = rule["Targets"][0]
    assert target["Arn"] == {"Fn::GetAtt": ["ExecutionEvents", "Arn"]}
    assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": ["ExecutionEventsDeadLetterQueue", "Arn"]}}
    assert built["ExecutionStatusRulePermission"]["Properties"]["Principal"] == "events.amazonaws.com"
    assert built["ExecutionEvents"]["Properties"]["DeadLetterQueue"]["Type"] == "SQS"
    queue = built["ExecutionEventsDeadLetterQueue"]["Properties"]
    assert queue["QueueName"] == "stepflow-dev-execution_events-dlq" and queue["SqsManagedSseEnabled"] is True
    dead_letters = next(s for p in built["ExecutionEventsRole"]["Properties"]["Policies"]
                        for s in p["PolicyDocument"]["Statement"] if s["Sid"] == "DeadLetters")
    assert dead_letters["Resource"] == [{"Fn::GetAtt": ["ExecutionEventsDeadLetterQueue", "Arn"]}]

    without = infra_build.build(STAGE, functions=functions[:-1])
    assert "ExecutionStatusRule" not in without.template["Resources"]
    assert any("execution_events" in note for note in without.notes)


def test_the_app_s_execution_events_function_gets_its_rule(infra):
    assert infra_build.EXECUTION_EVENTS in {f.name for f in infra.functions}, (
        f"app.py has no '{infra_build.EXECUTION_EVENTS}' function: the instance index would never hear of endings")
    resources_ = infra.template["Resources"]
    kinds = {f.name: f.kind for f in infra.functions}
    if kinds[infra_build.EXECUTION_EVENTS] == "lambda":
        assert "ExecutionStatusRule" in resources_
    assert any(r.get("Type") == "AWS::SQS::Queue" for r in resources_.values())


# ------------------------------------------------------------------------------- the real package


def newest_input_mtime() -> float:
    newest = 0.0
    for name in PACKAGE_INPUTS:
        path = ROOT / name
        paths = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
        newest = max([newest, *(p.stat().st_mtime for p in paths)])
    return newest


@pytest.fixture(scope="module")
def packaged(tmp_path_factory) -> tuple[dict[str, Any], Path]:
    """build/package/dev when `make package` left it up to date, else a fresh package (needs build/venv-deploy)."""
    folder = ROOT / "build" / "package" / STAGE
    template = folder / infra_package.TEMPLATE
    if template.exists() and (folder / "SIZE.md").exists() and template.stat().st_mtime >= newest_input_mtime():
        return json.loads(template.read_text()), folder / infra_package.ZIP
    if not DEPLOY_PYTHON.exists():
        pytest.skip("no build/venv-deploy (the Python 3.12 packaging venv): `make package` creates it")
    folder = tmp_path_factory.mktemp("package") / STAGE
    started = time.monotonic()
    try:
        completed = subprocess.run([str(DEPLOY_PYTHON), "-m", "infra.package", "--stage", STAGE, "--out", str(folder)],
                                   cwd=ROOT, capture_output=True, text=True, timeout=PACKAGE_TIMEOUT)
    except subprocess.TimeoutExpired:
        pytest.skip(f"chalice package took over {PACKAGE_TIMEOUT}s here; make check-package covers it")
    assert completed.returncode == 0, completed.stdout + completed.stderr
    print(f"packaged {STAGE} in {time.monotonic() - started:.1f}s")
    return json.loads((folder / infra_package.TEMPLATE).read_text()), folder / infra_package.ZIP


def test_the_packaged_template_is_chalice_merged_with_the_infra_part(packaged, infra, local_runtime):
    template, zip_path = packaged
    assert template["Transform"] == "AWS::Serverless-2016-10-31"
    functions = by_type(template, "AWS::Serverless::Function")
    assert {f.logical_id for f in infra.functions} == set(functions)
    lam = local_runtime.client("lambda")
    for function in infra.functions:
        props = functions[function.logical_id]["Properties"]
        assert props["Handler"] == function.handler
        assert props["FunctionName"] == infra.stage.function_name(function.name)
        version = tuple(int(p) for p in props["Runtime"].removeprefix("python").split("."))
        assert version >= (3, 12), props["Runtime"]
        assert props["Role"] == {"Fn::GetAtt": [f"{function.logical_id}Role", "Arn"]}  # its own
        # Packaging skips the deployed-stage checks; a deployed function never may.
        assert PACKAGING_ENV not in json.dumps(props.get("Environment") or {}) + json.dumps(
            template.get("Globals") or {})
        if function.name in local_runtime.function_names:
            local = lam.get_function(FunctionName=local_runtime.function_names[function.name])["Configuration"]
            assert local["Handler"] == props["Handler"]
        if function.kind == "schedule":
            events = list(props["Events"].values())
            assert [(e["Type"], e["Properties"]["Schedule"]) for e in events] == [("Schedule", function.schedule)]
        if function.kind == "cloudwatch_event":
            (event,) = props["Events"].values()  # Chalice's rule, turned into one with a filter and a DLQ
            assert event["Type"] == "EventBridgeRule"
            assert {k: v for k, v in event["Properties"]["Pattern"].items() if k != "detail"} == {
                k: v for k, v in function.event_pattern.items() if k != "detail"}
            if function.name == infra_build.EXECUTION_EVENTS:
                assert set(event["Properties"]) >= {"DeadLetterConfig", "RetryPolicy", "RuleName"}
                assert "prefix" in event["Properties"]["Pattern"]["detail"]["stateMachineArn"][0]
        if function.kind == infra_build.STREAM_CONSUMER:
            (event,) = props["Events"].values()  # Chalice's, bound to the table's real stream
            assert event["Type"] == "DynamoDB" and event["Properties"]["Stream"] == {
                "Fn::GetAtt": ["EventsTable", "StreamArn"]}
            assert event["Properties"]["BatchSize"] == 100 and "DestinationConfig" in event["Properties"]
        if function.kind == "SQSEventConfig":
            (event,) = props["Events"].values()  # Chalice's, bound to the queue the template makes
            assert event["Type"] == "SQS" and event["Properties"]["Queue"] == {
                "Fn::GetAtt": [resources.WEBHOOK_RETRIES.logical_id, "Arn"]}
            assert event["Properties"]["BatchSize"] == 1
        log_group = template["Resources"][infra_build.log_group_id(function)]["Properties"]
        assert log_group["LogGroupName"] == f"/aws/lambda/{props['FunctionName']}"
        assert log_group["RetentionInDays"] == infra.stage.log_retention_days
    # Everything the infra part declares is in the package, merged as generated, parameters included.
    assert template["Parameters"] == infra.template["Parameters"]
    for logical_id, resource in infra.template["Resources"].items():
        if "Type" in resource:
            assert template["Resources"][logical_id] == resource, logical_id
    # manage_iam_role false: Chalice makes no role of its own; the functions' roles are the infra part's.
    assert "DefaultRole" not in template["Resources"]
    assert set(by_type(template, "AWS::IAM::Role")) == set(by_type(infra.template, "AWS::IAM::Role"))
    with zipfile.ZipFile(zip_path) as archive:
        top = {name.split("/", 1)[0] for name in archive.namelist()}
    assert {"app.py", "chalicelib"} <= top
    assert not {name.split("-", 1)[0].removesuffix(".py").lower() for name in top} & infra_package.FORBIDDEN_IN_ZIP
    # Installed from the locks, and nothing else: what requirements.txt and requirements-lambda-extra.txt pin
    # for the functions' runtime; the X-Ray SDK among them, its botocore left to the runtime.
    runtime = next(iter(functions.values()))["Properties"]["Runtime"].removeprefix("python")
    dists = infra_package.packaged_dists(zip_path)
    assert dists == infra_package.lambda_pins(python_version=runtime)
    assert {"aws-xray-sdk", "wrapt"} <= set(dists) and {"aws_xray_sdk", "wrapt"} <= top
    assert not {"boto3", "botocore", "s3transfer"} & (top | set(dists))


def test_every_reference_in_the_packaged_templates_resolves(packaged, tmp_path):
    """sam.json as CloudFormation receives it, and expanded by the SAM transform as CloudFormation expands it."""
    template, _ = packaged
    assert reference_problems(template) == []
    if not SAM_PYTHON.exists():
        pytest.skip("no build/venv-sam (the SAM transform's venv): `make check-package` creates it")
    source = tmp_path / "sam.json"
    source.write_text(json.dumps(template))
    completed = subprocess.run([str(SAM_PYTHON), "-m", "infra.sam_check", str(source)], cwd=ROOT,
                               capture_output=True, text=True, timeout=PACKAGE_TIMEOUT)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    transformed = json.loads((tmp_path / "transformed.json").read_text())
    assert "UserPool" in transformed["Resources"] and transformed["Conditions"] == template["Conditions"]
    assert reference_problems(transformed) == []


# ----------------------------------------------------------------------------------------- deploying


# The API function as Lambda runs it: the unpacked zip first on the path, then the runtime's boto3 stack, no
# site-packages; one request with Lambda's trace header and a UDP socket standing in for the X-Ray daemon.
ZIP_TRACE_PROBE = DAEMON + """
import app

class Context:
    function_name, memory_limit_in_mb, aws_request_id = "stepflow-dev-api", 512, "zip-probe"
    invoked_function_arn = "arn:aws:lambda:us-east-1:000000000000:function:stepflow-dev-api"
    def get_remaining_time_in_millis(self):
        return 60000

context = {"resourcePath": "/health", "httpMethod": "GET", "path": "/dev/health", "stage": "dev",
           "requestId": "zip-probe", "identity": {"sourceIp": "127.0.0.1"}}
event = {"resource": "/health", "path": "/health", "httpMethod": "GET", "headers": {"Host": "probe"},
         "multiValueHeaders": {"Host": ["probe"]}, "queryStringParameters": None,
         "multiValueQueryStringParameters": None, "pathParameters": None, "stageVariables": None,
         "requestContext": context, "body": None, "isBase64Encoded": False}
status = app.app(event, Context())["statusCode"]
wait = 30
""" + RECEIVE + """
modules = {name: os.path.relpath(sys.modules[name].__file__) for name in ("aws_xray_sdk", "wrapt", "botocore")
           if name in sys.modules}
print(json.dumps({"status": status, "modules": modules, "sent": sent}))
"""
# The runtime's boto3 stack (pure Python, the boto3 of requirements-localstack-lambda.txt and this venv).
RUNTIME_PACKAGES = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "six", "urllib3")


def _lambda_python() -> str:
    """A Python of the functions' runtime (the package's wheels are built for it), as `make package` finds one."""
    found = subprocess.run(["bash", "infra/find_python.sh"], cwd=ROOT, capture_output=True, text=True)
    if found.returncode != 0 or not found.stdout.strip():
        pytest.skip("no Python 3.12+ here to run the Lambda package with")
    return found.stdout.strip()


def test_the_packaged_api_function_sends_its_handler_subsegment_to_the_xray_daemon(packaged, tmp_path):
    import importlib

    template, zip_path = packaged
    runtime = next(iter(by_type(template, "AWS::Serverless::Function").values()))["Properties"]["Runtime"]
    python = _lambda_python()
    version = subprocess.run([python, "-c", "import sys; print('python%d.%d' % sys.version_info[:2])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    if version != runtime:
        pytest.skip(f"{python} is {version}; the package's wheels are for {runtime}")
    task_root, runtime_root = tmp_path / "task", tmp_path / "runtime"
    with zipfile.ZipFile(zip_path) as archive:
        archive.extractall(task_root)
    runtime_root.mkdir()
    for name in RUNTIME_PACKAGES:
        module = importlib.import_module(name)
        source = Path(module.__file__)
        source = source.parent if source.name == "__init__.py" else source
        (runtime_root / source.name).symlink_to(source, target_is_directory=source.is_dir())
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV", "POWERTOOLS_TRACE"))}
    env["PYTHONPATH"] = os.pathsep.join([str(task_root), str(runtime_root)])
    done = subprocess.run([python, "-S", "-s", "-c", ZIP_TRACE_PROBE], cwd=task_root, env=env, capture_output=True,
                          text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found["status"] == 200
    # The SDK and wrapt came from the zip; botocore from the runtime, where the zip leaves it.
    assert found["modules"]["aws_xray_sdk"].startswith("aws_xray_sdk/"), found["modules"]
    assert found["modules"]["wrapt"].startswith("wrapt/"), found["modules"]
    assert found["modules"]["botocore"].startswith(os.path.relpath(runtime_root, task_root)), found["modules"]
    check_handler_segment(found["sent"], "## stepflow-dev-api")  # "## <the function's name>"


def test_deploy_fails_clearly_without_credentials(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(HOME=str(tmp_path), AWS_CONFIG_FILE=str(tmp_path / "none"), AWS_SHARED_CREDENTIALS_FILE=str(
        tmp_path / "none"), AWS_EC2_METADATA_DISABLED="true", AWS_DEFAULT_REGION="us-east-1")
    completed = subprocess.run([sys.executable, "-m", "infra.deploy", "--stage", STAGE], cwd=ROOT, env=env,
                               capture_output=True, text=True, timeout=60)
    assert completed.returncode != 0
    assert "no AWS credentials found, nothing was packaged or deployed" in completed.stderr
    assert not completed.stdout


def test_deploy_uploads_the_zip_and_points_every_function_at_it(local_runtime, tmp_path):
    s3 = local_runtime.client("s3")
    zip_path = tmp_path / "deployment.zip"
    zip_path.write_bytes(b"PK-not-really")
    template = {"Resources": {
        "Fn": {"Type": "AWS::Serverless::Function", "Properties": {"CodeUri": "./deployment.zip"}},
        "Table": {"Type": "AWS::DynamoDB::Table", "Properties": {}},
    }}
    infra_deploy.ensure_bucket(s3, "stepflow-deploy-test", local_runtime.region)
    infra_deploy.ensure_bucket(s3, "stepflow-deploy-test", local_runtime.region)  # exists: nothing to do
    url = infra_deploy.upload_artifacts(s3, "stepflow-deploy-test", "stepflow-dev", template, zip_path,
                                        local_runtime.region)
    key = url.split(".amazonaws.com/", 1)[1]
    uploaded = json.loads(s3.get_object(Bucket="stepflow-deploy-test", Key=key)["Body"].read())
    code = uploaded["Resources"]["Fn"]["Properties"]["CodeUri"]
    assert code["Bucket"] == "stepflow-deploy-test" and code["Key"].startswith("stepflow-dev/")
    assert s3.get_object(Bucket="stepflow-deploy-test", Key=code["Key"])["Body"].read() == b"PK-not-really"
    assert template["Resources"]["Fn"]["Properties"]["CodeUri"] == "./deployment.zip"  # the input is untouched


def test_every_request_reaches_the_app_so_it_answers_404_405_and_415(infra, app_module):
    """API Gateway would answer an unknown path or a missing method itself (403 "Missing Authentication
    Token"): every route's resource gets an ANY method, `/` and `/{proxy+}` catch the rest, and what the
    gateway still answers itself is {"detail": ...}."""
    from chalicelib.api import routing
    from infra import api_routes

    assert (api_routes.CATCH_ALL, api_routes.ROUTES_HINT) == (routing.CATCH_ALL, routing.ROUTES_HINT)
    body = infra.template["Resources"]["RestAPI"]["Properties"]["DefinitionBody"]
    assert set(body["paths"]) == {*app_module.app.routes, "/", "/{proxy+}"}
    for path, item in body["paths"].items():
        method = item["x-amazon-apigateway-any-method"]
        target = method["x-amazon-apigateway-integration"]
        assert target["type"] == "aws_proxy" and "${APIHandler.Arn}" in target["uri"]["Fn::Sub"], path
        assert [p["name"] for p in method.get("parameters", [])] == [
            name.rstrip("+") for name in re.findall(r"{([\w+]+)}", path)], path
    responses = body["x-amazon-apigateway-gateway-responses"]
    assert {kind: r["statusCode"] for kind, r in responses.items()} == {
        "MISSING_AUTHENTICATION_TOKEN": 404, "UNSUPPORTED_MEDIA_TYPE": 415}
    for response in responses.values():
        assert set(json.loads(response["responseTemplates"]["application/json"])) == {"detail"}
