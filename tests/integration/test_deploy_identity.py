"""A deployed stage's identity provider: the template's Cognito user pool, the tokens it issues, and the deploy's
seeding token, checked against the API's own verifier.

moto implements Cognito (pools, app clients, groups, the admin sign-in flow, and the JWKS at the pool's
issuer URL), but not its CloudFormation resources: the pool, app client and groups are created here
from the template's own resource properties, the API's environment is resolved from the template with
that pool's ids, and the tokens moto's pool issues must pass the verifier built from that environment.
"""

from __future__ import annotations

import json
from typing import Any

import jwt
import pytest

from chalicelib.auth import ROLES, Authenticator
from infra import build as infra_build
from infra import deploy as infra_deploy
from infra import token as infra_token
from tests.templates import FIRST_DEPLOY, Resolver, api_environment, create_identity, deployed_settings

STAGE = "dev"
PARAMETERS = FIRST_DEPLOY
FLOW = {"name": "seeded_flow", "version": "1.0.0",
        "steps": [{"id": "one", "type": "machine", "task_type": "data.set", "config": {"values": {"done": True}}}]}


@pytest.fixture(scope="module")
def infra(local_runtime) -> infra_build.Build:
    import app  # noqa: F401 - the app reads its settings at import: only inside the runtime

    return infra_build.build(STAGE)


def verifier_from(aws: Any, template: dict[str, Any], env: dict[str, str], tmp_path: Any) -> Authenticator:
    """The authenticator a deployed API builds from this environment. Its JWKS is read from the URL the
    template set, where moto serves the pool's keys (through `requests`, which moto intercepts; the
    verifier's own HTTP fetch is tested in test_cognito_tokens.py) and handed over as a file."""
    import requests

    settings = deployed_settings(aws, template, env)  # a deployed stage: refuses to start with anything missing
    answer = requests.get(settings.jwks_url, timeout=10)
    assert answer.status_code == 200, answer.text
    keys = tmp_path / "jwks.json"
    keys.write_text(answer.text)
    return Authenticator(settings.auth_mode, settings.jwt_secret, str(keys), settings.jwt_issuer,
                         settings.jwt_audience, deployed=True)


def call(api: Any, method: str, path: str, bearer: str, body: Any = None) -> tuple[int, Any]:
    kwargs: dict[str, Any] = {"headers": {"content-type": "application/json", "authorization": f"Bearer {bearer}"}}
    if body is not None:
        kwargs["body"] = json.dumps(body)
    response = getattr(api.client.http, method.lower())(api.prefix + path, **kwargs)
    return response.status_code, json.loads(response.body)


# ------------------------------------------------------------------------------------------- template


