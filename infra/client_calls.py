"""The boto3 client calls in a piece of code, each with its service and the IAM actions it needs.

A client's service is the literal given to `client("s3")` / `client_for(aws, "s3")` (or a name assigned from
one), or else the one service that has every operation called on the same receiver in that piece of code
(`self._ddb.put_item`, `self._ddb.query`: DynamoDB); a method handed on counts as called
(`call(..., s3.get_object, ...)`), and a paginator as its operation. A receiver that fits no service or
several stops the derivation: the code must say which client it holds.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache

CLIENT_FACTORIES = {"client": 0, "client_for": 1}  # the factory -> the position of its service literal
# Where IAM names the permission otherwise than `<signing name>:<operation>`. A transaction is authorised
# item by item, as the single-item call of each kind it may carry.
IAM_EXCEPTIONS: dict[tuple[str, str], tuple[str, ...]] = {
    ("lambda", "Invoke"): ("lambda:InvokeFunction",),
    ("dynamodb", "TransactWriteItems"): ("dynamodb:ConditionCheckItem", "dynamodb:DeleteItem",
                                         "dynamodb:PutItem", "dynamodb:UpdateItem"),
}
# A parameter that makes a call need one more permission: publishing a version as a state machine is saved.
IAM_BY_PARAMETER: dict[tuple[tuple[str, str], str], str] = {
    (("stepfunctions", "CreateStateMachine"), "publish"): "states:PublishStateMachineVersion",
    (("stepfunctions", "UpdateStateMachine"), "publish"): "states:PublishStateMachineVersion",
}


class DerivationError(Exception):
    """The code holds a client call this analysis cannot attribute: say so rather than guess."""


@dataclass(frozen=True)
class Call:
    """One botocore operation the code calls, where it calls it."""

    origin: str  # "service" (chalicelib/aws) or "tasks" (chalicelib/tasks/builtin)
    service: str  # the boto3 client name: "dynamodb", "stepfunctions"...
    operation: str  # botocore's operation name: "PutItem"
    where: str  # module:line, for messages
    keywords: frozenset[str] = frozenset()  # the parameters it is called with by name

    @property
    def actions(self) -> tuple[str, ...]:
        extra = tuple(action for (operation, keyword), action in IAM_BY_PARAMETER.items()
                      if operation == (self.service, self.operation) and keyword in self.keywords)
        return iam_actions(self.service, self.operation) + extra


# ------------------------------------------------------------------------------------------ botocore


@cache
def _service_model(service: str) -> object:
    import botocore.session

    return botocore.session.get_session().get_service_model(service)


@cache
def operations(service: str) -> dict[str, str]:
    """boto3 method name -> botocore operation name, for one client."""
    from botocore import xform_name

    model = _service_model(service)
    return {xform_name(name): name for name in model.operation_names}  # type: ignore[attr-defined]


def iam_actions(service: str, operation: str) -> tuple[str, ...]:
    """The IAM actions a call needs: `<signing name>:<operation>` (states:StartExecution) unless IAM_EXCEPTIONS."""
    prefix = _service_model(service).signing_name  # type: ignore[attr-defined]
    return IAM_EXCEPTIONS.get((prefix, operation), (f"{prefix}:{operation}",))


# ------------------------------------------------------------------------------------------ calls


def literal_service(node: ast.AST) -> str | None:
    """The service named by `client("s3", ...)` / `client_for(aws, "s3")`, else None."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in CLIENT_FACTORIES:
        position = CLIENT_FACTORIES[node.func.id]
        if len(node.args) > position and isinstance(node.args[position], ast.Constant) \
                and isinstance(node.args[position].value, str):
            return node.args[position].value
    return None

def client_services(trees: Iterable[ast.AST]) -> tuple[str, ...]:
    """Every service the code creates a client of, by literal name."""
    found = {service for tree in trees for node in ast.walk(tree) if (service := literal_service(node))}
    return tuple(sorted(found))

def calls_in(module: str, nodes: Sequence[ast.AST], origin: str, services: Sequence[str]) -> list[Call]:
    """The client calls in a piece of code of `module` (a function or a class), each with its service."""
    found: list[Call] = []
    assigned: dict[str, str] = {}  # s3 = client_for(aws, "s3")
    by_receiver: dict[str, list[tuple[str, int]]] = {}
    for root in nodes:
        for node in ast.walk(root):
            if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                service = literal_service(node.value)
                if service:
                    assigned[node.targets[0].id] = service
    keywords_of = {id(node.func): [k.arg for k in node.keywords if k.arg] for root in nodes
                   for node in ast.walk(root) if isinstance(node, ast.Call)}
    for root in nodes:
        for node in ast.walk(root):
            if not isinstance(node, ast.Attribute) or isinstance(node.value, ast.Name) and node.value.id == "self":
                continue
            method, receiver = node.attr, node.value
            if method == "get_paginator":
                continue  # its operation is named by its argument: below
            keywords = frozenset(keywords_of.get(id(node), ()))
            known = literal_service(receiver) or (
                assigned.get(receiver.id) if isinstance(receiver, ast.Name) else None)
            if known:
                found += _call(module, origin, known, method, node.lineno, keywords)
            elif any(method in operations(s) for s in services):
                by_receiver.setdefault(ast.unparse(receiver), []).append((method, node.lineno, keywords))
        for node in ast.walk(root):  # sfn.get_paginator("list_state_machines")
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                    and node.func.attr == "get_paginator" and node.args \
                    and isinstance(node.args[0], ast.Constant):
                by_receiver.setdefault(ast.unparse(node.func.value), []).append(
                    (node.args[0].value, node.lineno, frozenset()))
    for receiver, uses in by_receiver.items():
        methods = {m for m, _, _ in uses}
        fits = [s for s in services if methods <= set(operations(s))]
        if len(fits) != 1:
            where = f"{module}:{uses[0][1]}"
            raise DerivationError(f"{where}: `{receiver}` calls {sorted(methods)}, which "
                                  f"{'no client service has' if not fits else 'fits ' + ', '.join(fits)}: "
                                  "name the client's service where it is created")
        for method, line, keywords in uses:
            found += _call(module, origin, fits[0], method, line, keywords)
    return found


def _call(module: str, origin: str, service: str, method: str, line: int, keywords: frozenset[str]) -> list[Call]:
    operation = operations(service).get(method)
    if operation is None:
        if method.startswith("_") or method in ("meta", "exceptions", "can_paginate", "close"):
            return []
        raise DerivationError(f"{module}:{line}: {service} has no operation {method!r}")
    return [Call(origin, service, operation, f"{module}:{line}", keywords)]

