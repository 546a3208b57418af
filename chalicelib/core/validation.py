"""Checks a definition and reports every problem at once, each with a location and a hint."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from pydantic import ValidationError

from chalicelib.core import conditions
from chalicelib.core.decisions import writes_of_step
from chalicelib.core.graph import Graph, build_graph, definition_edges, structural_kinds
from chalicelib.core.model import STEP_TYPES, Definition, HumanStep, MachineStep, ReceiveStep, TimerStep, WebhookStep
from chalicelib.core.route_checks import route_problems
from chalicelib.core.schemas import schema_problems
from chalicelib.core.sizing import MAX_DEFINITION_BYTES, deployed_size
from chalicelib.core.structure import analyse
from chalicelib.core.upstream import Upstream

# A step count cap keeps one run's history (about five events a step, 25,000 at most) and the console
# usable; Step Functions' own limit on the definition's size (MAX_DEFINITION_BYTES) is checked on the
# compiled, bound state machine (size_issues).
MAX_STEPS = 1_000


@dataclass(frozen=True, order=True)
class Issue:
    """One problem: what (code), where (location), why (message) and what to do (hint)."""

    sort_key: tuple[Any, ...] = field(repr=False, compare=True)
    code: str = field(compare=False)
    location: str = field(compare=False)
    message: str = field(compare=False)
    hint: str = field(default="", compare=False)

    def as_dict(self) -> dict[str, str]:
        return {"code": self.code, "location": self.location, "message": self.message, "hint": self.hint}


class TaskCatalog(Protocol):
    def ids(self) -> Iterable[str]: ...
    def validate_config(self, task_id: str, config: dict[str, Any]) -> list[Any]: ...
    def get(self, task_id: str) -> Any: ...


class DefinitionInvalid(Exception):
    """Raised by callers that need a valid definition; carries every issue."""

    def __init__(self, issues: list[Issue]):
        super().__init__(f"{len(issues)} problem(s) in the definition")
        self.issues = issues


_SECTIONS = {"definition": 0, "name": 0, "version": 0, "description": 0, "input_schema": 0,
             "initial_step": 0, "terminal_steps": 0, "steps": 1, "edges": 2}


def _issue(code: str, location: str, message: str, hint: str = "") -> Issue:
    # Sort by where the problem is (steps[2] before steps[10]), then by kind.
    tokens = re.findall(r"[^.\[\]]+", location)
    key = tuple((0, int(t)) if t.isdigit() else (1, t) for t in tokens)
    return Issue((_SECTIONS.get(tokens[0] if tokens else "", 3), key, code, message), code, location, message, hint)


def _loc(parts: Iterable[Any]) -> str:
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "definition"


def parse_definition(data: Any) -> tuple[Definition | None, list[Issue]]:
    """The definition model, or the schema problems that stop it from being built."""
    if not isinstance(data, dict):
        return None, [_issue("invalid_type", "definition", "a definition is a JSON/YAML object")]
    try:
        return Definition.model_validate(data), []
    except ValidationError as exc:
        issues = []
        for error in exc.errors():
            loc = list(error["loc"])
            # Drop the discriminator tag pydantic inserts for step kinds (steps.2.machine.retry).
            if len(loc) >= 3 and loc[0] == "steps" and loc[2] in STEP_TYPES:
                del loc[2]
            location = _loc(loc)
            hint = _schema_hint(error["type"])
            issues.append(_issue(error["type"], location, error["msg"], hint))
        return None, sorted(issues)


def _schema_hint(kind: str) -> str:
    if kind == "union_tag_invalid" or kind == "union_tag_not_found":
        return "set 'type' to one of " + ", ".join(STEP_TYPES)
    if kind == "extra_forbidden":
        return "remove the field or check its spelling"
    if kind == "missing":
        return "add the field"
    if kind == "string_pattern_mismatch":
        return "use letters, digits, '_' or '-', starting with a letter"
    return ""


def validate_definition(definition: Definition, catalog: TaskCatalog) -> list[Issue]:
    """Every semantic problem of a schema-valid definition, in a stable order."""
    issues: list[Issue] = []
    ids = definition.step_ids
    index = {sid: i for i, sid in enumerate(ids)}
    kinds = {s.id: s.type for s in definition.steps}

    def step_issue(i: int, code: str, suffix: str, message: str, hint: str = "") -> None:
        parts = [int(p) if p.isdigit() else p for p in suffix.split(".") if p]
        location = _loc(["steps", i, *parts])
        issues.append(_issue(code, location, message, hint))

    seen: dict[str, int] = {}
    for i, step in enumerate(definition.steps):
        if step.id in seen:
            step_issue(i, "duplicate_step", "id", f"step id '{step.id}' is used twice (also steps[{seen[step.id]}])",
                       "give every step its own id")
        seen.setdefault(step.id, i)
        if "__" in step.id:
            step_issue(i, "reserved_name", "id", f"step id '{step.id}' contains '__', which Stepflow reserves",
                       "use a single '_'")
        for j, dep in enumerate(step.depends_on):
            if dep not in index:
                step_issue(i, "unknown_step", f"depends_on.{j}", f"'{step.id}' depends on unknown step '{dep}'",
                           _did_you_mean(dep, ids))
    if len(ids) > MAX_STEPS:
        issues.append(_issue("too_many_steps", "steps", f"{len(ids)} steps; at most {MAX_STEPS} are allowed",
                             "split the workflow"))

    seen_edges: set[tuple[str, str]] = set()
    for j, edge in enumerate(definition.edges):
        location = _loc(["edges", j])
        for end in ("source", "target"):
            name = getattr(edge, end)
            if name not in index:
                issues.append(_issue("unknown_step", f"{location}.{end}", f"edge {end} '{name}' is not a step",
                                     _did_you_mean(name, ids)))
        if (edge.source, edge.target) in seen_edges:
            issues.append(_issue("duplicate_edge", location, f"edge {edge.source} -> {edge.target} is given twice",
                                 "keep one"))
        seen_edges.add((edge.source, edge.target))

    graph = build_graph(definition)
    issues += _check_ends(definition, graph, index)
    issues += _check_conditions(definition, kinds, index)
    cycle = graph.find_cycle()
    if cycle:
        issues.append(_issue("cycle", "steps", "the steps form a cycle: " + " -> ".join(cycle),
                             "workflows are acyclic; remove one of these links"))
    else:
        order = graph.topological_order() or []
        issues += _check_reachability(definition, graph, index)
        _, problems = analyse(graph, structural_kinds(definition), order)
        for p in problems:
            location = _loc(["steps", index[p.step]])
            issues.append(_issue(p.code, location, p.message, p.hint))
        context = Upstream(definition, graph, order, catalog)
        issues += _check_mappings(definition, index, context)
        issues += _check_decided(definition, index, context)
    issues += _check_steps(definition, catalog)
    issues += _check_writes(definition)
    issues += _check_routes(definition, index)
    if definition.input_schema is not None:
        issues += _check_schema(definition.input_schema, "input_schema")
    return sorted(issues)


def size_issues(asl: dict[str, Any], bindings: dict[str, str] | None = None) -> list[Issue]:
    """The compiled state machine, its function ARNs bound as deployed, is over Step Functions' limit.

    Checked once it compiles, on the text Step Functions would receive: the ARNs that replace the
    placeholders are longer than the placeholders, so the unbound size can pass where AWS refuses.
    `bindings` maps placeholder names to ARNs; one it lacks counts as the longest ARN (core/sizing.py).
    """
    size = deployed_size(asl, bindings)
    if size <= MAX_DEFINITION_BYTES:
        return []
    return [_issue("too_large", "definition", f"the compiled state machine is {size:,} bytes with its function "
                   f"ARNs bound; Step Functions takes at most {MAX_DEFINITION_BYTES:,}",
                   "split the workflow, or use fewer or shorter steps, ids and conditions")]


def compile_failure(message: str) -> Issue:
    """Validation should catch whatever the compiler refuses; if it did not, say so as an issue."""
    return _issue("compile_error", "definition", message)


def _did_you_mean(name: str, candidates: Iterable[str], otherwise: str = "check the step id") -> str:
    close = difflib.get_close_matches(name, list(candidates), n=1)
    return f"did you mean '{close[0]}'?" if close else otherwise


def _check_ends(definition: Definition, graph: Graph, index: dict[str, int]) -> list[Issue]:
    issues = []
    if definition.initial_step is not None and definition.initial_step not in index:
        issues.append(_issue("unknown_step", "initial_step", f"initial step '{definition.initial_step}' is not a step",
                             _did_you_mean(definition.initial_step, index)))
    for j, name in enumerate(definition.terminal_steps or []):
        location = f"terminal_steps[{j}]"
        if name not in index:
            issues.append(_issue("unknown_step", location, f"terminal step '{name}' is not a step",
                                 _did_you_mean(name, index)))
        elif graph.succs[name]:
            issues.append(_issue("terminal_has_successors", location,
                                 f"terminal step '{name}' has steps after it: {', '.join(graph.succs[name])}",
                                 "remove it from terminal_steps or remove its outgoing links"))
    if definition.terminal_steps is not None:
        for name in graph.sinks:
            if name not in definition.terminal_steps:
                issues.append(_issue("undeclared_end", f"steps[{index[name]}]",
                                     f"step '{name}' has no steps after it but is not in terminal_steps",
                                     "add it to terminal_steps or link it onwards"))
    return issues


def _check_reachability(definition: Definition, graph: Graph, index: dict[str, int]) -> list[Issue]:
    if definition.initial_step is None or definition.initial_step not in index:
        return []
    reached = graph.reachable_from([definition.initial_step])
    return [
        _issue("unreachable", f"steps[{index[s]}]", f"step '{s}' cannot be reached from the initial step "
               f"'{definition.initial_step}'", "link it from a step that runs, or remove it")
        for s in graph.nodes
        if s not in reached
    ]


def _check_conditions(definition: Definition, kinds: Mapping[str, str], index: dict[str, int]) -> list[Issue]:
    issues = []
    defaults: dict[str, int] = {}
    outgoing: dict[str, int] = {}
    edges = definition_edges(definition, routes=False)  # outcome routes are checked by _check_routes
    locations = [f"edges[{j}]" for j in range(len(definition.edges))]
    for step in definition.steps:
        locations += [f"steps[{index[step.id]}]"] * len(step.depends_on)
    for edge, location in zip(edges, locations, strict=True):
        if kinds.get(edge.source) == "gateway":
            outgoing[edge.source] = outgoing.get(edge.source, 0) + 1
            if edge.condition is None:
                defaults[edge.source] = defaults.get(edge.source, 0) + 1
        if edge.condition is None:
            continue
        if kinds.get(edge.source) != "gateway":
            if edge.source in kinds:
                issues.append(_issue("condition_not_on_gateway", f"{location}.condition",
                                     f"the link {edge.source} -> {edge.target} has a condition but "
                                     f"'{edge.source}' is not a gateway",
                                     "put a gateway step before the conditional branches"))
            continue
        try:
            conditions.parse_condition(edge.condition)
        except conditions.ConditionError as exc:
            issues.append(_issue("invalid_condition", f"{location}.condition",
                                 f"condition {edge.condition!r} of {edge.source} -> {edge.target}: {exc.message}"
                                 + (f" (at position {exc.position})" if exc.position is not None else ""),
                                 exc.hint or "see docs/definitions.md for the condition syntax"))
    for step in definition.steps:
        if step.type != "gateway":
            continue
        location = f"steps[{index[step.id]}]"
        if not outgoing.get(step.id):
            issues.append(_issue("gateway_without_branches", location, f"gateway '{step.id}' leads nowhere",
                                 "add links with conditions and one default"))
        elif defaults.get(step.id, 0) == 0:
            issues.append(_issue("gateway_without_default", location,
                                 f"gateway '{step.id}' has no default branch (a link without a condition)",
                                 "add one link without a condition for when no condition holds"))
        elif defaults[step.id] > 1:
            issues.append(_issue("gateway_multiple_defaults", location,
                                 f"gateway '{step.id}' has {defaults[step.id]} links without a condition",
                                 "give all but one of them a condition"))
    return issues


def _check_mappings(definition: Definition, index: dict[str, int], context: Upstream) -> list[Issue]:
    issues = []
    for step in definition.steps:
        if not isinstance(step, MachineStep) or not step.input_mappings:
            continue
        i = index[step.id]
        for j, mapping in enumerate(step.input_mappings):
            location = _loc(["steps", i, "input_mappings", j])
            if mapping.from_step not in index:
                issues.append(_issue("unknown_step", f"{location}.from_step",
                                     f"mapping from unknown step '{mapping.from_step}'",
                                     _did_you_mean(mapping.from_step, index)))
                continue
            if not context.runs_before(mapping.from_step, step.id):
                issues.append(_issue("mapping_not_upstream", f"{location}.from_step",
                                     f"'{step.id}' maps from '{mapping.from_step}', which does not run before it",
                                     f"add '{mapping.from_step}' to depends_on of '{step.id}'"))
                continue
            fields = context.outputs(mapping.from_step)
            head = mapping.from_field.split(".")[0]
            if fields is not None and head not in fields:
                known = ", ".join(sorted(fields)) or "nothing"
                issues.append(_issue("unknown_field", f"{location}.from_field",
                                     f"step '{mapping.from_step}' does not produce '{mapping.from_field}' "
                                     f"(it produces: {known})", _did_you_mean(head, fields)))
    return issues


def _check_writes(definition: Definition) -> list[Issue]:
    """A human step's overwrites and escalation output name fields of its form (core/decisions.py)."""
    issues = []
    for i, step in enumerate(definition.steps):
        if not isinstance(step, HumanStep):
            continue
        fields = writes_of_step(step).fields
        if fields is None:
            continue  # a formless step under a namespace: any field stays there
        known = ", ".join(sorted(fields)) or "no fields"
        for j, name in enumerate(step.overwrites):
            if name not in fields:
                issues.append(_issue("unknown_field", _loc(["steps", i, "overwrites", j]),
                                     f"'{name}' is not a field of the form of '{step.id}' (it has: {known}), "
                                     "so the step never writes it", _did_you_mean(name, fields,
                                                                                  "add it to form_schema.properties")))
        escalation = step.escalation
        if escalation is not None and escalation.action == "complete":
            for name in sorted(escalation.output or {}):
                if name not in fields:
                    issues.append(_issue("unknown_field", _loc(["steps", i, "escalation", "output", name]),
                                         f"the escalation completes '{step.id}' with '{name}', which is not a "
                                         f"field of its form (it has: {known})", "use fields of form_schema"))
    return issues


