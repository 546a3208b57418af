"""Graph endpoints over the app on the local runtime, and the web UI's static files served by the same app."""

from __future__ import annotations

import json
import re
from pathlib import Path

from chalicelib.api.ui import ROOT, asset_path, roots
from chalicelib.core.graph_render import STATE_STYLES
from chalicelib.examples import bundled

REPO = Path(__file__).resolve().parents[2]


def register(api, name):
    status, body = api.post("/definitions", bundled()[name])
    assert status in (200, 201), body


def start(api, name, input_data):
    status, started = api.post("/instances", {"definition_name": name, "input_data": input_data})
    assert status == 201, started
    return started["id"]


def test_definition_graph_in_mermaid_by_default_and_as_json(api):
    register(api, "order_fulfilment")
    status, graph = api.get("/definitions/order_fulfilment/graph")
    assert status == 200
    assert graph["name"] == "order_fulfilment" and graph["revision"]
    assert graph["mermaid_source"].startswith("flowchart TD\n    s_receive[\"Receive order\"]\n")
    assert '    s_decide{"Large order?"}' in graph["mermaid_source"]
    assert len(graph["nodes"]) == 8 and len(graph["edges"]) == 10
    assert {"id": "decide", "label": "Large order?", "type": "gateway", "is_initial": False, "is_terminal": False,
            "mermaid_id": "s_decide"} in graph["nodes"]

    status, as_json = api.get("/definitions/order_fulfilment/graph?graph_format=json")
    assert status == 200
    assert "mermaid_source" not in as_json
    assert as_json["nodes"] == graph["nodes"] and as_json["edges"] == graph["edges"]


def test_definition_graph_errors(api):
    register(api, "image_pipeline")
    status, body = api.get("/definitions/image_pipeline/graph?graph_format=svg")
    assert status == 400 and "graph_format" in body["detail"]
    status, body = api.get("/definitions/nothing_here/graph")
    assert status == 404 and "nothing_here" in body["detail"]
    status, body = api.get("/definitions/image_pipeline/graph?version=9.9.9")
    assert status == 404


def test_a_completed_instance_is_green_where_it_ran(api):
    register(api, "order_fulfilment")
    instance_id = start(api, "order_fulfilment", {"order_id": "A1", "amount": 50, "customer": {"name": "Ada"}})
    assert api.wait(instance_id)["status"] == "completed"
    status, graph = api.get(f"/instances/{instance_id}/graph")
    assert status == 200
    assert graph["instance_id"] == instance_id and graph["status"] == "completed"
    states = {n["id"]: n["state"] for n in graph["nodes"]}
    assert states.pop("manual_review") == "not_reached"  # the gateway took the other branch
    assert set(states.values()) == {"completed"}
    source = graph["mermaid_source"]
    assert f"    classDef completed {STATE_STYLES['completed']}" in source
    assert "fill:#90EE90,stroke:#006400" in source
    assert re.search(r"^    class s_receive,.*,s_confirm completed$", source, re.M)
    assert "    class s_manual_review not_reached" in source


def test_a_waiting_instance_shows_its_human_step_waiting(api):
    register(api, "expense_approval")
    instance_id = start(api, "expense_approval", {"requester": "alice", "manager": "bob", "amount": 10})
    assert api.wait(instance_id, until=("waiting", "failed"))["status"] == "waiting"
    status, graph = api.get(f"/instances/{instance_id}/graph?graph_format=json")
    assert status == 200 and "mermaid_source" not in graph
    states = {n["id"]: n["state"] for n in graph["nodes"]}
    assert states["submit"] == "completed" and states["manager_approval"] == "waiting"
    assert graph["current_steps"] == ["manager_approval"]
    assert {states[s] for s in ("manager_decision", "finance_approval", "process", "rejected")} == {"not_reached"}


