"""Starts the local service the way a user does (`python -m stepflow_local.server`) for tests that
talk to it over real HTTP, and a small JSON client for them."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def call(method: str, url: str, body: object = None, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method,
                                     headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


class LocalService:
    """The service on a free port with time at x0.01; `base` is its URL once started. In memory
    (--ephemeral) unless `data_dir` is given: then it keeps its data there, as `make run` does."""

    def __init__(self, log: Path, env: dict[str, str] | None = None, data_dir: Path | None = None,
                 command: list[str] | None = None):
        self.command = command or [sys.executable, "-m", "stepflow_local.server"]
        self.port = free_port()
        self.args = ["--data-dir", str(data_dir)] if data_dir is not None else ["--ephemeral"]
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = log
        self.env = {**os.environ, "PORT": str(self.port), "STEPFLOW_LOCAL_TIME_SCALE": "0.01",
                    "POWERTOOLS_METRICS_DISABLED": "true", **(env or {})}
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 90) -> LocalService:
        with open(self.log, "ab") as out:  # appended: a restarted service's log follows the first one's
            self.process = subprocess.Popen([*self.command, *self.args], cwd=ROOT, env=self.env,
                                            stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while True:
            try:
                if call("GET", f"{self.base}/health")[0] == 200:
                    return self
            except OSError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.process.kill()
                raise RuntimeError("the local service did not start:\n" + self.log.read_text()[-3000:])
            time.sleep(0.25)

    def stop(self) -> int | None:
        """SIGTERM, as Ctrl-C or a service manager stops it (SIGKILL after 20 s); its exit code."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode if self.process is not None else None

    def kill(self) -> None:
        """SIGKILL: a crash, with no chance to stop anything cleanly."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
