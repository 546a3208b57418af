"""Local service benchmark (`make bench-load`): mixed keep-alive load, 1,000 waiting instances, a soak,
and the cold import of the app against boto3's. Starts `python -m stepflow_local.server` on 127.0.0.1;
every loop is bounded in requests and in time. Writes bench/load_results.md and its section of results.md."""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import random
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).with_name("load_results.md")
REPORT = Path(__file__).with_name("results.md")
MARKER = "<!-- local service benchmark (make bench-load) -->"
PREFIX = "/workflows"
TARGETS = {"rps": 100.0, "p99_ms": 150.0, "import_ratio": 1.3}
MACHINE_DEF = {"name": "bench_machine", "steps": [
    {"id": "only", "type": "machine", "task_type": "data.set", "config": {"values": {"done": True}}}]}
HUMAN_DEF = {"name": "bench_human", "steps": [
    {"id": "approve", "type": "human", "assignee": "bench", "form_schema": {"type": "object"}}]}
MAX_REQUESTS_PER_CLIENT = 200_000  # a hard bound besides the clock


class Service:
    """The local service as a user starts it, on a free loopback port."""

    def __init__(self) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        env = {**os.environ, "PORT": str(self.port), "STEPFLOW_LOCAL_TIME_SCALE": "0.01"}
        env.pop("STEPFLOW_LOCAL_VERBOSE", None)
        self.log = open(ROOT / "build" / "bench-load-server.log", "w", encoding="utf-8")  # noqa: SIM115
        # In memory, as the figures in bench/results.md were measured (bench/startup.py measures the kept store).
        self.process = subprocess.Popen([sys.executable, "-m", "stepflow_local.server", "--ephemeral"], cwd=ROOT,
                                        env=env, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 120
        while True:
            try:
                if self.request("GET", "/health")[0] == 200:
                    break
            except OSError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the local service did not start; see build/bench-load-server.log")
            time.sleep(0.2)

    def request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            return _send(connection, method, path, body)
        finally:
            connection.close()

    def usage(self) -> dict[str, float]:
        """RSS (MB) and thread count of the server process, from /proc."""
        fields = dict(line.split(":", 1) for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines())
        return {"rss_mb": int(fields["VmRSS"].split()[0]) / 1024, "threads": int(fields["Threads"])}

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()


def _send(connection: http.client.HTTPConnection, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Content-Type": "application/json"} if data else {}
    connection.request(method, path, body=data, headers=headers)
    response = connection.getresponse()
    raw = response.read()
    try:
        return response.status, json.loads(raw) if raw else None
    except ValueError:
        return response.status, raw


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def load(service: Service, seconds: float, clients: int, pick: Callable[[random.Random, list[str]], tuple],
         rate: float | None = None) -> dict[str, Any]:
    """`clients` keep-alive connections issue pick()'s requests for `seconds` (at `rate` req/s in all, if set)."""
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds

    def client(index: int) -> None:
        rng = random.Random(index)
        connection = http.client.HTTPConnection("127.0.0.1", service.port, timeout=30)
        mine: list[float] = []
        seen: list[str] = []
        interval = clients / rate if rate else 0.0
        next_at = time.monotonic()
        for _ in range(MAX_REQUESTS_PER_CLIENT):
            if time.monotonic() >= stop_at:
                break
            if interval:
                next_at += interval
                time.sleep(max(0.0, next_at - time.monotonic()))
            method, path, body = pick(rng, seen)
            started = time.perf_counter()
            try:
                status, answer = _send(connection, method, path, body)
            except (OSError, http.client.HTTPException) as exc:
                with lock:
                    errors.append(type(exc).__name__)
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", service.port, timeout=30)
                continue
            mine.append((time.perf_counter() - started) * 1000)
            if status >= 300:
                with lock:
                    errors.append(f"{method} {path.split('?')[0]} -> {status}")
            elif method == "POST" and isinstance(answer, dict) and answer.get("id"):
                seen.append(answer["id"])
                del seen[:-50]
        connection.close()
        with lock:
            latencies.extend(mine)

    started = time.monotonic()
    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(seconds + 120)
    elapsed = time.monotonic() - started
    return {"requests": len(latencies), "rps": len(latencies) / elapsed, "p50_ms": _percentile(latencies, 0.5),
            "p99_ms": _percentile(latencies, 0.99), "errors": len(errors), "error_kinds": sorted(set(errors))[:5]}


def mixed(rng: random.Random, seen: list[str]) -> tuple[str, str, Any]:
    roll = rng.random()
    if roll < 0.2:
        return "GET", "/health", None
    if roll < 0.35:
        return "GET", f"{PREFIX}/definitions", None
    if roll < 0.5:
        return "GET", f"{PREFIX}/instances?limit=20", None
    if roll < 0.65:
        return "POST", f"{PREFIX}/instances", {"definition_name": "bench_machine", "input_data": {}}
    if roll < 0.85 and seen:
        return "GET", f"{PREFIX}/instances/{rng.choice(seen)}", None
    return "GET", f"{PREFIX}/tasks", None


def health(rng: random.Random, seen: list[str]) -> tuple[str, str, Any]:
    return "GET", "/health", None


def waiting_instances(service: Service, count: int) -> dict[str, Any]:
    before = service.usage()
    connection = http.client.HTTPConnection("127.0.0.1", service.port, timeout=60)
    started = 0
    for _ in range(count):
        status, _ = _send(connection, "POST", f"{PREFIX}/instances", {"definition_name": "bench_human", "input_data": {}})
        started += status < 300
    connection.close()
    deadline = time.monotonic() + max(120.0, count * 0.5)
    pending = 0
    while time.monotonic() < deadline:
        _, page = service.request("GET", f"{PREFIX}/tasks/metrics")
        pending = int((page or {}).get("pending_total", 0)) if isinstance(page, dict) else 0
        if pending >= started:
            break
        time.sleep(1.0)
    after = service.usage()
    return {"count": count, "started": started, "waiting": pending, "before": before, "after": after,
            "rss_per_instance_kb": (after["rss_mb"] - before["rss_mb"]) * 1024 / max(1, pending),
            "threads_per_instance": (after["threads"] - before["threads"]) / max(1, pending)}


def soak(service: Service, seconds: float, rate: float) -> dict[str, Any]:
    before = service.usage()
    result = load(service, seconds, 4, mixed, rate=rate)
    time.sleep(3.0)  # let the last executions end before reading the process
    after = service.usage()
    return {**result, "seconds": seconds, "rate": rate, "before": before, "after": after}


def cold_import(runs: int = 9) -> dict[str, float]:
    """Wall time of `import boto3` and `import app` in fresh interpreters, alternating; medians."""
    def once(statement: str) -> float:
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", statement], cwd=ROOT, check=True)
        return time.perf_counter() - started

    boto, app = [], []
    for _ in range(runs):
        boto.append(once("import boto3"))
        app.append(once("import app"))
    base = once("pass")
    return {"boto3_ms": statistics.median(boto) * 1000, "app_ms": statistics.median(app) * 1000,
            "bare_ms": base * 1000, "ratio": statistics.median(app) / statistics.median(boto)}


def verdict(ok: bool) -> str:
    return "met" if ok else "**missed**"


def report(results: dict[str, Any]) -> str:
    m, h, w, s, c = (results[k] for k in ("mixed", "health", "waiting", "soak", "imports"))
    lines = [
        MARKER, "## Local service (make bench-load)", "",
        f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, Python {platform.python_version()}, {os.cpu_count()} cores; "
        "`python -m stepflow_local.server` as a process, clients in this process over 127.0.0.1. The machine was "
        "shared with other work while this ran.", "",
        f"### Mixed load: {results['clients']} keep-alive clients, {results['seconds']:.0f} s", "",
        "Mix: 20 % GET /health, 15 % GET /definitions, 15 % GET /instances?limit=20, 15 % POST /instances "
        "(one machine step), 20 % GET /instances/{id}, 15 % GET /tasks.", "",
        "| load | requests | req/s | p50 ms | p99 ms | errors |", "|---|---:|---:|---:|---:|---:|",
        f"| mixed | {m['requests']:,} | {m['rps']:.0f} | {m['p50_ms']:.1f} | {m['p99_ms']:.1f} | {m['errors']} |",
        f"| /health only (reference) | {h['requests']:,} | {h['rps']:.0f} | {h['p50_ms']:.1f} | "
        f"{h['p99_ms']:.1f} | {h['errors']} |", "",
        f"- Throughput target >= {TARGETS['rps']:.0f} req/s: {m['rps']:.0f} req/s, {verdict(m['rps'] >= TARGETS['rps'])}.",
        f"- p99 target <= {TARGETS['p99_ms']:.0f} ms: {m['p99_ms']:.1f} ms, {verdict(m['p99_ms'] <= TARGETS['p99_ms'])}.",
        f"- Errors target 0: {m['errors']}, {verdict(m['errors'] == 0)}"
        + (f" ({'; '.join(m['error_kinds'])})" if m["error_kinds"] else "") + ".",
        "- Before this server (Chalice's dev server, measured on the same kind of machine before the change): "
        "45 req/s mixed, p99 1.0-1.5 s, /health alone 1,375 req/s. That server is not re-run here.", "",
        f"### {w['count']:,} instances waiting on a human step", "",
        f"Started {w['started']:,}; {w['waiting']:,} tasks pending when measured.", "",
        "| | RSS MB | threads |", "|---|---:|---:|",
        f"| before | {w['before']['rss_mb']:.0f} | {w['before']['threads']} |",
        f"| after | {w['after']['rss_mb']:.0f} | {w['after']['threads']} |", "",
        f"Per waiting instance: {w['rss_per_instance_kb']:.0f} KB RSS, {w['threads_per_instance']:.2f} threads. "
        "moto interprets each execution on threads and a waitForTaskToken task waits on one: an execution's "
        "own thread (the program now runs on it) and the Task state's thread, two per waiting instance (three "
        "before). Releasing those two would need an interpreter that keeps a waiting execution's state off the "
        "stack; moto's does not, so this is bounded per instance, not shared.", "",
        f"### Soak: {s['seconds']:.0f} s at {s['rate']:.0f} req/s (the mixed load from 4 clients)", "",
        f"{s['requests']:,} requests, {s['errors']} errors, p99 {s['p99_ms']:.1f} ms. RSS {s['before']['rss_mb']:.0f} -> "
        f"{s['after']['rss_mb']:.0f} MB, threads {s['before']['threads']} -> {s['after']['threads']}. The soak "
        "starts instances that end at once, and the emulator keeps every ended execution and item, as AWS keeps "
        "them: RSS grows with that data." + (" `make bench-load` runs a short soak by default; "
                                             "`SOAK_SECONDS=600 make bench-load` runs the 10-minute one."
                                             if s["seconds"] < 600 else ""), "",
        "### Cold import (the Lambda cold start)", "",
        f"Medians of {results['import_runs']} alternating runs, each a fresh interpreter (bare start "
        f"{c['bare_ms']:.0f} ms included in both): `import boto3` {c['boto3_ms']:.0f} ms, `import app` "
        f"{c['app_ms']:.0f} ms, ratio {c['ratio']:.2f} (target <= {TARGETS['import_ratio']}: "
        f"{verdict(c['ratio'] <= TARGETS['import_ratio'])}).", "",
    ]
    return "\n".join(lines)


def write_report(text: str) -> None:
    RESULTS.write_text(text, encoding="utf-8")
    current = REPORT.read_text(encoding="utf-8") if REPORT.exists() else "# Stepflow benchmarks\n"
    head = current.split(MARKER)[0].rstrip("\n")
    REPORT.write_text(head + "\n\n" + text, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.local_load", description=__doc__)
    parser.add_argument("--seconds", type=float, default=float(os.environ.get("LOAD_SECONDS", 60)))
    parser.add_argument("--clients", type=int, default=12)
    parser.add_argument("--waiting", type=int, default=int(os.environ.get("WAITING", 1000)))
    parser.add_argument("--soak-seconds", type=float, default=float(os.environ.get("SOAK_SECONDS", 60)))
    parser.add_argument("--soak-rate", type=float, default=float(os.environ.get("SOAK_RATE", 20)))
    parser.add_argument("--import-runs", type=int, default=9)
    args = parser.parse_args(argv)
    (ROOT / "build").mkdir(exist_ok=True)
    results: dict[str, Any] = {"clients": args.clients, "seconds": args.seconds, "import_runs": args.import_runs}
    results["imports"] = cold_import(args.import_runs)
    service = Service()
    try:
        for definition in (MACHINE_DEF, HUMAN_DEF):
            status, answer = service.request("POST", f"{PREFIX}/definitions", definition)
            if status >= 300:
                raise RuntimeError(f"could not register {definition['name']}: {status} {answer}")
        results["health"] = load(service, min(10.0, args.seconds), args.clients, health)
        results["mixed"] = load(service, args.seconds, args.clients, mixed)
        results["soak"] = soak(service, args.soak_seconds, args.soak_rate)
        results["waiting"] = waiting_instances(service, args.waiting)
    finally:
        service.stop()
    text = report(results)
    write_report(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
