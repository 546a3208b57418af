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

A Services member whose body ends `return OurClass(...)` is followed method by method: `services.tasks.sweep`
reaches TaskService.sweep (found through its bases), and in it `self._store.put(...)` reaches the `put` of
what the member's constructor call passed for `store` (`self.task_store`: TaskStore.put), a callable it was
given reaches what that callable calls. Whatever is handed on rather than called (`self`, `self._store` as an
argument or a return value) goes whole: every method and everything it holds; so does any other object, and
any top-level function or class (a class with all its methods). Calls are attributed to an origin, "service"
for the adapters and "tasks" for the task types, because the same action is granted on different resources
for each (events:PutEvents on the stack's bus, or on a caller's `tasks-` bus).
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from infra import client_calls
from infra.client_calls import Call, DerivationError, iam_actions, operations

__all__ = ["Call", "DerivationError", "actions_of", "calls_of", "iam_actions", "operations"]

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "chalicelib"
COMPOSITION_ROOT = "app"  # app.py: its module code is the API function's own (routes, blueprints, middleware)
SERVICES = ("chalicelib.wiring", "Services")  # the service graph: each member is followed on its own
# The stage's own secrets (read at every cold start) are granted on their ARNs, not on the tenants' credentials:
# their adapter is an origin of its own, listed before the package that holds it (the first match wins).
CALL_ORIGINS = {"chalicelib.aws.stage_secrets": "stage", "chalicelib.aws": "service",
                "chalicelib.tasks.builtin": "tasks"}


