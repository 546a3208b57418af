"""Multi-person decisions in a real browser: quorum progress on the task page, and a one-click link's page."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.e2e


@pytest.mark.scenario("quorum")
def test_the_task_page_shows_the_quorum_and_a_link_decides_once_from_its_page(scenario_result):
    # bob approved through the API, carol through the form (the step completed at 2 of 2); dana's link
    # page changed nothing until its button was pressed, and the link then answered "already used".
    assert scenario_result["decisions"] == [["dana", True, "link", "From my phone"]]
