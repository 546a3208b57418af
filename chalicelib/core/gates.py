"""Exact dependency scheduling: when a series-parallel plan would make a step wait for unrelated work,
the scope runs as a tree of forks instead, and a step with several dependencies waits on a gate.

A series-parallel plan is exact when every step waits only for steps it depends on (directly or
through others): then it costs nothing and is kept. Otherwise the scope becomes a spanning forest:
each step follows one of its direct dependencies (its tree parent) and a fork is a Parallel at the end
of a branch, so no Parallel ever joins before the scope ends. A step with more direct dependencies
than its tree parent waits at a gate for the others: the last of them to finish releases it
(runtime/gates.py); its tree parent is the dependency expected to finish last, so that the gate is
usually open when the step comes. Transitive edges are dropped first, so a gate only waits where it has to.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from chalicelib.core.schedule import Leaf, Par, Plan, Seq

# The error that tells a gated machine step's own state its gate has opened: its Catch enters `<step>__run`.
GATE_OPEN = "Stepflow.GateOpen"


@dataclass(frozen=True)
class GatedPlan:
    """A forest plan (every Par ends its scope) and the gates that complete it."""

    plan: Plan
    waits: dict[str, tuple[str, ...]] = field(default_factory=dict)  # gated step -> steps its gate waits for
    releases: dict[str, tuple[str, ...]] = field(default_factory=dict)  # step -> gated steps it releases


def _ancestors(order: Sequence[str], preds: dict[str, list[str]], index: dict[str, int]) -> dict[str, int]:
    """Every step's ancestors as a bit set (bit i: the step at position i of `order`)."""
    anc: dict[str, int] = {}
    for node in order:
        bits = 0
        for p in preds[node]:
            bits |= anc[p] | (1 << index[p])
        anc[node] = bits
    return anc


def _preds(nodes: Sequence[str], edges: Sequence[tuple[str, str]]) -> dict[str, list[str]]:
    # Each predecessor once, in edge order: a dict per step (a list's `in` made a fan-in of n steps cost n^2).
    seen: dict[str, dict[str, None]] = {n: {} for n in nodes}
    for s, t in edges:
        seen[t][s] = None
    return {n: list(ps) for n, ps in seen.items()}


def is_exact(plan: Plan, order: Sequence[str], edges: Sequence[tuple[str, str]]) -> bool:
    """Whether every step of `plan` waits only for its ancestors. `order` is topological."""
    index = {n: i for i, n in enumerate(order)}
    anc = _ancestors(order, _preds(order, edges), index)
    # Per node of the plan: (first steps, last steps) as bit sets; a Seq is exact when each part's last
    # steps are ancestors of every first step of the part after it (inner parts being exact themselves).
    ends: dict[int, tuple[int, int]] = {}
    stack: list[tuple[Plan, bool]] = [(plan, False)]
    while stack:
        node, expanded = stack.pop()
        if isinstance(node, Leaf):
            bit = 1 << index[node.node]
            ends[id(node)] = (bit, bit)
            continue
        kids = node.parts if isinstance(node, Seq) else node.branches
        if not expanded:
            stack.append((node, True))
            stack.extend((kid, False) for kid in kids)
            continue
        if isinstance(node, Par):
            first = last = 0
            for kid in kids:
                first |= ends[id(kid)][0]
                last |= ends[id(kid)][1]
            ends[id(node)] = (first, last)
            continue
        for before, after in zip(kids, kids[1:], strict=False):
            sinks, sources = ends[id(before)][1], ends[id(after)][0]
            while sources:
                low = sources & -sources
                if anc[order[low.bit_length() - 1]] & sinks != sinks:
                    return False
                sources ^= low
        ends[id(node)] = (ends[id(kids[0])][0], ends[id(kids[-1])][1])
    return True


def gated_plan(order: Sequence[str], edges: Sequence[tuple[str, str]],
               weights: Mapping[str, float] | None = None) -> GatedPlan:
    """The forest plan and gates of a scope whose steps are in topological `order`; `weights` are the
    expected durations (one unit each when absent)."""
    index = {n: i for i, n in enumerate(order)}
    preds = _preds(order, edges)
    anc = _ancestors(order, preds, index)
    # When each step is expected to finish, every dependency taking its expected time.
    finish: dict[str, float] = {}
    for node in order:
        finish[node] = max((finish[p] for p in preds[node]), default=0.0) + (weights or {}).get(node, 1.0)
    # Direct dependencies that no other dependency already implies.
    reduced = {n: sorted((p for p in preds[n] if not any(anc[q] >> index[p] & 1 for q in preds[n] if q != p)),
                         key=index.__getitem__) for n in order}
    children: dict[str, list[str]] = {n: [] for n in order}
    parent: dict[str, str | None] = {}
    for node in order:  # a single dependency is always the tree parent: no gate, no cost
        parent[node] = reduced[node][0] if len(reduced[node]) == 1 else None
        if parent[node] is not None:
            children[parent[node]].append(node)  # type: ignore[index]
    waits: dict[str, tuple[str, ...]] = {}
    for node in order:
        deps = reduced[node]
        if len(deps) < 2:
            continue
        # Follow the dependency expected to finish last: when it has, the gate is open as the step comes and
        # the step runs in its own state (runtime/gates.py); a gate that opens later costs a transition and
        # a Lambda invocation more. Among those that add no Parallel (none or several children already) if
        # there are any; else fork one (a Parallel is a transition and no Lambda).
        pool = [p for p in deps if len(children[p]) != 1] or deps
        chosen = max(pool, key=lambda p: (finish[p], index[p]))
        parent[node] = chosen
        children[chosen].append(node)
        waits[node] = tuple(p for p in deps if p != chosen)
    releases: dict[str, list[str]] = {}
    for node, waited in waits.items():
        for p in waited:
            releases.setdefault(p, []).append(node)
    # Built bottom-up without recursion (chains can be thousands of steps long): each subtree is the
    # list of its Seq's parts, last part first, handed to its single tree parent.
    built: dict[str, list[Plan]] = {}
    for node in reversed(order):
        kids = sorted(children[node], key=index.__getitem__)
        if not kids:
            parts: list[Plan] = []
        elif len(kids) == 1:
            parts = built.pop(kids[0])
        else:
            parts = [Par(tuple(_seq(built.pop(k)) for k in kids))]
        parts.append(Leaf(node))
        built[node] = parts
    roots = [n for n in order if parent[n] is None]
    plan = _seq(built[roots[0]]) if len(roots) == 1 else Par(tuple(_seq(built[r]) for r in roots))
    return GatedPlan(plan, waits, {p: tuple(c) for p, c in releases.items()})


def _seq(parts_reversed: list[Plan]) -> Plan:
    if len(parts_reversed) == 1:
        return parts_reversed[0]
    return Seq(tuple(reversed(parts_reversed)))
