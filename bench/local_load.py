"""Local service benchmark (`make bench-load`): mixed keep-alive load, 1,000 waiting instances, a soak,
and the cold import of the app against boto3's. Starts `python -m stepflow_local.server` on 127.0.0.1;
every loop is bounded in requests and in time. Writes bench/load_results.md and its section of results.md."""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.local_load_report import RESULTS, report, write_report

__all__ = ["RESULTS", "main"]

ROOT = Path(__file__).resolve().parent.parent
PREFIX = "/workflows"
MACHINE_DEF = {"name": "bench_machine", "steps": [
    {"id": "only", "type": "machine", "task_type": "data.set", "config": {"values": {"done": True}}}]}
HUMAN_DEF = {"name": "bench_human", "steps": [
    {"id": "approve", "type": "human", "assignee": "bench", "form_schema": {"type": "object"}}]}
MAX_REQUESTS_PER_CLIENT = 200_000  # a hard bound besides the clock
TRACE_ENV = "STEPFLOW_LOCAL_TRACE_MEMORY"
FOOTPRINT_INSTANCES = 300  # instances started after the soak to measure what one ended instance holds


class Service:
    """The local service as a user starts it, on a free loopback port."""

    def __init__(self, trace_memory: Path | None = None, store: str = "kept") -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        env = {**os.environ, "PORT": str(self.port), "STEPFLOW_LOCAL_TIME_SCALE": "0.01"}
        env.pop("STEPFLOW_LOCAL_VERBOSE", None)
        env.pop(TRACE_ENV, None)
        self.trace_memory = trace_memory
        if trace_memory is not None:  # tracemalloc in the server, snapshots on SIGUSR1 (stepflow_local/memory_trace.py)
            shutil.rmtree(trace_memory, ignore_errors=True)
            env[TRACE_ENV] = str(trace_memory)
        self.log = open(ROOT / "build" / "bench-load-server.log", "w", encoding="utf-8")  # noqa: SIM115
        # "kept" is what `make run` starts: DynamoDB Local keeping its data in a data directory (a fresh one
        # here, so a user's .stepflow is left alone); "memory" is `make run ARGS=--ephemeral` (moto's DynamoDB).
        self.store = store
        self.data_dir: Path | None = None
        if store == "kept":
            self.data_dir = ROOT / "build" / "bench-load-data"
            shutil.rmtree(self.data_dir, ignore_errors=True)
            arguments = ["--data-dir", str(self.data_dir)]
        else:
            arguments = ["--ephemeral"]
        self.process = subprocess.Popen([sys.executable, "-m", "stepflow_local.server", *arguments], cwd=ROOT,
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
        """RSS (MB) and thread count of the server process, from /proc; with a kept store also the RSS of
        the DynamoDB Local process the server started (its pid is in the data directory)."""
        found = _process_status(self.process.pid)
        figures = {"rss_mb": found["rss_mb"], "threads": found["threads"]}
        pid_file = self.data_dir / "dynamodb.pid" if self.data_dir is not None else None
        if pid_file is not None and pid_file.exists():
            try:
                figures["dynamodb_rss_mb"] = _process_status(int(pid_file.read_text().strip()))["rss_mb"]
            except (OSError, ValueError, KeyError):
                pass
        return figures

    def memory_snapshot(self, number: int, timeout: float = 120.0) -> Path:
        """Asks the tracing server for its snapshot number `number` and waits until it is written."""
        assert self.trace_memory is not None
        path = self.trace_memory / f"snapshot-{number}.pickle"
        self.process.send_signal(signal.SIGUSR1)
        deadline = time.monotonic() + timeout
        while not path.exists() or time.monotonic() < deadline and _still_growing(path):
            if time.monotonic() > deadline:
                raise RuntimeError(f"the server wrote no memory snapshot {path}")
            time.sleep(0.5)
        return path

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()


def _process_status(pid: int) -> dict[str, float]:
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
    return {"rss_mb": int(fields["VmRSS"].split()[0]) / 1024, "threads": int(fields["Threads"])}


def _still_growing(path: Path) -> bool:
    size = path.stat().st_size
    time.sleep(0.5)
    return path.stat().st_size != size


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
         rate: float | None = None, seed: int = 0) -> dict[str, Any]:
    """`clients` keep-alive connections issue pick()'s requests for `seconds` (at `rate` req/s in all, if set).

    Unpaced, each client sends its next request as soon as the last is answered (the service saturated).
    Paced, each client sends on a fixed schedule and a request's latency counts from when it was due, not
    from when it was sent: a late answer that delays the next request is charged to that one too (no
    coordinated omission), as a user arriving on time would see it."""
    latencies: list[float] = []
    errors: list[str] = []
    started_ids: list[str] = []
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds

    def client(index: int) -> None:
        rng = random.Random(seed + index)
        connection = http.client.HTTPConnection("127.0.0.1", service.port, timeout=30)
        mine: list[float] = []
        seen: list[str] = []
        interval = clients / rate if rate else 0.0
        next_at = time.perf_counter() + interval * index / clients  # clients spread over one interval
        for _ in range(MAX_REQUESTS_PER_CLIENT):
            if time.monotonic() >= stop_at:
                break
            if interval:
                time.sleep(max(0.0, next_at - time.perf_counter()))
            method, path, body = pick(rng, seen)
            started = next_at if interval else time.perf_counter()
            next_at += interval
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
                with lock:
                    started_ids.append(answer["id"])
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
            "rate": rate, "p90_ms": _percentile(latencies, 0.9),
            "p99_ms": _percentile(latencies, 0.99), "errors": len(errors), "error_kinds": sorted(set(errors))[:5],
            "started": len(started_ids), "latencies": latencies, "elapsed": elapsed}


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
    """The mixed load at `rate` for `seconds`; RSS before and after, and (when the server can trace memory)
    tracing from the end of the first fifth (at most 2 minutes), with a snapshot then and one at the end."""
    before = service.usage()
    snapshots: list[Path] = []
    if service.trace_memory is not None:
        first = min(120.0, seconds / 5)
        parts = [load(service, first, 4, mixed, rate=rate)]
        snapshots.append(service.memory_snapshot(1))  # tracing starts here
        parts.append(load(service, seconds - first, 4, mixed, rate=rate, seed=1000))
    else:
        parts = [load(service, seconds, 4, mixed, rate=rate)]
    time.sleep(3.0)  # let the last executions end before reading the process
    after = service.usage()
    if service.trace_memory is not None:
        snapshots.append(service.memory_snapshot(2))
    latencies = [v for part in parts for v in part["latencies"]]
    result = {"requests": len(latencies), "p99_ms": _percentile(latencies, 0.99),
              "errors": sum(p["errors"] for p in parts), "started": sum(p["started"] for p in parts)}
    return {**result, "seconds": seconds, "rate": rate, "before": before, "after": after,
            "footprint": ended_footprint(service, FOOTPRINT_INSTANCES),
            "growth": memory_growth(snapshots) if snapshots else None}