def _check_routes(definition: Definition, index: dict[str, int]) -> list[Issue]:
    issues = []
    for problem in route_problems(definition):
        hint = _did_you_mean(problem.target, index) if problem.code == "unknown_step" else problem.hint
        issues.append(_issue(problem.code, _loc(problem.where), problem.message, hint))
    return issues


def _check_decided(definition: Definition, index: dict[str, int], context: Upstream) -> list[Issue]:
    """A human or webhook step that would write a field set before it (by the input or an earlier step).

    At run time such a completion is refused (core/decisions.py); here the cases visible in the
    definition are named: input_schema properties and the known outputs of the steps upstream.
    """
    issues = []
    declared_input = (definition.input_schema or {}).get("properties")
    for step in definition.steps:
        if not isinstance(step, HumanStep | WebhookStep | ReceiveStep):
            continue

        def setter(name: str, step_id: str = step.id) -> str | None:
            # Who sets `name` before the step: the input_schema, else the earliest declared step upstream.
            if isinstance(declared_input, dict) and name in declared_input:
                return "the input_schema"
            first = context.first_upstream_setter(name, step_id)
            return f"step '{first}'" if first is not None else None

        writes = writes_of_step(step)
        base = ["steps", index[step.id]]
        if writes.namespace is not None:
            by = setter(writes.namespace)
            if by is not None:
                where = [*base, "output_namespace"] if step.output_namespace else base
                issues.append(_issue("decided_field", _loc(where),
                                     f"'{step.id}' keeps its output under '{writes.namespace}', which "
                                     f"{by} already sets", "set another output_namespace"))
            continue
        for name in sorted(writes.fields or ()):
            by = setter(name) if name not in writes.overwrites else None
            if by is not None:
                issues.append(_issue("decided_field", _loc([*base, "form_schema", "properties", name]),
                                     f"form field '{name}' of '{step.id}' is already set by {by}; "
                                     "a completion may not change it",
                                     "rename the field, keep the answers under output_namespace, or list it "
                                     "in overwrites if this step may change it"))
    return issues


