"""Deploys a stage to AWS with CloudFormation, or tears it down (make deploy / make destroy STAGE=...).

One path, in this order, stopping at the first problem with a message that says what to do:
1. credentials and region: boto3's usual chain (AWS_PROFILE, AWS_ACCESS_KEY_ID..., SSO), checked with
   sts:GetCallerIdentity before anything is built;
2. `infra.package` for the stage (the merged template and deployment.zip), then cfn-lint on the template;
3. the zip and the template go to an artifact bucket (created when missing; --bucket to choose one);
4. a CloudFormation change set on stack `stepflow-<stage>` (CAPABILITY_IAM, CAPABILITY_AUTO_EXPAND for the
   SAM transform), executed and waited for; the stack's outputs are printed. Its parameters come from
   the deploying shell's STEPFLOW_* variables: none is needed (the stack creates a Cognito user pool
   and generates the server and webhook signing secrets in Secrets Manager; a secret given in the shell
   is stored there and the stack gets its ARN); STEPFLOW_JWT_ISSUER and the rest name an existing
   identity provider instead (infra/identity.py). An update keeps the previous value of any not given;
5. the bundled example workflows are registered through the deployed API with an admin ID token of
   the stage's pool (infra/token.py `seed_token`), or $STEPFLOW_SEED_TOKEN for another provider, so
   the definitions their state machines run are stored (registering is idempotent);
6. how to get a token for the API is printed.

--destroy deletes the stack, then the state machines the API created at runtime under the stage's prefix.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from infra import build as infra_build

ROOT = infra_build.ROOT
CAPABILITIES = ["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"]
WAIT_DELAY = 10
WAIT_ATTEMPTS = 180  # 30 minutes


class DeployError(SystemExit):
    def __init__(self, message: str):
        super().__init__(f"infra.deploy: {message}")


def stack_name(stage: str) -> str:
    return f"stepflow-{stage}"


def default_bucket(account: str, region: str) -> str:
    return f"stepflow-deploy-{account}-{region}"


# --------------------------------------------------------------------------------------- credentials


def aws_session(region: str | None = None) -> tuple[Any, str, str]:
    """(boto3 session, account id, region), or a DeployError that says what is missing."""
    import boto3
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError

    session = boto3.session.Session(region_name=region) if region else boto3.session.Session()
    if session.get_credentials() is None:
        raise DeployError(
            "no AWS credentials found, nothing was packaged or deployed. Give boto3 some: `aws configure`, "
            "`aws sso login --profile NAME` then AWS_PROFILE=NAME, or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY "
            "(see docs/deploy.md).")
    if not session.region_name:
        raise DeployError("no AWS region: set AWS_REGION (e.g. AWS_REGION=us-east-1) or pass REGION=... to make")
    sts = session.client("sts", config=Config(connect_timeout=5, read_timeout=10, retries={"max_attempts": 1}))
    try:
        account = sts.get_caller_identity()["Account"]
    except (BotoCoreError, ClientError) as exc:
        raise DeployError(f"AWS did not accept these credentials or could not be reached ({exc}); "
                          "nothing was deployed") from exc
    return session, account, session.region_name


# ------------------------------------------------------------------------------------------ artifacts


def ensure_bucket(s3: Any, bucket: str, region: str) -> None:
    from botocore.exceptions import ClientError

    try:
        s3.head_bucket(Bucket=bucket)
        return
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchBucket", "NotFound"):
            raise DeployError(f"cannot use bucket {bucket}: {exc}") from exc
    print(f"infra.deploy: creating artifact bucket {bucket}")
    kwargs: dict[str, Any] = {"Bucket": bucket}
    if region != "us-east-1":
        kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
    s3.create_bucket(**kwargs)
    s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration={
        "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True, "RestrictPublicBuckets": True})


def with_code_location(template: dict[str, Any], bucket: str, key: str) -> dict[str, Any]:
    """A copy of the template whose functions' local CodeUri (./deployment.zip) points at s3://bucket/key."""
    template = json.loads(json.dumps(template))
    for resource in template["Resources"].values():
        if resource.get("Type") == "AWS::Serverless::Function" and isinstance(
                resource["Properties"].get("CodeUri"), str):
            resource["Properties"]["CodeUri"] = {"Bucket": bucket, "Key": key}
    return template


