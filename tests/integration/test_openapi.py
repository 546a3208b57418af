"""The OpenAPI 3.1 contract: valid, complete (every route), served with its docs page, workflows switchable."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

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
    json_body = start["requestBody"]["content"]["application/json"]
    assert json_body["schema"] == {"$ref": "#/components/schemas/StartInstance"}
    assert spec["components"]["schemas"]["StartInstance"]["properties"]["definition_name"]
    answer = start["responses"]["201"]["content"]["application/json"]
    assert answer["schema"] == {"$ref": "#/components/schemas/Instance"}
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


def _refs(schema: Any) -> set[str]:
    if isinstance(schema, dict):
        found = {schema["$ref"]} if isinstance(schema.get("$ref"), str) else set()
        return found.union(*(_refs(v) for v in schema.values()))
    if isinstance(schema, list):
        return set().union(*(_refs(v) for v in schema))
    return set()


def test_every_json_success_has_a_response_model_and_every_reference_resolves():
    import app as app_module

    spec = build(app_module.app, app_module.services.settings)
    untyped = []
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            for code, response in operation["responses"].items():
                schema = response.get("content", {}).get("application/json", {}).get("schema")
                if code.startswith("2") and schema is not None and "$ref" not in schema and "items" not in schema:
                    untyped.append(f"{method.upper()} {path} {code}")
    assert untyped == []
    components = spec["components"]["schemas"]
    assert {ref.rsplit("/", 1)[1] for ref in _refs(spec)} <= set(components)
    # Lists are paged with an opaque cursor; statuses are enums shared by answers and query parameters.
    assert components["InstancePage"]["required"] == ["items", "limit", "offset", "next_cursor"]
    assert components["TaskPage"]["properties"]["next_cursor"]["anyOf"] == [{"type": "string"}, {"type": "null"}]
    assert components["InstanceStatus"]["enum"] == ["pending", "running", "waiting", "completed", "failed", "canceled"]
    listing = {p["name"]: p["schema"] for p in spec["paths"]["/workflows/tasks"]["get"]["parameters"]}
    assert listing["status"] == {"$ref": "#/components/schemas/TaskStatus"}
    # Views built whole refuse unknown fields (a new field needs its model); task views and list items
    # carry the stored record's extra attributes.
    assert components["Instance"]["additionalProperties"] is False
    assert components["Task"]["additionalProperties"] is True
    assert components["InstanceSummary"]["additionalProperties"] is True


def test_the_enums_of_the_contract_are_the_values_the_code_uses():
    from chalicelib.api.instances import STATUSES as INSTANCE_STATUSES
    from chalicelib.core.graph_render import STATES
    from chalicelib.core.history import STATUS_BY_EXECUTION
    from chalicelib.core.model import STEP_TYPES
    from chalicelib.core.responses import common as responses
    from chalicelib.core.tasks import STATUSES as TASK_STATUSES

    assert tuple(responses.InstanceStatus) == INSTANCE_STATUSES
    assert set(STATUS_BY_EXECUTION.values()) <= set(responses.InstanceStatus)
    assert tuple(responses.TaskStatus) == TASK_STATUSES
    assert tuple(responses.StepType) == STEP_TYPES
    assert tuple(responses.NodeState) == STATES
