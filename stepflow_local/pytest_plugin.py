"""pytest fixtures for the local runtime: enable with `pytest_plugins = ["stepflow_local.pytest_plugin"]`."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from stepflow_local.moto_patches import TIME_SCALE_ENV
from stepflow_local.runtime import LocalRuntime

TEST_TIME_SCALE = 0.01  # Wait states and Retry intervals at 1/100 speed unless $STEPFLOW_LOCAL_TIME_SCALE says otherwise


@pytest.fixture(scope="session")
def local_runtime() -> Iterator[LocalRuntime]:
    """One LocalRuntime for the whole session (moto's mock is process-wide; starting one costs ~1-2 s)."""
    active = LocalRuntime.active()
    if active is not None:  # started by someone else (a conftest, a script): share it, leave stopping to them
        yield active
        return
    scale = None if os.environ.get(TIME_SCALE_ENV) else TEST_TIME_SCALE
    with LocalRuntime(time_scale=scale) as runtime:
        yield runtime


@pytest.fixture
def local_aws(local_runtime: LocalRuntime) -> Iterator[LocalRuntime]:
    """The session runtime, reset after the test: the next test finds fresh tables and no state machines."""
    yield local_runtime
    if local_runtime.started:
        local_runtime.reset()
