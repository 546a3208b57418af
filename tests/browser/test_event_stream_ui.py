"""A browser's EventSource following a run live (GET /instances/{id}/events?follow=true, SSE)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.e2e


@pytest.mark.scenario("event_source")
def test_an_event_source_resumes_after_each_forced_disconnect_without_loss_or_duplicates(scenario_result):
    # The service ends every stream after a second; the run's events span several seconds, so the
    # EventSource opened more than once, resumed with Last-Event-ID, and got the whole log exactly once.
    assert scenario_result["opens"] >= 2
    assert scenario_result["logs"] == 6 and scenario_result["events"] >= 6
    # The instance page's live event log, across the same cuts: every event of the run, once.
    assert scenario_result["pageEvents"] >= 6
