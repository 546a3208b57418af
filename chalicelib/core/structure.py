"""Finds each gateway's exclusive branches and folds them into one compound node of the DAG.

Step Functions can branch with a Choice only inside one scope, and can join parallel work only at
the end of a Parallel state. So every gateway must open a single-entry region that closes at its
immediate post-dominator (the merge step, or the workflow's end). Two kinds of region fold:

- a sequential region (no step in it starts parallel work) compiles to plain Choice "gotos" in one
  scope, so its branches may meet anywhere (exclusive merges); these are folded outermost first;
- any other region needs branches that stay apart until the merge step, each planned on its own;
  these are folded innermost first.

What is left is a DAG of plain steps and compound gateway nodes that the scheduler turns into
series-parallel form.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from chalicelib.core.graph import Graph, Link, immediate_postdominators


@dataclass(frozen=True)
class Branch:
    """One exclusive path out of a gateway: its condition (None = default) and its nodes."""

    condition: str | None
    target: str | None  # first node of the branch; None when the edge goes straight to the merge
    nodes: tuple[str, ...]
    edges: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class GatewayRegion:
    id: str
    branches: tuple[Branch, ...]  # conditioned branches in edge order, the default last
    merge: str | None  # the step where the branches meet again; None = the workflow's end
    # Set for a sequential region: the gateway and every step in it, in topological order.
    members: tuple[str, ...] = ()

    @property
    def sequential(self) -> bool:
        return bool(self.members)


@dataclass(frozen=True)
class StructureProblem:
    code: str
    step: str
    message: str
    hint: str


@dataclass(frozen=True)
class Structure:
    """The DAG left once gateways are folded: plain steps and compound gateway nodes."""

    nodes: tuple[str, ...]
    edges: tuple[tuple[str, str], ...]
    gateways: dict[str, GatewayRegion]  # in folding order: inner gateways before outer ones


def analyse(graph: Graph, kinds: Mapping[str, str], order: list[str]) -> tuple[Structure, list[StructureProblem]]:
    """Fold every gateway; problems name the step where the structure breaks."""
    if not any(kinds.get(n) == "gateway" for n in order):
        # Nothing to fold: the common case, kept to one pass over the graph.
        return Structure(tuple(order), tuple((s, t) for s in order for t in graph.succs[s]), {}), []
    succs = {n: list(graph.succs[n]) for n in order}
    preds = {n: set(graph.preds[n]) for n in order}
    position = {n: i for i, n in enumerate(order)}
    # Computed once: folding a region (entered only through its gateway, left only through its merge
    # step) contracts paths without changing which steps post-dominate the steps left outside it, so
    # every remaining gateway keeps its merge step. Recomputing per gateway made this quadratic.
    merges = immediate_postdominators(graph, order)
    gateways: dict[str, GatewayRegion] = {}
    problems: list[StructureProblem] = []

    def fold(gw: str, region: set[str], merge: str | None) -> None:
        # Replace the gateway and its region by one node linked to the merge step.
        for node in region:
            del succs[node]
            del preds[node]
        succs[gw] = [merge] if merge else []
        if merge:
            preds[merge] = (preds[merge] - region - {gw}) | {gw}

    def reach(starts: list[str], stop: str | None) -> set[str]:
        # Steps reachable in the graph as folded so far, not going past `stop`.
        seen: set[str] = set()
        todo = [n for n in starts if n != stop]
        while todo:
            node = todo.pop()
            if node not in seen:
                seen.add(node)
                todo.extend(t for t in succs[node] if t != stop and t not in seen)
        return seen

    def in_order(members: set[str]) -> tuple[str, ...]:
        return tuple(sorted(members, key=position.__getitem__))

    for gw in order:
        if kinds.get(gw) != "gateway" or gw not in succs:
            continue
        merge = merges[gw]
        region = reach(succs[gw], merge)
        sequential = all(kinds.get(n) == "gateway" or len(succs[n]) <= 1 for n in region)
        if sequential and _entry_problem(gw, region, preds, merge) is None:
            gateways[gw] = GatewayRegion(gw, (), merge, in_order(region | {gw}))
            fold(gw, region, merge)

    for gw in reversed(order):
        if kinds.get(gw) != "gateway" or gw not in succs or gw in gateways:
            continue
        merge = merges[gw]
        region = reach(succs[gw], merge)
        problem = _entry_problem(gw, region, preds, merge)
        branches: list[Branch] = []
        owner: dict[str, str] = {}
        for edge in _ordered_out_edges(graph, gw):
            if edge.target == merge:
                branches.append(Branch(edge.condition, None, (), ()))
                continue
            members = reach([edge.target], merge)
            for node in members:
                if node in owner and problem is None:
                    problem = StructureProblem(
                        "gateway_branches_overlap",
                        node,
                        f"step '{node}' is reached by two branches of gateway '{gw}' "
                        f"(from '{owner[node]}' and '{edge.target}') before they meet",
                        f"let the branches meet at '{merge or 'the end'}', or put another gateway before '{node}'",
                    )
                owner.setdefault(node, edge.target)
            ordered = in_order(members)
            inner = tuple((s, t) for s in ordered for t in succs[s] if t in members)
            branches.append(Branch(edge.condition, edge.target, ordered, inner))
        if problem:
            problems.append(problem)
            continue
        gateways[gw] = GatewayRegion(gw, tuple(branches), merge)
        fold(gw, region, merge)

    nodes = [n for n in order if n in succs]
    edges = tuple((s, t) for s in nodes for t in succs[s])
    return Structure(tuple(nodes), edges, gateways), problems


def _ordered_out_edges(graph: Graph, gw: str) -> list[Link]:
    # First matching condition wins, as in a Choice state; the default edge comes last.
    out = graph.out_edges(gw)
    return [e for e in out if e.condition is not None] + [e for e in out if e.condition is None]


def _entry_problem(gw: str, region: set[str], preds: dict[str, set[str]], merge: str | None) -> StructureProblem | None:
    for node in sorted(region):
        outside = sorted(p for p in preds[node] if p not in region and p != gw)
        if outside:
            return StructureProblem(
                "gateway_branch_entered_from_outside",
                node,
                f"step '{node}' lies on a branch of gateway '{gw}' but also depends on '{outside[0]}', "
                "which is not on that branch",
                f"make '{outside[0]}' run before '{gw}', or let it join at '{merge or 'the end'}'",
            )
    return None
