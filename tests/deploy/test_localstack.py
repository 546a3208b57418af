"""The packaged stage deployed on LocalStack and used over HTTP: run by `make test-localstack`, skipped elsewhere.

The module's fixture deploys what `make package` built (build/package/dev: sam.json and deployment.zip) as
`make deploy` deploys to AWS (infra.deploy: the zip and the template to an S3 bucket, a CloudFormation
change set through the SAM transform), under a stack name and resource prefix of this run's own, so runs
repeat on one LocalStack, and deletes the stack afterwards. LocalStack runs the functions from the zip (the
`process` executor, infra/localstack_executor) and DynamoDB on DynamoDB Local. The tests use the service as
a client does, over HTTP through API Gateway with a bearer token; Step Functions calls the step runner
(lambda:invoke) and the task registrar (lambda:invoke.waitForTaskToken) from the same zip.
"""

from __future__ import annotations

import json
import os
import secrets
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ENDPOINT = os.environ.get("STEPFLOW_LOCALSTACK_ENDPOINT", "").rstrip("/")
pytestmark = pytest.mark.skipif(not ENDPOINT, reason="no LocalStack endpoint: `make test-localstack` runs these")

# Set by infra/localstack.py when it started this LocalStack and stops it after the run.
DISPOSABLE = os.environ.get("STEPFLOW_LOCALSTACK_DISPOSABLE") == "1"
ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "build" / "package" / "dev"
EXAMPLES = ROOT / "chalicelib" / "examples"
ISSUER, AUDIENCE = "https://issuer.localstack.test", "stepflow-localstack"
TENANT = "acme"
FINISHED = ("completed", "failed", "canceled")


@dataclass
class Deployed:
    stack: str
    prefix: str
    template: dict[str, Any]
    outputs: dict[str, str]
    stage_url: str  # the API Gateway stage, path-style (what EndpointURL names on AWS)
    api_prefix: str  # /workflows
    secret: str
    session: Any

    def client(self, service: str) -> Any:
        return self.session.client(service)


class Api:
    """HTTP to the deployed API with a bearer token, as a client calls it."""

    def __init__(self, deployed: Deployed) -> None:
        from chalicelib.auth import mint

        self.base = f"{deployed.stage_url}{deployed.api_prefix}"
        self.token = mint(deployed.secret, "alice", roles=["admin"], groups=["managers", "finance"], tenant=TENANT,
                          ttl_seconds=3600, issuer=ISSUER, audience=AUDIENCE)

    def call(self, method: str, path: str, body: Any = None, *, content_type: str = "application/json",
             token: str | None = "") -> tuple[int, Any]:
        data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
        headers = {"Content-Type": content_type}
        if token is not None:
            headers["Authorization"] = f"Bearer {token or self.token}"
        request = urllib.request.Request(f"{self.base}{path}", data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=120) as response:
                status, raw = response.status, response.read()
        except urllib.error.HTTPError as exc:
            status, raw = exc.code, exc.read()
        try:
            return status, json.loads(raw or b"null")
        except ValueError:
            return status, raw.decode("utf-8", "replace")

    def register(self, example: str) -> dict[str, Any]:
        status, body = self.call("POST", "/definitions", (EXAMPLES / f"{example}.yaml").read_bytes(),
                                 content_type="application/x-yaml")
        assert status in (200, 201), (status, body)
        return body

    def wait_for_instance(self, instance_id: str, timeout: float = 180) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            status, body = self.call("GET", f"/instances/{instance_id}")
            assert status == 200, body
            if body["status"] in FINISHED:
                return body
            assert time.monotonic() < deadline, f"instance {instance_id} did not finish: {body}"
            time.sleep(0.5)

    def wait_for_task(self, instance_id: str, step: str, timeout: float = 120) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            status, body = self.call("GET", f"/tasks?{urllib.parse.urlencode({'instance_id': instance_id})}")
            assert status == 200, body
            found = [t for t in body["items"] if t["step_name"] == step and t["status"] == "pending"]
            if found:
                return found[0]
            assert time.monotonic() < deadline, f"step {step} never waited: {body}"
            time.sleep(0.5)


