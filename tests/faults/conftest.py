"""Fixtures for the fault-injection suite: the injector on the app's clients and the app's services."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.faults.harness import FaultInjector
from tests.faults.scenario import Scenario


@pytest.fixture
def faults(api: Any, local_aws: Any) -> Iterator[FaultInjector]:
    injector = FaultInjector(local_aws.region, seed=20260105).attach()
    try:
        yield injector
    finally:
        injector.off()
        injector.detach()


@pytest.fixture
def scenario(api: Any, local_aws: Any, faults: FaultInjector) -> Scenario:
    import app as app_module

    return Scenario(api, local_aws, faults, app_module)
