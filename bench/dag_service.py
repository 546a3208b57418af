"""DAG scheduling through the running local service (`make bench-dag`): seeded random DAGs of util.sleep
steps, run as exact scheduling (gates), today's series-parallel planner and a level barrier side by side.

Writes bench/dag_service_results.md. What the planner knows is only what a definition says: durations are
in each step's config (util.sleep's seconds), and `expected_seconds` is either absent or declared wrong by
a lognormal factor (sigma 0.5). Measured per run, from the service's own records:
- makespan / critical path: the instance's event log, first step.started to last step.succeeded, over the
  longest path of the configured sleeps (what an engine with no overhead and exact dependencies reaches);
- transitions: states entered in the execution history; Lambda invocations: Lambda tasks scheduled in it;
- per-step overhead: CPU time of the service process per step, from runs of the same DAGs with every
  sleep 0, one run at a time (CPU time, so other work on the machine does not count), less what the idle
  service spends meanwhile and what the benchmark's own status polls cost (both measured beside the runs);
  with the Lambda invocations, transitions and wall time per step of the same runs.
The variants of one DAG run one after another; the machine's load average is reported beside the figures.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import statistics
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

from bench.dag_schedule import random_dag
from bench.local_load import Service
from chalicelib.core.event_stream import seq_moment
from chalicelib.core.schedule import critical_path

RESULTS = Path(__file__).with_name("dag_service_results.md")
PREFIX = "/workflows"
SIZES = (14, 30, 100)
SEEDS = {14: 6, 30: 3, 100: 2}
OVERHEAD_SEEDS = 3
OVERHEAD_RUNS = 5  # measured runs per DAG and variant, after one that warms caches
IDLE_SECONDS = 4.0
CALIBRATION_POLLS = 40
# A step of lognormal duration 1 sleeps this long: long enough that the service's own cost per step is a
# small part of it, short enough that the five variants of a 100-step DAG run in minutes.
UNITS = {14: 1.0, 30: 1.0, 100: 0.5}
WRONG_SIGMA = 0.5
VARIANTS = ("gates", "gates_wrong", "planned", "planned_wrong", "level")
LABELS = {
    "gates": "exact (gates), not declared",
    "gates_wrong": "exact (gates), declared wrong",
    "planned": "today's planner, not declared",
    "planned_wrong": "today's planner, declared wrong",
    "level": "level barrier",
}
MEDIAN_TARGET, P90_TARGET = 1.10, 1.20


def dag(n: int, seed: int, unit: float) -> tuple[list[str], list[tuple[str, str]], dict[str, float]]:
    nodes, edges, w = random_dag(n, seed)
    order = sorted(nodes)  # generation order: the names are numbered in it
    return order, edges, {k: round(v * unit, 3) for k, v in w.items()}


def definition(name: str, nodes: list[str], edges: list[tuple[str, str]], seconds: dict[str, float], *,
               scheduling: str = "exact", declared: dict[str, float] | None = None) -> dict[str, Any]:
    preds: dict[str, list[str]] = {n: [] for n in nodes}
    for s, t in edges:
        preds[t].append(s)
    steps = []
    for node in nodes:
        step: dict[str, Any] = {"id": node, "type": "machine", "task_type": "util.sleep",
                                "config": {"seconds": seconds[node]}, "depends_on": preds[node]}
        if declared is not None:
            step["expected_seconds"] = declared[node]
        steps.append(step)
    return {"name": name, "steps": steps, "scheduling": scheduling}


def level_edges(nodes: list[str], edges: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The edges of a level barrier: every step of a level depends on every step of the level before."""
    preds: dict[str, list[str]] = {n: [] for n in nodes}
    for s, t in edges:
        preds[t].append(s)
    depth: dict[str, int] = {}
    for node in nodes:  # topological
        depth[node] = max((depth[p] + 1 for p in preds[node]), default=0)
    levels: dict[int, list[str]] = {}
    for node in nodes:
        levels.setdefault(depth[node], []).append(node)
    return [(a, b) for d in range(1, len(levels)) for a in levels[d - 1] for b in levels[d]]


def variants(n: int, seed: int, seconds_of: dict[str, float], nodes: list[str],
             edges: list[tuple[str, str]]) -> dict[str, dict[str, Any]]:
    rng = random.Random(f"declared:{n}:{seed}")
    wrong = {k: round(v * rng.lognormvariate(0.0, WRONG_SIGMA), 3) for k, v in seconds_of.items()}
    tag = f"{n}_{seed}"
    return {
        "gates": definition(f"bench_gates_{tag}", nodes, edges, seconds_of),
        "gates_wrong": definition(f"bench_gates_wrong_{tag}", nodes, edges, seconds_of, declared=wrong),
        "planned": definition(f"bench_planned_{tag}", nodes, edges, seconds_of, scheduling="planned"),
        "planned_wrong": definition(f"bench_planned_wrong_{tag}", nodes, edges, seconds_of, scheduling="planned",
                                    declared=wrong),
        # Every step of a level after every step of the level before: series-parallel and exact as written.
        "level": definition(f"bench_level_{tag}", nodes, level_edges(nodes, edges), seconds_of),
    }


