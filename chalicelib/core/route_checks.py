"""Registration checks of human steps' outcome routes (on_reject, on_timeout, on_error) and the ASL
pieces a route compiles to: the Choice rule of a rejection and the Catch that continues at a route."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from chalicelib.core.graph import definition_edges
from chalicelib.core.model import Definition, HumanStep
from chalicelib.core.tasks import decision_field


@dataclass(frozen=True)
class RouteProblem:
    code: str
    where: tuple[Any, ...]  # path parts: ("steps", 0, "on_reject")
    message: str
    hint: str = ""
    target: str = ""  # the unknown step, for a did-you-mean


def route_problems(definition: Definition) -> list[RouteProblem]:
    """A human step's outcome routes lead to other steps, not to one it links to plainly; it links to a
    step for an ordinary completion; a rejection route needs an approval form to tell a rejection by."""
    problems = []
    ids = set(definition.step_ids)
    plain = {(e.source, e.target) for e in definition_edges(definition, routes=False)}
    for i, step in enumerate(definition.steps):
        if not isinstance(step, HumanStep):
            continue
        seen: dict[str, str] = {}
        for name, target in step.routes.items():
            where = ("steps", i, name)
            if target not in ids:
                problems.append(RouteProblem("unknown_step", where, f"{name} of '{step.id}' is not a step: '{target}'",
                                             target=target))
            elif target == step.id:
                problems.append(RouteProblem("route_to_itself", where, f"'{step.id}' routes {name} to itself",
                                             "route to the step that handles the outcome"))
            elif (step.id, target) in plain:
                problems.append(RouteProblem(
                    "route_is_also_a_link", where,
                    f"'{target}' follows '{step.id}' anyway (a link), so {name} cannot choose it",
                    "remove the link, or route to another step"))
            elif target in seen:
                problems.append(RouteProblem("route_twice", where,
                                             f"'{step.id}' routes both {seen[target]} and {name} to '{target}'",
                                             "route each outcome to its own step, or leave one out"))
            seen.setdefault(target, name)
        if step.routes and not any(source == step.id for source, _ in plain):
            # Without it every path would lead to the routes' steps (they would follow a completion too).
            problems.append(RouteProblem(
                "route_without_link", ("steps", i),
                f"'{step.id}' routes its outcomes but links to no step for an ordinary completion",
                "link it to the step that follows an approval (a data.set step can end the workflow there)"))
        if step.on_reject is not None and decision_field(step.form_schema) is None:
            problems.append(RouteProblem("reject_without_decision", ("steps", i, "on_reject"),
                                         f"'{step.id}' routes on_reject but its form has no boolean 'approved' field",
                                         "add a boolean 'approved' (or '<name>_approved') field to form_schema"))
    return problems


def rejected_rule(step: HumanStep) -> dict[str, Any] | None:
    """The Choice rule of a rejection: the step's approval field (under its namespace) is false; None
    when its form has no approval field (registration refuses on_reject then)."""
    field = decision_field(step.form_schema)
    if field is None:
        return None
    variable = f"$.data.{step.output_namespace}.{field}" if step.output_namespace else f"$.data.{field}"
    return {"And": [{"Variable": variable, "IsPresent": True}, {"Variable": variable, "BooleanEquals": False}]}


def route_catch(step_id: str, errors: list[str], outcome: str, entry: str) -> tuple[dict[str, Any], str, dict[str, Any]]:
    """A Catch that continues at a route's branch, and the Pass state it goes to (its name and state):
    the Pass records the step's outcome as its output ({"outcome", "error"}: the branch's steps read it in
    the instance data), then enters the branch."""
    recorded = f"{step_id}__{outcome}"
    state = {"Type": "Pass", "Parameters": {"outcome": outcome, "error.$": "$.failure.Error"},
             "ResultPath": f"$.steps.{step_id}", "Next": entry}
    return {"ErrorEquals": errors, "ResultPath": "$.failure", "Next": recorded}, recorded, state
