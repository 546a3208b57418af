"""The operations page in a real browser: instance counts by workflow and status, failing steps and the
audit log, each read from the API and redrawn as it changes."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.e2e


@pytest.mark.scenario("operations")
def test_the_operations_page_shows_a_failed_run_its_failing_step_and_the_audit_entries(scenario_result):
    assert scenario_result == {"failed": 1, "error": "Stepflow.AssertionFailed"}
