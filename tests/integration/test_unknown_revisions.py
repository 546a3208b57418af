"""A revision a workflow does not have is 404 on every operation that takes one, found from the contract
itself: each operation of /openapi.json with a `{rev}` path parameter, a `revision` or `to` query
parameter, or a `revision` field in its body is called with revisions that do not exist. An operation that
starts taking a revision without a case here fails the test rather than going unchecked."""

from __future__ import annotations

import json
from typing import Any

from tests.integration.test_definition_lifecycle import YAML_V1, YAML_V2, put_yaml

UNKNOWN = ("7", "0123456789abcdef", "nope", "1.5", "0", "-1")
# (method, path) -> a request (path and body) with `{r}` where the revision goes; the workflow is
# "purchase" with revisions 1 and 2, so every other revision is unknown.
CASES: dict[tuple[str, str], tuple[str, dict[str, Any] | None]] = {
    ("GET", "/definitions/{name}"): ("/definitions/purchase?revision={r}", None),
    ("GET", "/definitions/{name}/asl"): ("/definitions/purchase/asl?revision={r}", None),
    ("GET", "/definitions/{name}/graph"): ("/definitions/purchase/graph?revision={r}", None),
    ("GET", "/definitions/{name}/export"): ("/definitions/purchase/export?revision={r}", None),
    ("GET", "/definitions/{name}/revisions/{rev}"): ("/definitions/purchase/revisions/{r}", None),
    ("GET", "/definitions/{name}/revisions/{rev}/diff"): ("/definitions/purchase/revisions/{r}/diff?to=1", None),
    ("GET", "/definitions/{name}/revisions/{rev}/diff#to"): ("/definitions/purchase/revisions/1/diff?to={r}", None),
    ("POST", "/definitions/{name}/revisions/{rev}/restore"): ("/definitions/purchase/revisions/{r}/restore", None),
    # Starts that pin a revision, once the contract offers it.
    ("POST", "/instances"): ("/instances", {"definition_name": "purchase", "revision": "{r}", "start": False}),
    ("POST", "/definitions/{name}/run"): ("/definitions/purchase/run", {"revision": "{r}", "wait_seconds": 0}),
    # A webhook trigger pinned to a revision.
    ("POST", "/definitions/{name}/triggers"): ("/definitions/purchase/triggers", {"revision": "{r}"}),
}

# A `revision` that is content the request brings, not a reference to a stored one.
NOT_A_REFERENCE = {("POST", "/definitions/import")}


def _resolve(schema: Any, document: dict[str, Any]) -> Any:
    while isinstance(schema, dict) and "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def _taking_a_revision(document: dict[str, Any]) -> set[tuple[str, str]]:
    found = set()
    for path, item in document["paths"].items():
        path = path.removeprefix("/workflows")
        for method, operation in item.items():
            key = (method.upper(), path)
            names = {p["name"] for p in operation.get("parameters", []) if p.get("in") in ("query", "path")}
            if "rev" in names or "revision" in names:
                found.add(key)
            if "to" in names:
                found.add((key[0], key[1] + "#to"))
            body = _resolve(((operation.get("requestBody") or {}).get("content") or {})
                            .get("application/json", {}).get("schema"), document)
            if isinstance(body, dict) and "revision" in (body.get("properties") or {}):
                found.add(key)
    return found - NOT_A_REFERENCE


def test_every_operation_that_takes_a_revision_answers_404_for_one_the_workflow_does_not_have(api):
    response = api.client.http.get("/openapi.json")
    assert response.status_code == 200
    document = json.loads(response.body)
    operations = _taking_a_revision(document)
    assert operations - set(CASES) == set(), "an operation takes a revision but has no case here"
    assert {("GET", "/definitions/{name}"), ("GET", "/definitions/{name}/export"),
            ("POST", "/definitions/{name}/revisions/{rev}/restore")} <= operations
    put_yaml(api, YAML_V1)
    put_yaml(api, YAML_V2)
    instances_before = api.get("/instances?include_deleted=true")[1]["items"]
    history_before = api.get("/definitions/purchase/revisions")[1]
    for key in sorted(operations):
        path, body = CASES[key]
        call = api.get if key[0] == "GET" else (lambda p, b: api.post(p, b))
        for unknown in UNKNOWN:
            filled = None if body is None else {k: (unknown if v == "{r}" else v) for k, v in body.items()}
            status, answer = call(path.format(r=unknown)) if key[0] == "GET" else call(path.format(r=unknown), filled)
            assert status == 404, (key, unknown, answer)
        # The same operation with a revision the workflow has is not refused.
        filled = None if body is None else {k: ("1" if v == "{r}" else v) for k, v in body.items()}
        status, answer = call(path.format(r="1")) if key[0] == "GET" else call(path.format(r="1"), filled)
        assert status in (200, 201, 202), (key, answer)
    # Nothing was started or registered by the refused requests (a restore of revision 1 adds one entry).
    started = [key for key in operations if key[0] == "POST" and key[1] in ("/instances", "/definitions/{name}/run")]
    assert len(api.get("/instances?include_deleted=true")[1]["items"]) == len(instances_before) + len(started)
    assert len(api.get("/definitions/purchase/revisions")[1]) == len(history_before) + 1