class Runner:
    def __init__(self, service: Service):
        self.service = service
        self.polls = 0  # status reads made while waiting

    def call(self, method: str, path: str, body: Any = None, expect: tuple[int, ...] = (200,)) -> Any:
        status, answer = self.service.request(method, PREFIX + path, body)
        if status not in expect:
            raise RuntimeError(f"{method} {path}: {status} {answer!r}"[:500])
        return answer

    def register(self, body: dict[str, Any]) -> None:
        self.call("POST", "/definitions", body, expect=(200, 201))

    def start(self, name: str) -> str:
        return self.call("POST", "/instances", {"definition_name": name, "input_data": {}}, expect=(201,))["id"]

    def wait(self, ids: list[str], timeout: float = 900.0) -> None:
        deadline = time.monotonic() + timeout
        pending = list(ids)
        while pending:
            self.polls += len(pending)
            pending = [i for i in pending if self.call("GET", f"/instances/{i}")["status"]
                       not in ("completed", "failed", "canceled")]
            if pending and time.monotonic() > deadline:
                raise RuntimeError(f"instances still running: {pending}")
            time.sleep(0.25)
        for instance_id in ids:
            status = self.call("GET", f"/instances/{instance_id}")["status"]
            if status != "completed":
                raise RuntimeError(f"instance {instance_id} ended {status}")

    def measure(self, instance_id: str) -> dict[str, float]:
        raw = self.call("GET", f"/instances/{instance_id}/events?limit=1000")
        text = raw.decode() if isinstance(raw, bytes) else json.dumps(raw)
        events = [json.loads(line) for line in text.splitlines() if line.strip()]
        starts = [seq_moment(e["seq"]) for e in events if e["type"] == "step.started"]
        ends = [seq_moment(e["seq"]) for e in events if e["type"] == "step.succeeded"]
        history: list[dict[str, Any]] = []
        cursor = None
        while True:
            page = self.call("GET", f"/instances/{instance_id}/history?limit=200"
                             + (f"&cursor={quote(cursor)}" if cursor else ""))
            history += page["events"]
            cursor = page.get("next_cursor")
            if not cursor:
                break
        return {
            "makespan": (max(ends) - min(starts)).total_seconds(),
            "transitions": sum(1 for e in history if e["type"].endswith("StateEntered")),
            "lambdas": sum(1 for e in history if e["type"] in ("LambdaFunctionScheduled", "TaskScheduled")),
        }


def _quantile(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, math.ceil(q * len(xs)) - 1)]


def run_makespans(runner: Runner, n: int, seeds: dict[int, int], unit: float) -> list[dict[str, Any]]:
    rows = []
    per: dict[str, dict[str, list[float]]] = {v: {"ratio": [], "transitions": [], "lambdas": []} for v in VARIANTS}
    for seed in range(seeds[n]):
        nodes, edges, seconds_of = dag(n, seed, unit)
        cp = critical_path(nodes, edges, seconds_of)
        bodies = variants(n, seed, seconds_of, nodes, edges)
        for body in bodies.values():
            runner.register(body)
        for v, body in bodies.items():
            # One run at a time: the emulator runs every Lambda of the service in one process, so runs
            # side by side would slow each other's steps down (the GIL), not the scheduling.
            instance_id = runner.start(body["name"])
            runner.wait([instance_id])
            got = runner.measure(instance_id)
            per[v]["ratio"].append(got["makespan"] / cp)
            per[v]["transitions"].append(got["transitions"])
            per[v]["lambdas"].append(got["lambdas"])
        print(f"n={n} seed={seed} cp={cp:.1f}s " + " ".join(
            f"{v}={per[v]['ratio'][-1]:.2f}" for v in VARIANTS), flush=True)
    for v in VARIANTS:
        rows.append({"n": n, "variant": v, "runs": seeds[n], "unit": unit,
                     "median": statistics.median(per[v]["ratio"]), "p90": _quantile(per[v]["ratio"], 0.9),
                     "max": max(per[v]["ratio"]),
                     "transitions_median": statistics.median(per[v]["transitions"]),
                     "transitions_max": max(per[v]["transitions"]),
                     "lambdas_median": statistics.median(per[v]["lambdas"])})
    return rows


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def _calibrate(runner: Runner, instance_id: str) -> tuple[float, float]:
    """The idle service's CPU seconds per second, and the CPU seconds of one status poll beyond that."""
    pid = runner.service.process.pid
    before, began = _cpu_seconds(pid), time.monotonic()
    time.sleep(IDLE_SECONDS)
    idle = (_cpu_seconds(pid) - before) / (time.monotonic() - began)
    before, began = _cpu_seconds(pid), time.monotonic()
    for _ in range(CALIBRATION_POLLS):
        runner.call("GET", f"/instances/{instance_id}")
    poll = (_cpu_seconds(pid) - before - idle * (time.monotonic() - began)) / CALIBRATION_POLLS
    return idle, max(poll, 0.0)


