"""The AWS actions each Lambda function's code can call, read off the code itself (nothing to keep by hand).

Two static passes over app.py and chalicelib/ (the code is parsed, never imported):

- the calls: every `<client>.<operation>` botocore knows in the adapters (chalicelib/aws/) and the task types
  (chalicelib/tasks/builtin/), the only places a boto3 client is used, whether called or handed on
  (`call(..., s3.get_object, ...)`). A client's service is the literal given to `client("s3")` /
  `client_for(aws, "s3")`, or else the one service that has every operation called on the same name in that
  module (`self._ddb.put_item`, `self._ddb.query`: DynamoDB);
- reachability: from a function's handler in app.py (the API: app.py's module code and its routes), through
  every name its code refers to (resolved through the imports) and every member of chalicelib.wiring.Services
  it uses (`services.tasks`, `self.machines`), to the adapter classes and task types it can reach.

The granularity is a top-level function or class (a class with all its methods) and a Services member: a
function reaches what any of those it holds can call. Calls are attributed to an origin, "service" for the
adapters and "tasks" for the task types, because the same action is granted on different resources for each
(events:PutEvents on the stack's bus, or on a caller's `tasks-` bus).
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "chalicelib"
COMPOSITION_ROOT = "app"  # app.py: its module code is the API function's own (routes, blueprints, middleware)
SERVICES = ("chalicelib.wiring", "Services")  # the service graph: each member is followed on its own
CALL_ORIGINS = {"chalicelib.aws": "service", "chalicelib.tasks.builtin": "tasks"}
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


@dataclass
class _Symbol:
    module: str
    name: str
    nodes: list[ast.AST]
    refs: set[tuple[str, str]] = field(default_factory=set)
    calls: list[Call] = field(default_factory=list)


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


# ------------------------------------------------------------------------------------------ parsing


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules(root: Path) -> dict[str, Path]:
    found = {COMPOSITION_ROOT: root / "app.py"}
    for path in sorted((root / PACKAGE).rglob("*.py")):
        found[_module_name(path, root)] = path
    return found


def _resolve_from(module: str, node: ast.ImportFrom, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


class _Program:
    """Every module's symbols, imports, references and client calls."""

    def __init__(self, root: Path):
        self.paths = _modules(root)
        self.trees = {name: ast.parse(path.read_text(encoding="utf-8"), str(path)) for name, path in self.paths.items()}
        self.symbols: dict[tuple[str, str], _Symbol] = {}
        self.imports: dict[str, dict[str, set[tuple[str, str | None]]]] = {}
        for module, tree in self.trees.items():
            self._collect(module, tree)
        self.members = {name for (module, name) in self.symbols if module == SERVICES[0]
                        and name.startswith(SERVICES[1] + ".")}
        self.services = self._client_services()
        for symbol in self.symbols.values():
            self._references(symbol)
        self._calls()

    # names ---------------------------------------------------------------------------------------

    def _collect(self, module: str, tree: ast.Module) -> None:
        imports: dict[str, set[tuple[str, str | None]]] = {}
        is_package = self.paths[module].name == "__init__.py"
        for node in ast.walk(tree):  # function-local imports count too: the house imports lazily
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.asname:
                        imports.setdefault(alias.asname, set()).add((alias.name, None))
            elif isinstance(node, ast.ImportFrom):
                source = _resolve_from(module, node, is_package)
                for alias in node.names:
                    imports.setdefault(alias.asname or alias.name, set()).add((source, alias.name))
        self.imports[module] = imports
        body: list[ast.AST] = []
        for node in tree.body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                body.extend(node.decorator_list)  # decorators run with the module
                if (module, node.name) == SERVICES and isinstance(node, ast.ClassDef):
                    for item in node.body:
                        if isinstance(item, ast.FunctionDef) and item.name != "__init__":
                            self.symbols[(module, f"{node.name}.{item.name}")] = _Symbol(
                                module, f"{node.name}.{item.name}", [*item.decorator_list, *item.body])
                    self.symbols[(module, node.name)] = _Symbol(module, node.name, [])
                else:
                    self.symbols[(module, node.name)] = _Symbol(module, node.name, [*node.body])
            else:
                body.append(node)
        self.symbols[(module, "")] = _Symbol(module, "", body)

    def _target(self, module: str, name: str) -> set[tuple[str, str]]:
        """The symbols (or modules, as (module, "")) a name used in `module` stands for."""
        if (module, name) in self.symbols and name:
            return {(module, name)}
        found: set[tuple[str, str]] = set()
        for source, imported in self.imports.get(module, {}).get(name, ()):
            if imported is None or f"{source}.{imported}" in self.paths:
                path = source if imported is None else f"{source}.{imported}"
                if path in self.paths:
                    found.add((path, ""))
            elif source in self.paths and source != module:
                found |= self._target(source, imported)
        return found

    def _references(self, symbol: _Symbol) -> None:
        module = symbol.module
        in_services = module == SERVICES[0] and symbol.name.startswith(SERVICES[1] + ".")
        api_side = module == COMPOSITION_ROOT or module.startswith(f"{PACKAGE}.api")
        refs = symbol.refs
        if symbol.name and module != COMPOSITION_ROOT:  # its module's own code (constants, tables) runs first;
            refs.add((module, ""))  # app.py's is the API's: a Lambda handler there runs none of its routes
        for root in symbol.nodes:
            receivers = {id(node.value) for node in ast.walk(root) if isinstance(node, ast.Attribute)}
            for node in ast.walk(root):
                if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
                    for target in self._target(module, node.id):
                        refs.add(target)
                        if target[1] == "" and id(node) not in receivers:  # a module handed on as a value
                            refs |= {key for key in self.symbols if key[0] == target[0]}  # (app.py's blueprints)
                elif isinstance(node, ast.Attribute):
                    member = (SERVICES[0], f"{SERVICES[1]}.{node.attr}")
                    if isinstance(node.value, ast.Name):
                        for target in self._target(module, node.value.id):
                            if target[1] == "":  # module.name
                                refs |= self._target(target[0], node.attr) or {target}
                        if in_services and node.value.id == "self" and member[1] in self.members:
                            refs.add(member)
                    if api_side and member[1] in self.members and not (
                            isinstance(node.value, ast.Name) and node.value.id == "self"):
                        refs.add(member)  # services().tasks in a blueprint, services.step_runner in app.py
                elif in_services and isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
                        and node.func.id == "getattr" and len(node.args) >= 2 \
                        and isinstance(node.args[1], ast.Constant):
                    member = (SERVICES[0], f"{SERVICES[1]}.{node.args[1].value}")
                    if member[1] in self.members:
                        refs.add(member)

    # calls ---------------------------------------------------------------------------------------

    def _literal_service(self, node: ast.AST) -> str | None:
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in CLIENT_FACTORIES:
            position = CLIENT_FACTORIES[node.func.id]
            if len(node.args) > position and isinstance(node.args[position], ast.Constant) \
                    and isinstance(node.args[position].value, str):
                return node.args[position].value
        return None

    def _client_services(self) -> tuple[str, ...]:
        """Every service the code creates a client of, by literal name."""
        found = {service for tree in self.trees.values() for node in ast.walk(tree)
                 if (service := self._literal_service(node))}
        return tuple(sorted(found))

    def _calls(self) -> None:
        for (module, _), symbol in self.symbols.items():
            origin = next((o for prefix, o in CALL_ORIGINS.items() if module == prefix or module.startswith(prefix + ".")),
                          None)
            if origin is not None:
                self._symbol_calls(symbol, origin)

    def _symbol_calls(self, symbol: _Symbol, origin: str) -> None:
        assigned: dict[str, str] = {}  # s3 = client_for(aws, "s3")
        by_receiver: dict[str, list[tuple[str, int]]] = {}
        for root in symbol.nodes:
            for node in ast.walk(root):
                if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                    service = self._literal_service(node.value)
                    if service:
                        assigned[node.targets[0].id] = service
        keywords_of = {id(node.func): [k.arg for k in node.keywords if k.arg] for root in symbol.nodes
                       for node in ast.walk(root) if isinstance(node, ast.Call)}
        for root in symbol.nodes:
            for node in ast.walk(root):
                if not isinstance(node, ast.Attribute) or isinstance(node.value, ast.Name) and node.value.id == "self":
                    continue
                method, receiver = node.attr, node.value
                if method == "get_paginator":
                    continue  # its operation is named by its argument: below
                keywords = frozenset(keywords_of.get(id(node), ()))
                known = self._literal_service(receiver) or (
                    assigned.get(receiver.id) if isinstance(receiver, ast.Name) else None)
                if known:
                    self._add(symbol, origin, known, method, node.lineno, keywords)
                elif any(method in operations(s) for s in self.services):
                    by_receiver.setdefault(ast.unparse(receiver), []).append((method, node.lineno, keywords))
            for node in ast.walk(root):  # sfn.get_paginator("list_state_machines")
                if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                        and node.func.attr == "get_paginator" and node.args \
                        and isinstance(node.args[0], ast.Constant):
                    by_receiver.setdefault(ast.unparse(node.func.value), []).append(
                        (node.args[0].value, node.lineno, frozenset()))
        for receiver, uses in by_receiver.items():
            methods = {m for m, _, _ in uses}
            fits = [s for s in self.services if methods <= set(operations(s))]
            if len(fits) != 1:
                where = f"{symbol.module}:{uses[0][1]}"
                raise DerivationError(f"{where}: `{receiver}` calls {sorted(methods)}, which "
                                      f"{'no client service has' if not fits else 'fits ' + ', '.join(fits)}: "
                                      "name the client's service where it is created")
            for method, line, keywords in uses:
                self._add(symbol, origin, fits[0], method, line, keywords)

    def _add(self, symbol: _Symbol, origin: str, service: str, method: str, line: int,
             keywords: frozenset[str]) -> None:
        operation = operations(service).get(method)
        if operation is None:
            if method.startswith("_") or method in ("meta", "exceptions", "can_paginate", "close"):
                return
            raise DerivationError(f"{symbol.module}:{line}: {service} has no operation {method!r}")
        symbol.calls.append(Call(origin, service, operation, f"{symbol.module}:{line}", keywords))

    # reachability --------------------------------------------------------------------------------

    def reach(self, starts: Iterable[tuple[str, str]]) -> set[tuple[str, str]]:
        seen: set[tuple[str, str]] = set()
        pending = [s for s in starts if s in self.symbols]
        while pending:
            key = pending.pop()
            if key in seen:
                continue
            seen.add(key)
            symbol = self.symbols[key]
            pending.extend(ref for ref in symbol.refs if ref in self.symbols and ref not in seen)
        return seen