def test_the_stack_creates_a_user_pool_with_a_group_per_role_unless_an_issuer_is_given(local_runtime, infra):
    resources = infra.template["Resources"]
    cognito = {lid: r for lid, r in resources.items() if r.get("Type", "").startswith("AWS::Cognito::")}
    assert {lid: r["Type"] for lid, r in cognito.items()} == {
        "UserPool": "AWS::Cognito::UserPool", "UserPoolClient": "AWS::Cognito::UserPoolClient",
        **{f"{role.capitalize()}Group": "AWS::Cognito::UserPoolGroup" for role in ROLES}}
    assert all(r["Condition"] == "UseCognito" for r in cognito.values())
    assert infra.template["Conditions"]["UseCognito"] == {"Fn::Equals": [{"Ref": "JwtIssuer"}, ""]}
    groups = {r["Properties"]["GroupName"]: r["Properties"]["Precedence"] for r in cognito.values()
              if r["Type"] == "AWS::Cognito::UserPoolGroup"}
    assert sorted(groups, key=groups.get) == ["admin", "editor", "executor", "viewer"]
    pool = resources["UserPool"]["Properties"]
    # Only administrators create users, and a user cannot write the attribute that names their tenant.
    assert pool["AdminCreateUserConfig"] == {"AllowAdminCreateUserOnly": True}
    assert [a["Name"] for a in pool["Schema"]] == ["tenant_id"]
    client = resources["UserPoolClient"]["Properties"]
    assert "custom:tenant_id" in client["ReadAttributes"] and "custom:tenant_id" not in client["WriteAttributes"]
    assert client["GenerateSecret"] is False and "ALLOW_ADMIN_USER_PASSWORD_AUTH" in client["ExplicitAuthFlows"]
    assert (resources["UserPool"]["DeletionPolicy"], pool["DeletionProtection"]) == ("Delete", "INACTIVE")
    prod = infra_build.build("prod").template["Resources"]["UserPool"]
    assert (prod["DeletionPolicy"], prod["Properties"]["DeletionProtection"]) == ("Retain", "ACTIVE")

    resolve = Resolver(infra.template, local_runtime.account_id, local_runtime.region, PARAMETERS,
                       {"UserPool": "us-east-1_Pool", "UserPoolClient": "client123"})
    issuer = f"https://cognito-idp.{local_runtime.region}.amazonaws.com/us-east-1_Pool"
    for function in infra.functions:  # every function reads (and checks) the settings at cold start
        env = resolve(infra.template["Resources"][function.logical_id]["Properties"]["Environment"]["Variables"])
        assert (env["STEPFLOW_AUTH"], env["STEPFLOW_JWT_ISSUER"], env["STEPFLOW_JWT_AUDIENCE"],
                env["STEPFLOW_JWKS_URL"]) == ("jwks", issuer, "client123", f"{issuer}/.well-known/jwks.json")
    outputs = {name: resolve(o["Value"]) for name, o in infra.template["Outputs"].items()
               if "Condition" not in o or resolve.condition(o["Condition"])}
    assert {k: outputs[k] for k in ("UserPoolId", "UserPoolClientId", "TokenIssuer", "TokenAudience")} == {
        "UserPoolId": "us-east-1_Pool", "UserPoolClientId": "client123", "TokenIssuer": issuer,
        "TokenAudience": "client123"}
    # An existing provider: no pool, no pool outputs, the parameters' values instead.
    external = Resolver(infra.template, local_runtime.account_id, local_runtime.region,
                        {**PARAMETERS, "JwtIssuer": "https://login.example", "JwtAudience": "stepflow"})
    assert not external.condition("UseCognito")
    assert external(infra.template["Outputs"]["TokenIssuer"]["Value"]) == "https://login.example"
    assert {n for n, o in infra.template["Outputs"].items() if o.get("Condition") == "UseCognito"} == {
        "UserPoolId", "UserPoolClientId"}


def test_the_template_s_rules_refuse_an_incomplete_provider(local_runtime, infra):
    """CloudFormation evaluates these before it creates anything; infra/deploy.py checks the same earlier."""
    rules = infra.template["Rules"]

    def failing(parameters: dict[str, str]) -> list[str]:
        resolve = Resolver(infra.template, local_runtime.account_id, local_runtime.region, parameters)
        return [a["AssertDescription"] for rule in rules.values() if resolve._test(rule["RuleCondition"])
                for a in rule["Assertions"] if not resolve._test(a["Assert"])]

    assert failing(PARAMETERS) == []
    complete = {**PARAMETERS, "JwtIssuer": "https://login.example", "JwtAudience": "stepflow",
                "JwksUrl": "https://login.example/jwks.json"}
    assert failing(complete) == []
    assert failing({**complete, "AuthMode": "hs256",
                    "JwtSecretArn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:hs256-key-AbCdEf"}) == []
    for broken, says in (({**PARAMETERS, "AuthMode": "hs256"}, "AuthMode must be jwks"),
                         ({**PARAMETERS, "JwtAudience": "stepflow"}, "set JwtIssuer too"),
                         ({**complete, "JwtAudience": ""}, "JwtAudience"),
                         ({**complete, "JwksUrl": ""}, "JwksUrl is required"),
                         ({**complete, "AuthMode": "hs256"}, "JwtSecretArn is required")):
        problems = failing(broken)
        assert len(problems) == 1 and says in problems[0], (broken, problems)


# ----------------------------------------------------------------------------- tokens of the pool


