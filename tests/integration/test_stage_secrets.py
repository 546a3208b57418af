"""The stage's secrets reach a deployed function by ARN and are read from Secrets Manager (moto here).

A function configured with the ARNs builds its settings from the secrets' values; a rotated value is used
after the refresh interval; a secret that is missing or may not be read stops the cold start with a
message that names the variable and AWS's error code (never a value); the deployment template puts no
secret value in any function's environment, and lets the functions read exactly the secrets it names.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from chalicelib.aws.stage_secrets import SECRET_VARIABLES, StageSecretError, StageSecrets
from chalicelib.wiring import Services
from infra import build as infra_build
from infra import stage_secrets as infra_secrets

ROOT = Path(__file__).resolve().parents[2]
SERVER, WEBHOOK = "server-" + "a" * 40, "webhook-" + "b" * 30


def deployed_env(aws: Any, **arns: str) -> dict[str, str]:
    """A deployed stage's environment (its own pool's settings), its secrets given by ARN only."""
    return {**aws.env, "AWS_DEFAULT_REGION": aws.region, "STEPFLOW_STAGE": "dev", "STEPFLOW_AUTH": "jwks",
            "STEPFLOW_JWT_ISSUER": "https://issuer.example", "STEPFLOW_JWT_AUDIENCE": "stepflow",
            "STEPFLOW_JWKS_URL": "https://issuer.example/jwks.json", **arns}


def make_secret(aws: Any, name: str, value: str) -> str:
    return str(aws.client("secretsmanager").create_secret(Name=name, SecretString=value)["ARN"])


def test_a_function_given_the_arns_reads_the_secrets(local_aws):
    server = make_secret(local_aws, "stepflow-dev-server-secret", SERVER)
    webhook = make_secret(local_aws, "stepflow-dev-webhook-secret", WEBHOOK)
    env = deployed_env(local_aws, STEPFLOW_SERVER_SECRET_ARN=server, STEPFLOW_WEBHOOK_SECRET_ARN=webhook)
    assert not any(name in env for name in SECRET_VARIABLES)  # ARNs only, as the template sets them
    settings = Services(env=env).settings
    assert (settings.server_secret, settings.webhook_secret) == (SERVER, WEBHOOK)
    assert settings.webhook_secret_for(None) == WEBHOOK.encode()


def test_a_rotated_secret_is_used_after_the_refresh_interval(local_aws):
    arn = make_secret(local_aws, "stepflow-dev-server-secret", SERVER)
    webhook = make_secret(local_aws, "stepflow-dev-webhook-secret", WEBHOOK)
    services = Services(env=deployed_env(local_aws, STEPFLOW_SERVER_SECRET_ARN=arn, STEPFLOW_WEBHOOK_SECRET_ARN=webhook,
                                         STEPFLOW_SECRETS_REFRESH_SECONDS="0"))
    before = services.settings.cursor_key
    assert services.refresh_secrets() is False  # read again, unchanged: nothing is rebuilt
    assert services.settings.cursor_key == before
    local_aws.client("secretsmanager").put_secret_value(SecretId=arn, SecretString="rotated-" + "c" * 40)
    # Each invocation of a handler starts with the refresh (app.py's invocation middleware, as wired there).
    from chalice import Chalice

    from chalicelib.observability import make_invocation_middleware

    probe = Chalice(app_name="probe")
    probe.register_middleware(make_invocation_middleware(services.refresh_secrets), "all")

    @probe.lambda_function(name="probe")
    def handler(event: Any, context: Any) -> str:
        return services.settings.server_secret

    assert handler({}, None) == "rotated-" + "c" * 40
    assert services.settings.cursor_key != before  # what derives from it follows
    assert services.refresh_secrets() is False


class Counting:
    """A Secrets Manager client that counts reads and can be told to fail like AWS does."""

    def __init__(self, real: Any):
        self.real, self.reads, self.fail_with = real, 0, None

    def get_secret_value(self, **kwargs: Any) -> Any:
        from botocore.exceptions import ClientError

        self.reads += 1
        if self.fail_with:
            raise ClientError({"Error": {"Code": self.fail_with, "Message": "User: arn:aws:sts::... is not "
                                         "authorized"}}, "GetSecretValue")
        return self.real.get_secret_value(**kwargs)


def test_the_refresh_is_bounded_and_a_failed_refresh_keeps_the_values(local_aws):
    arn = make_secret(local_aws, "stepflow-dev-server-secret", SERVER)
    client = Counting(local_aws.client("secretsmanager"))
    now = [1000.0]
    secrets = StageSecrets({"STEPFLOW_SERVER_SECRET": arn}, lambda: client, refresh_seconds=300, clock=lambda: now[0])
    assert secrets.values() == {"STEPFLOW_SERVER_SECRET": SERVER} and client.reads == 1
    local_aws.client("secretsmanager").put_secret_value(SecretId=arn, SecretString="rotated-" + "c" * 40)
    now[0] += 299
    assert secrets.refresh() is False and client.reads == 1  # within the interval: no call at all
    assert secrets.values() == {"STEPFLOW_SERVER_SECRET": SERVER}
    now[0] += 2
    assert secrets.refresh() is True and client.reads == 2
    assert secrets.values() == {"STEPFLOW_SERVER_SECRET": "rotated-" + "c" * 40}
    client.fail_with = "AccessDeniedException"  # a refresh that fails keeps what was read and tries again later
    now[0] += 301
    assert secrets.refresh() is False and client.reads == 3
    assert secrets.values() == {"STEPFLOW_SERVER_SECRET": "rotated-" + "c" * 40}


@pytest.mark.parametrize("failure", ["ResourceNotFoundException", "AccessDeniedException"])
def test_a_secret_that_cannot_be_read_stops_the_cold_start(local_aws, failure):
    arn = make_secret(local_aws, "stepflow-dev-server-secret", SERVER)
    if failure == "ResourceNotFoundException":
        local_aws.client("secretsmanager").delete_secret(SecretId=arn, ForceDeleteWithoutRecovery=True)
        services = Services(env=deployed_env(local_aws, STEPFLOW_SERVER_SECRET_ARN=arn))
        with pytest.raises(StageSecretError) as caught:
            services.settings  # noqa: B018 - building the settings is the cold start
    else:
        client = Counting(local_aws.client("secretsmanager"))
        client.fail_with = failure
        with pytest.raises(StageSecretError) as caught:
            StageSecrets({"STEPFLOW_SERVER_SECRET": arn}, lambda: client).values()
    message = str(caught.value)
    assert message == f"cannot read STEPFLOW_SERVER_SECRET_ARN ({arn}): {failure}"
    assert SERVER not in message and caught.value.__cause__ is None


# The cold start itself, in a fresh interpreter: `import app` with a secret ARN that names nothing.
COLD_START = """
import json, os, sys
from stepflow_local.runtime import LocalRuntime

