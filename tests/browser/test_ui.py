"""The web UI in a real browser: start a workflow and watch it finish; every graph drawn by Mermaid."""

from __future__ import annotations

import urllib.request

import pytest

from tests.browser.support import HOSTILE, call

pytestmark = pytest.mark.e2e


@pytest.mark.scenario("start_order")
def test_start_order_fulfilment_from_its_form_and_watch_it_complete_all_green(scenario_result):
    assert scenario_result["counts"] == {"completed": 7, "not_reached": 1}


@pytest.mark.scenario("graphs")
def test_every_workflow_graph_renders_with_mermaid_in_the_browser(ui_service, scenario_result):
    # The session registered HOSTILE, whose titles attack the diagram, beside the bundled examples.
    _, listed = call("GET", f"{ui_service}/workflows/definitions")
    assert {"expense_approval", "image_pipeline", "order_fulfilment", "hostile_titles"} <= set(scenario_result)
    # Namespaced workflows are registered by the history scenarios, which run after this one.
    assert set(scenario_result) == {d["name"] for d in listed if not d.get("namespace")}
    assert scenario_result["hostile_titles"] == len(HOSTILE["steps"])
    assert scenario_result["order_fulfilment"] == 8 and scenario_result["expense_approval"] == 8


def test_the_ui_and_its_assets_are_served_with_their_types(ui_service):
    for path, content_type in [("/ui", "text/html"), ("/ui/", "text/html"), ("/ui/app.js", "text/javascript"),
                               ("/ui/style.css", "text/css"), ("/ui/icon.svg", "image/svg+xml"),
                               ("/ui/vendor/mermaid.min.js", "text/javascript")]:
        with urllib.request.urlopen(ui_service + path, timeout=30) as response:
            assert response.status == 200, path
            assert response.headers["Content-Type"].startswith(content_type), path
            assert response.headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.scenario("auth")
def test_when_the_api_answers_401_the_ui_asks_for_a_bearer_token_and_sends_it(scenario_result):
    assert scenario_result["requests"] >= 2