def test_the_pool_s_id_tokens_pass_the_api_s_verifier_with_the_template_s_settings(local_aws, infra, api, tmp_path):
    import app as app_module

    physical = create_identity(local_aws, infra.template)
    pool, client = physical["UserPool"], physical["UserPoolClient"]
    app_module.services.auth = verifier_from(local_aws, infra.template,
                                             api_environment(local_aws, infra.template, physical), tmp_path)
    idp = local_aws.client("cognito-idp")
    try:
        seeding = infra_token.seed_token(idp, pool, client)  # the deploy's: admin of the default tenant
        status, body = call(api, "POST", "/definitions", seeding, FLOW)
        assert status == 201, body
        seed_sub = jwt.decode(seeding, options={"verify_signature": False})["sub"]
        assert (body["tenant_id"], body["created_by"]) == ("default", seed_sub)

        sub, created, password = infra_token.ensure_user(idp, pool, "alice", role="viewer", tenant="acme")
        assert created and password
        alice = infra_token.id_token(idp, pool, client, "alice", password)
        assert jwt.decode(alice, options={"verify_signature": False})["cognito:groups"] == ["viewer"]
        status, listed = call(api, "GET", "/definitions", alice)
        assert status == 200 and "seeded_flow" not in {d["name"] for d in listed}  # another tenant's
        status, body = call(api, "POST", "/definitions", alice, {**FLOW, "name": "alices_flow"})
        assert status == 403 and "editor" in body["detail"]
        # Promoted, alice's next token carries the new role (and only it).
        infra_token.ensure_user(idp, pool, "alice", role="editor", tenant="acme")
        alice = infra_token.id_token(idp, pool, client, "alice", password)
        status, body = call(api, "POST", "/definitions", alice, {**FLOW, "name": "alices_flow"})
        assert status == 201 and (body["tenant_id"], body["created_by"]) == ("acme", sub)

        # Refused: the access token, a token of another app client of the pool, and one of another pool
        # (moto signs every pool with the same key, so only the issuer tells them apart).
        answer = idp.admin_initiate_auth(UserPoolId=pool, ClientId=client, AuthFlow="ADMIN_USER_PASSWORD_AUTH",
                                         AuthParameters={"USERNAME": "alice", "PASSWORD": password})
        status, body = call(api, "GET", "/definitions", answer["AuthenticationResult"]["AccessToken"])
        assert status == 401 and "not an ID token" in body["detail"]
        other_client = idp.create_user_pool_client(UserPoolId=pool, ClientName="another-app",
                                                   ExplicitAuthFlows=["ALLOW_ADMIN_USER_PASSWORD_AUTH",
                                                                      "ALLOW_REFRESH_TOKEN_AUTH"])
        elsewhere = infra_token.id_token(idp, pool, other_client["UserPoolClient"]["ClientId"], "alice", password)
        assert call(api, "GET", "/definitions", elsewhere)[0] == 401
        other = create_identity(local_aws, infra.template)
        infra_token.ensure_user(idp, other["UserPool"], "alice", role="admin", tenant="acme", password=password)
        foreign = infra_token.id_token(idp, other["UserPool"], other["UserPoolClient"], "alice", password)
        assert jwt.get_unverified_header(foreign)["kid"] == jwt.get_unverified_header(alice)["kid"]
        assert call(api, "GET", "/definitions", foreign)[0] == 401
        # ... even naming our app client: moto's other pool signs the claims, only `iss` differs.
        from moto.cognitoidp.models import cognitoidp_backends

        other_pool = cognitoidp_backends[local_aws.account_id][local_aws.region].user_pools[other["UserPool"]]
        forged, _ = other_pool.create_jwt(client, "alice", "id", extra_data={
            "cognito:groups": ["admin"], "custom:tenant_id": "acme"})
        assert jwt.decode(forged, options={"verify_signature": False})["aud"] == client
        assert call(api, "GET", "/definitions", forged)[0] == 401
        assert call(api, "GET", "/definitions", alice)[0] == 200
    finally:
        del app_module.services.auth


