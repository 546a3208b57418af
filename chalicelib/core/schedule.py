"""Compile a step DAG into a series-parallel (Seq/Par) plan that Step Functions can run."""

# Step Functions only expresses fork/join through Parallel states, so a general
# DAG has to be coarsened into a series-parallel (SP) plan.  Every SP plan that
# keeps each edge u -> v in order is valid; the work is choosing one that loses
# little of the ideal critical path while using few Parallel states, because
# each one costs an extra billed state transition per run.
#
# 1. Decomposition (_Decomposer).  A weakly disconnected set of nodes becomes a
#    Par of its components, which loses nothing.  A connected set has to be a
#    Seq, so it is cut into segments S1; S2; ...  Every node has a window from
#    its earliest start (ASAP inside the set) to its latest finish (ALAP
#    against the set's deadline).  Nodes are sorted by the midpoint of that
#    window and segments are runs of that order; the sort key is monotone along
#    edges, so every edge stays inside a segment or points forward.  A cut
#    loses nothing when the segment, run ASAP, ends before the latest start of
#    everything after it.  Sorting by the midpoint rather than by earliest
#    finish lets a node with slack land on whichever side of a cut squeezes
#    its neighbours least; on the benchmark DAGs that cut the decomposition's
#    loss from about 2.5% to 1% (median, 1,000 nodes), more on sparser DAGs.
#    One sweep makes several zero-loss cuts (segments of about 1/_SPLIT of the
#    set) to keep the recursion shallow.  If it finds none it takes the single
#    cut of least loss, the most balanced one on ties.  Each segment gets the
#    slack up to the next segment's latest start as its deadline, and recurses.
# 2. Free moves that save Parallel states.  A Par's shorter branches join the
#    longest Par inside its longest branch when they fit there (_absorb, done
#    as each Par is built), and Par nodes whose branches fit end to end in
#    their slack become Seq (_shrink).
# 3. Budget (_trim).  Only if more than parallel_budget * n + 2 Par nodes are
#    left, the ones whose removal costs least makespan go (_remove_cheapest),
#    in a few re-priced rounds.
#
# Trade-off: each Par kept can shorten the run but adds a transition.  The
# default budget of 0.15 per node keeps transitions per run within 1.15 n + 2;
# on the benchmark's random DAGs that costs about 1% of makespan at 100 nodes
# and nothing measurable from 1,000 up, while 0.10 costs 4-8% and 0.05 costs
# 18-27% (bench/results-schedule.md).  parallel_budget=math.inf keeps every
# Par that is not free to remove.
#
# Cost: a few linear passes per level of recursion, and levels shrink by a
# large factor on typical DAGs (about 10 ms for 1,000 nodes and 0.2 s for
# 10,000 on the benchmark machine).  A DAG whose zero-slack paths force very
# deep nesting only lets each level peel off a few nodes; that degrades
# towards O(n * nesting depth) but stays correct.
#
# SP inputs compile with no loss.  Segments and components are convex subsets
# (every path between two of their nodes stays inside), which keeps an SP
# order SP; its top series split is a zero-loss cut, and any zero-loss cut
# leaves both sides able to meet their deadlines, so by induction none is late.
#
# Recursion runs on an explicit stack of generators (_drive), and tree passes
# are iterative, so deeply nested plans never hit Python's recursion limit.

from __future__ import annotations

import math
from collections.abc import Generator, Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import accumulate
from typing import Any


@dataclass(frozen=True, slots=True)
class Leaf:
    node: str


@dataclass(frozen=True, slots=True)
class Seq:
    parts: tuple[Plan, ...]


@dataclass(frozen=True, slots=True)
class Par:
    branches: tuple[Plan, ...]


Plan = Leaf | Seq | Par

# A sweep aims for segments of about 1/_SPLIT of its set: more cuts per sweep
# means less recursion (speed); too many squeeze segments early (quality).
_SPLIT = 8
# Relative tolerance for comparing sums of floats added in different orders.
_REL_TOL = 1e-10

# Internal plan nodes are [kind, kids, duration, extra] lists and leaves are
# node indices: much cheaper than dataclasses while planning.  `extra` is the
# longest Par in the subtree during the post-pass (see _normalise), and the
# built dataclass during conversion.
_SEQ = 0
_PAR = 1