@pytest.fixture(scope="module")
def deployed() -> Any:
    from botocore.exceptions import WaiterError

    from infra import build as infra_build
    from infra import deploy

    template_path, zip_path = PACKAGE / "sam.json", PACKAGE / "deployment.zip"
    if not (template_path.exists() and zip_path.exists()):
        pytest.fail(f"no {template_path.relative_to(ROOT)} or deployment.zip: `make test-localstack` packages first")
    # The template of the dev stage, with the dev prefix made this run's: every name and ARN pattern in it.
    dev_prefix = infra_build.resolve_stage("dev").prefix
    run = uuid.uuid4().hex[:8]
    prefix, stack = f"stepflow-ls{run}-", f"stepflow-ls{run}"
    template = json.loads(template_path.read_text(encoding="utf-8").replace(dev_prefix, prefix))

    session, account, region = deploy.aws_session()
    s3, cfn = session.client("s3"), session.client("cloudformation")
    bucket = deploy.default_bucket(account, region)
    deploy.ensure_bucket(s3, bucket, region)
    url = deploy.upload_artifacts(s3, bucket, stack, template, zip_path, region)
    secret = secrets.token_urlsafe(32)
    parameters = deploy.stack_parameters({
        "STEPFLOW_AUTH": "hs256", "STEPFLOW_JWT_ISSUER": ISSUER, "STEPFLOW_JWT_AUDIENCE": AUDIENCE,
        "STEPFLOW_JWT_SECRET": secret, "STEPFLOW_SERVER_SECRET": secrets.token_urlsafe(32),
    }, updating=False, store=deploy.SecretStore(session.client("secretsmanager"), prefix))
    try:
        outputs = deploy.deploy_stack(cfn, stack, url, "dev", parameters, poll_seconds=1)
        # API Gateway's stage is the path of the endpoint URL; LocalStack serves it path-style on its port.
        stage = urllib.parse.urlsplit(outputs["EndpointURL"]).path.strip("/")
        api_prefix = infra_build.resolve_stage("dev").environment.get("STEPFLOW_API_PREFIX", "/workflows")
        stage_url = f"{ENDPOINT}/restapis/{outputs['RestAPIId']}/{stage}/_user_request_"
        yield Deployed(stack, prefix, template, outputs, stage_url, api_prefix, secret, session)
    finally:
        # On a LocalStack that outlives the run (LOCALSTACK_ENDPOINT); `make test-localstack` throws its own
        # away. A failure here must not hide the test's own.
        if not DISPOSABLE and deploy.stack_status(cfn, stack) is not None:
            cfn.delete_stack(StackName=stack)
            try:
                cfn.get_waiter("stack_delete_complete").wait(StackName=stack,
                                                             WaiterConfig={"Delay": 1, "MaxAttempts": 300})
            except WaiterError as exc:
                warnings.warn(f"stack {stack} was not deleted: {exc}", stacklevel=1)


@pytest.fixture(scope="module")
def api(deployed) -> Api:
    return Api(deployed)