def _check_steps(definition: Definition, catalog: TaskCatalog) -> list[Issue]:
    issues = []
    known = set(catalog.ids())
    for i, step in enumerate(definition.steps):
        base = ["steps", i]
        if isinstance(step, MachineStep):
            issues += _check_task(step.task_type, step.config, known, catalog, base)
            if step.fallback:
                issues += _check_task(step.fallback.task_type, step.fallback.config, known, catalog,
                                      [*base, "fallback"])
        elif isinstance(step, HumanStep):
            if step.form_schema is not None:
                location = _loc([*base, "form_schema"])
                issues += _check_schema(step.form_schema, location)
            if step.reminder_before and not step.due_in and not step.due_at:
                location = _loc([*base, "reminder_before"])
                issues.append(_issue("reminder_without_due", location, "a reminder needs a due date",
                                     "set due_in or due_at"))
        elif isinstance(step, ReceiveStep) and step.correlation_key is not None:
            issues += _check_correlation_key(step.correlation_key, _loc([*base, "correlation_key"]))
        elif isinstance(step, TimerStep) and step.seconds is not None and step.seconds > 31_536_000:
            pass  # bounded by the model already; kept explicit for readers of this list
    return issues


# A placeholder as config templates write it (chalicelib/tasks/templating.py): a dotted path whose
# segments may carry [n] indexes, spaces inside the braces ignored.
_PLACEHOLDER = re.compile(r"\{\{([^{}]*)\}\}")
_TEMPLATE_PATH = re.compile(r"^[^.\[\]\s{}]+(\[\d+\])*(\.[^.\[\]\s{}]+(\[\d+\])*)*$")


