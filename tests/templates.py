"""Reading CloudFormation templates offline: resolve intrinsics in an emulated account, list what refers to what.

`Resolver` evaluates what the templates use (Ref, Fn::GetAtt, Fn::Sub, Fn::If with the Conditions) for
given parameters, so a function's environment can be read as CloudFormation would set it.
`create_identity` creates the template's Cognito resources in an emulated account from their own
properties (moto implements Cognito, not its CloudFormation resources). `reference_problems` checks that every Ref, GetAtt, Sub variable, Fn::If condition and DependsOn names
something the template declares, and that a conditional resource is only named where its condition holds.
"""

from __future__ import annotations

import re
from typing import Any

PSEUDO = frozenset({"AWS::AccountId", "AWS::NotificationARNs", "AWS::NoValue", "AWS::Partition", "AWS::Region",
                    "AWS::StackId", "AWS::StackName", "AWS::URLSuffix"})
SUB_VARIABLE = re.compile(r"\$\{([^}]+)\}")
NO_VALUE = object()  # what Ref AWS::NoValue resolves to: the list item or property it is in is left out


class Resolver:
    """Resolves Ref, Fn::GetAtt, Fn::Sub and Fn::If as CloudFormation would for `parameters`.

    A Ref to a resource gives `physical[logical id]` when known (e.g. a user pool's id), else the name
    the template gives it; a GetAtt gives `<Id.Attribute>`."""

    def __init__(self, template: dict[str, Any], account: str, region: str,
                 parameters: dict[str, str] | None = None, physical: dict[str, str] | None = None):
        self.template = template
        self.resources = template["Resources"]
        declared = {name: d["Default"] for name, d in template.get("Parameters", {}).items() if "Default" in d}
        self.pseudo = {"AWS::Partition": "aws", "AWS::Region": region, "AWS::AccountId": account,
                       **declared, **(parameters or {})}
        self.physical = physical or {}

    def name_of(self, logical_id: str) -> str:
        if logical_id in self.physical:
            return self.physical[logical_id]
        props = self.resources[logical_id].get("Properties", {})
        for key in ("TableName", "Name", "FunctionName", "QueueName", "StateMachineName"):
            if key in props:
                return props[key]
        return f"<{logical_id}>"

    def condition(self, name: str) -> bool:
        return bool(self._test(self.template["Conditions"][name]))

    def _test(self, value: Any) -> Any:
        if isinstance(value, dict) and len(value) == 1:
            (key, arg), = value.items()
            if key == "Fn::Equals":
                return self(arg[0]) == self(arg[1])
            if key == "Fn::Not":
                return not self._test(arg[0])
            if key == "Fn::And":
                return all(self._test(a) for a in arg)
            if key == "Fn::Or":
                return any(self._test(a) for a in arg)
            if key == "Condition":
                return self.condition(arg)
        return self(value)

    def __call__(self, value: Any) -> Any:
        if isinstance(value, dict) and len(value) == 1:
            (key, arg), = value.items()
            if key == "Ref":
                if arg == "AWS::NoValue":
                    return NO_VALUE
                return self.pseudo[arg] if arg in self.pseudo else self.name_of(arg)
            if key == "Fn::GetAtt":
                return f"<{arg[0]}.{arg[1]}>"
            if key == "Fn::Sub":
                return SUB_VARIABLE.sub(lambda m: self.pseudo.get(m[1]) or self.name_of(m[1].split(".")[0]), arg)
            if key == "Fn::If":
                return self(arg[1] if self.condition(arg[0]) else arg[2])
        if isinstance(value, dict):
            return {k: v for k, v in ((k, self(v)) for k, v in value.items()) if v is not NO_VALUE}
        if isinstance(value, list):
            return [v for v in (self(v) for v in value) if v is not NO_VALUE]
        return value


def references(value: Any, parameters: Any = ()) -> set[str]:
    """Logical ids a value refers to (Ref, Fn::GetAtt, ${X} and ${X.Attr} in Fn::Sub), not parameters."""
    found: set[str] = set()
    if isinstance(value, dict):
        for key, arg in value.items():
            if key == "Ref" and isinstance(arg, str):
                found.add(arg)
            elif key == "Fn::GetAtt":
                found.add(arg[0] if isinstance(arg, list) else arg.split(".")[0])
            elif key == "Fn::Sub" and isinstance(arg, str):
                found |= {m.split(".")[0] for m in SUB_VARIABLE.findall(arg) if not m.startswith("!")}
            else:
                found |= references(arg, parameters)
    elif isinstance(value, list):
        for item in value:
            found |= references(item, parameters)
    return {name for name in found if name not in PSEUDO and name not in parameters}


