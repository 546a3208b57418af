"""Schemathesis against the running local service with authentication on: every operation, with and
without a token; zero server errors and zero responses that break the OpenAPI contract."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from chalicelib.auth import mint

ROOT = Path(__file__).resolve().parents[2]
SECRET = "schemathesis-secret-0123456789-0123456789"
pytestmark = pytest.mark.e2e
MAX_EXAMPLES = "4"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def healthy(base: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base}/health", timeout=5) as answer:
            return answer.status == 200
    except (OSError, urllib.error.URLError):
        return False  # per operation and run: ~37 operations x 2 runs stays well inside a minute on 2 cores


@pytest.fixture(scope="module")
def secured_service(tmp_path_factory):
    port = free_port()
    log = tmp_path_factory.mktemp("fuzz") / "service.log"
    env = {**os.environ, "PORT": str(port), "STEPFLOW_LOCAL_TIME_SCALE": "0.01", "POWERTOOLS_METRICS_DISABLED": "true",
           "STEPFLOW_AUTH": "hs256", "STEPFLOW_JWT_SECRET": SECRET}
    with open(log, "wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "stepflow_local.server", "--ephemeral"], cwd=ROOT, env=env,
                                   stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while True:
        if healthy(base):
            break
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail("the local service did not start:\n" + log.read_text()[-3000:])
        time.sleep(0.25)
    yield base, log
    process.terminate()
    try:
        process.wait(15)
    except subprocess.TimeoutExpired:
        process.kill()


@pytest.mark.parametrize("with_token", [False, True], ids=["no-token", "admin-token"])
def test_schemathesis_finds_no_server_errors_and_no_contract_breaks(secured_service, with_token, capsys):
    base, log = secured_service
    command = [str(Path(sys.executable).parent / "st"), "run", f"{base}/openapi.json", "-n", MAX_EXAMPLES,
               "--phases", "examples,fuzzing", "--request-timeout", "30", "--seed", "20260101",
               "-c", "not_a_server_error,response_schema_conformance,status_code_conformance,"
                     "content_type_conformance"]
    if with_token:
        command += ["-H", "Authorization: Bearer " + mint(SECRET, "fuzzer", roles=["admin"], tenant="fuzz")]
    result = subprocess.run(command, cwd=log.parent, capture_output=True, text=True, timeout=240,
                            env={**os.environ, "NO_COLOR": "1"})
    out = result.stdout + result.stderr
    generated = re.search(r"(\d+) generated", out)
    with capsys.disabled():
        print(f"\nschemathesis ({'admin token' if with_token else 'no token'}): "
              f"{generated.group(1) if generated else '?'} cases")
    assert result.returncode == 0, out[-6000:] + "\n--- service log ---\n" + log.read_text()[-3000:]
    assert generated and int(generated.group(1)) > 0