@dataclass
class _Symbol:
    module: str
    name: str
    nodes: list[ast.AST]
    refs: set[tuple[str, str]] = field(default_factory=set)
    calls: list[Call] = field(default_factory=list)


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
        self.classes: dict[tuple[str, str], ast.ClassDef] = {}
        self.member_defs: dict[tuple[str, str], ast.FunctionDef] = {}
        for module, tree in self.trees.items():
            self._collect(module, tree)
        self.members = {name for (module, name) in self.symbols if module == SERVICES[0]
                        and name.startswith(SERVICES[1] + ".")}
        self.precise = self._precise()
        self.services = client_calls.client_services(self.trees.values())
        for symbol in list(self.symbols.values()):
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
                if isinstance(node, ast.ClassDef):
                    self.classes[(module, node.name)] = node
                if (module, node.name) == SERVICES and isinstance(node, ast.ClassDef):
                    for item in node.body:
                        if isinstance(item, ast.FunctionDef) and item.name != "__init__":
                            self.member_defs[(module, f"{node.name}.{item.name}")] = item
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
        if symbol.name and module != COMPOSITION_ROOT:  # its module's own code (constants, tables) runs first;
            symbol.refs.add((module, ""))  # app.py's is the API's: a Lambda handler there runs none of its routes
        for root in symbol.nodes:
            symbol.refs |= self._refs(module, root, services_self=in_services, api_side=api_side)

    def _member(self, name: str) -> tuple[str, str] | None:
        key = (SERVICES[0], f"{SERVICES[1]}.{name}")
        return key if key[1] in self.members else None

    def _member_use(self, name: str, method: str | None) -> set[tuple[str, str]]:
        """Using Services member `name`: calling one of its methods reaches that method (when the member builds
        an instance of a class of ours, see _precise), anything else reaches all the member holds."""
        member = self._member(name)
        if member is None:
            return set()
        if method is not None and name in self.precise:
            return {(f"@{name}", method)}
        return {member}

    def _refs(self, module: str, root: ast.AST, *, services_self: bool = False, api_side: bool = False,
              instance: tuple[str, str] | None = None) -> set[tuple[str, str]]:
        """What a piece of code refers to: names resolved through its module's imports, Services members (`self.X`
        in Services, `services().X` in app.py and the blueprints), and for a method of a member's instance
        (`instance`: (member, method)), its own methods and what its constructor was given (`self._store`)."""
        refs: set[tuple[str, str]] = set()
        parents = {id(child): node for node in ast.walk(root) for child in ast.iter_child_nodes(node)}
        receivers = {id(node.value) for node in ast.walk(root) if isinstance(node, ast.Attribute)}

        def method_of(node: ast.AST) -> str | None:  # `node.m` read off a node (called or handed on)
            parent = parents.get(id(node))
            return parent.attr if isinstance(parent, ast.Attribute) and parent.value is node else None

        for node in ast.walk(root):
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
                if node.id == "super" and instance:  # a base's method, whichever: all of the instance
                    refs |= self._whole_instance(instance)
                if node.id == "self" and (services_self or instance):
                    if id(node) not in receivers:  # `self` handed on: everything it holds goes with it
                        refs |= self._whole_instance(instance) if instance else set()
                    continue
                for target in self._target(module, node.id):
                    refs.add(target)
                    if target[1] == "" and id(node) not in receivers:  # a module handed on as a value
                        refs |= {key for key in self.symbols if key[0] == target[0]}  # (app.py's blueprints)
            elif isinstance(node, ast.Attribute):
                value = node.value
                if isinstance(value, ast.Name) and value.id != "self":
                    for target in self._target(module, value.id):
                        if target[1] == "":  # module.name
                            refs |= self._target(target[0], node.attr) or {target}
                if isinstance(value, ast.Name) and value.id == "self":
                    if not isinstance(node.ctx, ast.Load):
                        continue  # self._store = store: what it holds is followed where it is used
                    if services_self:
                        refs |= self._member_use(node.attr, method_of(node))
                    elif instance:
                        refs |= self._attribute_use(instance, node, parents)
                elif api_side and self._member(node.attr):
                    refs |= self._member_use(node.attr, method_of(node))  # services().tasks.complete(...)
            elif services_self and isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
                    and node.func.id == "getattr" and len(node.args) >= 2 and isinstance(node.args[1], ast.Constant):
                refs |= self._member_use(str(node.args[1].value), None)
        return refs

    # members built as instances of our classes: followed method by method -------------------------

    def _precise(self) -> dict[str, tuple[tuple[str, str], dict[str, ast.AST], set[str]]]:
        """member -> (its class, attribute -> the wiring expression its constructor stored there, parameters
        its constructor used otherwise) for members whose body ends `return OurClass(...)`."""
        found: dict[str, tuple[tuple[str, str], dict[str, ast.AST], set[str]]] = {}
        for key in sorted(self.member_defs):
            function = self.member_defs[key]
            last = function.body[-1] if function.body else None
            if sum(isinstance(node, ast.Return) for node in ast.walk(function)) != 1:
                continue  # it may build one class or another (routing: emulated or not): the member stays whole
            if not (isinstance(last, ast.Return) and isinstance(last.value, ast.Call)
                    and isinstance(last.value.func, ast.Name)):
                continue
            classes = [t for t in self._target(SERVICES[0], last.value.func.id) if t in self.classes]
            if len(classes) != 1 or any(isinstance(a, ast.Starred) for a in last.value.args) \
                    or any(k.arg is None for k in last.value.keywords):
                continue
            if self._mro(classes[0]) is None:
                continue  # a base of someone else's: an inherited method could be anywhere, the member stays whole
            init = self._methods(classes[0]).get("__init__", (None, None))[1]
            if init is None:
                continue
            params = [a.arg for a in [*init.args.posonlyargs, *init.args.args][1:]]
            given = {params[i]: arg for i, arg in enumerate(last.value.args) if i < len(params)}
            given.update({k.arg: k.value for k in last.value.keywords if k.arg})
            stored: dict[str, ast.AST] = {}
            plain: set[int] = set()
            for node in ast.walk(init):
                if isinstance(node, ast.Assign) and isinstance(node.value, ast.Name) and node.value.id in given:
                    for target in node.targets:
                        if isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name) \
                                and target.value.id == "self":
                            stored[target.attr] = given[node.value.id]
                            plain.add(id(node.value))
            other = {n.id for n in ast.walk(init) if isinstance(n, ast.Name) and n.id in given and id(n) not in plain}
            found[key[1].split(".", 1)[1]] = (classes[0], stored, other)
        return found

    def _mro(self, cls_key: tuple[str, str]) -> list[tuple[str, str]] | None:
        """The class and its bases, depth first from the left (the mixins here share no base), or None when a
        base is not one of ours."""
        order = [cls_key]
        for base in self.classes[cls_key].bases:
            if isinstance(base, ast.Name) and base.id == "object":
                continue
            found = [t for t in self._target(cls_key[0], base.id) if t in self.classes] \
                if isinstance(base, ast.Name) else []
            below = self._mro(found[0]) if len(found) == 1 else None
            if below is None:
                return None
            order += [b for b in below if b not in order]
        return order

    def _methods(self, cls_key: tuple[str, str]) -> dict[str, tuple[tuple[str, str], ast.FunctionDef]]:
        """name -> (the class defining it, its definition), as an instance finds it."""
        found: dict[str, tuple[tuple[str, str], ast.FunctionDef]] = {}
        for owner in self._mro(cls_key) or [cls_key]:
            for node in self.classes[owner].body:
                if isinstance(node, ast.FunctionDef):
                    found.setdefault(node.name, (owner, node))
        return found

    def _whole_instance(self, instance: tuple[str, str]) -> set[tuple[str, str]]:
        """All an instance holds: every method of its class and everything its constructor was given."""
        name = instance[0].removeprefix("@")
        cls_key, stored, _ = self.precise[name]
        refs = {(f"@{name}", m) for m in self._methods(cls_key)}
        for expression in stored.values():
            refs |= self._refs(SERVICES[0], expression, services_self=True)
        return refs

    def _attribute_use(self, instance: tuple[str, str], node: ast.Attribute,
                       parents: dict[int, ast.AST]) -> set[tuple[str, str]]:
        """`self.<attr>` in a method of a member's instance."""
        name = instance[0].removeprefix("@")
        cls_key, stored, _ = self.precise[name]
        methods = {m: f for m, (_, f) in self._methods(cls_key).items()}
        attr = node.attr
        if attr in methods:
            return {(instance[0], attr)}
        parent = parents.get(id(node))
        expression = stored.get(attr)
        # Where else it is set (a method that caches or replaces it): what that method sets it to goes too.
        setters = {(instance[0], m) for m, f in methods.items() if m != "__init__" and any(
            isinstance(t, ast.Attribute) and t.attr == attr and isinstance(t.value, ast.Name) and t.value.id == "self"
            for n in ast.walk(f) if isinstance(n, ast.Assign | ast.AnnAssign | ast.AugAssign)
            for t in (n.targets if isinstance(n, ast.Assign) else [n.target]))}
        if expression is None:
            return setters | {(instance[0], "__init__")}
        return setters | self._stored_use(expression, node, parent)

    def _stored_use(self, expression: ast.AST, node: ast.AST, parent: ast.AST | None) -> set[tuple[str, str]]:
        """Using what the constructor was given (`expression`, in the wiring) through `node` (self._x)."""
        if isinstance(parent, ast.Attribute) and parent.value is node and isinstance(expression, ast.Attribute) \
                and isinstance(expression.value, ast.Name) and expression.value.id == "self":
            return self._member_use(expression.attr, parent.attr)  # self._store.put() given self.task_store
        if isinstance(parent, ast.Call) and parent.func is node:  # a callable it was given, called
            if isinstance(expression, ast.Lambda):
                return self._refs(SERVICES[0], expression.body, services_self=True)
            return self._refs(SERVICES[0], expression, services_self=True)
        return self._refs(SERVICES[0], expression, services_self=True)

    def _instance_symbol(self, key: tuple[str, str]) -> _Symbol:
        """(`@member`, method): one method of the instance a member builds, as that member built it."""
        name, method = key[0].removeprefix("@"), key[1]
        cls_key, stored, other = self.precise[name]
        owner, function = self._methods(cls_key).get(method, (cls_key, None))
        symbol = _Symbol(owner[0], key[1], [])
        if function is None:  # an attribute, not a method: all the member holds
            symbol.refs |= {(SERVICES[0], f"{SERVICES[1]}.{name}")}
            return symbol
        symbol.refs |= {(owner[0], "")}
        symbol.refs |= self._refs(owner[0], function, instance=key)
        for base in self._mro(cls_key) or [cls_key]:  # class attributes
            for statement in self.classes[base].body:
                if not isinstance(statement, ast.FunctionDef):
                    symbol.refs |= self._refs(base[0], statement)
        if method == "__init__":  # building it: the member's own code, and arguments used other than stored
            member_body = self.member_defs[(SERVICES[0], f"{SERVICES[1]}.{name}")].body
            for statement in member_body[:-1]:
                symbol.refs |= self._refs(SERVICES[0], statement, services_self=True)
            call = member_body[-1].value  # type: ignore[attr-defined]
            params = [a.arg for a in [*function.args.posonlyargs, *function.args.args][1:]]
            for i, arg in enumerate(call.args):
                if i < len(params) and params[i] in other:
                    symbol.refs |= self._refs(SERVICES[0], arg, services_self=True)
            for keyword in call.keywords:
                if keyword.arg in other:
                    symbol.refs |= self._refs(SERVICES[0], keyword.value, services_self=True)
        else:
            symbol.refs.add((key[0], "__init__"))
        whole = self.symbols.get(owner)
        if whole is not None:  # its calls, if it is an adapter: those made in this method
            symbol.calls = [c for c in whole.calls
                            if function.lineno <= int(c.where.rsplit(":", 1)[1]) <= (function.end_lineno or 0)]
        return symbol

    # calls ---------------------------------------------------------------------------------------

    def _calls(self) -> None:
        for (module, _), symbol in self.symbols.items():
            origin = next((o for prefix, o in CALL_ORIGINS.items() if module == prefix or module.startswith(prefix + ".")),
                          None)
            if origin is not None:
                symbol.calls = client_calls.calls_in(module, symbol.nodes, origin, self.services)

    # reachability --------------------------------------------------------------------------------

    def reach(self, starts: Iterable[tuple[str, str]]) -> set[tuple[str, str]]:
        seen: set[tuple[str, str]] = set()
        pending = list(starts)
        while pending:
            key = pending.pop()
            if key in seen:
                continue
            if key not in self.symbols:
                if not key[0].startswith("@"):
                    continue
                self.symbols[key] = self._instance_symbol(key)
            seen.add(key)
            pending.extend(ref for ref in self.symbols[key].refs if ref not in seen)
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