# --------------------------------------------------------------------- graph


class _Graph:
    """Nodes as indices 0..n-1 in the caller's order, plus a topological order."""

    __slots__ = ("names", "preds", "succs", "w", "topo")

    def __init__(
        self,
        nodes: Sequence[str],
        edges: Iterable[tuple[str, str]],
        weights: Mapping[str, float] | None,
    ) -> None:
        names = list(nodes)
        if not names:
            raise ValueError("a plan needs at least one node")
        index = {name: i for i, name in enumerate(names)}
        if len(index) != len(names):
            dup = next(x for i, x in enumerate(names) if index[x] != i)
            raise ValueError(f"duplicate node {dup!r}")
        n = len(names)
        edge_list = list(edges)
        try:  # edge a -> b encoded as a * n + b
            pairs = [index[u] * n + index[v] for u, v in edge_list]
        except KeyError:
            u, v = next(e for e in edge_list if e[0] not in index or e[1] not in index)
            raise ValueError(f"edge {u!r} -> {v!r} names an unknown node") from None
        # Sorted, deduplicated adjacency: the plan must not depend on the
        # order or repetition of edges.
        pairs.sort()
        preds: list[list[int]] = [[] for _ in range(n)]
        succs: list[list[int]] = [[] for _ in range(n)]
        last = -1
        for ab in pairs:
            if ab != last:
                last = ab
                a, b = divmod(ab, n)
                if a == b:
                    raise ValueError(f"self-loop on {names[a]!r}")
                preds[b].append(a)
                succs[a].append(b)
        self.names = names
        self.preds = preds
        self.succs = succs
        self.w = _weights(names, weights)
        self.topo = _topological_order(preds, succs)


def _weights(names: list[str], weights: Mapping[str, float] | None) -> list[float]:
    if weights is None:
        return [1.0] * len(names)
    get = weights.get
    out = [float(get(name, 1.0)) for name in names]
    if not all(0.0 <= x < math.inf for x in out):  # also rejects NaN
        bad = next(name for name, x in zip(names, out, strict=True) if not 0.0 <= x < math.inf)
        raise ValueError(f"weight of {bad!r} must be finite and >= 0")
    return out


def _topological_order(preds: list[list[int]], succs: list[list[int]]) -> list[int]:
    # Kahn's algorithm, FIFO from the sources in caller order: deterministic.
    indeg = [len(p) for p in preds]
    topo = [i for i, d in enumerate(indeg) if not d]
    for u in topo:  # the list grows while we walk it
        for v in succs[u]:
            indeg[v] -= 1
            if not indeg[v]:
                topo.append(v)
    if len(topo) != len(preds):
        raise ValueError("the graph has a cycle")
    return topo


def _drive(root: Generator[Any, Any, Any]) -> Any:
    """Run generator-based recursion on an explicit stack.

    A generator "calls" a child by yielding the child generator and gets the
    child's return value back as the value of that yield.
    """
    stack = [root]
    value: Any = None
    while True:
        try:
            child = stack[-1].send(value)
        except StopIteration as stop:
            stack.pop()
            if not stack:
                return stop.value
            value = stop.value
        else:
            stack.append(child)
            value = None


# ------------------------------------------------------------- decomposition


