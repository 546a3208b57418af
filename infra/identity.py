"""Who may call a deployed stage: the stack's own Cognito user pool, or an existing identity provider.

By default the stack creates a Cognito user pool for the stage (`{prefix}users`), one app client
(`{prefix}api`) and a group per role (viewer, executor, editor, admin), and points the app's
authentication at them: issuer `https://cognito-idp.<region>.amazonaws.com/<pool id>`, audience the
app client id, keys the pool's JWKS. The API accepts the pool's **ID tokens** (chalicelib/auth.py):
they carry `aud` (the client id), `cognito:groups` (the role, and task groups) and the tenant as the
custom attribute `custom:tenant_id`. Access tokens carry neither `aud` nor custom attributes.

Given `JwtIssuer`, the stack creates no pool and uses that provider instead (`JwtAudience`, and
`JwksUrl` or, with AuthMode hs256, `JwtSecretArn`: a Secrets Manager secret holding the key). The template's Rules refuse incomplete combinations
before anything is created.

What keeps a user inside their tenant and role: only administrators create users
(AllowAdminCreateUserOnly, no self sign-up), and the app client may not write `custom:tenant_id`
(WriteAttributes leaves it out), so a user cannot move themselves to another tenant; Cognito groups
are changed by administrators only.
"""

from __future__ import annotations

from typing import Any

from chalicelib.auth import ROLES

CONDITION = "UseCognito"  # the stack creates and uses its own user pool (JwtIssuer left empty)
POOL = "UserPool"
CLIENT = "UserPoolClient"
TENANT_ATTRIBUTE = "tenant_id"  # Cognito names it custom:tenant_id in tokens and user attributes
# Roles are Cognito groups; the lowest precedence number wins where Cognito must pick one group.
ROLE_PRECEDENCE = {role: len(ROLES) - rank for rank, role in enumerate(ROLES)}
AUTH_FLOWS = (
    "ALLOW_USER_SRP_AUTH",  # browsers and SDKs
    "ALLOW_USER_PASSWORD_AUTH",  # `aws cognito-idp initiate-auth` from a terminal (docs/deploy.md)
    "ALLOW_ADMIN_USER_PASSWORD_AUTH",  # infra/token.py with the deployer's IAM credentials
    "ALLOW_REFRESH_TOKEN_AUTH",
)
READ_ATTRIBUTES = ("email", "email_verified", f"custom:{TENANT_ATTRIBUTE}")
WRITE_ATTRIBUTES = ("email",)  # never custom:tenant_id: a user must not choose their tenant
PASSWORD_POLICY = {"MinimumLength": 12, "RequireLowercase": True, "RequireUppercase": True,
                   "RequireNumbers": True, "RequireSymbols": True, "TemporaryPasswordValidityDays": 7}

# Stack parameter -> (the variable chalicelib.config reads, its declaration). Empty issuer: the stack's pool.
PARAMETERS: dict[str, tuple[str, dict[str, Any]]] = {
    "AuthMode": ("STEPFLOW_AUTH", {
        "Type": "String", "AllowedValues": ["jwks", "hs256"], "Default": "jwks",
        "Description": "How bearer tokens are verified: jwks (RS256; the stack's user pool needs it) or hs256"}),
    "JwtIssuer": ("STEPFLOW_JWT_ISSUER", {
        "Type": "String", "Default": "",
        "Description": "An existing identity provider's 'iss'; empty: the stack creates a Cognito user pool"}),
    "JwtAudience": ("STEPFLOW_JWT_AUDIENCE", {
        "Type": "String", "Default": "", "Description": "The existing provider's 'aud' (with JwtIssuer)"}),
    "JwksUrl": ("STEPFLOW_JWKS_URL", {
        "Type": "String", "Default": "", "Description": "The existing provider's JWKS URL (with JwtIssuer, jwks)"}),
    "JwtSecretArn": ("STEPFLOW_JWT_SECRET_ARN", {
        "Type": "String", "Default": "",
        "Description": "ARN of the Secrets Manager secret holding the HS256 key, at least 32 bytes (with JwtIssuer, "
                       "hs256)"}),
}


def _ref(name: str) -> dict[str, str]:
    return {"Ref": name}


def _empty(parameter: str) -> dict[str, Any]:
    return {"Fn::Equals": [_ref(parameter), ""]}


def _given(parameter: str) -> dict[str, Any]:
    return {"Fn::Not": [_empty(parameter)]}


def _either(cognito: Any, external: Any) -> dict[str, Any]:
    return {"Fn::If": [CONDITION, cognito, external]}


POOL_ISSUER = f"https://cognito-idp.${{AWS::Region}}.amazonaws.com/${{{POOL}}}"


def conditions() -> dict[str, Any]:
    return {CONDITION: _empty("JwtIssuer")}


