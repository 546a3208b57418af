"""Pinned starts' routing: the weighted pick, and the ARNs a start through a version or alias uses."""

from __future__ import annotations

import random

import pytest

from chalicelib.aws.state_machines import StateMachines, unqualified
from chalicelib.errors import Conflict
from chalicelib.service.routing import EmulatedRouting, QualifiedRouting, Route, pick

MACHINE = "arn:aws:states:us-east-1:123456789012:stateMachine:stepflow-dev-purchase"
ONE = Route(1, "a" * 16, "1.0", f"{MACHINE}:1", 90)
TWO = Route(2, "b" * 16, "2.0", f"{MACHINE}:2", 10)


def test_pick_follows_the_weights_and_a_seed_repeats_it():
    rng = random.Random(7)
    picks = [pick([ONE, TWO], rng).number for _ in range(10_000)]
    assert 0.09 <= picks.count(2) / len(picks) <= 0.11
    assert picks[:50] == [pick([ONE, TWO], r).number for r in [random.Random(7)] for _ in range(50)]
    assert {pick([Route(1, "a" * 16, None, None, 100), Route(2, "b" * 16, None, None, 0)], rng).number
            for _ in range(1000)} == {1}


def test_executions_through_a_version_or_alias_are_named_after_the_state_machine():
    execution = MACHINE.replace(":stateMachine:", ":execution:") + ":inst-1"
    for arn in (MACHINE, f"{MACHINE}:3", f"{MACHINE}:live"):
        assert StateMachines.execution_arn(arn, "inst-1") == execution
        assert unqualified(arn) == MACHINE
    assert StateMachines.alias_arn(f"{MACHINE}:3", "canary") == f"{MACHINE}:canary"


def test_deployed_routing_hands_step_functions_the_qualified_arn():
    routing = QualifiedRouting(StateMachines(None, "role", "stepflow-dev-"))  # type: ignore[arg-type]
    target = routing.target("purchase", MACHINE, [TWO], None)
    assert (target.arn, target.route) == (f"{MACHINE}:2", TWO)
    target = routing.target("purchase", MACHINE, [ONE, TWO], "canary")
    assert (target.arn, target.route) == (f"{MACHINE}:canary", None)  # Step Functions picks
    with pytest.raises(Conflict, match="before Stepflow published"):
        routing.target("purchase", MACHINE, [Route(1, "a" * 16, None, None)], None)


def test_local_routing_picks_itself_and_starts_the_revision_s_own_state_machine():
    made = []

    def machine_for(workflow, machine_arn, route):
        made.append(route.number)
        return f"{machine_arn}-r{route.number}"

    routing = EmulatedRouting(machine_for, random.Random(1))
    targets = [routing.target("purchase", MACHINE, [ONE, TWO], "canary") for _ in range(200)]
    assert {t.arn for t in targets} == {f"{MACHINE}-r1", f"{MACHINE}-r2"}
    assert all(t.route is not None and t.arn.endswith(f"-r{t.route.number}") for t in targets)
    assert routing.target("purchase", MACHINE, [Route(1, "a" * 16, None, None)], None).route.number == 1
