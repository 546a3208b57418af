"""Tests for the series-parallel scheduler (chalicelib/core/schedule.py)."""

import inspect
import math
import random
import sys

import pytest

from chalicelib.core.schedule import (
    Leaf,
    Par,
    Plan,
    Seq,
    count_parallel,
    critical_path,
    level_barrier_plan,
    makespan,
    plan_nodes,
    plan_series_parallel,
)

# ------------------------------------------------------------------ helpers


def leaves(*names: str) -> tuple[Leaf, ...]:
    return tuple(Leaf(x) for x in names)


def walk(plan: Plan):
    stack = [plan]
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, Seq):
            stack.extend(node.parts)
        elif isinstance(node, Par):
            stack.extend(node.branches)


def order_positions(plan: Plan, *, reverse_par: bool) -> dict[str, int]:
    """Leaf positions; with reverse_par, every Par's branches in reverse."""
    pos: dict[str, int] = {}
    stack = [plan]
    while stack:
        node = stack.pop()
        if isinstance(node, Leaf):
            pos[node.node] = len(pos)
        elif isinstance(node, Seq):
            stack.extend(reversed(node.parts))
        else:
            stack.extend(node.branches if reverse_par else reversed(node.branches))
    return pos


def assert_valid(plan: Plan, nodes, edges) -> None:
    """Every node exactly once, every edge ordered, normal form."""
    assert sorted(plan_nodes(plan)) == sorted(nodes)
    # An SP order is two-dimensional: u runs before v exactly when u is first
    # both in leaf order and in leaf order with Par branches reversed.  This
    # is structural, so it also holds for zero-duration steps.
    first = order_positions(plan, reverse_par=False)
    second = order_positions(plan, reverse_par=True)
    for u, v in edges:
        assert first[u] < first[v] and second[u] < second[v], (u, v)
    for node in walk(plan):
        if isinstance(node, Seq):
            assert len(node.parts) >= 2
            assert all(not isinstance(p, Seq) for p in node.parts)
        elif isinstance(node, Par):
            assert len(node.branches) >= 2
            assert all(not isinstance(b, Par) for b in node.branches)


def random_dag(rng: random.Random, n: int, window: int):
    """Small windowed random DAG with lognormal durations, some of them zero."""
    names = [f"n{i}" for i in range(n)]
    edges = set()
    for i in range(1, n):
        lo = max(0, i - window)
        for j in rng.sample(range(lo, i), min(rng.randint(0, 3), i - lo)):
            edges.add((names[j], names[i]))
    weights = {x: 0.0 if rng.random() < 0.1 else rng.lognormvariate(0, 1) for x in names}
    order = names[:]
    rng.shuffle(order)
    return order, sorted(edges), weights


def random_sp_dag(rng: random.Random, n: int, redundant: float = 0.05):
    """Random series/parallel composition: series joins every sink of the first
    part to every source of the second.  A `redundant` share of the edges the
    order implies anyway is added, since real DAGs carry such edges too."""
    names = [f"v{i}" for i in range(n)]
    rng.shuffle(names)
    pool = iter(names)
    edges: set[tuple[str, str]] = set()
    before: dict[str, set[str]] = {x: set() for x in names}  # transitive preds

    def build(k):  # -> (sources, sinks, members)
        if k == 1:
            x = next(pool)
            return [x], [x], [x]
        k1 = rng.randint(1, k - 1)
        s1, t1, m1 = build(k1)
        s2, t2, m2 = build(k - k1)
        if rng.random() < 0.5:
            return s1 + s2, t1 + t2, m1 + m2
        edges.update((a, b) for a in t1 for b in s2)
        if redundant:
            for b in m2:
                before[b].update(m1)
        return s1, t2, m1 + m2

    build(n)
    for v in names:
        for u in sorted(before[v]):
            if rng.random() < redundant:
                edges.add((u, v))
    weights = {x: 0.0 if rng.random() < 0.1 else rng.lognormvariate(0, 1) for x in names}
    return names, sorted(edges), weights


def test_validity_check_is_structural():
    # Guard against a vacuous checker: with a zero-length `a`, timing alone
    # would accept a and b side by side, the structure must not.
    with pytest.raises(AssertionError):
        assert_valid(Par(leaves("a", "b")), ["a", "b"], [("a", "b")])
    with pytest.raises(AssertionError):
        assert_valid(Seq(leaves("b", "a")), ["a", "b"], [("a", "b")])
    assert_valid(Seq(leaves("a", "b")), ["a", "b"], [("a", "b")])


