"""The report of `make bench-load` (bench/local_load.py): bench/load_results.md and its section of results.md,
every figure against its target."""

from __future__ import annotations

import os
import platform
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).with_name("load_results.md")
REPORT = Path(__file__).with_name("results.md")
MARKER = "<!-- local service benchmark (make bench-load) -->"
HEADING = "## Local service (make bench-load)"
TARGETS = {"rps": 100.0, "p99_ms": 150.0, "import_ratio": 1.3, "soak_growth_mb": 50.0, "waiting_kb": 200.0}


def verdict(ok: bool) -> str:
    return "met" if ok else "**missed**"


def _growth_lines(growth: dict[str, Any] | None) -> list[str]:
    if growth is None:
        return []
    lines = [f"Python memory allocated after the first fifth of the soak and still held at its end "
             f"(TRACE_MEMORY=1: tracemalloc in the server from then on, which slows it and adds its own memory to "
             f"the RSS above): {growth['total_mb']:.1f} MB. Biggest allocation sites:", "",
             "| KB | blocks | allocated at | via (project code) |", "|---:|---:|---|---|"]
    lines += [f"| {g['kb']:.0f} | {g['count']:,} | {g['where']} | {g['via']} |" for g in growth["sites"]]
    return [*lines, ""]


def report(results: dict[str, Any]) -> str:
    m, p, h, w, s, c = (results[k] for k in ("mixed", "paced", "health", "waiting", "soak", "imports"))
    store = ("`make run`'s default store (DynamoDB Local on a data directory)" if results.get("store") == "kept"
             else "in memory (`--ephemeral`)")
    f = s["footprint"]
    growth = s["after"]["rss_mb"] - s["before"]["rss_mb"]
    held = s["started"] * f["kb_per_instance"] / 1024
    beyond = growth - held
    lines = [
        MARKER, HEADING, "",
        f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, Python {platform.python_version()}, {os.cpu_count()} cores; "
        f"`python -m stepflow_local.server` as a process, {store}, clients in this process over 127.0.0.1. "
        "The machine was shared with other work while this ran.", "",
        f"### Mixed load: {results['clients']} keep-alive clients, {results['seconds']:.0f} s, {store}", "",
        "Mix: 20 % GET /health, 15 % GET /definitions, 15 % GET /instances?limit=20, 15 % POST /instances "
        "(one machine step), 20 % GET /instances/{id}, 15 % GET /tasks. *Paced*: each client sends on a fixed "
        f"schedule, {p['rate']:.0f} req/s in all, and a request's latency counts from when it was due (a late "
        "answer delays the next request, and that delay is charged to it too). *Unpaced*: each client sends "
        "again as soon as it is answered, so the service runs at its capacity on this machine and latency is "
        "what a queue of 12 requests costs.", "",
        "| load | requests | req/s | p50 ms | p90 ms | p99 ms | errors |", "|---|---:|---:|---:|---:|---:|---:|",
        _row(f"mixed, paced at {p['rate']:.0f} req/s", p),
        _row("mixed, unpaced (capacity)", m),
        _row("/health only, unpaced (reference)", h), "",
        "Targets, on the paced run (the service at the load it is expected to hold):", "",
        f"- Throughput >= {TARGETS['rps']:.0f} req/s: {p['rps']:.0f} req/s, {verdict(p['rps'] >= TARGETS['rps'])}.",
        f"- p99 <= {TARGETS['p99_ms']:.0f} ms: {p['p99_ms']:.1f} ms, {verdict(p['p99_ms'] <= TARGETS['p99_ms'])}.",
        f"- Errors 0: {p['errors']}, {verdict(p['errors'] == 0)}"
        + (f" ({'; '.join(p['error_kinds'])})" if p["error_kinds"] else "") + ".",
        f"- Unpaced, the service answers {m['rps']:.0f} req/s with p99 {m['p99_ms']:.1f} ms and {m['errors']} errors"
        + ("" if m["p99_ms"] <= TARGETS["p99_ms"] else
           f": at saturation p99 is **over {TARGETS['p99_ms']:.0f} ms** (the capacity, not the latency target, "
           "is what this run shows; the emulated Step Functions, the step Lambdas and DynamoDB Local share "
           "the machine's 2 cores with the clients)") + ".",
        "- Before this server (Chalice's dev server, in memory, measured on the same kind of machine before the "
        "change): 45 req/s unpaced, p99 1.0-1.5 s, /health alone 1,375 req/s. That server is not re-run here.", "",
        f"### {w['count']:,} instances waiting on a human step", "",
        f"Started {w['started']:,}; {w['waiting']:,} tasks pending when measured.", "",
        "| | RSS MB | threads |", "|---|---:|---:|",
        f"| before | {w['before']['rss_mb']:.0f} | {w['before']['threads']} |",
        f"| after | {w['after']['rss_mb']:.0f} | {w['after']['threads']} |", "",
        f"Per waiting instance: {w['rss_per_instance_kb']:.0f} KB RSS (target about {TARGETS['waiting_kb']:.0f} KB: "
        f"{verdict(w['rss_per_instance_kb'] <= TARGETS['waiting_kb'] * 1.1)}), {w['threads_per_instance']:.2f} threads. "
        "moto interprets each execution on a thread, and a waitForTaskToken task waits on it: one thread per "
        "waiting instance (stock moto holds three; the local runtime runs the program, and a Task without a "
        "TimeoutSeconds of its own, on the execution's thread). Releasing that one would need an interpreter that "
        "keeps a waiting execution's state off the stack; moto's does not, so this is bounded per instance, not "
        "shared.", "",
        f"### Soak: {s['seconds']:.0f} s at {s['rate']:.0f} req/s (the mixed load from 4 clients)", "",
        f"{s['requests']:,} requests, {s['errors']} errors, p99 {s['p99_ms']:.1f} ms. RSS {s['before']['rss_mb']:.0f} -> "
        f"{s['after']['rss_mb']:.0f} MB (+{growth:.0f} MB), threads {s['before']['threads']} -> {s['after']['threads']}"
        + (f"; DynamoDB Local's RSS {s['before']['dynamodb_rss_mb']:.0f} -> {s['after']['dynamodb_rss_mb']:.0f} MB "
           f"(+{s['after']['dynamodb_rss_mb'] - s['before']['dynamodb_rss_mb']:.0f} MB; a JVM with -Xmx512m keeps "
           "the heap it grew, and the data itself is in its SQLite file)"
           if "dynamodb_rss_mb" in s["before"] and "dynamodb_rss_mb" in s["after"] else "") + ". "
        f"The soak started {s['started']:,} instances (one machine step each, ended at once), which the "
        "emulator keeps, as AWS keeps ended executions and their items.", "",
        f"What one such instance holds, measured in the same process right after the soak: {f['count']} more "
        f"started and ended ({f['ended']} seen ended), RSS {f['before']['rss_mb']:.0f} -> {f['after']['rss_mb']:.0f} MB, "
        f"{f['kb_per_instance']:.0f} KB each. The {s['started']:,} held instances account for "
        f"{held:.0f} MB of the growth; the rest, {beyond:.0f} MB, is growth beyond what the service holds "
        f"(target <= {TARGETS['soak_growth_mb']:.0f} MB: {verdict(beyond <= TARGETS['soak_growth_mb'])})."
        + (" `make bench-load` runs a short soak by default; `SOAK_SECONDS=600 make bench-load` runs the 10-minute one."
           if s["seconds"] < 600 else ""), "",
        *_growth_lines(s["growth"]),
        "### Cold import (the Lambda cold start)", "",
        f"Medians of {results['import_runs']} alternating runs, each a fresh interpreter (bare start "
        f"{c['bare_ms']:.0f} ms included in both): `import boto3` {c['boto3_ms']:.0f} ms, `import app` "
        f"{c['app_ms']:.0f} ms, ratio {c['ratio']:.2f} (target <= {TARGETS['import_ratio']}: "
        f"{verdict(c['ratio'] <= TARGETS['import_ratio'])}).", "",
    ]
    return "\n".join(lines)


def _row(label: str, r: dict[str, Any]) -> str:
    return (f"| {label} | {r['requests']:,} | {r['rps']:.0f} | {r['p50_ms']:.1f} | {r['p90_ms']:.1f} | "
            f"{r['p99_ms']:.1f} | {r['errors']} |")


def write_report(text: str) -> None:
    RESULTS.write_text(text, encoding="utf-8")
    current = REPORT.read_text(encoding="utf-8") if REPORT.exists() else "# Stepflow benchmarks\n"
    head = current.split(MARKER)[0].split(HEADING)[0].rstrip("\n")  # also a section that lost its marker
    REPORT.write_text(head + "\n\n" + text, encoding="utf-8")
