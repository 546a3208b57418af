"""The stage's own secrets in the deployment template: Secrets Manager secrets, passed to functions by ARN.

Three secrets, read by chalicelib/aws/stage_secrets.py at each cold start:
- the server secret (seals page cursors, derives webhook callback keys, decision links, trigger secrets)
  and the completion-webhook signing secret: the stack generates each (GenerateSecretString) unless a
  parameter names an existing secret's ARN (`infra.deploy` stores a value given in the deploying shell
  and passes its ARN);
- the HS256 key of an existing identity provider (AuthMode hs256 only): an existing secret's ARN, never
  generated (the provider holds the key).

A function's environment holds `STEPFLOW_<NAME>_ARN` only, and its role may read exactly those secrets.
"""

from __future__ import annotations

from typing import Any

# Stack parameter -> (the ARN variable the app reads, its declaration).
PARAMETERS: dict[str, tuple[str, dict[str, Any]]] = {
    "ServerSecretArn": ("STEPFLOW_SERVER_SECRET_ARN", {
        "Type": "String", "Default": "",
        "Description": "ARN of an existing Secrets Manager secret of at least 32 random bytes that seals page "
                       "cursors and derives webhook callback keys; empty: the stack generates one"}),
    "WebhookSecretArn": ("STEPFLOW_WEBHOOK_SECRET_ARN", {
        "Type": "String", "Default": "",
        "Description": "ARN of an existing secret that signs completion webhooks; empty: the stack generates one"}),
}
# Logical id of the generated secret -> (its parameter, the condition under which the stack creates it,
# the name suffix, what it is for).
GENERATED = {
    "ServerSecret": ("ServerSecretArn", "GenerateServerSecret", "server-secret",
                     "Seals page cursors and derives webhook callback keys"),
    "WebhookSecret": ("WebhookSecretArn", "GenerateWebhookSecret", "webhook-secret",
                      "Signs completion webhooks (X-Stepflow-Signature)"),
}
JWT_PARAMETER, JWT_CONDITION = "JwtSecretArn", "HasJwtSecret"  # declared in infra/identity.py
SECRET_LENGTH = 64  # characters of [A-Za-z0-9]: about 380 bits


def _empty(parameter: str) -> dict[str, Any]:
    return {"Fn::Equals": [{"Ref": parameter}, ""]}


def conditions() -> dict[str, Any]:
    out = {condition: _empty(parameter) for parameter, condition, _, _ in GENERATED.values()}
    out[JWT_CONDITION] = {"Fn::Not": [_empty(JWT_PARAMETER)]}
    return out


def arn_of(logical_id: str) -> dict[str, Any]:
    """The secret's ARN: the generated one's (Ref of a secret is its ARN), else the parameter's."""
    parameter, condition, _, _ = GENERATED[logical_id]
    return {"Fn::If": [condition, {"Ref": logical_id}, {"Ref": parameter}]}


def resources(prefix: str, *, retain: bool) -> dict[str, Any]:
    policy = "Retain" if retain else "Delete"  # like the tables: prod keeps what sealed its cursors and keys
    return {logical_id: {
        "Type": "AWS::SecretsManager::Secret",
        "Condition": condition,
        "DeletionPolicy": policy,
        "UpdateReplacePolicy": policy,
        "Properties": {
            "Name": f"{prefix}{suffix}",
            "Description": f"Stepflow: {purpose}",
            "GenerateSecretString": {"PasswordLength": SECRET_LENGTH, "ExcludePunctuation": True},
        },
    } for logical_id, (_, condition, suffix, purpose) in GENERATED.items()}


def environment() -> dict[str, Any]:
    """ARNs only: the values are read by the app (chalicelib/aws/stage_secrets.py)."""
    return {
        "STEPFLOW_SERVER_SECRET_ARN": arn_of("ServerSecret"),
        "STEPFLOW_WEBHOOK_SECRET_ARN": arn_of("WebhookSecret"),
        "STEPFLOW_JWT_SECRET_ARN": {"Ref": JWT_PARAMETER},
    }


def readable_arns() -> list[Any]:
    """Exactly the secrets a function's environment names (the HS256 key only when one is given)."""
    return [arn_of("ServerSecret"), arn_of("WebhookSecret"),
            {"Fn::If": [JWT_CONDITION, {"Ref": JWT_PARAMETER}, {"Ref": "AWS::NoValue"}]}]


def outputs() -> dict[str, Any]:
    return {"WebhookSigningSecretArn": {"Value": arn_of("WebhookSecret"),
                                 "Description": "The secret completion webhooks are signed with (receivers verify "
                                                "X-Stepflow-Signature with its value)"}}
