"""The deployment's resources on LocalStack: run by `make test-localstack`, skipped everywhere else.

The infra part of the template (infra/build.py) is created through the AWS APIs at the LocalStack
endpoint (boto3 reads AWS_ENDPOINT_URL), then the app's own adapters use it: the state machines the
stack creates are the ones the API finds and updates, lifecycle events reach the bus, and, when
LocalStack's Lambda works (it needs Docker), a bundled workflow runs end to end on the packaged zip.
A LocalStack service that cannot work here (offline, its DynamoDB downloads Java; its Lambda needs
Docker) skips the tests that need it, saying which; a refusal of our requests (4xx) fails them.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

ENDPOINT = os.environ.get("STEPFLOW_LOCALSTACK_ENDPOINT")
pytestmark = pytest.mark.skipif(not ENDPOINT, reason="no LocalStack endpoint: `make test-localstack` runs these")

ROOT = Path(__file__).resolve().parents[2]
REGION = os.environ.get("AWS_DEFAULT_REGION", "us-east-1")
ZIP = ROOT / "build" / "package" / "dev" / "deployment.zip"


def unavailable(exc: BaseException) -> bool:
    """True when LocalStack cannot serve the call here (not reachable, 5xx, not implemented), not our fault."""
    from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError

    if isinstance(exc, (EndpointConnectionError, ReadTimeoutError, ConnectionError)):
        return True
    if isinstance(exc, ClientError):
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        code = exc.response.get("Error", {}).get("Code", "")
        return status >= 500 or code in ("InternalFailure", "NotImplemented", "InternalError")
    return False


@pytest.fixture(scope="module")
def aws() -> Any:
    import boto3
    from botocore.config import Config

    session = boto3.session.Session(region_name=REGION)
    config = Config(retries={"max_attempts": 2}, read_timeout=60)
    return lambda service: session.client(service, config=config)


@pytest.fixture(scope="module")
def stack(aws) -> dict[str, Any]:
    """The infra part of the dev template, under a prefix of its own, created at the endpoint."""
    from infra import build as infra_build
    from infra.localstack import apply_infra

    config = infra_build.chalice_config()
    prefix = f"stepflow-ls{uuid.uuid4().hex[:6]}-"
    config["stages"]["dev"]["environment_variables"]["STEPFLOW_RESOURCE_PREFIX"] = prefix
    built = infra_build.build("dev", config=config)
    account = aws("sts").get_caller_identity()["Account"]
    try:
        names = apply_infra(built.template, aws, account, REGION)
    except Exception as exc:  # noqa: BLE001 - classified just below
        if unavailable(exc):
            pytest.skip(f"LocalStack at {ENDPOINT} cannot create the stack's resources here: {exc}")
        raise
    return {"build": built, "names": names, "account": account, "prefix": prefix}


def test_tables_are_created_as_declared(stack, aws):
    ddb = aws("dynamodb")
    for logical_id, resource in stack["build"].template["Resources"].items():
        if resource.get("Type") != "AWS::DynamoDB::Table":
            continue
        declared = resource["Properties"]
        table = ddb.describe_table(TableName=declared["TableName"])["Table"]
        assert table["KeySchema"] == declared["KeySchema"], logical_id
        assert {i["IndexName"] for i in table.get("GlobalSecondaryIndexes", [])} == {
            i["IndexName"] for i in declared.get("GlobalSecondaryIndexes", [])}


def test_the_api_adapter_finds_and_updates_the_stack_s_state_machines(stack, aws):
    from chalicelib.aws.state_machines import StateMachines
    from infra import build as infra_build

    sfn = aws("stepfunctions")
    role = stack["names"]["StateMachineRole.Arn"]
    machines = StateMachines(sfn, role, stack["build"].stage.machine_prefix)
    for workflow in infra_build.bundled_state_machines():
        logical_id = f"{infra_build.cfn_name(workflow)}StateMachine"
        created = stack["names"][logical_id]
        assert machines.arn_for(workflow) == created
        bound = json.loads(sfn.describe_state_machine(stateMachineArn=created)["definition"])
        assert machines.ensure(workflow, bound) == created  # an update of the same machine, not a new one


def test_lifecycle_events_reach_the_bus(stack, aws):
    from chalicelib.aws.events import EventPublisher

    events = aws("events")
    bus = stack["names"]["EventBus"]
    assert events.describe_event_bus(Name=bus)["Name"] == bus
    result = events.put_events(Entries=[{"Source": "stepflow", "DetailType": "InstanceStarted",
                                         "Detail": json.dumps({"id": "i-1"}), "EventBusName": bus}])
    assert result["FailedEntryCount"] == 0
    EventPublisher(events, bus).publish("InstanceStarted", {"id": "i-2"})  # best effort: must not raise


def test_a_bundled_workflow_runs_on_the_packaged_zip(stack, aws):
    """Needs LocalStack's Lambda (Docker) and `make package` (the zip)."""
    from chalicelib import resources
    from chalicelib.config import Settings
    from chalicelib.examples import bundled
    from chalicelib.wiring import Services
    from infra.localstack import resolve

    if not ZIP.exists():
        pytest.skip("no build/package/dev/deployment.zip: run `make package` first")
    built, names = stack["build"], stack["names"]
    pseudo = {"AWS::Partition": "aws", "AWS::Region": REGION, "AWS::AccountId": stack["account"]}
    step_runner = built.template["Resources"]["StepRunner"]["Properties"]
    env = resolve(step_runner["Environment"]["Variables"], names, pseudo)
    lam, iam = aws("lambda"), aws("iam")
    trust = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
    role = iam.create_role(RoleName=f"{stack['prefix']}lambda", AssumeRolePolicyDocument=json.dumps(trust))
    try:
        for function in resources.FUNCTIONS:
            lam.create_function(FunctionName=f"{stack['prefix']}{function.name}", Runtime="python3.12",
                                Role=role["Role"]["Arn"], Handler=function.handler, Timeout=60, MemorySize=512,
                                Code={"ZipFile": ZIP.read_bytes()}, Environment={"Variables": env})
            lam.get_waiter("function_active_v2").wait(FunctionName=f"{stack['prefix']}{function.name}")
    except Exception as exc:  # noqa: BLE001
        if unavailable(exc) or "docker" in str(exc).lower():
            pytest.skip(f"LocalStack's Lambda cannot run functions here (it needs Docker): {exc}")
        raise
    services = Services(Settings.from_env({**env, "AWS_REGION": REGION}))
    registered = services.definitions.register(bundled()["image_pipeline"], created_by="localstack")
    assert registered["state_machine_arn"] == names["ImagePipelineStateMachine"]
    from chalicelib.service.requests import StartInstance

    started, _ = services.instances.start(StartInstance.model_validate(
        {"definition_name": "image_pipeline", "input_data": {"prompt": "a cat"}}))
    deadline = time.monotonic() + 180
    while True:
        instance = services.instances.get(started["id"])
        if instance["status"] not in ("pending", "running") or time.monotonic() > deadline:
            break
        time.sleep(2)
    assert instance["status"] == "completed", instance
