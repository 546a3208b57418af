"""Local service startup (`make bench-startup`): from `python -m stepflow_local.server` to its first /health
answer, in memory (--ephemeral) and on a data directory: the first start (tables created), a warm restart
(every table, definition and live instance kept), and a warm restart with live instances to continue.
Wall time and the CPU time the server and DynamoDB Local spent, so a busy machine shows as such.
Writes bench/startup_results.md."""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).with_name("startup_results.md")
TARGET_WARM_SECONDS = 5.0
HUMAN_DEF = {"name": "bench_waiting", "steps": [
    {"id": "prepare", "type": "machine", "task_type": "data.set", "config": {"values": {"ready": True}}},
    {"id": "approve", "type": "human", "assignee": "bench", "depends_on": ["prepare"],
     "form_schema": {"type": "object"}}]}
_TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def call(method: str, url: str, body: Any = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def _cpu_seconds(pid: int) -> float:
    """utime + stime of a live process, from /proc (0 when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICKS


class Server:
    def __init__(self, args: list[str], log: Path):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.args = args
        env = {**os.environ, "PORT": str(self.port), "STEPFLOW_LOCAL_TIME_SCALE": "0.01",
               "POWERTOOLS_METRICS_DISABLED": "true"}
        env.pop("STEPFLOW_LOCAL_VERBOSE", None)
        self.log = open(log, "ab")  # noqa: SIM115 - closed in stop()
        began = time.monotonic()
        self.process = subprocess.Popen([sys.executable, "-m", "stepflow_local.server", *args], cwd=ROOT, env=env,
                                        stdout=self.log, stderr=subprocess.STDOUT)
        deadline = began + 300
        while True:
            try:
                if call("GET", f"{self.base}/health")[0] == 200:
                    break
            except OSError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the local service did not start; see {log}")
            time.sleep(0.02)  # the measured interval is what matters: a fine poll, for a few seconds only
        self.seconds = time.monotonic() - began
        self.server_cpu = _cpu_seconds(self.process.pid)
        self.database_cpu = 0.0
        if "--data-dir" in args:
            pid_file = Path(args[args.index("--data-dir") + 1]) / "dynamodb.pid"
            self.database_cpu = _cpu_seconds(int(pid_file.read_text()))

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(60)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()


def measure(args: list[str], log: Path, prepare: Any = None) -> dict[str, float]:
    server = Server(args, log)
    try:
        if prepare is not None:
            prepare(server)
    finally:
        server.stop()
    return {"seconds": server.seconds, "server_cpu": server.server_cpu, "database_cpu": server.database_cpu}


def seed_waiting(count: int) -> Any:
    def prepare(server: Server) -> None:
        status, body = call("POST", f"{server.base}/workflows/definitions", HUMAN_DEF)
        assert status in (200, 201), body
        for _ in range(count):
            status, body = call("POST", f"{server.base}/workflows/instances",
                                {"definition_name": "bench_waiting", "input_data": {}})
            assert status == 201, body
        deadline = time.monotonic() + 600
        while True:
            pending = call("GET", f"{server.base}/workflows/tasks?assignee_id=bench&limit=100")[1]["items"]
            if len(pending) >= min(count, 100) or time.monotonic() > deadline:
                return
            time.sleep(0.5)
    return prepare


def run(rounds: int, live: int) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="stepflow-startup-"))
    log = work / "server.log"
    results: dict[str, list[dict[str, float]]] = {"ephemeral": [], "first": [], "warm": [], "warm_live": []}
    loads = []
    try:
        for round_ in range(rounds):
            loads.append(os.getloadavg()[0])
            results["ephemeral"].append(measure(["--ephemeral"], log))
            data = work / f"data-{round_}"
            results["first"].append(measure(["--data-dir", str(data)], log))
            results["warm"].append(measure(["--data-dir", str(data)], log))
        data = work / "data-live"
        measure(["--data-dir", str(data)], log, seed_waiting(live))
        for _ in range(rounds):
            loads.append(os.getloadavg()[0])
            results["warm_live"].append(measure(["--data-dir", str(data)], log))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return {"results": results, "rounds": rounds, "live": live, "load": statistics.median(loads)}


def report_markdown(measured: dict[str, Any]) -> str:
    rows = {"ephemeral": "in memory (`--ephemeral`)", "first": "data directory, first start (tables created)",
            "warm": "data directory, warm restart (3 workflows kept)",
            "warm_live": f"data directory, warm restart, {measured['live']} waiting instances continued"}
    lines = [
        "## Local service startup (make bench-startup)",
        "",
        f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, Python {platform.python_version()}, {os.cpu_count()} cores, "
        f"median 1-minute load {measured['load']:.1f} while measuring. From `python -m stepflow_local.server` to "
        f"its first `/health` answer (state machines restored and live instances continued before it serves); "
        f"{measured['rounds']} rounds, median (min). CPU: the server's own, and DynamoDB Local's (a JVM), which "
        "starts in parallel with the server's imports.",
        "",
        "| start | wall s | server CPU s | DynamoDB Local CPU s |",
        "|---|---:|---:|---:|",
    ]
    for key, label in rows.items():
        runs = measured["results"][key]
        wall = [r["seconds"] for r in runs]
        lines.append(f"| {label} | {statistics.median(wall):.1f} ({min(wall):.1f}) | "
                     f"{statistics.median(r['server_cpu'] for r in runs):.1f} | "
                     f"{statistics.median(r['database_cpu'] for r in runs):.1f} |")
    warm = statistics.median(r["seconds"] for r in measured["results"]["warm"])
    memory = statistics.median(r["seconds"] for r in measured["results"]["ephemeral"])
    live = statistics.median(r["seconds"] for r in measured["results"]["warm_live"])
    verdict = "met" if warm <= TARGET_WARM_SECONDS else "**missed**"
    lines += ["", f"- Warm restart target <= {TARGET_WARM_SECONDS:.0f} s: {warm:.1f} s, {verdict}. The in-memory start "
              f"took {memory:.1f} s in the same rounds: keeping the data adds {warm - memory:+.1f} s (the JVM's "
              "start, on the other core when there is one).",
              f"- Each waiting instance continued at start adds {(live - warm) / max(1, measured['live']) * 1000:.0f} ms "
              f"({measured['live']} in {live - warm:.1f} s)."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--live", type=int, default=50, help="waiting instances continued in the last case")
    args = parser.parse_args(argv)
    text = report_markdown(run(args.rounds, args.live))
    RESULTS.write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
