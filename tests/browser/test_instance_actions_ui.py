"""The instance page's cancel and retry buttons in a real browser (POST /instances/{id}/cancel|retry)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.e2e


@pytest.mark.scenario("actions")
def test_cancel_a_waiting_instance_then_retry_it(scenario_result):
    assert scenario_result["retried"] != scenario_result["canceled"]