def _check_correlation_key(template: str, location: str) -> list[Issue]:
    """A receive step's correlation key is taken from instance data: at least one {{ path }}, each a path."""
    found = _PLACEHOLDER.findall(template)
    if not found:
        return [_issue("invalid_correlation_key", location,
                       f"correlation key {template!r} takes nothing from the instance data, so every instance "
                       "of the workflow would wait on the same key",
                       "name the field it comes from, e.g. '{{ order_id }}'")]
    if any(p.strip().split(".")[0].split("[")[0] == "secrets" for p in found):
        return [_issue("invalid_correlation_key", location,
                       "a correlation key names a credential; it is matched against what senders send, so it "
                       "is taken from instance data only", "name a field of the instance data")]
    bad = [p.strip() for p in found if not _TEMPLATE_PATH.match(p.strip())]
    if bad:
        return [_issue("invalid_correlation_key", location,
                       f"'{{{{ {bad[0]} }}}}' in the correlation key is not a path into the instance data",
                       "use a dotted path such as '{{ order.id }}' or '{{ items[0].sku }}'")]
    return []


def _check_task(task_type: str, config: dict[str, Any], known: set[str], catalog: TaskCatalog,
                base: list[Any]) -> list[Issue]:
    location = _loc([*base, "task_type"])
    if task_type not in known:
        return [_issue("unknown_task_type", location, f"unknown task type '{task_type}'",
                       _did_you_mean(task_type, known).replace("step id", "GET /plugins lists task types"))]
    issues = []
    for problem in catalog.validate_config(task_type, config):
        path = getattr(problem, "path", "config")
        loc = _loc([*base])
        issues.append(_issue("invalid_config", f"{loc}.{path}", getattr(problem, "message", str(problem)),
                             f"see GET /plugins/{task_type} for its config schema"))
    return issues


def _check_schema(schema: dict[str, Any], location: str) -> list[Issue]:
    # Refused here, a pattern that could backtrack or a remote $ref never meets a request.
    issues = []
    for problem in schema_problems(schema):
        where = f" at {problem.where}" if problem.where else ""
        prefix = "not a valid JSON Schema" if problem.code == "invalid_schema" else "not accepted"
        issues.append(_issue(problem.code, location, f"{prefix}{where}: {problem.message}", problem.hint))
    return issues