def upload_artifacts(s3: Any, bucket: str, prefix: str, template: dict[str, Any], zip_path: Path,
                     region: str) -> str:
    """Uploads the zip (content-addressed), points every function's CodeUri at it, uploads the template;
    returns the template's URL (templates over 51,200 bytes cannot be passed inline)."""
    data = zip_path.read_bytes()
    zip_key = f"{prefix}/{hashlib.sha256(data).hexdigest()}.zip"
    s3.put_object(Bucket=bucket, Key=zip_key, Body=data)
    template = with_code_location(template, bucket, zip_key)
    body = json.dumps(template, indent=1).encode("utf-8")
    template_key = f"{prefix}/{hashlib.sha256(body).hexdigest()}.template.json"
    s3.put_object(Bucket=bucket, Key=template_key, Body=body)
    host = "s3.amazonaws.com" if region == "us-east-1" else f"s3.{region}.amazonaws.com"
    return f"https://{bucket}.{host}/{template_key}"


def lint(template_path: Path) -> None:
    linter = Path(sys.executable).parent / "cfn-lint"
    if not linter.exists():
        print("infra.deploy: cfn-lint not installed beside this Python; skipping the lint", file=sys.stderr)
        return
    completed = subprocess.run([str(linter), "--non-zero-exit-code", "error", str(template_path)])
    if completed.returncode != 0:
        raise DeployError(f"cfn-lint found errors in {template_path}; nothing was deployed")


# ------------------------------------------------------------------------------------- CloudFormation


def stack_status(cfn: Any, name: str) -> str | None:
    from botocore.exceptions import ClientError

    try:
        return cfn.describe_stacks(StackName=name)["Stacks"][0]["StackStatus"]
    except ClientError as exc:
        if "does not exist" in str(exc):
            return None
        raise


def failure_reasons(cfn: Any, name: str, limit: int = 15) -> str:
    events = cfn.describe_stack_events(StackName=name)["StackEvents"]
    failed = [e for e in events if e.get("ResourceStatus", "").endswith("FAILED")][:limit]
    return "\n".join(f"  {e['LogicalResourceId']}: {e.get('ResourceStatusReason', '')}" for e in failed)


# A secret's value in the deploying shell -> its minimum length in bytes (None: HS256's). Its ARN goes to the
# stack parameter whose variable is <name>_ARN.
SHELL_SECRETS: dict[str, int | None] = {"STEPFLOW_JWT_SECRET": None, "STEPFLOW_SERVER_SECRET": 32,
                                        "STEPFLOW_WEBHOOK_SECRET": 16}


class SecretStore:
    """Where a secret given in the deploying shell goes: a Secrets Manager secret named after the stage
    (created, or given a new value), whose ARN becomes the stack parameter; and the length of a secret
    named by ARN, when the deploying identity may read it."""

    def __init__(self, client: Any, prefix: str):
        self._sm, self._prefix = client, prefix

    def put(self, variable: str, value: str) -> str:
        name = f"{self._prefix}{variable.removeprefix('STEPFLOW_').lower().replace('_', '-')}-given"
        try:
            return str(self._sm.create_secret(Name=name, SecretString=value,
                                              Description=f"Stepflow: {variable} from the deploying shell")["ARN"])
        except self._sm.exceptions.ResourceExistsException:
            return str(self._sm.put_secret_value(SecretId=name, SecretString=value)["ARN"])

    def length(self, arn: str) -> int | None:
        try:
            value = self._sm.get_secret_value(SecretId=arn).get("SecretString")
        except Exception:  # noqa: BLE001 - not readable by the deployer: the function checks it at cold start
            return None
        return len(value.encode()) if isinstance(value, str) else None


