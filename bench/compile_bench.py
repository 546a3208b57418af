"""Compiler benchmark: compile time, state transitions per run, makespan of the compiled state
machine against the ideal critical path (beside a level-barrier compile), and ASL bytes per step."""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Sequence
from typing import Any

from bench.dag_schedule import random_dag
from chalicelib.core.compiler import compile_definition
from chalicelib.core.model import Definition
from chalicelib.core.schedule import critical_path, level_barrier_plan, makespan
from chalicelib.core.validation import MAX_DEFINITION_BYTES

SIZES = (20, 100, 1_000, 10_000)
SEEDS = {20: 20, 100: 20, 1_000: 8, 10_000: 2}
COMPILE_TARGET_MS = {1_000: 25.0}


def definition_for(n: int, seed: int) -> tuple[Definition, dict[str, float], list[tuple[str, str]]]:
    nodes, edges, durations = random_dag(n, seed)
    preds: dict[str, list[str]] = {node: [] for node in nodes}
    for a, b in edges:
        preds[b].append(a)
    steps = [{"id": node, "type": "machine", "task_type": "util.log", "config": {"message": node},
              "depends_on": preds[node], "expected_seconds": durations[node]} for node in nodes]
    # Planned scheduling: this measures the series-parallel planner given the true durations (exact
    # scheduling, the default, is measured through the local service: bench/dag_service.py).
    return (Definition.model_validate({"name": f"bench_{n}_{seed}", "steps": steps, "scheduling": "planned"}),
            durations, edges)


def asl_makespan(states: dict[str, Any], start: str, durations: dict[str, float]) -> float:
    """Time to run a scope of the compiled machine if each Task takes its step's duration."""
    total, name = 0.0, start
    while name is not None:
        state = states[name]
        if state["Type"] == "Parallel":
            total += max(asl_makespan(b["States"], b["StartAt"], durations) for b in state["Branches"])
        elif state["Type"] == "Task":
            total += durations.get(state["Parameters"]["s"], 0.0)
        name = state.get("Next")
    return total


def count_states(states: dict[str, Any]) -> int:
    """States entered in one run of a gateway-free machine: every state, once (a Parallel too)."""
    return sum(1 + sum(count_states(b["States"]) for b in s.get("Branches", [])) for s in states.values())


def run(sizes: Sequence[int] = SIZES, seeds: dict[int, int] | None = None) -> list[dict[str, Any]]:
    rows = []
    for n in sizes:
        times, ratios, levels, transitions, sizes_per_step, too_big = [], [], [], [], [], 0
        for seed in range((seeds or SEEDS)[n]):
            definition, durations, edges = definition_for(n, seed)
            best = float("inf")
            for _ in range(3 if n <= 1_000 else 1):
                started = time.process_time()
                asl = compile_definition(definition, "bench")
                best = min(best, (time.process_time() - started) * 1000)
            times.append(best)
            ideal = critical_path(list(durations), edges, durations)
            ratios.append(asl_makespan(asl["States"], asl["StartAt"], durations) / ideal)
            levels.append(makespan(level_barrier_plan(list(durations), edges), durations) / ideal)
            transitions.append(count_states(asl["States"]))
            size = len(json.dumps(asl, separators=(",", ":")).encode())
            sizes_per_step.append(size / n)
            too_big += size > MAX_DEFINITION_BYTES
        rows.append({
            "n": n, "seeds": len(times), "compile_ms": statistics.median(times),
            "ratio_median": statistics.median(ratios), "ratio_p90": _q(ratios, 0.9),
            "level_median": statistics.median(levels), "level_p90": _q(levels, 0.9),
            "transitions_max": max(transitions), "transitions_cap": int(1.15 * n + 2 + 1e-9),
            "bytes_per_step": statistics.median(sizes_per_step), "over_limit": too_big,
        })
    return rows


def _q(xs: list[float], q: float) -> float:
    ordered = sorted(xs)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def report_markdown(rows: list[dict[str, Any]]) -> str:
    lines = [
        "## Compiler (`compile_definition`, the ASL that ships)",
        "",
        "Compile time is CPU time, best of 3 runs per DAG, median over DAGs. Random DAGs as below, written as definitions",
        "(`scheduling: planned`; exact scheduling is measured in bench/dag_service_results.md) of machine steps whose `expected_seconds` are the",
        "durations. Makespan is measured on the compiled state machine (a Task takes its step's duration, a",
        "Parallel its longest branch); *level* compiles the same DAG with a barrier between dependency levels.",
        "Transitions = states entered in one run (each Task, each Parallel). Targets: compile <= 25 ms at",
        "1,000 steps; transitions <= 1.15 x steps + 2; ratio median <= 1.05, p90 <= 1.15. Step Functions",
        f"takes definitions up to {MAX_DEFINITION_BYTES:,} bytes; larger ones get a `too_large` validation error.",
        "",
        "| steps | seeds | compile ms | ratio median | ratio p90 | level median | level p90 | transitions max / cap | ASL bytes/step | over 1 MiB | verdict |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|:-:|",
    ]
    for r in rows:
        ok = (r["ratio_median"] <= 1.05 and r["ratio_p90"] <= 1.15 and r["transitions_max"] <= r["transitions_cap"]
              and r["compile_ms"] <= COMPILE_TARGET_MS.get(r["n"], float("inf")))
        lines.append(
            f"| {r['n']:,} | {r['seeds']} | {r['compile_ms']:.1f} | {r['ratio_median']:.3f} | {r['ratio_p90']:.3f} | "
            f"{r['level_median']:.3f} | {r['level_p90']:.3f} | {r['transitions_max']:,} / {r['transitions_cap']:,} | "
            f"{r['bytes_per_step']:.0f} | {r['over_limit']}/{r['seeds']} | {'PASS' if ok else 'FAIL'} |")
    return "\n".join(lines) + "\n"
