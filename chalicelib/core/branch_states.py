"""The branching states of a compiled definition: a gateway's Choice, a region without parallel work
linked by Next and Choice gotos, and a human step that routes on its outcome (core/compiler.py's emitter
mixes these in)."""

from __future__ import annotations

from typing import Any

from chalicelib.core import conditions
from chalicelib.core.graph import Graph, is_route
from chalicelib.core.model import GatewayStep, HumanStep, Step
from chalicelib.core.route_checks import rejected_rule
from chalicelib.core.schedule import Leaf, Plan
from chalicelib.core.structure import GatewayRegion


class BranchStates:
    """Emits gateways and routed human steps; the emitter it is mixed into provides the rest."""

    steps: dict[str, Step]
    graph: Graph
    gateways: dict[str, GatewayRegion]
    gateway_plans: dict[str, list[Plan | None]]

    def emit(self, plan: Plan, states: dict[str, Any], next_name: str | None, valid: bool) -> str:
        raise NotImplementedError  # the emitter's: any plan's states

    def emit_callback(self, step: HumanStep, states: dict[str, Any], next_name: str | None,
                      routes: dict[str, str] | None = None) -> str:
        raise NotImplementedError  # the emitter's: a waiting Task state

    def emit_gateway(self, step: GatewayStep | HumanStep, states: dict[str, Any], next_name: str | None) -> str:
        region = self.gateways[step.id]
        if region.sequential:
            return self.emit_sequential(region, states, next_name)
        entries = [self.emit(plan, states, next_name, True) if plan is not None else None
                   for plan in self.gateway_plans[step.id]]
        targets = [(b.condition, e) for b, e in zip(region.branches, entries, strict=True)]
        if isinstance(step, HumanStep):
            return self.emit_routed(step, targets, states, next_name)
        self._choice(step.id, targets, states, next_name)
        return step.id

    def emit_sequential(self, region: GatewayRegion, states: dict[str, Any], next_name: str | None) -> str:
        """A region without parallel work: one state per step, linked by Next and Choice gotos."""
        entry: dict[str, str | None] = {}
        inside = set(region.members)
        for node in reversed(region.members):
            step = self.steps[node]
            # A gateway, or a human step that routes on its outcome (folded with this region or its own).
            if step.type == "gateway" or (step.type == "human" and step.routes):
                out = [e for e in self.graph.out_edges(node) if e.condition is not None]
                out += [e for e in self.graph.out_edges(node) if e.condition is None]
                targets = [(e.condition, entry[e.target] if e.target in inside else None) for e in out]
                if isinstance(step, HumanStep):
                    entry[node] = self.emit_routed(step, targets, states, next_name)
                    continue
                self._choice(node, targets, states, next_name)
                entry[node] = node
                continue
            succ = self.graph.succs[node]
            following = entry[succ[0]] if succ and succ[0] in inside else next_name
            entry[node] = self.emit(Leaf(node), states, following, True)
        return region.id

    def _choice(self, gw: str, targets: list[tuple[str | None, str | None]], states: dict[str, Any],
                next_name: str | None, *, step: HumanStep | None = None) -> dict[str, str]:
        """A Choice state; a target of None continues at next_name (a Succeed at a scope's end).

        With `step` (a routed human step), a route's condition is the route's name: on_reject becomes a
        rule on the step's approval field; on_timeout and on_error are entered by its Catch, not here.
        Answers the state each condition leads to."""
        end_name = f"{gw}__end"

        def resolve(entry: str | None) -> str:
            if entry is not None:
                return entry
            if next_name is not None:
                return next_name
            # A Choice cannot end a scope itself; an empty branch at the end goes to a Succeed.
            states[end_name] = {"Type": "Succeed", "OutputPath": "$.steps"}
            return end_name

        choices = []
        default = None
        entries: dict[str, str] = {}
        for condition, entry in targets:
            if condition is None:
                default = resolve(entry)
            elif step is not None and is_route(condition):
                entries[condition] = resolve(entry)
                if condition == "on_reject":
                    choices.append({**_rejected_rule(step), "Next": entries[condition]})
            else:
                rule = conditions.to_choice_rule(conditions.parse_condition(condition), "$.data")
                choices.append({**rule, "Next": resolve(entry)})
        if default is None:  # a routed step without a plain successor: anything but a route ends here
            default = resolve(None)
        states[gw] = {"Type": "Choice", "Choices": choices, "Default": default}
        return entries

    def emit_routed(self, step: HumanStep, targets: list[tuple[str | None, str | None]], states: dict[str, Any],
                    next_name: str | None) -> str:
        """A human step that routes on its outcome: its Task state, then a Choice on its result (a
        rejection takes on_reject, anything else its plain successor); a timeout or a failure is caught
        by the Task state and continues at on_timeout / on_error."""
        route = f"{step.id}__route"
        entries = self._choice(route, targets, states, next_name, step=step)
        following: str | None = route
        if not states[route]["Choices"]:  # no on_reject: nothing to choose after the task (only its Catches)
            following = states.pop(route)["Default"]
            if following == f"{route}__end":  # the step ends its scope itself
                del states[following]
                following = next_name
        return self.emit_callback(step, states, following, {name: entries[name] for name in step.routes})


def _rejected_rule(step: HumanStep) -> dict[str, Any]:
    from chalicelib.core.compiler import CompileError  # the compiler imports this module

    rule = rejected_rule(step)
    if rule is None:
        raise CompileError(f"step '{step.id}' has on_reject but its form has no boolean 'approved' field")
    return rule