def reference_problems(template: dict[str, Any]) -> list[str]:
    """What in the template names something it does not declare, or a conditional resource where it may not exist."""
    parameters = set(template.get("Parameters", {}))
    resources = template.get("Resources", {})
    conditions = template.get("Conditions", {})
    problems: list[str] = []

    def target(name: str, where: str, holding: frozenset[str], kind: str) -> None:
        if name in PSEUDO or (kind == "Ref" and name in parameters):
            return
        if name not in resources:
            problems.append(f"{where}: {kind} to '{name}', which the template does not declare")
            return
        needed = resources[name].get("Condition")
        if needed and needed not in holding:
            problems.append(f"{where}: {kind} to '{name}', which exists only when {needed} holds")

    def walk(value: Any, where: str, holding: frozenset[str]) -> None:
        if isinstance(value, list):
            for i, item in enumerate(value):
                walk(item, f"{where}[{i}]", holding)
            return
        if not isinstance(value, dict):
            return
        if len(value) == 1:
            (key, arg), = value.items()
            if key == "Fn::If":
                name, when_true, when_false = arg
                if name not in conditions:
                    problems.append(f"{where}: Fn::If on undeclared condition '{name}'")
                walk(when_true, f"{where}/true", holding | {name})
                walk(when_false, f"{where}/false", holding)
                return
            if key == "Condition" and isinstance(arg, str):
                if arg not in conditions:
                    problems.append(f"{where}: undeclared condition '{arg}'")
                return
            if key == "Ref" and isinstance(arg, str):
                target(arg, where, holding, "Ref")
                return
            if key == "Fn::GetAtt":
                target(arg[0] if isinstance(arg, list) else arg.split(".")[0], where, holding, "Fn::GetAtt")
                return
            if key == "Fn::Sub":
                text, local = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])
                for variable in SUB_VARIABLE.findall(text):
                    if variable.startswith("!") or variable in local:
                        continue
                    name = variable.split(".")[0]
                    target(name, where, holding, "Ref" if "." not in variable else "Fn::GetAtt")
                walk(local, where, holding)
                return
        for key, item in value.items():
            walk(item, f"{where}/{key}", holding)

    for name, expression in conditions.items():
        walk(expression, f"Conditions/{name}", frozenset())
        for ref in references(expression, parameters):
            problems.append(f"Conditions/{name}: names resource '{ref}'; conditions may name parameters only")
    for name, rule in template.get("Rules", {}).items():
        for ref in references(rule, parameters):
            problems.append(f"Rules/{name}: names '{ref}', which is no parameter")
    for logical_id, resource in resources.items():
        own = resource.get("Condition")
        if own and own not in conditions:
            problems.append(f"Resources/{logical_id}: undeclared condition '{own}'")
        holding = frozenset({own} if own else ())
        depends = resource.get("DependsOn", [])
        for name in [depends] if isinstance(depends, str) else depends:
            target(name, f"Resources/{logical_id}/DependsOn", holding, "DependsOn")
        walk({k: v for k, v in resource.items() if k not in ("Type", "Condition", "DependsOn")},
             f"Resources/{logical_id}", holding)
    for name, output in template.get("Outputs", {}).items():
        own = output.get("Condition")
        walk({k: v for k, v in output.items() if k != "Condition"}, f"Outputs/{name}",
             frozenset({own} if own else ()))
    return problems


FIRST_DEPLOY: dict[str, str] = {}  # what a first `make deploy` passes: nothing (the stack's own pool and secrets)


def create_identity(aws: Any, template: dict[str, Any], parameters: dict[str, str] = FIRST_DEPLOY) -> dict[str, str]:
    """The template's user pool, app client and groups created through the Cognito API (`aws`: a
    LocalRuntime), from their resource properties; returns logical id -> physical id."""
    from infra import identity

    idp = aws.client("cognito-idp")
    resources = template["Resources"]
    pool_properties = dict(resources[identity.POOL]["Properties"])
    pool_properties["PoolName"] = pool_properties.pop("UserPoolName")  # the one name CreateUserPool spells otherwise
    physical = {identity.POOL: idp.create_user_pool(**pool_properties)["UserPool"]["Id"]}
    resolve = Resolver(template, aws.account_id, aws.region, parameters, physical)
    client = idp.create_user_pool_client(**resolve(resources[identity.CLIENT]["Properties"]))
    physical[identity.CLIENT] = client["UserPoolClient"]["ClientId"]
    for resource in resources.values():
        if resource.get("Type") == "AWS::Cognito::UserPoolGroup":
            idp.create_group(**resolve(resource["Properties"]))
    return physical


def api_environment(aws: Any, template: dict[str, Any], physical: dict[str, str],
                    parameters: dict[str, str] = FIRST_DEPLOY) -> dict[str, str]:
    """The API function's environment as CloudFormation sets it, with these resources' physical ids."""
    resolve = Resolver(template, aws.account_id, aws.region, parameters, physical)
    return resolve(template["Resources"]["APIHandler"]["Properties"]["Environment"]["Variables"])


def generated_secrets(aws: Any, template: dict[str, Any]) -> None:
    """The secrets the stack generates, created in the emulated account under the names the template gives
    (moto implements Secrets Manager, not its CloudFormation resources)."""
    sm = aws.client("secretsmanager")
    for logical_id, resource in template["Resources"].items():
        if resource.get("Type") == "AWS::SecretsManager::Secret":
            name = resource["Properties"]["Name"]
            if not sm.list_secrets(Filters=[{"Key": "name", "Values": [name]}])["SecretList"]:
                sm.create_secret(Name=name, SecretString=f"{logical_id}-" + "g" * 60)


def deployed_settings(aws: Any, template: dict[str, Any], env: dict[str, str]) -> Any:
    """The settings a function with `env` builds at its cold start, its secrets read from Secrets Manager."""
    from chalicelib.wiring import Services

    generated_secrets(aws, template)
    return Services(env={**aws.env, **env}).settings
