"""The instance page's timeline, step detail and failure lead in a real browser; the router's stale views."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.e2e


@pytest.mark.scenario("timeline")
def test_the_timeline_grows_live_shows_attempts_and_step_data_and_a_failure_leads_with_its_error(scenario_result):
    # The scenario checks each of these on the page: bars appear as the followed log brings the events
    # (same document), a retried step shows each attempt, a step's input and output are text (a large one
    # cut with a note), and a failed instance starts with its failing step's clean error, linked to it.
    assert scenario_result["rows"][:2] == ["prepare", "bulk"] and "finish" in scenario_result["rows"]
    assert scenario_result["attempts"] == 2


@pytest.mark.scenario("router_race")
def test_a_view_left_while_it_loads_does_not_draw_over_the_next_page(scenario_result):
    assert scenario_result == {"headings": ["Workflows"], "instance": False, "views": 1}
