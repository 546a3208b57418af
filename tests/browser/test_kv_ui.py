"""The key-value page in a real browser: keys by prefix and page, a value as text, edits with If-Match, delete."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.e2e


@pytest.mark.scenario("kv")
def test_kv_keys_are_listed_viewed_edited_over_their_version_and_deleted(scenario_result):
    # Keys of a namespace by prefix (another key left out), two a page through the links the page builds;
    # a value shown as JSON text (its <img onerror> not an element); a save over the version read makes
    # version 2 (read back from the API); text that is not JSON is refused before any request; a save over
    # a version another writer replaced is refused (412), said as "changed meanwhile", writes nothing, and
    # "Reload it" shows the other write; a time to live set from the form is the API's (and shown as the
    # seconds left), a blank one saves it without expiry, 0 is refused with the API's message; delete
    # (confirmed) leaves the list and the API without the key; a key added from the form (with a time to
    # live) opens, and adding it again is refused (If-None-Match), its value unchanged.
    assert scenario_result["first"] == ["order:1", "order:2"] and scenario_result["second"] == ["order:3"]


@pytest.mark.scenario("kv_stage")
def test_the_kv_page_keeps_to_a_stage_path_and_an_api_prefix(scenario_result):
    # The same with the UI at /dev/ui and the API at /dev/api/v1: a request outside /dev fails it.
    assert scenario_result["stage"] == "/dev" and scenario_result["second"] == ["order:3"]