def run_overhead(runner: Runner, sizes: tuple[int, ...]) -> list[dict[str, Any]]:
    """Service CPU time per step, every sleep 0, one run at a time: the server process's CPU time over each
    run, less the idle service's rate over the run's wall time and the cost of the polls that waited for it.
    The two variants alternate run by run, so drift of the machine or the process weighs on both alike."""
    rows = []
    calibration: tuple[float, float] | None = None
    for n in sizes:
        got: dict[str, dict[str, list[float]]] = {
            v: {"net": [], "raw": [], "wall": [], "lambdas": [], "transitions": []} for v in ("gates", "planned")}
        for seed in range(OVERHEAD_SEEDS):
            nodes, edges, _ = dag(n, seed, 0.0)
            zero = dict.fromkeys(nodes, 0.0)
            names = {}
            for v, scheduling in (("gates", "exact"), ("planned", "planned")):
                names[v] = f"bench_cpu_{v}_{n}_{seed}"
                runner.register(definition(names[v], nodes, edges, zero, scheduling=scheduling))
                warm = runner.start(names[v])  # warms caches (the revision's definition, imports)
                runner.wait([warm])
            if calibration is None:
                calibration = _calibrate(runner, warm)
            idle, poll = calibration
            pid = runner.service.process.pid
            for _ in range(OVERHEAD_RUNS):
                for v in ("gates", "planned"):
                    polls, before, began = runner.polls, _cpu_seconds(pid), time.monotonic()
                    instance_id = runner.start(names[v])
                    runner.wait([instance_id])
                    spent, wall = _cpu_seconds(pid) - before, time.monotonic() - began
                    net = spent - idle * wall - poll * (runner.polls - polls)
                    counts = runner.measure(instance_id)
                    for key, value in (("net", net), ("raw", spent), ("wall", wall),
                                       ("lambdas", counts["lambdas"]), ("transitions", counts["transitions"])):
                        got[v][key].append(value / n)
        row: dict[str, Any] = {"n": n, "runs": OVERHEAD_SEEDS * OVERHEAD_RUNS, "idle_ms_per_s": 1000 * idle,
                               "poll_ms": 1000 * poll}
        for v in ("gates", "planned"):
            # CPU: the sum over the runs divided by their steps (clock ticks are 10 ms: a single run is coarse).
            row[f"{v}_ms"] = 1000 * statistics.mean(got[v]["net"])
            row[f"{v}_raw_ms"] = 1000 * statistics.mean(got[v]["raw"])
            row[f"{v}_wall_ms"] = 1000 * statistics.median(got[v]["wall"])
            row[f"{v}_lambdas"] = statistics.mean(got[v]["lambdas"])
            row[f"{v}_transitions"] = statistics.mean(got[v]["transitions"])
        pairs = [g / p for g, p in zip(got["gates"]["net"], got["planned"]["net"], strict=True) if p > 0]
        row["pair_low"], row["pair_high"] = min(pairs), max(pairs)
        rows.append(row)
        print(f"overhead n={n}: {row}", flush=True)
    return rows


