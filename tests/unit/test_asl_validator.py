"""Every committed state machine (bundled examples and golden files) passes the npm asl-validator."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
VALIDATOR = ROOT / "node_modules" / ".bin" / "asl-validator"
MACHINES = sorted([*ROOT.glob("statemachines/*.asl.json"), *ROOT.glob("tests/unit/golden/*.asl.json")])


def test_asl_validator_accepts_every_compiled_machine():
    if not VALIDATOR.exists():
        # `make test` installs it; CI must never get here.
        if os.environ.get("CI") or not shutil.which("npm"):
            pytest.fail("node_modules/.bin/asl-validator is missing: run `make test` (it runs npm ci)")
        pytest.skip("asl-validator not installed; `make test` installs it with npm ci")
    assert MACHINES, "no compiled state machines found"
    args = [str(VALIDATOR)]
    for path in MACHINES:
        args += ["--json-path", str(path)]
    result = subprocess.run(args, capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("is valid") == len(MACHINES)
