"""Browser tests: the local service as a process, and Debian's Chromium driven by playwright-core.

`make browser-deps` installs Chromium with apt; `make screenshots` runs them with their screenshots
written to docs/screenshots/ (a failing scenario always leaves one of the page in the test's tmp_path). STEPFLOW_SKIP_BROWSER=1
skips them on a machine that cannot install Chromium.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser.support import HOSTILE, call
from tests.local_service import LocalService

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = Path(__file__).with_name("scenarios.mjs")
CHROMIUM = os.environ.get("STEPFLOW_CHROMIUM", "/usr/bin/chromium")


def pytest_configure(config: Any) -> None:
    config.addinivalue_line("markers", "scenario(name): the browser scenario (tests/browser/scenarios.mjs) a test checks")


def pytest_collection_modifyitems(config: Any, items: list[Any]) -> None:
    if os.environ.get("STEPFLOW_SKIP_BROWSER") == "1":
        skip = pytest.mark.skip(reason="STEPFLOW_SKIP_BROWSER=1")
        for item in items:
            if Path(str(item.fspath)).parent == Path(__file__).parent:
                item.add_marker(skip)


@pytest.fixture(scope="session")
def browser_ready() -> None:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run `make browser-deps` (apt-get install chromium)")
    if shutil.which("node") is None or not (ROOT / "node_modules" / "playwright-core").is_dir():
        pytest.fail("node and node_modules/playwright-core are needed: run `npm ci`")


@pytest.fixture(scope="session")
def ui_service(tmp_path_factory: Any, browser_ready: None) -> Iterator[str]:
    """`python -m stepflow_local.server` on a free port, time at x0.01; yields its base URL."""
    service = LocalService(tmp_path_factory.mktemp("ui-service") / "service.log")
    try:
        service.start()
    except RuntimeError as exc:
        pytest.fail(str(exc))
    yield service.base
    service.stop()


@pytest.fixture(scope="session")
def stream_service(tmp_path_factory: Any, browser_ready: None) -> Iterator[str]:
    """A second local service whose followed streams end after a second each, as API Gateway ends every
    response (STEPFLOW_LOCAL_STREAM_SECONDS): an EventSource on it must resume by itself."""
    service = LocalService(tmp_path_factory.mktemp("stream-service") / "service.log",
                           env={"STEPFLOW_LOCAL_STREAM_SECONDS": "1"})
    try:
        service.start()
    except RuntimeError as exc:
        pytest.fail(str(exc))
    yield service.base
    service.stop()


@pytest.fixture(scope="session")
def screenshots() -> Path | None:
    """Where pages are photographed: $STEPFLOW_SCREENSHOTS (`make screenshots`: docs/screenshots), else nowhere."""
    wanted = os.environ.get("STEPFLOW_SCREENSHOTS")
    return (ROOT / wanted) if wanted else None


@pytest.fixture(scope="session")
def browser_outcomes(request: Any, ui_service: str, screenshots: Path | None,
                     tmp_path_factory: Any) -> dict[str, dict[str, Any]]:
    """Runs, once and at the same time, the scenarios the selected tests need; their outcomes by name."""
    names = sorted({m.args[0] for item in request.session.items for m in item.iter_markers("scenario")})
    status, body = call("POST", f"{ui_service}/workflows/definitions", HOSTILE)
    assert status in (200, 201), body
    failures = tmp_path_factory.mktemp("browser-failures")
    stream_base = request.getfixturevalue("stream_service") if "event_source" in names else ""
    args = {"scenarios": names, "base": ui_service, "streamBase": stream_base, "shots": str(screenshots or ""),
            "failures": str(failures),
            "shotNames": {"hostile_titles": "hostile-titles", "expense_approval": "definition-expense"}}
    done = subprocess.run(["node", str(SCENARIOS), json.dumps(args)], cwd=ROOT, capture_output=True, text=True,
                          timeout=900)
    outcomes = {}
    for line in done.stdout.splitlines():
        if line.startswith("{"):
            outcome = json.loads(line)
            outcomes[outcome["scenario"]] = outcome
    for name in names:
        outcomes.setdefault(name, {"ok": False, "error": f"no outcome (exit {done.returncode}):\n"
                                                         f"{done.stdout[-2000:]}\n{done.stderr[-3000:]}"})
    return outcomes


@pytest.fixture
def scenario_result(request: Any, browser_outcomes: dict[str, dict[str, Any]]) -> Any:
    """The result of the test's scenario (@pytest.mark.scenario(name)); fails with the browser's story if it failed."""
    name = request.node.get_closest_marker("scenario").args[0]
    outcome = browser_outcomes[name]
    if not outcome.get("ok"):
        pytest.fail(f"browser scenario '{name}' failed after {outcome.get('seconds')} s:\n{outcome.get('error')}\n"
                    f"problems: {outcome.get('problems')}\nurl: {outcome.get('url')}\n"
                    f"screenshot: {outcome.get('screenshot')}")
    return outcome["result"]
