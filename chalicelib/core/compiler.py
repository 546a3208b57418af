"""Compiles a definition to Amazon States Language (JSONPath only): a pure, deterministic function.

The state that flows between states is {"steps": {step id: output}, "data": {...}}. `data` is the
instance data (the start input with every finished step's output merged in, in the definition's
topological order); Lambda-backed states recompute it, and a Choice or a Wait on a timestamp reads
it. At a Parallel join each branch hands back only its `steps` map and the maps are merged with
States.JsonMerge, so `data` must be recomputed (a "merge" task) before a Choice or Wait reads it.
The start input lives in the execution input ($$.Execution.Input.input), not in the state.

With CompileOptions(share_context=True), what every Lambda-backed state sends but the step (workflow,
revision, start input, execution ARN) is assigned once, by the first state, to the workflow variable `c`,
and the states after it send "c.$": "$c" (core/payload.py): about 100 bytes less per state. The first
state, whatever runs inside it (a Parallel's branches) or instead of it (its fallback, which assigns `c`
too), send those values in full. It is off by default: see docs/architecture.md, "Compiled size".
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from chalicelib.core.asl_parts import LAMBDA_CALLBACK, SERVICE_RETRY, lambda_reads, ordered, reading_order
from chalicelib.core.branch_states import BranchStates
from chalicelib.core.gates import GATE_OPEN, gated_plan, is_exact
from chalicelib.core.graph import Graph, build_graph, structural_kinds
from chalicelib.core.model import (
    Definition,
    HumanStep,
    MachineStep,
    ReceiveStep,
    TimerStep,
    WebhookStep,
)
from chalicelib.core.route_checks import route_catch
from chalicelib.core.schedule import Par, Plan, Seq, count_parallel, makespan, plan_series_parallel
from chalicelib.core.shared_context import SHARED, assign_context, insert_before
from chalicelib.core.step_states import own_gate, own_gate_retriers, retrier_of, waits_for_child
from chalicelib.core.structure import GatewayRegion, Structure, analyse
from chalicelib.core.tasks import OVERDUE_ERROR

STEP_RUNNER = "${StepRunnerFunctionArn}"
TASK_REGISTRAR = "${TaskRegistrarFunctionArn}"
TIMED_OUT_ERROR = "Stepflow.TaskTimedOut"


class CompileError(ValueError):
    """The definition cannot be compiled; validation reports the same problems in detail."""


@dataclass(frozen=True)
class CompileOptions:
    step_runner: str = STEP_RUNNER
    task_registrar: str = TASK_REGISTRAR
    # Share of extra Parallel states (billed transitions) traded for a shorter makespan.
    parallel_budget: float = 0.15
    # Every state after the first reads the payload's constant part from the variable `c` (False: each
    # state spells it out; the two run alike, tests/integration/test_compiled_forms_on_moto.py).
    share_context: bool = False
    # What the states send as the workflow the steps load their definition by: its key (core/definition_keys.py);
    # None: the definition's name, which is the key of a definition of no tenant and no namespace.
    workflow: str | None = None


def compile_definition(definition: Definition, revision: str, options: CompileOptions = CompileOptions()) -> dict[str, Any]:
    """The state machine for a definition; the same input always gives the same dict."""
    graph = build_graph(definition)
    order = graph.topological_order()
    if order is None:
        raise CompileError("the steps form a cycle")
    structure, problems = analyse(graph, structural_kinds(definition), order)
    if problems:
        raise CompileError(problems[0].message)
    emitter = _Emitter(definition, revision, options, structure, graph)
    plan = emitter.plan(structure.nodes, structure.edges)
    states: dict[str, Any] = {}
    start = emitter.emit(plan, states, None, True)
    if options.share_context:
        assign_context(states, start, emitter.context())
    asl: dict[str, Any] = {
        "Comment": f"Stepflow workflow {definition.name} {definition.version} (revision {revision})",
        "StartAt": start,
        "States": reading_order(states),
    }
    return asl


class _Emitter(BranchStates):
    """Turns a series-parallel plan into states; one method per kind of node."""

    def __init__(self, definition: Definition, revision: str, options: CompileOptions, structure: Structure,
                 graph: Graph):
        self.definition = definition
        self.graph = graph
        self.steps = {s.id: s for s in definition.steps}
        self.revision = revision
        self.options = options
        self.gateways: dict[str, GatewayRegion] = structure.gateways
        self.gateway_plans: dict[str, list[Plan | None]] = {}
        # Exact scheduling (core/gates.py): the steps each gated step's gate waits for, and the gated steps
        # each step releases when it finishes.
        self.waits: dict[str, tuple[str, ...]] = {}
        self.releases: dict[str, tuple[str, ...]] = {}
        self.weights: dict[str, float] = {
            sid: 0.0 if s.type == "gateway" else (s.expected_seconds if s.expected_seconds is not None else 1.0)
            for sid, s in self.steps.items()
        }
        self.parallel_count = 0
        self.lambda_joins: list[bool] = []  # per Parallel being emitted: whether a Lambda reads its result
        # Inner gateways were folded first, so their weights are known before outer ones need them.
        for gw, region in structure.gateways.items():
            if region.sequential:
                self.weights[gw] = self._longest_path(region.members)
                continue
            plans = [self.plan(b.nodes, b.edges) if b.nodes else None for b in region.branches]
            self.gateway_plans[gw] = plans
            self.weights[gw] = max((makespan(p, self.weights) for p in plans if p is not None), default=0.0)

    def _longest_path(self, members: tuple[str, ...]) -> float:
        inside = set(members)
        finish: dict[str, float] = {}
        for node in members:  # topological order
            start = max((finish[p] for p in self.graph.preds[node] if p in inside), default=0.0)
            finish[node] = start + self.weights[node]
        return max(finish.values(), default=0.0)

    def plan(self, nodes: tuple[str, ...], edges: tuple[tuple[str, str], ...]) -> Plan:
        plan = plan_series_parallel(nodes, edges, self.weights, parallel_budget=self.options.parallel_budget)
        if self.definition.scheduling == "planned" or is_exact(plan, nodes, edges):
            return plan  # every step waits only for what it depends on: nothing to gain
        if count_parallel(plan) >= int(self.options.parallel_budget * len(nodes) + 2):
            # The budget may have serialised an exact plan: each Parallel costs one transition, as a gate
            # does, and no Lambda.
            plan = plan_series_parallel(nodes, edges, self.weights, parallel_budget=math.inf)
            if is_exact(plan, nodes, edges):
                return plan
        gated = gated_plan(nodes, edges, self.weights)
        self.waits.update(gated.waits)
        self.releases.update(gated.releases)
        return gated.plan

    # -- data validity -------------------------------------------------------------------------
    def valid_after(self, plan: Plan, valid: bool) -> bool:
        """Whether `data` in the state is current after `plan`, given whether it was before."""
        if isinstance(plan, Par):
            return False
        if isinstance(plan, Seq):
            for part in plan.parts:
                valid = self.valid_after(part, valid)
            return valid
        step = self.steps[plan.node]
        if plan.node in self.releases and not isinstance(step, MachineStep):
            return True  # its release state is a step-runner state: it leaves current data behind
        if plan.node in self.waits:
            valid = True  # the gate hands on current data
        if step.id in self.gateways:  # a gateway, or a human step that routes on its outcome
            if self.gateways[step.id].sequential:
                return True  # only single steps run inside, and each leaves current data behind
            ends = [self.valid_after(p, True) if p is not None else True for p in self.gateway_plans[step.id]]
            return all(ends)
        if isinstance(step, TimerStep):
            return valid or step.until is not None
        return True

    # -- emission ------------------------------------------------------------------------------
    def emit(self, plan: Plan, states: dict[str, Any], next_name: str | None, valid: bool) -> str:
        """Adds the states of `plan` to `states`, continuing at `next_name` (None: end of scope)."""
        if isinstance(plan, Seq):
            entry_valid = [valid]
            for part in plan.parts[:-1]:
                entry_valid.append(self.valid_after(part, entry_valid[-1]))
            for part, part_valid in zip(reversed(plan.parts), reversed(entry_valid), strict=True):
                next_name = self.emit(part, states, next_name, part_valid)
            assert next_name is not None
            return next_name
        if isinstance(plan, Par):
            return self.emit_parallel(plan, states, next_name, valid)
        if plan.node in self.waits:
            step = self.steps[plan.node]
            if step.type == "machine" and own_gate(step):
                return self.emit_gated(step, states, next_name)
            gate = f"{plan.node}__gate"
            states[gate] = self._gate(plan.node, self.emit_step(plan.node, states, next_name, True))
            return gate
        return self.emit_step(plan.node, states, next_name, valid)

    def emit_step(self, node: str, states: dict[str, Any], next_name: str | None, valid: bool) -> str:
        step = self.steps[node]
        # Tested on step.type itself (not a copy of it): that is what narrows the step to its class.
        if step.type == "machine":  # by far the most common: checked first
            return self.emit_machine(step, states, next_name)
        if node in self.releases:
            # Only the step runner releases gates: a step it does not run is followed by a state that does.
            release = f"{node}__release"
            states[release] = self._lambda_task("release", node, next_name)
            states[release]["Parameters"]["g"] = list(self.releases[node])
            next_name = release
        needs_data = step.type == "gateway" or (step.type == "timer" and step.until is not None)
        if step.type == "gateway" or (step.type == "human" and step.id in self.gateways):
            # A gateway, or a human step that routes on its outcome: both branch.
            name = self.emit_gateway(step, states, next_name)
        elif step.type == "timer":
            name = self.emit_timer(step, states, next_name)
        else:
            name = self.emit_callback(step, states, next_name)
        if needs_data and not valid:
            merge = f"{step.id}__merge"
            states[merge] = self._lambda_task("merge", step.id, name)
            return merge
        return name

    def _continue(self, state: dict[str, Any], next_name: str | None) -> dict[str, Any]:
        # At the end of a scope a state hands back only its steps map: that is what joins merge.
        if next_name is None:
            state["OutputPath"] = "$.steps"
            state["End"] = True
        else:
            state["Next"] = next_name
        return state

    def context(self) -> dict[str, Any]:
        """The part of every payload that does not depend on the step."""
        return {"w": self.options.workflow or self.definition.name, "r": self.revision,
                "i.$": "$$.Execution.Input.input",
                "e.$": "$$.Execution.Id"}

    def _payload(self, kind: str | None, step_id: str) -> dict[str, Any]:
        # One-letter keys (core/payload.py): these Parameters are repeated in every Task state. Shared,
        # the constant part is the variable the first state assigns (_assign_context spells it out there).
        payload: dict[str, Any] = {"k": kind} if kind else {}
        if self.options.share_context:
            payload.update({"c.$": SHARED, "s": step_id, "x.$": "$.steps"})
        else:
            payload.update({"w": self.options.workflow or self.definition.name, "r": self.revision, "s": step_id,
                            "i.$": "$$.Execution.Input.input", "x.$": "$.steps", "e.$": "$$.Execution.Id"})
        return payload

    def _lambda_task(self, kind: str | None, step_id: str, next_name: str | None, *, timeout: int | None = None,
                     extra_retry: dict[str, Any] | None = None) -> dict[str, Any]:
        # Built in its final key order: this runs once per step, so no re-sorting afterwards. A plain
        # Lambda ARN as Resource hands the function's result on as the state's output (no Payload wrapper).
        state: dict[str, Any] = {
            "Type": "Task",
            "Resource": self.options.step_runner,
            "Parameters": self._payload(kind, step_id),
        }
        if timeout:
            state["TimeoutSeconds"] = timeout
        state["Retry"] = [SERVICE_RETRY, extra_retry] if extra_retry else [SERVICE_RETRY]
        return self._continue(state, next_name)

    def emit_machine(self, step: MachineStep, states: dict[str, Any], next_name: str | None) -> str:
        if waits_for_child(step):
            return self.emit_child_wait(step, states, next_name)
        state = self._lambda_task(None, step.id, next_name, timeout=step.timeout_seconds, extra_retry=retrier_of(step))
        states[step.id] = self._with_fallback(step, self._releasing(step.id, state), states, next_name)
        return step.id

    def _releasing(self, step_id: str, state: dict[str, Any]) -> dict[str, Any]:
        """A state that ends the step also releases the gates waiting on it (core/gates.py)."""
        if step_id in self.releases:
            state["Parameters"]["g"] = list(self.releases[step_id])
        return state

    def _with_fallback(self, step: MachineStep, state: dict[str, Any], states: dict[str, Any],
                       next_name: str | None) -> dict[str, Any]:
        if not step.fallback:
            return state
        fallback = f"{step.id}__fallback"
        catch = [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.failure", "Next": fallback}]
        # Catch sits before OutputPath/Next, as in every state of the committed machines.
        state = insert_before(state, ("ResultPath", "OutputPath", "Next", "End"), "Catch", catch)
        fb_state = self._lambda_task("fallback", step.id, next_name)
        fb_state["Parameters"]["f.$"] = "$.failure"
        states[fallback] = self._releasing(step.id, fb_state)
        return state

    def emit_child_wait(self, step: MachineStep, states: dict[str, Any], next_name: str | None) -> str:
        """Two states: the step runner starts the child with the task token (kind "child"), and the state
        waits until the child's end answers it, the answer kept at $.child; then the step runner makes it
        the step's output (kind "child_done"). Retry, timeout and fallback apply to the wait."""
        done = f"{step.id}__done"
        finish = self._lambda_task("child_done", step.id, next_name)
        finish["Parameters"]["o.$"] = "$.child"
        states[done] = self._releasing(step.id, finish)
        payload = self._payload("child", step.id)
        payload["t.$"] = "$$.Task.Token"
        state: dict[str, Any] = {
            "Type": "Task",
            "Resource": LAMBDA_CALLBACK,
            "Parameters": {"FunctionName": self.options.step_runner, "Payload": payload},
        }
        if step.timeout_seconds:
            state["TimeoutSeconds"] = step.timeout_seconds
        retrier = retrier_of(step)
        state["Retry"] = [SERVICE_RETRY, retrier] if retrier else [SERVICE_RETRY]
        state["ResultPath"] = "$.child"
        state["Next"] = done
        states[step.id] = self._with_fallback(step, state, states, next_name)
        return step.id

    def emit_gated(self, step: MachineStep, states: dict[str, Any], next_name: str | None) -> str:
        """A gated machine step is its own gate (runtime/gates.py): its state registers the task token and runs
        the step at once when the gate is open; else the gate's opening fails the token with GATE_OPEN and
        the Catch enters `<step>__run`, which runs it with the outputs the failure's cause carries. One
        state, transition and Lambda invocation per step where the gate is open when the step comes."""
        run = f"{step.id}__run"
        run_state = self._lambda_task("opened", step.id, next_name, extra_retry=retrier_of(step))
        run_state["Parameters"]["o.$"] = "$.gate.Cause"
        states[run] = self._releasing(step.id, run_state)
        payload = self._payload("gated", step.id)
        payload["t.$"] = "$$.Task.Token"
        payload["n"] = list(self.waits[step.id])
        if step.id in self.releases:
            payload["g"] = list(self.releases[step.id])
        state: dict[str, Any] = {"Type": "Task", "Resource": LAMBDA_CALLBACK,
                                 "Parameters": {"FunctionName": self.options.step_runner, "Payload": payload},
                                 "Retry": [SERVICE_RETRY, *own_gate_retriers(step)],
                                 "Catch": [{"ErrorEquals": [GATE_OPEN], "ResultPath": "$.gate", "Next": run}]}
        states[step.id] = self._continue(state, next_name)
        return step.id

    def _gate(self, step_id: str, next_name: str) -> dict[str, Any]:
        """A state that waits until the steps in waits[step_id] have finished; its output carries theirs."""
        payload = self._payload("gate", step_id)
        payload["t.$"] = "$$.Task.Token"
        payload["n"] = list(self.waits[step_id])
        return {"Type": "Task", "Resource": LAMBDA_CALLBACK,
                "Parameters": {"FunctionName": self.options.step_runner, "Payload": payload},
                "Retry": [SERVICE_RETRY], "Next": next_name}

    def emit_callback(self, step: HumanStep | WebhookStep | ReceiveStep, states: dict[str, Any], next_name: str | None,
                      routes: dict[str, str] | None = None) -> str:
        """The waiting Task state; `routes` (a routed human step): the state each outcome route enters."""
        routes = routes or {}
        payload = self._payload(None, step.id)  # the registrar reads the kind from the step itself
        payload["t.$"] = "$$.Task.Token"
        state: dict[str, Any] = {
            "Type": "Task",
            "Resource": LAMBDA_CALLBACK,
            "Parameters": {"FunctionName": self.options.task_registrar, "Payload": payload},
            "Retry": [SERVICE_RETRY],
        }
        if step.timeout_seconds:
            state["TimeoutSeconds"] = step.timeout_seconds
        if step.heartbeat_seconds:
            state["HeartbeatSeconds"] = step.heartbeat_seconds
        catch: list[dict[str, Any]] = []
        # moto reports a heartbeat timeout as States.Timeout; AWS as States.HeartbeatTimeout.
        timeouts = ["States.Timeout", "States.HeartbeatTimeout"]
        if isinstance(step, HumanStep) and step.escalation is not None and step.escalation.action == "fail":
            timeouts.append(step.escalation.error or OVERDUE_ERROR)  # the sweep fails an overdue task so
        if "on_timeout" in routes:
            catch.append(_routed(step.id, timeouts, "timed_out", routes["on_timeout"], states))
        elif step.timeout_seconds or step.heartbeat_seconds:
            timed_out = f"{step.id}__timed_out"
            catch.append({"ErrorEquals": timeouts[:2], "ResultPath": "$.failure", "Next": timed_out})
            states[timed_out] = {"Type": "Fail", "Error": TIMED_OUT_ERROR,
                                 "Cause": f"{step.type} step '{step.id}' was not completed in time"}
        if "on_error" in routes:
            catch.append(_routed(step.id, ["States.ALL"], "failed", routes["on_error"], states))
        if catch:
            state["Catch"] = catch
        # The callback's output is the whole new state, built by the service that completes it.
        states[step.id] = ordered(self._continue(state, next_name))
        return step.id

    def emit_timer(self, step: TimerStep, states: dict[str, Any], next_name: str | None) -> str:
        state: dict[str, Any] = {"Type": "Wait"}
        if step.until is not None:
            state["TimestampPath"] = f"$.data.{step.until}"
        else:
            state["Seconds"] = step.seconds
        states[step.id] = self._continue(state, next_name)
        return step.id

    def emit_parallel(self, plan: Par, states: dict[str, Any], next_name: str | None, valid: bool) -> str:
        self.parallel_count += 1
        name = f"par__{self.parallel_count}"
        # When Lambdas read the result (the next state starts with Lambda Tasks, or this Parallel ends a
        # branch of one whose result they read), they merge the branches' maps themselves
        # (core/payload.py): the state carries them as they are, rather than a States.JsonMerge per branch.
        if next_name is None:
            to_lambda = bool(self.lambda_joins) and self.lambda_joins[-1]
        else:
            to_lambda = lambda_reads(states[next_name])
        branches = []
        self.lambda_joins.append(to_lambda)
        for branch in plan.branches:
            inner: dict[str, Any] = {}
            start = self.emit(branch, inner, None, valid)
            branches.append({"StartAt": start, "States": reading_order(inner)})
        self.lambda_joins.pop()
        if to_lambda:
            merged = "$"
        else:
            # Nested left to right; built in one join, as a fan-out can have thousands of branches.
            merged = "States.JsonMerge(" * (len(branches) - 1) + "$[0]" + "".join(
                f",$[{i}],false)" for i in range(1, len(branches)))
        state: dict[str, Any] = {"Type": "Parallel", "Branches": branches, "ResultSelector": {"steps.$": merged}}
        states[name] = self._continue(state, next_name)
        return name


def _routed(step_id: str, errors: list[str], outcome: str, entry: str, states: dict[str, Any]) -> dict[str, Any]:
    catch, name, state = route_catch(step_id, errors, outcome, entry)
    states[name] = state
    return catch