def stack_parameters(env: Mapping[str, str], *, updating: bool, own_pool: bool = False,
                     store: SecretStore | None = None, previous: set[str] | None = None) -> list[dict[str, Any]]:
    """The stack's parameters from the deploying shell's variables (infra/build.py PARAMETERS).

    None is required: without STEPFLOW_JWT_ISSUER the stack's own user pool signs the tokens, and the
    stack generates the server and webhook signing secrets in Secrets Manager (an update keeps the stack's
    value of any parameter not given). Secrets reach the stack by ARN only: STEPFLOW_<NAME>_ARN names an
    existing secret; a value in STEPFLOW_<NAME> is stored in Secrets Manager by `store` and its ARN passed.
    An existing provider must be named whole, and a secret the app would refuse to start with is refused
    here. `own_pool` clears a provider an earlier deploy named (an empty variable cannot: it means "keep
    the previous value"). `previous`: the parameters the stack has now (only those can be kept).
    """
    from chalicelib.auth import MIN_HS256_SECRET_BYTES

    given = {variable: env.get(variable) or "" for variable, _ in infra_build.PARAMETERS.values()}
    cleared: set[str] = set()
    if own_pool:
        if given["STEPFLOW_JWT_ISSUER"]:
            raise DeployError("--own-pool (OWN_POOL=1) and STEPFLOW_JWT_ISSUER contradict each other; nothing was "
                              "packaged or deployed")
        cleared = {"JwtIssuer", "JwtAudience", "JwksUrl", "JwtSecretArn"}
        given["STEPFLOW_AUTH"] = "jwks"
    values = {variable: env.get(variable) or "" for variable in SHELL_SECRETS}
    # An update that names no provider keeps the stack's: CloudFormation's Rules check the values it ends with.
    problems = provider_problems({**given, **values}) if not updating or given["STEPFLOW_JWT_ISSUER"] or own_pool \
        else []
    for variable, least in SHELL_SECRETS.items():
        minimum = least or MIN_HS256_SECRET_BYTES
        arn_variable = variable + "_ARN"
        if values[variable] and given[arn_variable]:
            problems.append(f"set {variable} or {arn_variable}, not both")
        elif values[variable] and len(values[variable].encode()) < minimum:
            problems.append(f"{variable} must be at least {minimum} bytes")
        elif given[arn_variable] and store is not None:
            length = store.length(given[arn_variable])
            if length is not None and length < minimum:
                problems.append(f"the secret {arn_variable} names must be at least {minimum} bytes")
    if problems:
        raise DeployError("; ".join(problems) + " (docs/deploy.md, 'Who may call the API'); nothing was packaged "
                          "or deployed")
    for variable, value in values.items():
        if value:
            if store is None:
                raise DeployError(f"{variable} is given but there is no Secrets Manager to keep it in; name a secret "
                                  f"with {variable}_ARN instead")
            given[variable + "_ARN"] = store.put(variable, value)
            print(f"infra.deploy: stored {variable} in Secrets Manager; the stack gets its ARN")
    found = []
    for parameter, (variable, _) in infra_build.PARAMETERS.items():
        if given[variable] or parameter in cleared:
            found.append({"ParameterKey": parameter, "ParameterValue": given[variable]})
        elif updating and (previous is None or parameter in previous):
            found.append({"ParameterKey": parameter, "UsePreviousValue": True})
    return found


