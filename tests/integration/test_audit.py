"""The audit log: every mutating operation of the OpenAPI document writes exactly one record (the route list
comes from the document, so routes added later are covered); records cannot be overwritten and have no
update or delete path; values, credentials and callback keys stay out; a tenant reads only its own log."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from chalicelib.auth import mint
from tests.auth_on import authentication

MUTATING = ("post", "put", "patch", "delete")
SECRET = "audit-test-secret-0123456789-0123456789"


def _call(api: Any, method: str, url: str, body: Any = None, bearer: str | None = None) -> tuple[int, Any]:
    headers = {"content-type": "application/json"}
    if bearer:
        headers["authorization"] = f"Bearer {bearer}"
    response = api.client.http.request(method.upper(), url, headers=headers,
                                        body=json.dumps(body) if body is not None else b"")
    text = response.body.decode() if isinstance(response.body, bytes) else str(response.body)
    try:
        return response.status_code, json.loads(text)
    except ValueError:
        return response.status_code, text


def _records(api: Any, query: str = "", bearer: str | None = None) -> list[dict[str, Any]]:
    status, page = _call(api, "GET", f"/workflows/audit?limit=200{'&' + query if query else ''}", bearer=bearer)
    assert status == 200, page
    assert page["next_cursor"] is None, "more than a page: the test expects fewer records"
    return page["items"]


def test_every_mutating_operation_of_the_document_writes_exactly_one_record(api):
    spec = json.loads(api.client.http.get("/openapi.json").body)
    operations = [(method, path, op["operationId"]) for path, ops in spec["paths"].items()
                  for method, op in ops.items() if method in MUTATING]
    assert len(operations) >= 35  # the document lists the API; a broken walk finds nothing
    assert _records(api) == []
    for method, path, operation in operations:
        url = re.sub(r"{(\w+)}", lambda m: f"audit-{m.group(1)}", path)  # resources that do not exist: 4xx
        status, _ = _call(api, method, url, {})
        found = _records(api, f"operation={operation}")
        assert len(found) == 1, (method, path, status, found)
        record = found[0]
        assert (record["method"], record["status"]) == (method.upper(), status), record
        assert record["route"] == path.removeprefix("/workflows") and record["actor"] == "anonymous"
        assert record["request_id"] and record["outcome"] in ("ok", "refused", "failed")
    # GETs are not recorded: one record per mutating call and nothing more.
    assert len(_records(api)) == len(operations)


def test_a_record_names_who_what_why_and_keeps_values_out(api):
    flow = {"name": "audited", "version": "1.0.0",
            "steps": [{"id": "one", "type": "machine", "task_type": "data.set", "config": {"values": {"x": 1}}}]}
    assert _call(api, "POST", "/workflows/definitions", flow)[0] == 201
    status, started = _call(api, "POST", "/workflows/instances?start=false",
                            {"definition_name": "audited", "input_data": {"card": "4111-1111"}})
    assert status == 201, started
    assert _call(api, "POST", f"/workflows/instances/{started['id']}/cancel", {"reason": "duplicate order"})[0] == 200
    secret_value = "sk-live-do-not-log-0123456789"
    assert _call(api, "POST", "/workflows/credentials", {"name": "stripe", "value": secret_value})[0] == 201
    assert _call(api, "POST", "/workflows/callbacks/a-secret-callback-key", {})[0] == 404

    records = _records(api)
    text = json.dumps(records)
    assert secret_value not in text and "4111-1111" not in text and "a-secret-callback-key" not in text
    by_operation = {r["operation"]: r for r in records}
    cancel = by_operation["cancel_instance"]
    assert cancel["target"] == f"instances/{started['id']}" and cancel["reason"] == "duplicate order"
    assert by_operation["start_instance"]["target"] == f"instances/{started['id']}"  # named by what it created
    assert by_operation["start_instance"]["summary"]["fields"] == ["input_data"]  # the data's name, not its value
    assert by_operation["create_credential"]["summary"] == {"values": {"name": "stripe"}, "fields": ["value"]}
    assert by_operation["create_credential"]["target"] == "credentials/stripe"
    callback = next(r for r in records if r["route"] == "/callbacks/{key}")
    assert callback["target"] == "callbacks/{key}" and callback["outcome"] == "refused"
    # Filters: by target, by actor, by time.
    assert [r["operation"] for r in _records(api, f"target=instances/{started['id']}")] == \
        ["cancel_instance", "start_instance"]  # newest first
    assert len(_records(api, "actor=anonymous")) == len(records)
    assert _records(api, "since=2999-01-01T00:00:00Z") == []
    assert len(_records(api, f"until={records[0]['at']}")) == len(records)
    # NDJSON export: the same records, a line each.
    response = api.client.http.get("/workflows/audit/export")
    assert response.status_code == 200 and response.headers["Content-Type"] == "application/x-ndjson"
    lines = [json.loads(line) for line in response.body.decode().splitlines()]
    assert lines == records


def test_pages_follow_the_cursor(api):
    for n in range(5):
        _call(api, "PUT", f"/workflows/kv/ns/k{n}", {"value": n})
    status, first = _call(api, "GET", "/workflows/audit?limit=2")
    assert status == 200 and len(first["items"]) == 2 and first["next_cursor"]
    seen = list(first["items"])
    cursor = first["next_cursor"]
    while cursor:
        status, page = _call(api, "GET", f"/workflows/audit?limit=2&cursor={cursor}")
        assert status == 200, page
        seen += page["items"]
        cursor = page["next_cursor"]
    assert [r["target"] for r in seen] == [f"kv/ns/k{n}" for n in reversed(range(5))]
    assert _call(api, "GET", "/workflows/audit?cursor=forged")[0] == 400
    assert _call(api, "GET", "/workflows/audit?since=yesterday")[0] == 400


def test_records_cannot_be_changed(api):
    import app as app_module
    from chalicelib.aws.audit_store import AuditStore, RecordExists

    _call(api, "PUT", "/workflows/kv/ns/k", {"value": 1})
    store = app_module.services.audit._store
    stored = store.page("t#_", {}, None, None, 10, None)[0][0]
    with pytest.raises(RecordExists):
        store.append({**stored, "status": 200, "actor": "someone-else"})
    assert store.page("t#_", {}, None, None, 10, None)[0] == [stored]
    assert not [name for name in vars(AuditStore) if re.match(r"(update|delete|remove|put)", name)]
    for method in ("PUT", "DELETE", "POST", "PATCH"):
        assert _call(api, method, "/workflows/audit", {})[0] == 405


@pytest.fixture
def secured(api):
    with authentication(SECRET):
        yield api


def test_a_tenant_reads_only_its_own_audit_log_and_admins_only(secured):
    def token(role: str, tenant: str) -> str:
        return mint(SECRET, f"{role}-of-{tenant}", roles=[role], tenant=tenant)

    api = secured
    assert _call(api, "PUT", "/workflows/kv/ns/a", {"value": 1}, token("executor", "acme"))[0] == 201
    assert _call(api, "PUT", "/workflows/kv/ns/b", {"value": 2}, token("executor", "globex"))[0] == 201
    # A refused change is recorded too, under its caller.
    assert _call(api, "POST", "/workflows/definitions", {"name": "x"}, token("viewer", "acme"))[0] == 403
    acme = _records(api, bearer=token("admin", "acme"))
    assert sorted((r["actor"], r["tenant_id"], r["status"]) for r in acme) == [
        ("executor-of-acme", "acme", 201), ("viewer-of-acme", "acme", 403)]
    globex = _records(api, bearer=token("admin", "globex"))
    assert [(r["actor"], r["target"]) for r in globex] == [("executor-of-globex", "kv/ns/b")]
    assert _call(api, "GET", "/workflows/audit?tenant_id=acme", bearer=token("admin", "globex"))[0] == 403
    assert _call(api, "GET", "/workflows/audit/export?tenant_id=acme", bearer=token("admin", "globex"))[0] == 403
    assert _call(api, "GET", "/workflows/audit", bearer=token("editor", "acme"))[0] == 403
    assert _call(api, "GET", "/workflows/audit")[0] == 401