# ------------------------------------------------------- hand-made shapes


def test_single_node_is_a_leaf():
    assert plan_series_parallel(["a"], []) == Leaf("a")


def test_chain_is_one_seq():
    plan = plan_series_parallel(["a", "b", "c"], [("b", "c"), ("a", "b")])
    assert plan == Seq(leaves("a", "b", "c"))


def test_diamond():
    edges = [("a", "b"), ("a", "c"), ("b", "d"), ("c", "d")]
    plan = plan_series_parallel(["a", "b", "c", "d"], edges)
    assert plan == Seq((Leaf("a"), Par(leaves("b", "c")), Leaf("d")))


def test_fan_out_three_and_join():
    edges = [("a", x) for x in "bcd"] + [(x, "e") for x in "bcd"]
    plan = plan_series_parallel(list("abcde"), edges)
    assert plan == Seq((Leaf("a"), Par(leaves("b", "c", "d")), Leaf("e")))


def test_disconnected_components_run_in_parallel():
    plan = plan_series_parallel(["a", "b", "c"], [("a", "b")])
    assert plan == Par((Seq(leaves("a", "b")), Leaf("c")))


def test_independent_nodes_form_one_par_in_node_order():
    plan = plan_series_parallel(["z", "y", "x"], [])
    assert plan == Par(leaves("z", "y", "x"))


def test_n_shape_with_unit_weights_loses_nothing():
    # a -> c, b -> c, b -> d is the smallest non-SP DAG.
    nodes, edges = ["a", "b", "c", "d"], [("a", "c"), ("b", "c"), ("b", "d")]
    plan = plan_series_parallel(nodes, edges)
    assert plan == Seq((Par(leaves("a", "b")), Par(leaves("c", "d"))))
    assert makespan(plan) == critical_path(nodes, edges) == 2.0


def test_n_shape_with_skewed_weights_picks_the_best_sp_plan():
    # Critical path 4 is unreachable; the best SP plans take 5, the level
    # barrier takes 6.
    nodes, edges = ["a", "b", "c", "d"], [("a", "c"), ("b", "c"), ("b", "d")]
    w = {"a": 3.0, "b": 1.0, "c": 1.0, "d": 3.0}
    plan = plan_series_parallel(nodes, edges, w)
    assert plan == Seq((Leaf("b"), Par(leaves("a", "d")), Leaf("c")))
    assert makespan(plan, w) == 5.0
    assert critical_path(nodes, edges, w) == 4.0
    assert makespan(level_barrier_plan(nodes, edges), w) == 6.0


def test_short_branch_moves_into_a_longer_inner_par():
    # x is independent and short: rather than a top-level Par around the
    # whole diamond it joins the diamond's Par, saving a Parallel state.
    nodes = ["a", "b", "c", "d", "x"]
    edges = [("a", "b"), ("a", "c"), ("b", "d"), ("c", "d")]
    w = {"a": 1.0, "b": 5.0, "c": 1.0, "d": 1.0, "x": 2.0}
    plan = plan_series_parallel(nodes, edges, w)
    assert plan == Seq((Leaf("a"), Par(leaves("b", "c", "x")), Leaf("d")))


def test_par_that_fits_in_slack_is_serialised():
    # d1 and d2 could run side by side, but both fit beside the long b one
    # after the other, which saves a Parallel state at no cost.
    nodes = ["a", "b", "c", "d1", "d2", "e"]
    edges = [("a", "b"), ("a", "c"), ("c", "d1"), ("c", "d2")]
    edges += [("b", "e"), ("d1", "e"), ("d2", "e")]
    w = {"a": 1.0, "b": 10.0, "c": 1.0, "d1": 1.0, "d2": 1.0, "e": 1.0}
    plan = plan_series_parallel(nodes, edges, w, parallel_budget=math.inf)
    inner = Seq(leaves("c", "d1", "d2"))
    assert plan == Seq((Leaf("a"), Par((Leaf("b"), inner)), Leaf("e")))
    assert makespan(plan, w) == critical_path(nodes, edges, w) == 12.0