def resources_of(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {lid: r["Properties"] for lid, r in template["Resources"].items() if r.get("Type") == kind}


def test_every_resource_of_the_template_is_created(deployed):
    cfn = deployed.client("cloudformation")
    created = {r["LogicalResourceId"]: r["ResourceStatus"]
               for page in cfn.get_paginator("list_stack_resources").paginate(StackName=deployed.stack)
               for r in page["StackResourceSummaries"]}
    # The stage trusts the test's HS256 issuer (JwtIssuer set), so the resources only a stage with its own
    # Cognito pool has (Condition UseCognito) are rightly absent; so is a stage secret the deployment
    # named by ARN (the server secret, given in the deploying shell) rather than had generated.
    from infra import stage_secrets

    given = {p["ParameterKey"] for p in cfn.describe_stacks(StackName=deployed.stack)["Stacks"][0]["Parameters"]
             if p.get("ParameterValue")}
    named = {lid for lid, (parameter, *_) in stage_secrets.GENERATED.items() if parameter in given}
    assert named == {"ServerSecret"}
    wanted = {name for name, resource in deployed.template["Resources"].items()
              if resource.get("Condition") != "UseCognito" and name not in named}
    assert wanted <= set(created)
    assert {lid: status for lid, status in created.items() if status != "CREATE_COMPLETE"} == {}

    ddb = deployed.client("dynamodb")
    for logical_id, declared in resources_of(deployed.template, "AWS::DynamoDB::Table").items():
        table = ddb.describe_table(TableName=declared["TableName"])["Table"]
        assert table["KeySchema"] == declared["KeySchema"], logical_id
        assert {i["IndexName"] for i in table.get("GlobalSecondaryIndexes", [])} == {
            i["IndexName"] for i in declared.get("GlobalSecondaryIndexes", [])}, logical_id

    lam = deployed.client("lambda")
    for logical_id, declared in resources_of(deployed.template, "AWS::Serverless::Function").items():
        function = lam.get_function_configuration(FunctionName=declared["FunctionName"])
        assert (function["Runtime"], function["Handler"], function["State"]) == (
            declared["Runtime"], declared["Handler"], "Active"), logical_id


def test_a_machine_workflow_runs_on_the_packaged_functions(deployed, api):
    registered = api.register("image_pipeline")
    # Names are per tenant: the client's tenant registers its own `image_pipeline`, whose state machine
    # sits beside the template's (the shared example's), under the stack's prefix.
    shared = deployed.outputs["ImagePipelineStateMachineArn"]
    assert registered["state_machine_arn"].startswith(shared + "-"), (registered["state_machine_arn"], shared)
    status, started = api.call("POST", "/instances", {"definition_name": "image_pipeline",
                                                      "input_data": {"prompt": "a cat"}})
    assert status == 201, started
    done = api.wait_for_instance(started["id"])
    assert done["status"] == "completed", done
    assert done["output"]["refined"] == "s3://bucket/a cat.png"
    assert [(s["step_name"], s["status"]) for s in done["step_history"]] == [
        ("generate", "succeeded"), ("refine", "succeeded")]
    status, history = api.call("GET", f"/instances/{started['id']}/history")
    assert status == 200, history
    assert "ExecutionSucceeded" in {event["type"] for event in history["events"]}


def test_a_human_step_waits_for_its_task_and_resumes_when_completed(api):
    api.register("expense_approval")
    status, started = api.call("POST", "/instances", {"definition_name": "expense_approval", "input_data": {
        "requester": "alice", "manager": "bob", "amount": 120, "description": "train tickets"}})
    assert status == 201, started
    task = api.wait_for_task(started["id"], "manager_approval")
    status, body = api.call("GET", f"/instances/{started['id']}")
    assert status == 200 and body["status"] == "waiting", body
    status, completed = api.call("POST", f"/tasks/{task['id']}/complete", {
        "output_data": {"approved": True, "comments": "fine"}})
    assert status == 200 and completed["status"] == "completed", completed
    done = api.wait_for_instance(started["id"])
    assert done["status"] == "completed", done
    assert {s["step_name"]: s["status"] for s in done["step_history"]}["process"] == "succeeded"


def test_the_deploy_registers_the_examples_through_the_api(deployed, api):
    """What `make deploy` does once the stack is up, with the token it mints from the stage's HS256 secret."""
    from chalicelib.examples import FOLDER
    from infra import deploy

    # The API client's tenant: definition names are the service's, whichever tenant took one first.
    token = deploy.seeding_token(None, {}, {"STEPFLOW_AUTH": "hs256", "STEPFLOW_JWT_SECRET": deployed.secret,
                                  "STEPFLOW_JWT_ISSUER": ISSUER, "STEPFLOW_JWT_AUDIENCE": AUDIENCE,
                                  "STEPFLOW_SEED_TENANT": TENANT})
    assert token is not None
    lines = deploy.register_examples(deployed.stage_url, deployed.api_prefix, token)
    assert sorted(line.split(":")[0] for line in lines) == sorted(path.stem for path in FOLDER.glob("*.yaml"))
    again = deploy.register_examples(deployed.stage_url, deployed.api_prefix, token)
    assert {line.split(": ")[1] for line in again} == {"unchanged"}


def test_the_api_refuses_bad_requests_through_api_gateway(api):
    status, body = api.call("GET", "/definitions", token=None)
    assert status == 401 and "authentication required" in body["detail"]
    status, body = api.call("POST", "/definitions", {"name": "broken", "version": "1.0.0", "steps": []})
    assert status == 422 and body["detail"]["issues"][0]["location"] == "steps", body
    status, body = api.call("GET", f"/instances/{uuid.uuid4()}")
    assert status == 404, body


def test_the_api_adapter_finds_and_updates_the_stack_s_state_machines(deployed):
    from chalicelib.aws.state_machines import StateMachines
    from infra import build as infra_build

    sfn = deployed.client("stepfunctions")
    machines = StateMachines(sfn, deployed.outputs["StateMachineRoleArn"], deployed.prefix)
    for workflow in infra_build.bundled_state_machines():
        created = deployed.outputs[f"{infra_build.cfn_name(workflow)}StateMachineArn"]
        assert machines.arn_for(workflow) == created
        bound = json.loads(sfn.describe_state_machine(stateMachineArn=created)["definition"])
        assert "${" not in json.dumps(bound) and f":function:{deployed.prefix}" in json.dumps(bound)
        assert machines.ensure(workflow, bound) == created  # an update of the same machine, not a new one


def test_lifecycle_events_reach_the_bus(deployed):
    from chalicelib.aws.events import EventPublisher

    events = deployed.client("events")
    bus = deployed.outputs["EventBusName"]
    assert events.describe_event_bus(Name=bus)["Name"] == bus
    result = events.put_events(Entries=[{"Source": "stepflow", "DetailType": "InstanceStarted",
                                         "Detail": json.dumps({"id": "i-1"}), "EventBusName": bus}])
    assert result["FailedEntryCount"] == 0
    EventPublisher(events, bus).publish("InstanceStarted", {"id": "i-2"})  # best effort: must not raise


def test_the_scheduled_sweep_runs_against_the_stack(deployed):
    """The function the schedule invokes, invoked with the event EventBridge sends it."""
    lam = deployed.client("lambda")
    event = {"version": "0", "id": str(uuid.uuid4()), "detail-type": "Scheduled Event", "source": "aws.events",
             "account": "000000000000", "time": "2026-01-01T00:00:00Z", "region": lam.meta.region_name,
             "resources": [], "detail": {}}
    response = lam.invoke(FunctionName=f"{deployed.prefix}overdue_sweep", Payload=json.dumps(event).encode())
    payload = json.loads(response["Payload"].read())
    assert "FunctionError" not in response, payload
    assert isinstance(payload, dict) and payload and all(isinstance(v, int) for v in payload.values()), payload