def provider_problems(given: Mapping[str, str]) -> list[str]:
    """The template's Rules (infra/identity.py), checked before anything is built."""
    mode = given.get("STEPFLOW_AUTH") or "jwks"
    if not given.get("STEPFLOW_JWT_ISSUER"):
        stray = [v for v in ("STEPFLOW_JWT_AUDIENCE", "STEPFLOW_JWKS_URL", "STEPFLOW_JWT_SECRET",
                             "STEPFLOW_JWT_SECRET_ARN") if given.get(v)]
        if stray:
            return [f"{', '.join(stray)} describe an existing identity provider: set STEPFLOW_JWT_ISSUER too, or "
                    "unset them to use the stage's own user pool"]
        if mode != "jwks":
            return ["the stage's own user pool signs RS256 tokens: STEPFLOW_AUTH must be jwks (or name another "
                    "provider with STEPFLOW_JWT_ISSUER)"]
        return []
    problems = []
    if not given.get("STEPFLOW_JWT_AUDIENCE"):
        problems.append("set STEPFLOW_JWT_AUDIENCE (the 'aud' of the provider's tokens) with STEPFLOW_JWT_ISSUER")
    if mode == "jwks" and not given.get("STEPFLOW_JWKS_URL"):
        problems.append("set STEPFLOW_JWKS_URL (the provider's JWKS) with STEPFLOW_JWT_ISSUER")
    if mode == "hs256" and not (given.get("STEPFLOW_JWT_SECRET") or given.get("STEPFLOW_JWT_SECRET_ARN")):
        problems.append("set STEPFLOW_JWT_SECRET (or STEPFLOW_JWT_SECRET_ARN) with STEPFLOW_AUTH=hs256")
    return problems


