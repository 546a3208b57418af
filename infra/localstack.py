"""`make test-localstack`: runs the LocalStack integration tests when a LocalStack answers, says so when not.

The endpoint is $LOCALSTACK_ENDPOINT, else $AWS_ENDPOINT_URL, else http://localhost:4566. The tests
(tests/deploy/test_localstack.py) provision the infra part of the deployment template (tables, the
execution role, the state machines, the event bus) into LocalStack and drive the app's adapters against
it; they reach it through boto3's AWS_ENDPOINT_URL, so no code knows about LocalStack. Exit 0 with a
"skipped:" line when no LocalStack is reachable: the normal suite never depends on one.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from typing import Any

DEFAULT_ENDPOINT = "http://localhost:4566"
SERVICES = ("dynamodb", "stepfunctions", "iam", "sts", "events", "sqs", "lambda")


def endpoint() -> str:
    return (os.environ.get("LOCALSTACK_ENDPOINT") or os.environ.get("AWS_ENDPOINT_URL") or DEFAULT_ENDPOINT).rstrip("/")


def health(url: str, timeout: float = 3.0) -> dict | None:
    """LocalStack's /_localstack/health document, or None when nothing (or not LocalStack) answers."""
    try:
        with urllib.request.urlopen(f"{url}/_localstack/health", timeout=timeout) as response:
            document = json.loads(response.read())
    except (OSError, ValueError, urllib.error.URLError):
        return None
    return document if isinstance(document, dict) and "services" in document else None


# CloudFormation-only properties of AWS::DynamoDB::Table that CreateTable does not take.
TABLE_ONLY_PROPERTIES = ("PointInTimeRecoverySpecification", "TimeToLiveSpecification", "DeletionProtectionEnabled")


def resolve(value: Any, names: dict[str, str], pseudo: dict[str, str]) -> Any:
    """Resolves Ref / Fn::GetAtt / Fn::Sub against already created resources (names: logical id -> name or ARN)."""
    import re

    if isinstance(value, dict) and len(value) == 1:
        (key, arg), = value.items()
        if key == "Ref":
            return pseudo.get(arg) or names[arg]
        if key == "Fn::GetAtt":
            return names[f"{arg[0]}.{arg[1]}"]
        if key == "Fn::Sub":
            return re.sub(r"\$\{([^}]+)\}", lambda m: pseudo.get(m[1]) or names[m[1]], arg)
    if isinstance(value, dict):
        return {k: resolve(v, names, pseudo) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, names, pseudo) for v in value]
    return value


def apply_infra(template: dict[str, Any], client: Any, account: str, region: str) -> dict[str, str]:
    """Creates the infra part's tables, execution role, state machines, bus and queues through the APIs
    (a CloudFormation for just these types): what the stack creates, on an endpoint without SAM support.
    `client(service)` gives boto3 clients. Returns logical id (and `id.Arn`) -> physical name / ARN."""
    names: dict[str, str] = {}
    pseudo = {"AWS::Partition": "aws", "AWS::Region": region, "AWS::AccountId": account}
    resources = template["Resources"]
    order = ("AWS::DynamoDB::Table", "AWS::IAM::Role", "AWS::Events::EventBus", "AWS::SQS::Queue",
             "AWS::StepFunctions::StateMachine")
    for kind in order:
        for logical_id, resource in resources.items():
            if resource.get("Type") != kind:
                continue
            props = resource["Properties"]
            if kind == "AWS::DynamoDB::Table":
                ddb = client("dynamodb")
                request = {k: v for k, v in props.items() if k not in TABLE_ONLY_PROPERTIES}
                if "StreamSpecification" in request:  # CloudFormation leaves StreamEnabled implied
                    request["StreamSpecification"] = {"StreamEnabled": True, **request["StreamSpecification"]}
                created = ddb.create_table(**request)["TableDescription"]
                arn = created["TableArn"]
                if created.get("LatestStreamArn"):
                    names[f"{logical_id}.StreamArn"] = created["LatestStreamArn"]
                ddb.get_waiter("table_exists").wait(TableName=props["TableName"])
                if props.get("TimeToLiveSpecification"):
                    ddb.update_time_to_live(TableName=props["TableName"],
                                            TimeToLiveSpecification=props["TimeToLiveSpecification"])
                names[logical_id], names[f"{logical_id}.Arn"] = props["TableName"], arn
            elif kind == "AWS::IAM::Role":
                iam = client("iam")
                role_name = f"{logical_id}-{region}"[:64]
                document = resolve(props["AssumeRolePolicyDocument"], names, pseudo)
                arn = iam.create_role(RoleName=role_name, AssumeRolePolicyDocument=json.dumps(document))["Role"]["Arn"]
                for policy in props.get("Policies", []):
                    iam.put_role_policy(RoleName=role_name, PolicyName=policy["PolicyName"],
                                        PolicyDocument=json.dumps(resolve(policy["PolicyDocument"], names, pseudo)))
                names[logical_id], names[f"{logical_id}.Arn"] = role_name, arn
            elif kind == "AWS::Events::EventBus":
                arn = client("events").create_event_bus(Name=props["Name"])["EventBusArn"]
                names[logical_id], names[f"{logical_id}.Arn"] = props["Name"], arn
            elif kind == "AWS::SQS::Queue":
                sqs = client("sqs")
                url = sqs.create_queue(QueueName=props["QueueName"])["QueueUrl"]
                arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
                names[logical_id], names[f"{logical_id}.Arn"] = url, arn
            elif kind == "AWS::StepFunctions::StateMachine":
                definition = json.dumps(props["Definition"])
                for placeholder, value in props.get("DefinitionSubstitutions", {}).items():
                    definition = definition.replace("${" + placeholder + "}", resolve(value, names, pseudo))
                arn = client("stepfunctions").create_state_machine(
                    name=props["StateMachineName"], definition=definition, type=props["StateMachineType"],
                    roleArn=resolve(props["RoleArn"], names, pseudo))["stateMachineArn"]
                names[logical_id], names[f"{logical_id}.Arn"] = arn, arn
    return names


def main(argv: list[str] | None = None) -> int:
    url = endpoint()
    document = health(url)
    if document is None:
        print(f"skipped: no LocalStack at {url} (start one, e.g. `localstack start`, or set LOCALSTACK_ENDPOINT); "
              "the normal suite (make test) needs none")
        return 0
    services = document.get("services", {})
    states = ", ".join(f"{name}={services.get(name, 'absent')}" for name in SERVICES)
    print(f"LocalStack {document.get('version', '?')} ({document.get('edition', '?')}) at {url}: {states}")
    env = {
        **os.environ,
        "STEPFLOW_LOCALSTACK_ENDPOINT": url,
        "AWS_ENDPOINT_URL": url,
        "AWS_ACCESS_KEY_ID": os.environ.get("AWS_ACCESS_KEY_ID", "test"),
        "AWS_SECRET_ACCESS_KEY": os.environ.get("AWS_SECRET_ACCESS_KEY", "test"),
        "AWS_DEFAULT_REGION": os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
        "AWS_REGION": os.environ.get("AWS_REGION", os.environ.get("AWS_DEFAULT_REGION", "us-east-1")),
    }
    command = [sys.executable, "-m", "pytest", "tests/deploy/test_localstack.py", "-rs", *(argv or [])]
    return subprocess.call(command, env=env)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