@cache
def _program(root: Path = ROOT) -> _Program:
    return _Program(root)


def handler_starts(handler: str, program: _Program) -> set[tuple[str, str]]:
    """Where a function's code starts: its handler, or for the API (`app.app`) app.py's module code."""
    module, name = handler.rsplit(".", 1)
    if module == COMPOSITION_ROOT and name == "app":
        return {(COMPOSITION_ROOT, "")} | {key for key in program.symbols if key[0] == COMPOSITION_ROOT and key[1]
                                          and not _is_lambda_handler(program, key[1])}
    return {(module, name)}


def _is_lambda_handler(program: _Program, name: str) -> bool:
    """A function of app.py registered as its own Lambda function (@app.lambda_function, @app.schedule, ...)."""
    for node in program.trees[COMPOSITION_ROOT].body:
        if isinstance(node, ast.FunctionDef) and node.name == name:
            return any(isinstance(d, ast.Call) and isinstance(d.func, ast.Attribute) and d.func.attr != "route"
                       for d in node.decorator_list)
    return False


def calls_of(handler: str, root: Path = ROOT) -> tuple[Call, ...]:
    """Every AWS call the code reached from this handler (e.g. "app.step_runner") can make."""
    program = _program(root)
    reached = program.reach(handler_starts(handler, program))
    return tuple(call for key in sorted(reached) for call in program.symbols[key].calls)


def actions_of(handler: str, root: Path = ROOT) -> dict[str, frozenset[str]]:
    """origin -> the IAM actions this handler's code can call ("service": the adapters, "tasks": task types)."""
    found: dict[str, set[str]] = {}
    for call in calls_of(handler, root):
        found.setdefault(call.origin, set()).update(call.actions)
    return {origin: frozenset(actions) for origin, actions in found.items()}