def ended_footprint(service: Service, count: int) -> dict[str, Any]:
    """RSS per ended instance of the kind the soak starts (bench_machine), measured by starting `count` more."""
    before = service.usage()
    connection = http.client.HTTPConnection("127.0.0.1", service.port, timeout=60)
    ids = []
    for _ in range(count):
        status, answer = _send(connection, "POST", f"{PREFIX}/instances", {"definition_name": "bench_machine",
                                                                           "input_data": {}})
        if status < 300 and isinstance(answer, dict):
            ids.append(answer["id"])
    deadline = time.monotonic() + max(120.0, count * 0.5)
    pending = list(ids)
    while pending and time.monotonic() < deadline:
        status, answer = _send(connection, "GET", f"{PREFIX}/instances/{pending[0]}")
        if status == 200 and isinstance(answer, dict) and answer.get("status") not in ("pending", "running"):
            pending.pop(0)
        else:
            time.sleep(0.2)
    connection.close()
    time.sleep(3.0)
    after = service.usage()
    return {"count": len(ids), "ended": len(ids) - len(pending), "before": before, "after": after,
            "kb_per_instance": (after["rss_mb"] - before["rss_mb"]) * 1024 / max(1, len(ids))}


def memory_growth(snapshots: list[Path], top: int = 10) -> dict[str, Any]:
    """What the server's traced Python memory grew by between two snapshots, biggest allocation sites first."""
    import tracemalloc

    first, last = (tracemalloc.Snapshot.load(str(path)) for path in snapshots)
    stats = last.compare_to(first, "traceback")
    sites = []
    for stat in stats[:top]:
        frames = list(stat.traceback)  # most recent call first
        ours = next((f for f in frames if any(part in f.filename for part in ("stepflow_local", "chalicelib", "app.py"))),
                    None)
        sites.append({"kb": stat.size_diff / 1024, "count": stat.count_diff, "where": _frame(frames[0]),
                      "via": _frame(ours) if ours is not None and ours is not frames[0] else ""})
    return {"total_mb": sum(s.size_diff for s in stats) / 1e6, "sites": sites}


def _frame(frame: Any) -> str:
    path = re.sub(r"^.*/(site-packages|python3\.\d+)/", "", frame.filename).replace(str(ROOT) + "/", "")
    return f"{path}:{frame.lineno}"


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.local_load", description=__doc__)
    parser.add_argument("--seconds", type=float, default=float(os.environ.get("LOAD_SECONDS", 60)))
    parser.add_argument("--clients", type=int, default=12)
    parser.add_argument("--rate", type=float, default=float(os.environ.get("LOAD_RATE", 120)),
                        help="req/s of the paced mixed load (the throughput target with a margin)")
    parser.add_argument("--store", choices=("kept", "memory"), default=os.environ.get("LOAD_STORE", "kept"),
                        help="kept: DynamoDB Local on a data directory, as `make run` starts; memory: --ephemeral")
    parser.add_argument("--waiting", type=int, default=int(os.environ.get("WAITING", 1000)))
    parser.add_argument("--soak-seconds", type=float, default=float(os.environ.get("SOAK_SECONDS", 60)))
    parser.add_argument("--soak-rate", type=float, default=float(os.environ.get("SOAK_RATE", 20)))
    parser.add_argument("--import-runs", type=int, default=9)
    parser.add_argument("--trace-memory", action="store_true", default=os.environ.get("TRACE_MEMORY") == "1",
                        help="tracemalloc in the server; the soak reports where traced memory grew (slower)")
    args = parser.parse_args(argv)
    (ROOT / "build").mkdir(exist_ok=True)
    results: dict[str, Any] = {"clients": args.clients, "seconds": args.seconds, "import_runs": args.import_runs,
                               "store": args.store}
    results["imports"] = cold_import(args.import_runs)
    service = Service(ROOT / "build" / "bench-load-memory" if args.trace_memory else None, store=args.store)
    try:
        for definition in (MACHINE_DEF, HUMAN_DEF):
            status, answer = service.request("POST", f"{PREFIX}/definitions", definition)
            if status >= 300:
                raise RuntimeError(f"could not register {definition['name']}: {status} {answer}")
        results["health"] = load(service, min(10.0, args.seconds), args.clients, health)
        results["paced"] = load(service, args.seconds, args.clients, mixed, rate=args.rate, seed=500)
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