def test_zero_weight_routing_nodes():
    nodes = ["start", "a", "b", "route", "c"]
    edges = [("start", "a"), ("start", "b"), ("a", "route"), ("b", "route"), ("route", "c")]
    w = {"start": 0.0, "a": 2.0, "b": 3.0, "route": 0.0, "c": 1.0}
    plan = plan_series_parallel(nodes, edges, w)
    assert plan == Seq((Leaf("start"), Par(leaves("a", "b")), Leaf("route"), Leaf("c")))
    assert makespan(plan, w) == 4.0


def test_all_zero_weights():
    nodes, edges = ["a", "b", "c", "d"], [("a", "c"), ("b", "c"), ("b", "d")]
    plan = plan_series_parallel(nodes, edges, dict.fromkeys(nodes, 0.0))
    assert_valid(plan, nodes, edges)
    assert makespan(plan, dict.fromkeys(nodes, 0.0)) == 0.0


def test_missing_weights_default_to_one():
    plan = plan_series_parallel(["a", "b"], [("a", "b")], {"a": 2.5})
    assert makespan(plan, {"a": 2.5}) == 3.5


def test_duplicate_edges_and_list_edges_are_accepted():
    json_edges = [["a", "b"], ["a", "b"]]
    plan = plan_series_parallel(["a", "b"], json_edges)  # type: ignore[arg-type]
    assert plan == Seq(leaves("a", "b"))


def test_zero_budget_keeps_at_most_two_parallel_states():
    rng = random.Random(7)
    nodes, edges, w = random_dag(rng, 40, 6)
    plan = plan_series_parallel(nodes, edges, w, parallel_budget=0.0)
    assert count_parallel(plan) <= 2
    assert_valid(plan, nodes, edges)


def test_one_wide_fan_out_is_one_parallel_state():
    fan = [f"b{i}" for i in range(50)]
    edges = [("a", x) for x in fan] + [(x, "z") for x in fan]
    plan = plan_series_parallel(["a", *fan, "z"], edges, parallel_budget=0.0)
    assert plan == Seq((Leaf("a"), Par(leaves(*fan)), Leaf("z")))


@pytest.mark.parametrize(
    ("nodes", "edges", "weights", "message"),
    [
        ([], [], None, "at least one node"),
        (["a", "a"], [], None, "duplicate"),
        (["a"], [("a", "b")], None, "unknown"),
        (["a"], [("a", "a")], None, "self-loop"),
        (["a", "b"], [("a", "b"), ("b", "a")], None, "cycle"),
        (["a"], [], {"a": -1.0}, "weight"),
        (["a"], [], {"a": math.nan}, "weight"),
        (["a"], [], {"a": math.inf}, "weight"),
    ],
)
def test_bad_input_raises(nodes, edges, weights, message):
    with pytest.raises(ValueError, match=message):
        plan_series_parallel(nodes, edges, weights)


def test_negative_budget_raises():
    with pytest.raises(ValueError, match="parallel_budget"):
        plan_series_parallel(["a"], [], parallel_budget=-0.1)


# ---------------------------------------------------------------- helpers API


def test_critical_path_makespan_and_counts():
    nodes = ["a", "b", "c", "d"]
    edges = [("a", "b"), ("a", "c"), ("b", "d"), ("c", "d")]
    w = {"a": 1.0, "b": 2.0, "c": 5.0, "d": 1.0}
    assert critical_path(nodes, edges, w) == 7.0
    assert critical_path(nodes, edges) == 3.0
    plan = Seq((Leaf("a"), Par(leaves("b", "c")), Leaf("d")))
    assert makespan(plan, w) == 7.0
    assert makespan(plan) == 3.0
    assert count_parallel(plan) == 1
    assert plan_nodes(plan) == ["a", "b", "c", "d"]


def test_level_barrier_plan():
    nodes, edges = ["a", "b", "c", "d"], [("a", "c"), ("b", "c"), ("b", "d")]
    assert level_barrier_plan(nodes, edges) == Seq((Par(leaves("a", "b")), Par(leaves("c", "d"))))
    assert level_barrier_plan(["a", "b"], [("a", "b")]) == Seq(leaves("a", "b"))
    assert level_barrier_plan(["a", "b"], []) == Par(leaves("a", "b"))
    assert level_barrier_plan(["a"], []) == Leaf("a")
    # Levels are longest-path depths: d waits for the whole a -> b -> c chain.
    chain = [("a", "b"), ("b", "c"), ("a", "d"), ("c", "d")]
    assert level_barrier_plan(list("abcd"), chain) == Seq(leaves("a", "b", "c", "d"))


