"""The credentials page in a real browser: add, page through, rotate, delete; a value never on the page."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.e2e


@pytest.mark.scenario("credentials")
def test_credentials_are_added_paged_rotated_and_deleted_without_their_values_on_the_page(scenario_result):
    # Two added from the form (their descriptions shown as text); after each save, and after a rotation,
    # no value typed in is in the page's markup or any field. One a page, the "Next page" links the page
    # builds reach both; rotating moves rotated_at (read back from the API); a 7-character value is
    # refused with the API's message; deleting (confirmed) makes the API answer 404.
    assert scenario_result["seen"] == ["ui_cred_one", "ui_cred_two"] and scenario_result["rotated"] is True


@pytest.mark.scenario("credentials_stage")
def test_the_credentials_page_keeps_to_a_stage_path_and_an_api_prefix(scenario_result):
    # The same with the UI at /dev/ui and the API at /dev/api/v1: a request outside /dev fails it.
    assert scenario_result["stage"] == "/dev" and scenario_result["seen"] == ["stage_cred_one", "stage_cred_two"]
