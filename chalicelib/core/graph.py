"""One graph from either way of linking steps: per-step depends_on or top-level edges."""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from chalicelib.core.model import ROUTE_NAMES, Definition


class Link(NamedTuple):
    """An edge inside the graph: a plain tuple, cheap to make by the thousand."""

    source: str
    target: str
    condition: str | None = None


@dataclass(frozen=True)
class Graph:
    """Steps in declaration order and normalised edges; helpers for order and reachability."""

    nodes: tuple[str, ...]
    edges: tuple[Link, ...]
    succs: dict[str, list[str]] = field(repr=False, compare=False)
    preds: dict[str, list[str]] = field(repr=False, compare=False)
    outs: dict[str, list[Link]] = field(repr=False, compare=False)

    @classmethod
    def of(cls, nodes: Sequence[str], edges: Iterable[Link]) -> Graph:
        # A repeated step id is reported by validation; the graph keeps its first occurrence.
        nodes = tuple(dict.fromkeys(nodes))
        known = set(nodes)
        kept: list[Link] = []
        seen: set[tuple[str, str]] = set()
        for edge in edges:
            key = (edge.source, edge.target)
            # Edges to unknown steps and repeats are reported by validation, not kept.
            if edge.source in known and edge.target in known and key not in seen:
                seen.add(key)
                kept.append(edge)
        succs: dict[str, list[str]] = {n: [] for n in nodes}
        preds: dict[str, list[str]] = {n: [] for n in nodes}
        outs: dict[str, list[Link]] = {n: [] for n in nodes}
        for edge in kept:
            succs[edge.source].append(edge.target)
            preds[edge.target].append(edge.source)
            outs[edge.source].append(edge)
        return cls(tuple(nodes), tuple(kept), succs, preds, outs)

    @property
    def sources(self) -> list[str]:
        return [n for n in self.nodes if not self.preds[n]]

    @property
    def sinks(self) -> list[str]:
        return [n for n in self.nodes if not self.succs[n]]

    def out_edges(self, node: str) -> list[Link]:
        return list(self.outs[node])

    def topological_order(self) -> list[str] | None:
        """Kahn's order with declaration order breaking ties; None when there is a cycle."""
        index = {n: i for i, n in enumerate(self.nodes)}
        indegree = {n: len(self.preds[n]) for n in self.nodes}
        ready = [index[n] for n in self.nodes if indegree[n] == 0]
        heapq.heapify(ready)
        order: list[str] = []
        while ready:
            node = self.nodes[heapq.heappop(ready)]
            order.append(node)
            for succ in self.succs[node]:
                indegree[succ] -= 1
                if indegree[succ] == 0:
                    heapq.heappush(ready, index[succ])
        return order if len(order) == len(self.nodes) else None

    def find_cycle(self) -> list[str] | None:
        """One cycle as a list of steps (first step repeated at the end), or None."""
        colour = {n: 0 for n in self.nodes}
        for root in self.nodes:
            if colour[root]:
                continue
            stack: list[tuple[str, int]] = [(root, 0)]
            path: list[str] = []
            while stack:
                node, i = stack.pop()
                if i == 0:
                    colour[node] = 1
                    path.append(node)
                succs = self.succs[node]
                if i < len(succs):
                    stack.append((node, i + 1))
                    nxt = succs[i]
                    if colour[nxt] == 1:
                        return path[path.index(nxt) :] + [nxt]
                    if colour[nxt] == 0:
                        stack.append((nxt, 0))
                else:
                    colour[node] = 2
                    path.pop()
        return None

    def reachable_from(self, starts: Iterable[str], *, stop: str | None = None) -> set[str]:
        seen: set[str] = set()
        todo = [s for s in starts if s != stop]
        while todo:
            node = todo.pop()
            if node in seen:
                continue
            seen.add(node)
            todo.extend(s for s in self.succs[node] if s != stop and s not in seen)
        return seen

    def ancestor_bits(self, order: Sequence[str]) -> dict[str, int]:
        """Every step's ancestors at once, as a bitset (bit i stands for nodes[i]); `order` is topological.

        One pass in topological order, each step ORing its predecessors' sets: a walk per step would
        make checking every step quadratic in the number of steps. Python ints are the bitsets, so an
        OR costs a word per 64 steps.
        """
        position = {n: i for i, n in enumerate(self.nodes)}
        bits: dict[str, int] = {}
        for node in order:
            mask = 0
            for pred in self.preds[node]:
                mask |= bits[pred] | (1 << position[pred])
            bits[node] = mask
        return bits

    def ancestors(self, node: str) -> set[str]:
        seen: set[str] = set()
        todo = list(self.preds[node])
        while todo:
            cur = todo.pop()
            if cur not in seen:
                seen.add(cur)
                todo.extend(self.preds[cur])
        return seen


def definition_edges(definition: Definition, *, routes: bool = True) -> list[Link]:
    """Top-level edges followed by the edges that depends_on implies, in declaration order, then (with
    `routes`) the outcome routes of human steps: an edge whose condition is the route's name."""
    edges = [Link(e.source, e.target, e.condition) for e in definition.edges]
    for step in definition.steps:
        for dep in step.depends_on:
            edges.append(Link(dep, step.id, step.condition))
    if routes:
        for step in definition.steps:
            if step.type == "human":
                edges += [Link(step.id, target, name) for name, target in step.routes.items()]
    return edges


def is_route(condition: str | None) -> bool:
    """Whether an edge's condition is an outcome route of a human step (not a gateway condition)."""
    return condition in ROUTE_NAMES


def structural_kinds(definition: Definition) -> dict[str, str]:
    """Each step's kind as the structure sees it: a human step with outcome routes branches like a
    gateway (its routes and its plain successor are exclusive branches that meet again)."""
    return {s.id: "gateway" if s.type == "human" and s.routes else s.type for s in definition.steps}


def build_graph(definition: Definition) -> Graph:
    return Graph.of(definition.step_ids, definition_edges(definition))


def immediate_postdominators(graph: Graph, order: Sequence[str]) -> dict[str, str | None]:
    """Immediate post-dominator of each step in a DAG (None stands for the workflow's end)."""
    ipdom: dict[str, str | None] = {}
    depth: dict[str | None, int] = {None: 0}

    def meet(a: str | None, b: str | None) -> str | None:
        # Walk the deeper one up the post-dominator tree until both meet.
        while a != b:
            if a is None or b is None:
                return None
            if depth[a] > depth[b]:
                a = ipdom[a]
            elif depth[b] > depth[a]:
                b = ipdom[b]
            else:
                a, b = ipdom[a], ipdom[b]
        return a

    for node in reversed(order):
        succs = graph.succs[node]
        if not succs:
            ipdom[node] = None
        else:
            current: str | None = succs[0]
            for succ in succs[1:]:
                current = meet(current, succ)
            ipdom[node] = current
        depth[node] = depth[ipdom[node]] + 1
    return ipdom