def test_level_barrier_loses_where_the_planner_does_not():
    # Two independent chains with opposite long steps.
    nodes = ["a1", "a2", "b1", "b2"]
    edges = [("a1", "a2"), ("b1", "b2")]
    w = {"a1": 5.0, "a2": 1.0, "b1": 1.0, "b2": 5.0}
    assert makespan(level_barrier_plan(nodes, edges), w) == 10.0
    assert makespan(plan_series_parallel(nodes, edges, w), w) == 6.0


# --------------------------------------------------------------- properties


@pytest.mark.parametrize("budget", [0.0, 0.15, math.inf])
def test_invariants_on_random_dags(budget):
    rng = random.Random(20240611)
    for _ in range(120):
        n = rng.randint(1, 30)
        nodes, edges, w = random_dag(rng, n, rng.choice([1, 2, 4, 8]))
        plan = plan_series_parallel(nodes, edges, w, parallel_budget=budget)
        assert_valid(plan, nodes, edges)
        assert count_parallel(plan) <= budget * n + 2
        # No plan beats the critical path.
        assert makespan(plan, w) >= critical_path(nodes, edges, w) * (1 - 1e-12)


def test_a_bigger_budget_gives_shorter_plans_on_average():
    rng = random.Random(99)
    tight = loose = 0.0
    for _ in range(40):
        nodes, edges, w = random_dag(rng, 40, 6)
        cp = critical_path(nodes, edges, w)
        tight += makespan(plan_series_parallel(nodes, edges, w, parallel_budget=0.0), w) / cp
        loose += makespan(plan_series_parallel(nodes, edges, w, parallel_budget=math.inf), w) / cp
    assert loose < tight


def test_deterministic_and_independent_of_edge_order():
    rng = random.Random(5)
    for _ in range(30):
        nodes, edges, w = random_dag(rng, 25, 5)
        plan = plan_series_parallel(nodes, edges, w)
        assert plan_series_parallel(nodes, edges, w) == plan
        shuffled = edges[:]
        rng.shuffle(shuffled)
        assert plan_series_parallel(nodes, shuffled, w) == plan


def test_series_parallel_graphs_compile_without_loss():
    rng = random.Random(31337)
    for _ in range(300):
        nodes, edges, w = random_sp_dag(rng, rng.randint(1, 40))
        plan = plan_series_parallel(nodes, edges, w, parallel_budget=math.inf)
        assert_valid(plan, nodes, edges)
        assert makespan(plan, w) == pytest.approx(critical_path(nodes, edges, w), rel=1e-9)


def test_large_series_parallel_graph_compiles_without_loss():
    nodes, edges, w = random_sp_dag(random.Random(1), 2000, redundant=0.0)
    plan = plan_series_parallel(nodes, edges, w, parallel_budget=math.inf)
    assert makespan(plan, w) == pytest.approx(critical_path(nodes, edges, w), rel=1e-9)


def test_deep_nesting_needs_no_recursion():
    # x_k -> y_k and x_k -> x_{k+1} with every y on a critical path: the plan
    # nests Seq(x, Par(y, Seq(...))) 600 levels deep.  Run with a recursion
    # limit far below that to show nothing recurses per nesting level.
    depth = 300
    nodes = [f"{c}{k}" for k in range(depth) for c in "xy"]
    edges = [(f"x{k}", f"y{k}") for k in range(depth)]
    edges += [(f"x{k}", f"x{k + 1}") for k in range(depth - 1)]
    w = {f"x{k}": 1.0 for k in range(depth)} | {f"y{k}": 1e4 - k for k in range(depth)}
    frames = len(inspect.stack(0))
    old_limit = sys.getrecursionlimit()
    sys.setrecursionlimit(frames + 100)
    try:
        plan = plan_series_parallel(nodes, edges, w, parallel_budget=math.inf)
        parallel = count_parallel(plan)
        span = makespan(plan, w)
        order = plan_nodes(plan)
        trimmed = count_parallel(plan_series_parallel(nodes, edges, w))
    finally:
        sys.setrecursionlimit(old_limit)
    assert parallel == depth - 1
    assert span == pytest.approx(critical_path(nodes, edges, w))
    assert order[:3] == ["x0", "y0", "x1"]
    assert trimmed <= 0.15 * len(nodes) + 2