def rules() -> dict[str, Any]:
    """Checked by CloudFormation before it creates or changes anything."""
    return {
        "StackUserPool": {
            "RuleCondition": _empty("JwtIssuer"),
            "Assertions": [
                {"Assert": {"Fn::Equals": [_ref("AuthMode"), "jwks"]},
                 "AssertDescription": "The stack's user pool signs RS256 tokens: AuthMode must be jwks "
                                      "(set JwtIssuer to use another provider with hs256)"},
                {"Assert": {"Fn::And": [_empty("JwtAudience"), _empty("JwksUrl")]},
                 "AssertDescription": "JwtAudience and JwksUrl describe an existing provider: set JwtIssuer too, "
                                      "or leave all three empty for the stack's user pool"},
            ],
        },
        "ExistingProvider": {
            "RuleCondition": _given("JwtIssuer"),
            "Assertions": [
                {"Assert": _given("JwtAudience"),
                 "AssertDescription": "JwtAudience (the 'aud' of the provider's tokens) is required with JwtIssuer"},
                {"Assert": {"Fn::Or": [{"Fn::Not": [{"Fn::Equals": [_ref("AuthMode"), "jwks"]}]}, _given("JwksUrl")]},
                 "AssertDescription": "JwksUrl is required with JwtIssuer and AuthMode jwks"},
                {"Assert": {"Fn::Or": [{"Fn::Not": [{"Fn::Equals": [_ref("AuthMode"), "hs256"]}]},
                                       _given("JwtSecretArn")]},
                 "AssertDescription": "JwtSecretArn is required with AuthMode hs256"},
            ],
        },
    }


def environment() -> dict[str, Any]:
    """The authentication variables chalicelib.config reads: from the stack's pool, or the parameters."""
    return {
        "STEPFLOW_AUTH": _ref("AuthMode"),
        "STEPFLOW_JWT_ISSUER": _either({"Fn::Sub": POOL_ISSUER}, _ref("JwtIssuer")),
        "STEPFLOW_JWT_AUDIENCE": _either(_ref(CLIENT), _ref("JwtAudience")),
        "STEPFLOW_JWKS_URL": _either({"Fn::Sub": POOL_ISSUER + "/.well-known/jwks.json"}, _ref("JwksUrl")),
    }  # the HS256 key, if any, is a secret given by ARN (infra/stage_secrets.py)


def group_id(role: str) -> str:
    return f"{role.capitalize()}Group"


def resources(prefix: str, *, retain: bool) -> dict[str, Any]:
    """The user pool, its app client and one group per role, all under the UseCognito condition."""
    policy = "Retain" if retain else "Delete"  # a pool holds people's accounts: prod keeps it, like its tables
    out: dict[str, Any] = {
        POOL: {
            "Type": "AWS::Cognito::UserPool",
            "Condition": CONDITION,
            "DeletionPolicy": policy,
            "UpdateReplacePolicy": policy,
            "Properties": {
                "UserPoolName": f"{prefix}users",
                "AdminCreateUserConfig": {"AllowAdminCreateUserOnly": True},
                "UsernameConfiguration": {"CaseSensitive": False},
                "Policies": {"PasswordPolicy": PASSWORD_POLICY},
                "Schema": [{
                    "Name": TENANT_ATTRIBUTE,
                    "AttributeDataType": "String",
                    "Mutable": True,  # administrators may move a user; the app client may not (WriteAttributes)
                    "StringAttributeConstraints": {"MinLength": "1", "MaxLength": "100"},
                }],
                "DeletionProtection": "ACTIVE" if retain else "INACTIVE",
            },
        },
        CLIENT: {
            "Type": "AWS::Cognito::UserPoolClient",
            "Condition": CONDITION,
            "Properties": {
                "ClientName": f"{prefix}api",
                "UserPoolId": _ref(POOL),
                "GenerateSecret": False,  # a public client: a terminal or a browser signs in with it
                "ExplicitAuthFlows": list(AUTH_FLOWS),
                "PreventUserExistenceErrors": "ENABLED",
                "ReadAttributes": list(READ_ATTRIBUTES),
                "WriteAttributes": list(WRITE_ATTRIBUTES),
                "IdTokenValidity": 60,
                "AccessTokenValidity": 60,
                "RefreshTokenValidity": 30,
                "TokenValidityUnits": {"IdToken": "minutes", "AccessToken": "minutes", "RefreshToken": "days"},
                "EnableTokenRevocation": True,
            },
        },
    }
    for role in ROLES:
        out[group_id(role)] = {
            "Type": "AWS::Cognito::UserPoolGroup",
            "Condition": CONDITION,
            "Properties": {
                "GroupName": role,
                "UserPoolId": _ref(POOL),
                "Precedence": ROLE_PRECEDENCE[role],
                "Description": f"Stepflow role {role}: the highest role group a user is in counts",
            },
        }
    return out


def outputs() -> dict[str, Any]:
    return {
        "UserPoolId": {"Condition": CONDITION, "Value": _ref(POOL),
                       "Description": "The stage's Cognito user pool (python -m infra.token creates users in it)"},
        "UserPoolClientId": {"Condition": CONDITION, "Value": _ref(CLIENT),
                             "Description": "The app client tokens are issued for (their 'aud')"},
        "TokenIssuer": {"Value": _either({"Fn::Sub": POOL_ISSUER}, _ref("JwtIssuer")),
                        "Description": "The 'iss' the API accepts"},
        "TokenAudience": {"Value": _either(_ref(CLIENT), _ref("JwtAudience")),
                          "Description": "The 'aud' the API accepts"},
    }
