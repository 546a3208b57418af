"""The OpenAPI 3.1 contract: valid, complete (every route), served with its docs page, workflows switchable."""

from __future__ import annotations

import dataclasses
import json

from openapi_spec_validator import validate

from chalicelib.api.openapi import build


def test_the_served_document_is_valid_openapi_31_and_covers_every_route(api):
    import app as app_module

    response = api.client.http.get("/openapi.json")
    assert response.status_code == 200
    spec = json.loads(response.body)
    validate(spec)
    assert spec["openapi"].startswith("3.1")
    operations = {(m.upper(), p) for p, ops in spec["paths"].items() for m in ops}
    routes = {(m, p) for p, methods in app_module.app.routes.items() for m in methods}
    assert operations == routes
    start = spec["paths"]["/workflows/instances"]["post"]
    assert start["requestBody"]["content"]["application/json"]["schema"]["properties"]["definition_name"]
    assert "422" in start["responses"] and start["tags"] == ["instances"]
    assert spec["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    assert spec["paths"]["/health"]["get"]["security"] == []
    assert spec["paths"]["/workflows/callbacks/{key}"]["post"]["security"] == []
    listing = {p["name"] for p in spec["paths"]["/workflows/instances"]["get"]["parameters"]}
    assert {"limit", "cursor", "status"} <= listing
    docs = api.client.http.get("/docs")
    assert docs.status_code == 200 and b"/workflows/instances" in docs.body and b"<script" not in docs.body


def test_workflow_routes_can_be_left_out(api):
    import app as app_module

    settings = dataclasses.replace(app_module.services.settings, openapi_include_workflows=False)
    spec = build(app_module.app, settings)
    validate(spec)
    assert spec["paths"] and not [p for p in spec["paths"] if p.startswith("/workflows")]