def test_a_failed_step_is_red_and_what_follows_is_not_reached(api):
    status, body = api.post("/definitions", {"name": "fails", "steps": [
        {"id": "ok", "type": "machine", "task_type": "data.set", "config": {"values": {"x": 1}}},
        {"id": "boom", "type": "machine", "task_type": "data.assert", "depends_on": ["ok"],
         "config": {"condition": "x > 5"}},
        {"id": "after", "type": "machine", "task_type": "util.log", "depends_on": ["boom"],
         "config": {"message": "never"}},
    ]})
    assert status == 201, body
    instance_id = start(api, "fails", {})
    assert api.wait(instance_id)["status"] == "failed"
    status, graph = api.get(f"/instances/{instance_id}/graph")
    assert status == 200
    assert {n["id"]: n["state"] for n in graph["nodes"]} == {"ok": "completed", "boom": "failed",
                                                              "after": "not_reached"}
    assert "    class s_boom failed" in graph["mermaid_source"]
    assert "fill:#FF6B6B" in graph["mermaid_source"]


def test_instance_graph_of_an_unknown_instance(api):
    status, body = api.get("/instances/no-such-instance/graph")
    assert status == 404


# The web UI: static files from chalicelib/ui, served by the same Chalice app.


def get(api, path, headers=None):
    response = api.client.http.get(path, headers=headers or {})
    body = response.body.decode("utf-8") if isinstance(response.body, bytes) else response.body
    return response.status_code, response.headers, body


def test_the_ui_page_knows_where_the_api_is(api):
    status, headers, body = get(api, "/ui")
    assert status == 200 and headers["Content-Type"] == "text/html; charset=utf-8"
    assert '<meta name="stepflow-api" content="/workflows">' in body
    assert '<script type="module" src="/ui/app.js"></script>' in body
    assert "{{" not in body
    assert "script-src 'self'" in headers["Content-Security-Policy"]
    assert headers["X-Content-Type-Options"] == "nosniff"


def test_ui_assets_have_their_content_types_and_etags(api):
    for path, content_type in [("/ui/app.js", "text/javascript; charset=utf-8"),
                               ("/ui/style.css", "text/css; charset=utf-8"), ("/ui/icon.svg", "image/svg+xml"),
                               ("/ui/vendor/mermaid.min.js", "text/javascript; charset=utf-8"),
                               ("/ui/vendor/mermaid.LICENSE.txt", "text/plain; charset=utf-8")]:
        status, headers, body = get(api, path)
        assert status == 200, path
        assert headers["Content-Type"] == content_type, path
        assert body and headers["ETag"]
        again, _, empty = get(api, path, {"If-None-Match": headers["ETag"]})
        assert again == 304 and empty == ""
    for missing in ("/ui/nothing.js", "/ui/index.html", "/ui/..", "/ui/vendor/nothing.js"):
        assert get(api, missing)[0] == 404, missing


def test_ui_paths_behind_a_stage_or_a_custom_prefix():
    assert roots("/ui", "/workflows") == ("/ui", "/workflows")
    assert roots("/ui/", "/workflows") == ("/ui", "/workflows")
    assert roots("/dev/ui", "/workflows") == ("/dev/ui", "/dev/workflows")
    assert roots("/ui", "/api/v1/") == ("/ui", "/api/v1")
    assert asset_path("../api/ui.py") is None and asset_path("../../app.py") is None
    assert asset_path("app.js") == ROOT / "app.js"


def test_the_vendored_mermaid_is_the_pinned_npm_release():
    wanted = json.loads((REPO / "package.json").read_text())["devDependencies"]["mermaid"]
    vendored = (ROOT / "vendor" / "mermaid.min.js").read_text(encoding="utf-8")
    header, _, bundle = vendored.partition("\n")
    assert header.startswith(f"/*! mermaid {wanted} | MIT License"), "run `make vendor-mermaid` and commit it"
    assert "MIT License" in (ROOT / "vendor" / "mermaid.LICENSE.txt").read_text()
    dist = REPO / "node_modules" / "mermaid" / "dist" / "mermaid.min.js"
    if dist.exists():  # node_modules is there under `make test`; the copy must be byte for byte
        assert bundle == dist.read_text(encoding="utf-8"), "run `make vendor-mermaid` and commit it"