def deploy_stack(cfn: Any, name: str, template_url: str, stage: str,
                 parameters: list[dict[str, Any]] | None = None, *, poll_seconds: int = WAIT_DELAY) -> dict[str, str]:
    """Creates or updates the stack through a change set and waits for it (polling every poll_seconds)."""
    status = stack_status(cfn, name)
    if status == "ROLLBACK_COMPLETE":  # a failed first create can only be deleted
        print(f"infra.deploy: {name} is ROLLBACK_COMPLETE after a failed create; deleting it first")
        cfn.delete_stack(StackName=name)
        cfn.get_waiter("stack_delete_complete").wait(StackName=name)
        status = None
    change_set_type = "CREATE" if status is None else "UPDATE"
    change_set = f"stepflow-{int(time.time())}"
    cfn.create_change_set(StackName=name, ChangeSetName=change_set, ChangeSetType=change_set_type,
                          TemplateURL=template_url, Capabilities=CAPABILITIES, Parameters=parameters or [],
                          Tags=[{"Key": "stepflow:stage", "Value": stage}])
    try:
        cfn.get_waiter("change_set_create_complete").wait(
            StackName=name, ChangeSetName=change_set,
            WaiterConfig={"Delay": min(5, poll_seconds), "MaxAttempts": 600 // min(5, poll_seconds)})
    except Exception as exc:  # noqa: BLE001 - the waiter's error hides the reason; describe says it
        described = cfn.describe_change_set(StackName=name, ChangeSetName=change_set)
        reason = described.get("StatusReason", "")
        if "didn't contain changes" in reason or "No updates" in reason:
            print(f"infra.deploy: {name} is already up to date")
            cfn.delete_change_set(StackName=name, ChangeSetName=change_set)
            return outputs(cfn, name)
        raise DeployError(f"change set {change_set} failed: {reason}") from exc
    print(f"infra.deploy: executing change set {change_set} ({change_set_type}) on {name}; this takes a few minutes")
    cfn.execute_change_set(StackName=name, ChangeSetName=change_set)
    waiter = "stack_create_complete" if change_set_type == "CREATE" else "stack_update_complete"
    try:
        cfn.get_waiter(waiter).wait(StackName=name, WaiterConfig={
            "Delay": poll_seconds, "MaxAttempts": WAIT_ATTEMPTS * WAIT_DELAY // poll_seconds})
    except Exception as exc:  # noqa: BLE001
        raise DeployError(f"{name} did not deploy ({stack_status(cfn, name)}):\n{failure_reasons(cfn, name)}") from exc
    return outputs(cfn, name)


def outputs(cfn: Any, name: str) -> dict[str, str]:
    stack = cfn.describe_stacks(StackName=name)["Stacks"][0]
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}


# ------------------------------------------------------------------------------------------- seeding


def register_examples(endpoint: str, api_prefix: str, token: str) -> list[str]:
    """POSTs every bundled example to the deployed API (the definitions their state machines run)."""
    from chalicelib.examples import FOLDER

    base = endpoint.rstrip("/") + "/" + api_prefix.strip("/")
    lines = []
    for path in sorted(FOLDER.glob("*.yaml")):
        request = urllib.request.Request(f"{base}/definitions", data=path.read_bytes(), method="POST",
                                         headers={"Content-Type": "application/x-yaml",
                                                  "Authorization": f"Bearer {token}"})
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                body = json.loads(response.read() or b"{}")
            lines.append(f"{body.get('name', path.stem)}: {'registered' if response.status == 201 else 'unchanged'}")
        except urllib.error.HTTPError as exc:
            hint = (" (the API refused the seeding token: see docs/deploy.md, 'Troubleshooting')"
                    if exc.code in (401, 403) else "")
            raise DeployError(f"registering {path.name} failed: HTTP {exc.code} {exc.read()[:500]!r}{hint}") from exc
    return lines


def seeding_token(session: Any, stack_outputs: Mapping[str, str], env: Mapping[str, str]) -> str | None:
    """An admin token for registering the examples: $STEPFLOW_SEED_TOKEN; else the stage's pool's seeding
    user; else, for a stage trusting an HS256 provider whose secret this shell has, one minted for ten
    minutes (tenant $STEPFLOW_SEED_TENANT, default "default"); else None (seeding is skipped and said so)."""
    if env.get("STEPFLOW_SEED_TOKEN"):
        return env["STEPFLOW_SEED_TOKEN"]
    from infra import token

    tenant = env.get("STEPFLOW_SEED_TENANT") or token.DEFAULT_TENANT
    if stack_outputs.get("UserPoolId"):
        pool, client = token.pool_of(stack_outputs)
        return token.seed_token(session.client("cognito-idp"), pool, client, tenant)
    if env.get("STEPFLOW_AUTH") == "hs256" and env.get("STEPFLOW_JWT_SECRET"):
        from chalicelib.auth import mint

        return mint(env["STEPFLOW_JWT_SECRET"], "stepflow-deploy", roles=["admin"], ttl_seconds=600, tenant=tenant,
                    issuer=env.get("STEPFLOW_JWT_ISSUER"), audience=env.get("STEPFLOW_JWT_AUDIENCE"))
    return None


# ------------------------------------------------------------------------------------------ commands


def deploy(stage_name: str, *, region: str | None, bucket: str | None, seed: bool, own_pool: bool = False) -> int:
    session, account, region = aws_session(region)
    print(f"infra.deploy: account {account}, region {region}, stage {stage_name}")
    from infra.package import package

    name = stack_name(stage_name)
    cfn = session.client("cloudformation")
    updating = stack_status(cfn, name) not in (None, "ROLLBACK_COMPLETE")
    previous = {p["ParameterKey"] for p in cfn.describe_stacks(StackName=name)["Stacks"][0].get("Parameters", [])} \
        if updating else None
    parameters = stack_parameters(os.environ, updating=updating, own_pool=own_pool, previous=previous,
                                  store=SecretStore(session.client("secretsmanager"),
                                                    infra_build.resolve_stage(stage_name).prefix))
    built = package(stage_name)
    lint(built.template_path)
    s3 = session.client("s3")
    bucket = bucket or default_bucket(account, region)
    ensure_bucket(s3, bucket, region)
    url = upload_artifacts(s3, bucket, name, built.template, built.zip_path, region)
    result = deploy_stack(cfn, name, url, stage_name, parameters)
    for key, value in sorted(result.items()):
        print(f"  {key} = {value}")
    api_prefix = infra_build.resolve_stage(stage_name).environment.get("STEPFLOW_API_PREFIX", "/workflows")
    if seed and "EndpointURL" in result:
        bearer = seeding_token(session, result, os.environ)
        if bearer is None:
            print("infra.deploy: the examples were not registered: this stage trusts another identity provider. "
                  "Set STEPFLOW_SEED_TOKEN to an editor or admin ID token of it (or, for an HS256 provider, STEPFLOW_JWT_SECRET) and run again", file=sys.stderr)
        else:
            for line in register_examples(result["EndpointURL"], api_prefix, bearer):
                print(f"infra.deploy: example {line}")
    print(f"infra.deploy: {name} is deployed. API: {result.get('EndpointURL', '?')}")
    from infra import token

    print(token.instructions(stage_name, result, region, api_prefix))
    return 0


def destroy(stage_name: str, *, region: str | None, yes: bool) -> int:
    session, account, region = aws_session(region)
    name = stack_name(stage_name)
    stage = infra_build.resolve_stage(stage_name)
    if not yes:
        if not sys.stdin.isatty():
            raise DeployError(f"refusing to delete {name} without confirmation: run `make destroy STAGE={stage_name} "
                              "YES=1` (or answer the prompt in a terminal)")
        answer = input(f"Delete stack {name} in {account}/{region}? Type its name to confirm: ")
        if answer.strip() != name:
            raise DeployError("not confirmed; nothing deleted")
    cfn = session.client("cloudformation")
    if stack_status(cfn, name) is not None:
        print(f"infra.deploy: deleting {name}")
        cfn.delete_stack(StackName=name)
        cfn.get_waiter("stack_delete_complete").wait(
            StackName=name, WaiterConfig={"Delay": WAIT_DELAY, "MaxAttempts": WAIT_ATTEMPTS})
    sfn = session.client("stepfunctions")
    for page in sfn.get_paginator("list_state_machines").paginate():
        for machine in page["stateMachines"]:
            if machine["name"].startswith(stage.prefix):  # registered through the API, not by the stack
                print(f"infra.deploy: deleting state machine {machine['name']}")
                sfn.delete_state_machine(stateMachineArn=machine["stateMachineArn"])
    if stage.retain_data:
        print(f"infra.deploy: the {stage_name} tables and user pool are kept (DeletionPolicy Retain, deletion "
              "protection); see docs/deploy.md to delete them")
    print(f"infra.deploy: {name} deleted. The artifact bucket {default_bucket(account, region)} (if used) is kept.")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.deploy", description=__doc__.splitlines()[0])
    parser.add_argument("--stage", default="dev")
    parser.add_argument("--region", default=None, help="default: boto3's (AWS_REGION, the profile's region)")
    parser.add_argument("--bucket", default=None, help="artifact bucket (default: stepflow-deploy-<account>-<region>)")
    parser.add_argument("--no-seed", action="store_true", help="do not register the bundled examples")
    parser.add_argument("--own-pool", action="store_true",
                        help="use the stack's own user pool again after an existing provider (clears JwtIssuer...)")
    parser.add_argument("--destroy", action="store_true", help="delete the stage's stack instead")
    parser.add_argument("--yes", action="store_true", help="with --destroy: do not ask for confirmation")
    args = parser.parse_args(argv)
    if args.stage == "local":
        raise DeployError("the local stage is never deployed: `make run` serves it")
    if args.destroy:
        return destroy(args.stage, region=args.region, yes=args.yes)
    return deploy(args.stage, region=args.region, bucket=args.bucket or None, seed=not args.no_seed,
                  own_pool=args.own_pool)


if __name__ == "__main__":
    sys.exit(main())
