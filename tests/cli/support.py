"""Runs the `stepflow` command in-process (click's runner) or as a process, isolated from the user's settings."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result

from stepflow_cli.main import cli

ROOT = Path(__file__).resolve().parents[2]
# Unset for every run: a developer's own STEPFLOW_* settings must not reach the tests.
CLEAN = {name: None for name in ("STEPFLOW_ENDPOINT", "STEPFLOW_TOKEN", "STEPFLOW_OUTPUT", "STEPFLOW_API_PREFIX",
                                 "STEPFLOW_PROFILE", "STEPFLOW_JWT_SECRET", "STEPFLOW_JWT_ISSUER",
                                 "STEPFLOW_JWT_AUDIENCE", "STEPFLOW_DEBUG")}


class Stepflow:
    """`stepflow` against one endpoint, with a config file of the test's own (absent unless written)."""

    def __init__(self, endpoint: str, config: Path, env: dict[str, str] | None = None):
        self.endpoint = endpoint
        self.config = config
        # Tables as wide as a pipe gets them (a test runner may set a narrow COLUMNS).
        self.env = {**CLEAN, "STEPFLOW_CONFIG": str(config), "STEPFLOW_ENDPOINT": endpoint, "COLUMNS": "200",
                    **(env or {})}

    def __call__(self, *args: str, stdin: str | None = None, env: dict[str, str | None] | None = None) -> Result:
        return CliRunner().invoke(cli, list(args), input=stdin, env={**self.env, **(env or {})},
                                  catch_exceptions=False, prog_name="stepflow")

    def process(self, *args: str, env: dict[str, str | None] | None = None) -> subprocess.Popen[str]:
        """The real program (`python -m stepflow_cli`), as a shell runs it."""
        merged = {**os.environ, **self.env, **(env or {})}
        for name in [k for k, v in merged.items() if v is None]:
            del merged[name]
        return subprocess.Popen([sys.executable, "-m", "stepflow_cli", *args], cwd=ROOT, env=merged,  # type: ignore[arg-type]
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def until(check: Callable[[], Any], timeout: float = 30.0, every: float = 0.2) -> Any:
    """Polls `check` until it returns something truthy; fails with the last value at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {timeout} s: {value!r}")
        time.sleep(every)