with LocalRuntime() as aws:
    os.environ.update({"STEPFLOW_STAGE": "dev", "STEPFLOW_AUTH": "jwks", "STEPFLOW_JWT_ISSUER": "https://i.example",
                       "STEPFLOW_JWT_AUDIENCE": "stepflow", "STEPFLOW_JWKS_URL": "https://i.example/jwks.json",
                       "STEPFLOW_SERVER_SECRET_ARN": f"arn:aws:secretsmanager:{aws.region}:{aws.account_id}:secret:gone-AbCdEf"})
    try:
        import app
    except Exception as exc:
        print(json.dumps({"error": type(exc).__name__, "message": str(exc)}))
    else:
        print(json.dumps({"error": None}))
"""


def test_the_app_refuses_to_start_without_its_secret():
    done = subprocess.run([sys.executable, "-c", COLD_START], cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found["error"] == "StageSecretError"
    assert found["message"].startswith("cannot read STEPFLOW_SERVER_SECRET_ARN (arn:aws:secretsmanager:")
    assert found["message"].endswith("): ResourceNotFoundException")


# ------------------------------------------------------------------------------------------- template


def _functions(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {lid: r for lid, r in template["Resources"].items() if "Environment" in r.get("Properties", {})}


def _walk(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return [value] + [x for v in value.values() for x in _walk(v)]
    if isinstance(value, list):
        return [x for v in value for x in _walk(v)]
    return [value]


@pytest.fixture(scope="module")
def template(local_runtime) -> dict[str, Any]:
    import app  # noqa: F401 - the app reads its settings at import: only inside the runtime

    return infra_build.build("dev").template


def test_no_function_s_environment_holds_a_secret_value(template):
    functions = _functions(template)
    assert len(functions) >= 7
    secret_ids = {lid for lid, r in template["Resources"].items() if r.get("Type") == "AWS::SecretsManager::Secret"}
    assert secret_ids == set(infra_secrets.GENERATED)
    for lid, function in functions.items():
        variables = function["Properties"]["Environment"]["Variables"]
        for name, value in variables.items():
            assert name not in SECRET_VARIABLES and name != "STEPFLOW_TENANT_WEBHOOK_SECRETS", (lid, name)
            if "SECRET" in name:  # an ARN: of a secret the stack makes, or a parameter naming one
                assert name.endswith("_ARN"), (lid, name)
                refs = {node["Ref"] for node in _walk(value) if isinstance(node, dict) and "Ref" in node}
                assert refs and refs <= secret_ids | {"ServerSecretArn", "WebhookSecretArn", "JwtSecretArn"}, (lid, name)
    # No parameter carries a secret's value either (NoEcho would be the sign of one).
    assert [p for p, d in template["Parameters"].items() if d.get("NoEcho")] == []
    # The generated secrets are random and made by Secrets Manager, never written into the template.
    for lid in secret_ids:
        properties = template["Resources"][lid]["Properties"]
        assert "SecretString" not in properties and properties["GenerateSecretString"]["PasswordLength"] >= 32


def test_the_functions_may_read_exactly_the_secrets_their_environment_names(template):
    roles = [r for r in template["Resources"].values() if r.get("Type") == "AWS::IAM::Role"
             and "what its code calls" in json.dumps(r)]
    assert roles
    for role in roles:  # every function's role: each reads the stage's secrets at its cold start
        statements = [s for p in role["Properties"]["Policies"] for s in p["PolicyDocument"]["Statement"]]
        reading = [s for s in statements if "secretsmanager:GetSecretValue" in json.dumps(s["Action"])]
        assert any(s["Sid"] == "StageSecrets" for s in reading)
    statements = [s for r in roles for p in r["Properties"]["Policies"] for s in p["PolicyDocument"]["Statement"]]
    reading = [s for s in statements if "secretsmanager:GetSecretValue" in json.dumps(s["Action"])]
    stage = next(s for s in reading if s["Sid"] == "StageSecrets")
    assert stage["Action"] == ["secretsmanager:GetSecretValue"]
    named = [v for lid, f in _functions(template).items()
             for k, v in f["Properties"]["Environment"]["Variables"].items() if k.endswith("_SECRET_ARN")]
    resources = stage["Resource"]
    for arn in named:
        assert arn in resources or {"Fn::If": ["HasJwtSecret", arn, {"Ref": "AWS::NoValue"}]} in resources, arn
    assert len(resources) == 3
    # The credentials statement reads only the tenants' credentials, not the stage's secrets.
    credentials = next(s for s in reading if s["Sid"] == "Credentials")
    assert credentials["Resource"]["Fn::Sub"].endswith(":secret:stepflow-dev-credentials/*")


def test_a_secret_given_in_the_deploying_shell_is_stored_and_passed_by_arn(local_aws):
    from infra import deploy as infra_deploy

    sm = local_aws.client("secretsmanager")
    store = infra_deploy.SecretStore(sm, "stepflow-dev-")
    [parameter] = infra_deploy.stack_parameters({"STEPFLOW_SERVER_SECRET": SERVER}, updating=False, store=store)
    arn = parameter["ParameterValue"]
    assert parameter["ParameterKey"] == "ServerSecretArn" and SERVER not in arn
    assert sm.get_secret_value(SecretId=arn)["SecretString"] == SERVER
    assert sm.describe_secret(SecretId=arn)["Name"] == "stepflow-dev-server-secret-given"
    # Deploying again with another value gives the same secret a new value (its ARN stays).
    again = infra_deploy.stack_parameters({"STEPFLOW_SERVER_SECRET": "z" * 40}, updating=True, store=store)
    assert {"ParameterKey": "ServerSecretArn", "ParameterValue": arn} in again
    assert sm.get_secret_value(SecretId=arn)["SecretString"] == "z" * 40
    # A secret named by ARN is measured before the stack gets it, when the deployer may read it.
    short = make_secret(local_aws, "short-secret", "x" * 8)
    with pytest.raises(SystemExit, match="the secret STEPFLOW_SERVER_SECRET_ARN names must be at least 32 bytes"):
        infra_deploy.stack_parameters({"STEPFLOW_SERVER_SECRET_ARN": short}, updating=False, store=store)
    assert store.length("arn:aws:secretsmanager:us-east-1:123456789012:secret:nobody-AbCdEf") is None
