"""A workflow's history page in a real browser: revisions, a diff, restore, alias weights, deactivation."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.e2e


@pytest.mark.scenario("history")
def test_revisions_diff_restore_aliases_and_deactivate_from_the_definition_page(scenario_result):
    # Revisions 1 (JSON) and 2 (YAML, by PUT) listed newest first; the diff from 1 to 2 names the changed
    # step and colours its lines; restoring 1 adds revision 3; `live` shown on the latest revision and a
    # canary alias's 90/10 weights as the API answers them; deactivating shows it inactive, without a
    # start form, and hides it from the list. Schedules from the page: a refused expression is said with
    # the API's message and creates nothing; one created from the form (time zone, overlap) lists its
    # next runs, is paused (none listed), changed from its row while paused (expression, time zone, overlap), resumed
    # (the new expression's next runs) and deleted (confirmed), each read back from the API;
    # in a namespace, the same with every call in that namespace, and a backfill of three past hours from
    # the form starts three runs whose input carries each hour's scheduled time.
    assert scenario_result["revisions"] == [3, 2, 1]
    assert {"tok-key", "tok-string", "tok-comment", "tok-punct"} <= set(scenario_result["yamlTokens"])
    assert {"tok-key", "tok-string", "tok-punct"} <= set(scenario_result["jsonTokens"])


@pytest.mark.scenario("history_stage")
def test_the_definition_pages_keep_to_a_stage_path_and_an_api_prefix(scenario_result):
    # The same steps with the UI at /dev/ui and the API at /dev/api/v1: a request outside /dev fails it.
    assert scenario_result["stage"] == "/dev" and scenario_result["revisions"] == [3, 2, 1]


@pytest.mark.scenario("triggers")
def test_a_webhook_trigger_is_created_used_and_managed_from_the_definition_page(scenario_result):
    # Created from the page, which shows its URL and secret once; a delivery signed with them starts an
    # instance; drawn again, the page holds neither; disable (404), enable, rotate (the new secret
    # signs), delete (404) from the trigger's row.
    assert scenario_result["created"] is True and scenario_result["instance"]