def overhead_report(overhead: list[dict[str, Any]]) -> list[str]:
    if not overhead:
        return []
    out = ["", "Per-step overhead: CPU time of the service process per step, every sleep 0, one run at a time, the",
           "two variants alternating; less the idle service's CPU over each run's wall time and the benchmark's",
           f"status polls (measured beside the runs: {overhead[0]['idle_ms_per_s']:.0f} ms of CPU per second idle, "
           f"{overhead[0]['poll_ms']:.1f} ms per poll). {OVERHEAD_SEEDS} DAGs",
           f"x {OVERHEAD_RUNS} runs per size and variant, after a run that warms caches; CPU summed over the runs.",
           "*raw*: the process's CPU time as it is. Lambda invocations and transitions per step are what AWS bills.",
           "Target: exact within 20 % of today's (ratio <= 1.2); *pairs*: the ratio's range over single run pairs.",
           "", "| steps | runs | exact (gates) ms/step | today's planner ms/step | ratio | pairs | raw ms/step | "
           "Lambda invocations/step | transitions/step | wall ms/step |",
           "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in overhead:
        ratio = r["gates_ms"] / r["planned_ms"] if r["planned_ms"] else float("nan")
        out.append(f"| {r['n']} | {r['runs']} | {r['gates_ms']:.1f} | {r['planned_ms']:.1f} | {ratio:.2f} "
                   f"{'(met)' if ratio <= 1.2 else '(MISSED)'} | {r['pair_low']:.2f}-{r['pair_high']:.2f} | "
                   f"{r['gates_raw_ms']:.1f} / {r['planned_raw_ms']:.1f} | "
                   f"{r['gates_lambdas']:.2f} / {r['planned_lambdas']:.2f} | "
                   f"{r['gates_transitions']:.2f} / {r['planned_transitions']:.2f} | "
                   f"{r['gates_wall_ms']:.0f} / {r['planned_wall_ms']:.0f} |")
    out.append("")
    out.append("Columns with two figures: exact / today's planner.")
    return out


def report(makespans: list[dict[str, Any]], overhead: list[dict[str, Any]], seconds: float,
           load: tuple[float, float]) -> str:
    out = [
        "## DAG scheduling through the local service (`make bench-dag`, bench/dag_service.py)",
        "",
        "Seeded random DAGs as in bench/dag_schedule.py (0-3 predecessors among the 8 steps before, lognormal(0, 1)",
        "durations, 5% of them 0), each step a `util.sleep` of its duration x the unit (seconds) below, run by the local service",
        "(`python -m stepflow_local.server --ephemeral`). The planner sees only the definition: durations are not",
        f"declared, or declared wrong (`expected_seconds` = true x lognormal(0, {WRONG_SIGMA})). The variants of",
        "a DAG run one after another. Ratio = measured makespan (first step start to last step end, from the event",
        "log) / critical path of the configured sleeps; it includes every overhead of the service and the emulator.",
        "p90 is the 90th percentile of the runs (with fewer than ten runs, their largest).",
        f"Targets for exact scheduling, durations not declared or declared wrong: median <= {MEDIAN_TARGET},",
        f"p90 <= {P90_TARGET}; transitions <= 1.5 n + 2.",
        "",
        "| steps | unit s | variant | runs | ratio median | p90 | max | transitions median | max | cap 1.5n+2 | Lambda invocations median |",
        "|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in makespans:
        cap = 1.5 * r["n"] + 2
        out.append(f"| {r['n']} | {r['unit']:g} | {LABELS[r['variant']]} | {r['runs']} | {r['median']:.3f} | {r['p90']:.3f} | "
                   f"{r['max']:.3f} | {r['transitions_median']:.0f} | {r['transitions_max']:.0f} | {cap:g} | "
                   f"{r['lambdas_median']:.0f} |")
    out += ["", "Targets, exact scheduling:", ""]
    for r in makespans:
        if r["variant"] not in ("gates", "gates_wrong"):
            continue
        cap = 1.5 * r["n"] + 2
        checks = [("median", r["median"] <= MEDIAN_TARGET), ("p90", r["p90"] <= P90_TARGET),
                  ("transitions", r["transitions_max"] <= cap)]
        out.append(f"- {r['n']} steps, {LABELS[r['variant']]}: "
                   + ", ".join(f"{name} {'met' if ok else 'MISSED'}" for name, ok in checks))
    out += overhead_report(overhead)
    out += ["", f"This benchmark took {seconds:.0f} s; the machine's 1-minute load average was {load[0]:.1f} at its start "
            f"and {load[1]:.1f} at its end ({os.cpu_count()} CPUs). Wall-clock ratios include whatever else ran.", ""]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--unit", type=float, default=None, help="seconds slept per unit of duration (all sizes)")
    parser.add_argument("--quick", action="store_true", help="one seed per size (a smoke run)")
    parser.add_argument("--overhead-only", action="store_true",
                        help="only the per-step overhead (a few minutes), printed, the results file left alone")
    args = parser.parse_args(argv)
    seeds = dict.fromkeys(SIZES, 1) if args.quick else SEEDS
    begun = time.monotonic()
    load_before = os.getloadavg()[0]
    service = Service(store="memory")
    makespans: list[dict[str, Any]] = []
    overhead: list[dict[str, Any]] = []
    try:
        runner = Runner(service)
        # The overhead first: it needs the fewest minutes, and a machine that other work loads later
        # slows its wall clock, not its CPU figures.
        overhead = run_overhead(runner, SIZES)
        if args.overhead_only:
            print("\n".join(overhead_report(overhead)))
            return 0
        for n in SIZES:
            makespans += run_makespans(runner, n, seeds, args.unit or UNITS[n])
            # Written after each size, so a run cut short still leaves what it measured.
            RESULTS.write_text(report(makespans, overhead, time.monotonic() - begun,
                                      (load_before, os.getloadavg()[0])), encoding="utf-8")
    finally:
        service.stop()
    text = report(makespans, overhead, time.monotonic() - begun, (load_before, os.getloadavg()[0]))
    RESULTS.write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
