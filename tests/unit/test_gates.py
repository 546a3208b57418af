"""Exact scheduling (chalicelib/core/gates.py): which plans are exact, and the forest and gates that replace
the others, checked by simulating every start time on seeded random DAGs."""

from __future__ import annotations

import random

import pytest

from chalicelib.core.gates import gated_plan, is_exact
from chalicelib.core.schedule import Leaf, Par, Plan, Seq, level_barrier_plan, plan_series_parallel


def random_dag(n: int, seed: int) -> tuple[list[str], list[tuple[str, str]], dict[str, float]]:
    rng = random.Random(seed)
    names = [f"s{i:03d}" for i in range(n)]
    edges = sorted({(names[j], names[i]) for i in range(1, n)
                    for j in rng.sample(range(max(0, i - 6), i), min(i, rng.choice((0, 1, 1, 2, 2, 3))))})
    return names, edges, {name: rng.lognormvariate(0, 1) for name in names}


def earliest_finish(nodes, edges, w):
    preds = {n: [s for s, t in edges if t == n] for n in nodes}
    finish: dict[str, float] = {}
    for n in nodes:
        finish[n] = max((finish[p] for p in preds[n]), default=0.0) + w[n]
    return finish


def simulate(plan: Plan, waits: dict[str, tuple[str, ...]], w: dict[str, float]) -> dict[str, float]:
    """Finish times: a Seq runs its parts in turn, a Par its branches at once, a gate holds a step until
    what it waits for has finished. Gates may point across branches, so iterate to a fixed point."""
    finish: dict[str, float] = {}
    for _ in range(len(w) + 1):
        before = dict(finish)

        def run(node: Plan, start: float) -> float:
            if isinstance(node, Leaf):
                ready = max([start] + [finish.get(p, float("inf")) for p in waits.get(node.node, ())])
                finish[node.node] = ready + w[node.node]
                return finish[node.node]
            if isinstance(node, Seq):
                for part in node.parts:
                    start = run(part, start)
                return start
            assert isinstance(node, Par)
            return max(run(b, start) for b in node.branches)

        run(plan, 0.0)
        if finish == before:
            return finish
    raise AssertionError("gates never settle: a gate waits for something that never finishes")


@pytest.mark.parametrize("n", [6, 14, 30, 100])
def test_gated_plans_start_every_step_when_its_dependencies_finish(n):
    for seed in range(15):
        nodes, edges, w = random_dag(n, seed)
        gated = gated_plan(nodes, edges)
        assert sorted(leaf for leaf in _leaves(gated.plan)) == sorted(nodes)
        assert simulate(gated.plan, gated.waits, w) == pytest.approx(earliest_finish(nodes, edges, w))
        for step, waited in gated.waits.items():
            assert step not in waited and all(step in gated.releases[p] for p in waited)


def test_a_step_with_one_dependency_never_waits_at_a_gate():
    for seed in range(20):
        nodes, edges, _ = random_dag(40, seed)
        preds = {n: {s for s, t in edges if t == n} for n in nodes}
        gated = gated_plan(nodes, edges)
        assert all(len(preds[step]) >= 2 for step in gated.waits)


def test_exact_plans_are_recognised():
    nodes = ["a", "b", "c", "d"]
    diamond = [("a", "b"), ("a", "c"), ("b", "d"), ("c", "d")]
    assert is_exact(Seq((Leaf("a"), Par((Leaf("b"), Leaf("c"))), Leaf("d"))), nodes, diamond)
    crossed = [("a", "c"), ("b", "c"), ("b", "d")]
    plan = plan_series_parallel(nodes, crossed)
    assert not is_exact(plan, nodes, crossed)  # some step waits for one it does not depend on
    assert not is_exact(level_barrier_plan(nodes, crossed), nodes, crossed)
    # A level barrier of a graph whose levels depend on every step before them is exact.
    full = [(a, b) for a in "ab" for b in "cd"]
    assert is_exact(level_barrier_plan(nodes, full), nodes, full)


def test_transitive_dependencies_add_no_gate():
    nodes = ["a", "b", "c"]
    assert gated_plan(nodes, [("a", "b"), ("b", "c"), ("a", "c")]).waits == {}


def _leaves(plan: Plan) -> list[str]:
    if isinstance(plan, Leaf):
        return [plan.node]
    kids = plan.parts if isinstance(plan, Seq) else plan.branches
    return [leaf for kid in kids for leaf in _leaves(kid)]