def test_the_seeding_user_signs_in_only_while_the_deploy_seeds(local_aws, infra):
    """A fresh random password per deploy, never stored; disabled between deploys; an admin of the seed tenant."""
    physical = create_identity(local_aws, infra.template)
    pool, client = physical["UserPool"], physical["UserPoolClient"]
    idp = local_aws.client("cognito-idp")
    outputs = {"UserPoolId": pool, "UserPoolClientId": client}
    first = infra_deploy.seeding_token(_Session(local_aws), outputs, {"STEPFLOW_SEED_TENANT": "acme"})
    claims = jwt.decode(first, options={"verify_signature": False})
    assert (claims["cognito:username"], claims["cognito:groups"], claims["custom:tenant_id"], claims["aud"]) == (
        infra_token.SEED_USER, ["admin"], "acme", client)
    user = idp.admin_get_user(UserPoolId=pool, Username=infra_token.SEED_USER)
    assert user["Enabled"] is False
    with pytest.raises(SystemExit, match="refused"):  # disabled: even the right password gets nothing
        infra_token.id_token(idp, pool, client, infra_token.SEED_USER, "Any-Password-1!")
    second = infra_token.seed_token(idp, pool, client, "acme")  # the next deploy: enabled, used, disabled
    assert jwt.decode(second, options={"verify_signature": False})["sub"] == claims["sub"]
    assert idp.admin_get_user(UserPoolId=pool, Username=infra_token.SEED_USER)["Enabled"] is False
    # Another provider: the deploy's token is the one given, or none (the examples are then skipped).
    assert infra_deploy.seeding_token(None, {}, {"STEPFLOW_SEED_TOKEN": "given"}) == "given"
    assert infra_deploy.seeding_token(None, {}, {}) is None


class _Session:
    """What infra.deploy needs of a boto3 session: clients of the emulated account."""

    def __init__(self, local_aws: Any):
        self._local = local_aws

    def client(self, service: str) -> Any:
        return self._local.client(service)


def test_the_token_command_creates_a_user_and_prints_its_id_token(local_aws, infra, capsys, monkeypatch):
    """`make aws-user` / `make aws-token`: the pool is found through the stack's outputs."""
    physical = create_identity(local_aws, infra.template)
    pool, client = physical["UserPool"], physical["UserPoolClient"]
    local_aws.client("cloudformation").create_stack(StackName=infra_deploy.stack_name("tok"), TemplateBody=json.dumps({
        "Resources": {"Placeholder": {"Type": "AWS::SQS::Queue"}},
        "Outputs": {"UserPoolId": {"Value": pool}, "UserPoolClientId": {"Value": client}}}))
    region = ["--stage", "tok", "--region", local_aws.region]
    assert infra_token.main([*region, "--user", "bob", "--create", "--role", "executor", "--tenant", "acme",
                             "--groups", "managers"]) == 0
    printed = capsys.readouterr()
    claims = jwt.decode(printed.out.strip(), options={"verify_signature": False})
    assert (claims["cognito:username"], sorted(claims["cognito:groups"]), claims["custom:tenant_id"]) == (
        "bob", ["executor", "managers"], "acme")
    assert "created 'bob'" in printed.err and f"the API knows this user as {claims['sub']}" in printed.err
    password = printed.err.split("(shown once, keep it): ")[1].split()[0]
    monkeypatch.setenv("STEPFLOW_PASSWORD", password)
    assert infra_token.main([*region, "--user", "bob"]) == 0
    again = capsys.readouterr()
    assert jwt.decode(again.out.strip(), options={"verify_signature": False})["sub"] == claims["sub"]
    assert password not in again.err + again.out
    monkeypatch.setenv("STEPFLOW_PASSWORD", "Wrong-password-1!")
    with pytest.raises(SystemExit, match="wrong user name or password"):
        infra_token.main([*region, "--user", "bob"])
    with pytest.raises(SystemExit, match="no stack stepflow-nowhere"):
        infra_token.main(["--stage", "nowhere", "--region", local_aws.region, "--user", "bob"])


def test_deploy_prints_how_to_get_a_token():
    outputs = {"EndpointURL": "https://abc.execute-api.eu-west-1.amazonaws.com/dev/", "UserPoolId": "eu-west-1_X",
               "UserPoolClientId": "client123"}
    text = infra_token.instructions("dev", outputs, "eu-west-1")
    assert "make -s aws-user STAGE=dev NAME=you ROLE=admin TENANT=default" in text
    assert "make -s aws-token STAGE=dev NAME=you" in text
    assert ("aws cognito-idp initiate-auth --region eu-west-1 --client-id client123 --auth-flow USER_PASSWORD_AUTH"
            in text and "--query AuthenticationResult.IdToken" in text)
    assert 'Bearer $TOKEN" https://abc.execute-api.eu-west-1.amazonaws.com/dev/workflows/definitions' in text
    external = infra_token.instructions("dev", {"TokenIssuer": "https://login.example", "TokenAudience": "stepflow"},
                                        "eu-west-1")
    assert "https://login.example" in external and "'aud' is stepflow" in external and "aws-user" not in external