class _Decomposer:
    """Top-down series/parallel decomposition (step 1 of the module notes)."""

    def __init__(self, g: _Graph, tol: float) -> None:
        n = len(g.w)
        self.preds = g.preds
        self.succs = g.succs
        self.w = g.w
        self.tol = tol
        # Scratch arrays indexed by node.  est/eft hold ASAP times inside the
        # set being worked on, relative to the start of the whole plan.
        self.est = [0.0] * n
        self.eft = [0.0] * n
        self.tail = [0.0] * n  # longest path from the node to the set's end
        self.key = [0.0] * n
        self.mark = [0] * n  # membership stamps instead of per-call sets
        self.parent = list(range(n))  # union-find forest of the current segment
        self.stamp = 0

    def run(self, topo: list[int]) -> list | int:
        """Plan every node (len(topo) >= 2)."""
        preds, w, est, eft, parent = self.preds, self.w, self.est, self.eft, self.parent
        joins = 0
        for v in topo:
            s = 0.0
            for u in preds[v]:
                f = eft[u]
                if f > s:
                    s = f
                while parent[u] != u:
                    parent[u] = parent[parent[u]]  # path halving
                    u = parent[u]
                if u != v:  # v is its tree's root while its preds are linked
                    parent[u] = v
                    joins += 1
            est[v] = s
            eft[v] = s + w[v]
        span = max(eft)
        if joins == len(topo) - 1:
            return _drive(self._connected(topo, 0.0, span))[0]
        return _drive(self._par(self._groups(topo), 0.0, span))[0]

    def _groups(self, members: list[int]) -> list[list[int]]:
        """Components of members, read from the union-find forest."""
        parent = self.parent
        by_root: dict[int, list[int]] = {}
        for v in members:
            r = v
            while parent[r] != r:
                parent[r] = parent[parent[r]]
                r = parent[r]
            group = by_root.get(r)
            if group is None:
                by_root[r] = [v]
            else:
                group.append(v)
        return list(by_root.values())

    def _par(self, groups: list[list[int]], start: float, deadline: float):
        """Par of components; their est/eft are valid from `start`.

        Absorbs short branches right away (see _absorb): the branches are
        final by now, and it spares the post-pass a full tree walk.
        """
        w = self.w
        groups.sort(key=min)  # branches in caller order of their first node
        kids = []
        kid: list | int
        for comp in groups:
            if len(comp) == 1:
                kid = comp[0]
            elif len(comp) <= 3:
                kid, _ = self._tiny(comp)
            else:
                kid, _ = yield self._connected(comp, start, deadline)
            kids.append(kid)
        node = [_PAR, kids, 0.0, None]
        _absorb_into_longest(node, w, self.tol)
        return node, node[2]

    def _tiny(self, V: list[int]) -> tuple[list | int, float]:
        """Exact plan of a connected set of 1-3 nodes in topological order.

        The recursion would find the same; this skips its overhead on the
        many tiny sets it produces.
        """
        w = self.w
        if len(V) == 1:
            return V[0], w[V[0]]
        if len(V) == 2:  # connected, so V[0] -> V[1]
            d = w[V[0]] + w[V[1]]
            return [_SEQ, V, d, None], d
        x, y, z = V  # connected: x is a source, z a sink
        if y not in self.preds[z]:  # so x -> y and x -> z
            par: list = [_PAR, [y, z], max(w[y], w[z]), None]
            par[3] = par
            return [_SEQ, [x, par], w[x] + par[2], par], w[x] + par[2]
        if x in self.preds[y]:  # x -> y -> z
            d = w[x] + w[y] + w[z]
            return [_SEQ, V, d, None], d
        par = [_PAR, [x, y], max(w[x], w[y]), None]  # so x -> z and y -> z
        par[3] = par
        return [_SEQ, [par, z], par[2] + w[z], par], par[2] + w[z]

    def _connected(self, V: list[int], start: float, deadline: float):
        """Seq of segments for a connected set V listed in topological order."""
        order, suf, D = self._order(V, start, deadline)
        m = len(order)
        target = max(2, m // _SPLIT)
        kids: list = []
        total = 0.0
        p = 0
        s0 = start
        while p < m:
            cut, end, connected = self._sweep(order, suf, p, s0, D, target)
            segment = order[p:cut]
            seg_deadline = D if cut == m else max(end, D - suf[cut])
            if not connected:
                kid, d = yield self._par(self._groups(segment), s0, seg_deadline)
            elif cut - p <= 3:
                kid, d = self._tiny(segment)
            else:
                kid, d = yield self._connected(segment, s0, seg_deadline)
            if isinstance(kid, list) and kid[0] == _SEQ:
                kids.extend(kid[1])
            else:
                kids.append(kid)
            total += d
            s0 += d
            p = cut
            # A segment that ran late makes the old deadline unreachable;
            # judge the remaining cuts against what is still achievable.
            if s0 + suf[p] > D:
                D = s0 + suf[p]
        # Parts are leaves or Par nodes, so the widest Par is one of them.
        pars = [k for k in kids if isinstance(k, list)]
        widest = max(pars, key=lambda k: k[2]) if pars else None
        return [_SEQ, kids, total, widest], total

    def _order(self, V: list[int], start: float, deadline: float):
        """Sort V by window midpoint; return it, suffix max of tails, deadline."""
        self.stamp += 1
        stamp = self.stamp
        mark, succs, w, est, eft, tail, key = (
            self.mark, self.succs, self.w, self.est, self.eft, self.tail, self.key)
        end = start
        for v in reversed(V):
            mark[v] = stamp  # successors inside V come later, so are marked
            t = 0.0
            kmin = math.inf
            for x in succs[v]:
                if mark[x] == stamp:
                    if tail[x] > t:
                        t = tail[x]
                    if key[x] < kmin:
                        kmin = key[x]
            wv = w[v]
            t += wv
            tail[v] = t
            # key = 2 * midpoint - deadline = est + latest finish - deadline.
            # Capping it by the successors' keys keeps it monotone along edges
            # even under float rounding, so every prefix stays closed.
            kv = est[v] - t + wv
            key[v] = kv if kv < kmin else kmin
            if eft[v] > end:
                end = eft[v]
        # An unreachable deadline is relaxed to what the set can achieve, so a
        # loss is always measured against something reachable.
        D = deadline if deadline > end else end
        order = sorted(V, key=key.__getitem__)  # stable: ties keep V's order
        suf = list(accumulate([tail[v] for v in reversed(order)], max))
        suf.reverse()
        suf.append(0.0)
        return order, suf, D

    def _sweep(self, order: list[int], suf: list[float], p: int, s0: float,
               D: float, target: int) -> tuple[int, float, bool]:
        """Grow one segment over order[p:] from time s0: (cut, end, connected).

        The cut is the first zero-loss one at least `target` nodes in.  On the
        first sweep (p == 0) without one, it is the least-loss cut, the most
        balanced on ties; otherwise len(order), so the rest is one segment.
        Leaves est/eft and the union-find forest of the segment behind.
        """
        preds, w, est, eft, mark, parent = (
            self.preds, self.w, self.est, self.eft, self.mark, self.parent)
        self.stamp += 1
        stamp = self.stamp
        m = len(order)
        half = target // 2
        tol = self.tol
        track = p == 0
        best_loss = math.inf
        best_bal = -1
        best_k = m
        best_end = 0.0
        E = s0
        k = p
        joins = 0
        for v in order[p:]:
            # ASAP start inside the segment: preds in earlier segments have
            # finished by s0, preds outside the set long before.  Union-find
            # along the same edges tracks the segment's components.
            s = s0
            parent[v] = v
            for u in preds[v]:
                if mark[u] == stamp:
                    f = eft[u]
                    if f > s:
                        s = f
                    while parent[u] != u:
                        parent[u] = parent[parent[u]]
                        u = parent[u]
                    if u != v:
                        parent[u] = v
                        joins += 1
            mark[v] = stamp
            est[v] = s
            f = s + w[v]
            eft[v] = f
            if f > E:
                E = f
            k += 1
            if k == m:
                break
            # Everything after k can start as late as D - suf[k] without loss.
            loss = E - D + suf[k]
            if loss <= tol:
                if k - p >= target and m - k >= half:
                    return k, E, k - p - joins == 1
                loss = 0.0
            if track:
                bal = k if k + k <= m else m - k
                if loss < best_loss or (loss == best_loss and bal > best_bal):
                    best_loss, best_bal, best_k, best_end = loss, bal, k, E
        if best_k < m:
            # We swept past the cut, so rebuild the forest of order[:cut].
            return best_k, best_end, self._relink(order, best_k) == best_k - 1
        return m, E, m - p - joins == 1

    def _relink(self, order: list[int], hi: int) -> int:
        """Union-find over order[:hi] alone; returns the number of joins."""
        preds, mark, parent = self.preds, self.mark, self.parent
        self.stamp += 1
        stamp = self.stamp
        joins = 0
        for v in order[:hi]:
            mark[v] = stamp
            parent[v] = v
            for u in preds[v]:
                if mark[u] == stamp:
                    while parent[u] != u:
                        parent[u] = parent[parent[u]]
                        u = parent[u]
                    if u != v:
                        parent[u] = v
                        joins += 1
        return joins


# ----------------------------------------------------------------- post-pass


def _postorder(root: list) -> list[list]:
    """Internal nodes, children before parents (explicit stack: plans nest deep)."""
    out = []
    stack = [root]
    while stack:
        node = stack.pop()
        out.append(node)
        stack.extend([kid for kid in node[1] if isinstance(kid, list)])
    out.reverse()
    return out


def _normalise(node: list, w: list[float]) -> None:
    """In place: splice same-kind children, recompute duration and widest Par.

    widest (node[3]) is the longest Par node in the subtree, or None.
    """
    kind = node[0]
    kids = []
    for kid in node[1]:
        if isinstance(kid, list) and kid[0] == kind:
            kids.extend(kid[1])
        else:
            kids.append(kid)
    node[1] = kids
    if kind == _PAR:
        node[2] = max([k[2] if isinstance(k, list) else w[k] for k in kids])
        node[3] = node
        return
    total = 0.0
    widest = None
    for kid in kids:
        if isinstance(kid, list):
            total += kid[2]
            q = kid[3]
            if q is not None and (widest is None or q[2] > widest[2]):
                widest = q
        else:
            total += w[kid]
    node[2] = total
    node[3] = widest


def _become(node: list, other: list) -> None:
    """Replace node's contents in place, so its parent's reference stays valid."""
    node[:] = other


def _longest(kids: list, w: list[float]) -> list | int:
    return max(kids, key=lambda k: k[2] if isinstance(k, list) else w[k])


def _absorb(root: list, w: list[float], tol: float) -> None:
    """Free move: a Par's shorter branches join the widest Par inside its longest.

    Branches of a Par share no edges, and their outside dependencies end
    before the Par or start after it, so a branch may run anywhere inside a
    sibling branch.  Joining a Par there that lasts at least as long costs
    nothing, and once all short branches have moved the outer Par is gone.
    Bottom-up, so inner Par nodes are already as wide as they get.
    """
    for node in _postorder(root):
        _normalise(node, w)
        if node[0] == _PAR:
            _absorb_into_longest(node, w, tol)


def _absorb_into_longest(node: list, w: list[float], tol: float) -> None:
    """_absorb for one normalised Par (or one just built, duration unset)."""
    kids = node[1]
    longest = _longest(kids, w)
    node[3] = node
    if not isinstance(longest, list):
        node[2] = w[longest]
        return
    node[2] = longest[2]
    host = longest[3]  # the widest Par inside the longest branch
    if host is None:
        return
    room = host[2] + tol
    keep = [longest]
    for kid in kids:
        if kid is not longest:
            if (kid[2] if isinstance(kid, list) else w[kid]) <= room:
                host[1].append(kid)
            else:
                keep.append(kid)
    if len(keep) == 1:
        _become(node, longest)
    else:
        node[1] = keep


def _shrink(root: list, w: list[float], tol: float) -> tuple[list, int]:
    """Free move: serialise Par nodes while the makespan does not grow.

    Slack in a Seq goes to its parts first come, first served.  A Par lets
    each branch use its whole window first (removing an inner Par saves as
    much as removing this one and is cheaper), then becomes a Seq if the
    branches fit end to end.  Returns the new root and its number of Par
    nodes.  Frames: [node, limit, next kid, slack, kids].
    """
    stack = [[root, root[2], 0, 0.0, []]]
    grown = None  # (rebuilt child, growth) handed back to the parent frame
    pars = 0
    while True:
        frame = stack[-1]
        node, limit, i, slack, out = frame
        kids = node[1]
        if grown is not None:
            out.append(grown[0])
            slack -= grown[1]
            i += 1
            grown = None
        # Leaves, and subtrees without a Par node, cannot change.
        while i < len(kids) and (not isinstance(kids[i], list) or kids[i][3] is None):
            out.append(kids[i])
            i += 1
        if i < len(kids):
            frame[2] = i
            frame[3] = slack
            kid = kids[i]
            lim = kid[2] + slack if node[0] == _SEQ else limit
            stack.append([kid, lim, 0, lim - kid[2], []])
            continue
        new = [node[0], out, 0.0, None]
        if node[0] == _PAR:
            if sum([k[2] if isinstance(k, list) else w[k] for k in out]) <= limit + tol:
                new[0] = _SEQ
            else:
                pars += 1
        _normalise(new, w)
        stack.pop()
        if not stack:
            return new, pars
        grown = (new, new[2] - node[2])


def _floats(root: list) -> dict[int, float]:
    """Total float (slack before the makespan grows) of every Par node."""
    out: dict[int, float] = {}
    stack = [(root, 0.0)]
    while stack:
        node, slack = stack.pop()
        kind, kids, dur = node[0], node[1], node[2]
        if kind == _PAR:
            out[id(node)] = slack
            stack.extend([(k, slack + dur - k[2]) for k in kids if isinstance(k, list)])
        else:
            stack.extend([(k, slack) for k in kids if isinstance(k, list)])
    return out


def _remove_cheapest(root: list, w: list[float], count: int) -> None:
    """Lossy step: remove about `count` Par nodes, cheapest first.

    Each Par is priced alone: serialising adds its shorter branches, absorbing
    (see _absorb) stretches the widest Par of the longest branch to the
    longest moved branch; either is cheaper by the Par's float.
    """
    floats = _floats(root)
    offers = []
    for rank, node in enumerate(_postorder(root)):
        if node[0] != _PAR:
            continue
        durs = sorted([k[2] if isinstance(k, list) else w[k] for k in node[1]], reverse=True)
        slack = floats[id(node)]
        serial = max(0.0, sum(durs[1:]) - slack)
        longest = _longest(node[1], w)
        host = longest[3] if isinstance(longest, list) else None
        absorb = math.inf if host is None else max(0.0, durs[1] - host[2] - slack)
        offers.append((min(serial, absorb), rank, node, absorb < serial))
    offers.sort(key=lambda o: o[:2])
    for _cost, _rank, node, absorb in offers[:count]:
        if node[0] != _PAR:  # already changed by a removal in this batch
            continue
        longest = _longest(node[1], w)
        # The host may have been serialised by a removal earlier in the batch.
        if absorb and isinstance(longest, list) and longest[3] is not None and longest[3][0] == _PAR:
            longest[3][1].extend([k for k in node[1] if k is not longest])
            _become(node, longest)
        else:
            node[0] = _SEQ


def _trim(root: list | int, w: list[float], max_par: float, tol: float) -> list | int:
    """Post-pass: free absorptions and serialisations, then cheapest removals."""
    if not isinstance(root, list):
        return root
    root, count = _shrink(root, w, tol)  # the decomposer already absorbed
    while count > max_par:
        # Removals are priced one at a time, so a batch can stack several on
        # one path: take half the excess per round and re-price, a few O(n)
        # rounds instead of one per Par node.
        excess = count - math.floor(max_par)
        _remove_cheapest(root, w, excess if excess <= 4 else (excess + 1) // 2)
        _absorb(root, w, tol)  # re-normalises, and the new slack may free more
        root, count = _shrink(root, w, tol)
    return root


# --------------------------------------------------------------- public API


def _to_plan(root: list | int, names: list[str]) -> Plan:
    """Internal tree to dataclasses.

    Par branches are ordered by the position in `nodes` of the node each
    branch starts with (for a Par inside it, the earliest of those).
    """
    if not isinstance(root, list):
        return Leaf(names[root])
    leaf = [Leaf(name) for name in names]
    for node in _postorder(root):
        # Children are built first; each node keeps (first index, plan) in
        # its spare slot for its parent.
        kids = [k[3] if isinstance(k, list) else (k, leaf[k]) for k in node[1]]
        if node[0] == _SEQ:
            node[3] = (kids[0][0], Seq(tuple([k[1] for k in kids])))
        else:
            kids.sort(key=lambda k: k[0])
            node[3] = (kids[0][0], Par(tuple([k[1] for k in kids])))
    return root[3][1]


def plan_series_parallel(
    nodes: Sequence[str],
    edges: Iterable[tuple[str, str]],
    weights: Mapping[str, float] | None = None,
    *,
    parallel_budget: float = 0.15,
) -> Plan:
    """Series-parallel plan of a DAG in which u -> v runs u before v starts.

    weights are expected durations (default 1.0, also for missing nodes; zero
    is fine).  Par nodes that cost nothing to remove always go; beyond that at
    most parallel_budget * len(nodes) + 2 are kept (math.inf keeps the rest),
    dropping the ones whose removal costs least makespan.  Deterministic and
    independent of edge order: ties follow the order of `nodes`, and Par
    branches are ordered by the position in `nodes` of the step each starts
    with.  Raises ValueError for empty input, duplicate or unknown nodes,
    self-loops, cycles and negative or non-finite weights.
    """
    if not parallel_budget >= 0.0:
        raise ValueError(f"parallel_budget must be >= 0, got {parallel_budget!r}")
    g = _Graph(nodes, edges, weights)
    if len(g.names) == 1:
        return Leaf(g.names[0])
    tol = _REL_TOL * sum(g.w)
    root = _Decomposer(g, tol).run(g.topo)
    # +2 so that small workflows keep a fork/join or two (1.15 n + 2 target).
    root = _trim(root, g.w, parallel_budget * len(g.names) + 2, tol)
    return _to_plan(root, g.names)


def critical_path(
    nodes: Sequence[str],
    edges: Iterable[tuple[str, str]],
    weights: Mapping[str, float] | None = None,
) -> float:
    """Longest weighted path: the makespan with unrestricted fork/join."""
    g = _Graph(nodes, edges, weights)
    preds, w = g.preds, g.w
    eft = [0.0] * len(w)
    for v in g.topo:
        s = 0.0
        for u in preds[v]:
            if eft[u] > s:
                s = eft[u]
        eft[v] = s + w[v]
    return max(eft)


def level_barrier_plan(nodes: Sequence[str], edges: Iterable[tuple[str, str]]) -> Plan:
    """Baseline: a Seq of levels (longest-path depth), each level a Par."""
    g = _Graph(nodes, edges, None)
    depth = [0] * len(g.w)
    for v in g.topo:
        for u in g.preds[v]:
            if depth[u] >= depth[v]:
                depth[v] = depth[u] + 1
    levels: list[list[int]] = [[] for _ in range(max(depth) + 1)]
    for v, d in enumerate(depth):  # caller order within a level
        levels[d].append(v)
    parts: list[Plan] = [
        Leaf(g.names[lvl[0]]) if len(lvl) == 1 else Par(tuple(Leaf(g.names[v]) for v in lvl))
        for lvl in levels
    ]
    return parts[0] if len(parts) == 1 else Seq(tuple(parts))


def _walk(plan: Plan) -> Iterable[Plan]:
    """Pre-order, left to right, without recursion (plans can nest deeply)."""
    stack = [plan]
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, Seq):
            stack.extend(reversed(node.parts))
        elif isinstance(node, Par):
            stack.extend(reversed(node.branches))


def makespan(plan: Plan, weights: Mapping[str, float] | None = None) -> float:
    """Run time of a plan: Seq adds up its parts, Par takes its longest branch."""
    # Post-order on an explicit stack: a node's value is computed after the
    # values of its children have been pushed onto `values`.
    stack: list[tuple[Plan, bool]] = [(plan, False)]
    values: list[float] = []
    while stack:
        node, expanded = stack.pop()
        if isinstance(node, Leaf):
            values.append(1.0 if weights is None else float(weights.get(node.node, 1.0)))
            continue
        kids = node.parts if isinstance(node, Seq) else node.branches
        if not expanded:
            stack.append((node, True))
            stack.extend((kid, False) for kid in reversed(kids))
            continue
        vals = values[len(values) - len(kids):]
        del values[len(values) - len(kids):]
        values.append(sum(vals) if isinstance(node, Seq) else max(vals))
    return values[0]


def count_parallel(plan: Plan) -> int:
    """Number of Par nodes, i.e. Parallel states (one extra transition each)."""
    return sum(1 for node in _walk(plan) if isinstance(node, Par))


def plan_nodes(plan: Plan) -> list[str]:
    """Leaves in plan order."""
    return [node.node for node in _walk(plan) if isinstance(node, Leaf)]
