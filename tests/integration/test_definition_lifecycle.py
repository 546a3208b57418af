"""A definition's lifecycle through the API: PUT as a new revision, deactivate and purge, the revision
history with diffs and restore, export and import, and instances created without starting."""

from __future__ import annotations

import json

import pytest
import yaml

YAML_V1 = """\
# Approvals for small purchases
name: purchase
version: "1.0"
steps:
  # someone looks at it first
  - id: review
    type: human
    title: Review the purchase
  - {id: record, type: machine, task_type: data.set, config: {values: {recorded: true}}, depends_on: [review]}
"""
YAML_V2 = YAML_V1.replace("config: {values: {recorded: true}}", "config: {values: {recorded: yes_please}}") + \
    "  - {id: notify, type: machine, task_type: util.log, config: {message: done}, depends_on: [record]}\n"


def put_yaml(api, text, name="purchase"):
    return api.put(f"/definitions/{name}", raw=text, content_type="application/x-yaml")


def test_put_is_a_new_revision_only_when_the_content_changed(api):
    status, first = put_yaml(api, YAML_V1)
    assert status == 201, first
    assert first["revision_number"] == 1 and first["active"] is True
    # The same content (a comment changed, keys reordered) is the same revision.
    status, same = put_yaml(api, YAML_V1.replace("# someone looks at it first", "# a new comment"))
    assert status == 200 and same["revision"] == first["revision"] and same["revision_number"] == 1
    status, second = put_yaml(api, YAML_V2)
    assert status == 201 and second["revision_number"] == 2 and second["revision"] != first["revision"]
    assert second["steps"] == ["review", "record", "notify"]
    assert api.get("/definitions/purchase")[1]["revision"] == second["revision"]
    # JSON bodies too, and the path and the body must name the same definition.
    body = yaml.safe_load(YAML_V1)
    status, back = api.put("/definitions/purchase", body)
    assert status == 201 and back["revision"] == first["revision"] and back["revision_number"] == 3
    status, refused = api.put("/definitions/other", body)
    assert status == 422 and refused["detail"]["issues"][0]["code"] == "name_mismatch"
    assert api.get("/definitions/other")[0] == 404


def test_put_bodies_keep_the_hostile_input_bounds(api):
    nested = "a: " + "[" * 500 + "]" * 500
    assert put_yaml(api, "name: purchase\nsteps: []\n" + nested)[0] == 400
    assert put_yaml(api, "a: &x [1]\nb: [*x, *x, *x]\n" * 2000)[0] in (400, 413)
    assert api.put("/definitions/purchase", raw='{"name": "' + "x" * 300_000 + '"}')[0] == 413
    assert api.get("/definitions/purchase")[0] == 404


def test_deactivate_refuses_new_starts_lets_running_ones_finish_and_hides_it(api):
    put_yaml(api, YAML_V1)
    status, running = api.post("/instances", {"definition_name": "purchase"})
    assert status == 201
    first_revision = running["revision"]
    put_yaml(api, YAML_V2)  # revision 2 is published while the instance runs on revision 1
    status, gone = api.delete("/definitions/purchase")
    assert status == 200 and gone == {"name": "purchase", "active": False, "purged": False}
    status, refused = api.post("/instances", {"definition_name": "purchase"})
    assert status == 409 and "deactivated" in refused["detail"]
    assert api.post("/definitions/purchase/run", {"wait_seconds": 0})[0] == 409
    assert [d["name"] for d in api.get("/definitions")[1]] == []
    assert [(d["name"], d["active"]) for d in api.get("/definitions?include_inactive=true")[1]] == [("purchase", False)]
    assert api.get("/definitions/purchase")[1]["active"] is False  # still readable
    # The running instance finishes on its own revision.
    task = api.one_task(f"instance_id={running['id']}")
    assert api.post(f"/tasks/{task['id']}/complete", {"output_data": {}, "completed_by": "ann"})[0] == 200
    done = api.wait(running["id"])
    assert done["status"] == "completed" and done["revision"] == first_revision
    assert [s["step_name"] for s in done["step_history"]] == ["review", "record"]
    # Registering it again reactivates it.
    assert put_yaml(api, YAML_V2)[0] == 200
    assert api.post("/instances", {"definition_name": "purchase", "start": False})[0] == 201


def test_purge_waits_for_open_instances_then_removes_every_revision(api):
    put_yaml(api, YAML_V1)
    put_yaml(api, YAML_V2)
    status, pending = api.post("/instances", {"definition_name": "purchase", "start": False})
    assert status == 201
    status, refused = api.delete("/definitions/purchase?purge=true")
    assert status == 409 and "1 open instance" in refused["detail"]
    assert api.get("/definitions/purchase")[1]["active"] is True  # refused: nothing changed
    assert api.post(f"/instances/{pending['id']}/cancel")[0] == 200
    status, purged = api.delete("/definitions/purchase?purge=true")
    assert status == 200 and purged == {"name": "purchase", "active": False, "purged": True}
    for path in ("", "/revisions", "/revisions/1", "/asl", "/export"):
        assert api.get(f"/definitions/purchase{path}")[0] == 404, path
    assert api.get("/definitions?include_inactive=true")[1] == []
    assert api.delete("/definitions/purchase")[0] == 404
    # The name can be registered afresh: a new history.
    status, again = put_yaml(api, YAML_V1)
    assert status == 201 and again["revision_number"] == 1


def test_purge_removes_the_workflows_triggers_and_schedules(api):
    import app as app_module
    from tests.integration.test_triggers import Hooks

    put_yaml(api, YAML_V1)
    status, trigger = api.post("/definitions/purchase/triggers", {})
    assert status == 201, trigger
    status, schedule = api.post("/definitions/purchase/schedules", {"expression": "rate(1 hour)"})
    assert status == 201, schedule
    hooks = Hooks(api)
    assert hooks.signed(trigger, {"n": 1})[0] == 201  # the trigger works before the purge
    status, opened = api.get("/instances?workflow_name=purchase")
    for instance in opened["items"]:
        api.post(f"/instances/{instance['id']}/cancel")
    status, purged = api.delete("/definitions/purchase?purge=true")
    assert status == 200 and purged == {"name": "purchase", "active": False, "purged": True}, purged
    # The trigger's key no longer starts anything; the schedule, fired late, finds nothing to run.
    assert hooks.signed(trigger, {"n": 2})[0] == 404
    fired = app_module.schedule_fired({"definition": "purchase", "schedule_id": schedule["id"],
                                       "scheduled_at": "2026-01-05T10:00:00Z"}, None)
    assert fired["outcome"] == "gone"
    # Registered afresh, the name has none of them.
    put_yaml(api, YAML_V1)
    assert api.get("/definitions/purchase/triggers")[1] == [] and api.get("/definitions/purchase/schedules")[1] == []


def test_revisions_diff_and_restore(api):
    first = put_yaml(api, YAML_V1)[1]
    second = put_yaml(api, YAML_V2)[1]
    status, listed = api.get("/definitions/purchase/revisions")
    assert status == 200
    assert [(r["number"], r["revision"]) for r in listed] == [(2, second["revision"]), (1, first["revision"])]
    assert listed[1]["change"] == "first revision: 2 steps"
    assert listed[0]["change"] == "added notify; changed record; edges +1/-0"
    assert all(r["created_at"] and r["version"] == "1.0" and r["source_format"] == "yaml" for r in listed)

    status, one = api.get("/definitions/purchase/revisions/1")
    assert status == 200 and one["source"] == YAML_V1  # comments and key order as submitted
    assert one["definition"]["steps"][0]["id"] == "review" and one["asl"]["StartAt"]
    assert api.get(f"/definitions/purchase/revisions/{first['revision']}")[1]["number"] == 1

    status, diff = api.get("/definitions/purchase/revisions/1/diff?to=2")
    assert status == 200
    assert diff["structural"] == {
        "steps_added": ["notify"], "steps_removed": [], "steps_changed": [{"id": "record", "fields": ["config"]}],
        "edges_added": [{"source": "record", "target": "notify", "condition": None}], "edges_removed": [],
        "fields_changed": []}
    assert "-  - {id: record" in diff["source_diff"] and "+  - {id: notify" in diff["source_diff"]
    assert diff["source_diff"].startswith("--- purchase@1\n+++ purchase@2\n")

    status, restored = api.post("/definitions/purchase/revisions/1/restore")
    assert status == 201 and restored["revision"] == first["revision"] and restored["revision_number"] == 3
    latest = api.get("/definitions/purchase/revisions")[1][0]
    assert latest["restored_from"] == 1 and latest["change"].startswith("restored revision 1: ")
    assert api.get("/definitions/purchase/revisions/3")[1]["source"] == YAML_V1
    assert api.get("/definitions/purchase/asl")[1] == api.get("/definitions/purchase/asl?revision=1")[1]
    # Restoring the latest again changes nothing.
    assert api.post("/definitions/purchase/revisions/3/restore")[0] == 200
    assert len(api.get("/definitions/purchase/revisions")[1]) == 3


@pytest.mark.parametrize("path", [
    "/definitions/purchase?revision={r}", "/definitions/purchase/asl?revision={r}",
    "/definitions/purchase/graph?revision={r}", "/definitions/purchase/revisions/{r}",
    "/definitions/purchase/revisions/{r}/diff?to=1", "/definitions/purchase/revisions/1/diff?to={r}",
])
def test_an_unknown_revision_is_404_everywhere(api, path):
    put_yaml(api, YAML_V1)
    for unknown in ("7", "0123456789abcdef", "nope", "1.5", "0"):
        status, body = api.get(path.format(r=unknown))
        assert status == 404, (unknown, body)
    assert api.post("/definitions/purchase/revisions/7/restore")[0] == 404
    assert api.get(path.format(r="1"))[0] == 200


def test_revision_and_version_read_together(api):
    first = put_yaml(api, YAML_V1)[1]
    put_yaml(api, YAML_V2.replace('version: "1.0"', 'version: "2.0"'))
    status, old = api.get(f"/definitions/purchase?version=1.0&revision={first['revision']}")
    assert status == 200 and old["revision"] == first["revision"]
    assert api.get("/definitions/purchase?version=2.0&revision=1")[0] == 404
    graph = api.get("/definitions/purchase/graph?revision=1&graph_format=json")[1]
    assert [n["id"] for n in graph["nodes"]] == ["review", "record"]


def test_export_then_import_reproduces_the_compiled_asl_byte_for_byte(api):
    put_yaml(api, YAML_V1)
    put_yaml(api, YAML_V2)
    asl = api.client.http.get("/workflows/definitions/purchase/asl").body
    status, document = api.get("/definitions/purchase/export?history=true")
    assert status == 200 and document["format"] == "stepflow.definition/v1" and document["source"] == YAML_V2
    assert [r["number"] for r in document["revisions"]] == [1, 2]
    response = api.client.http.get("/workflows/definitions/purchase/export?format=yaml")
    assert response.headers["Content-Type"] == "application/x-yaml"
    as_yaml = response.body.decode()
    assert yaml.safe_load(as_yaml)["source"] == YAML_V2

    assert api.delete("/definitions/purchase?purge=true")[0] == 200
    status, imported = api.post("/definitions/import", raw=as_yaml, content_type="application/x-yaml")
    assert status == 201 and imported == {"name": "purchase", "revision": document["revision"], "revisions_created": 1}
    assert api.client.http.get("/workflows/definitions/purchase/asl").body == asl
    assert api.get("/definitions/purchase/revisions/1")[1]["source"] == YAML_V2
    assert api.post("/definitions/import", raw=as_yaml, content_type="application/x-yaml")[1]["revisions_created"] == 0

    # With its history: every revision, oldest first, each with its source.
    assert api.delete("/definitions/purchase?purge=true")[0] == 200
    status, imported = api.post("/definitions/import", document)
    assert status == 201 and imported["revisions_created"] == 2
    assert [r["revision"] for r in api.get("/definitions/purchase/revisions")[1]] == \
        [r["revision"] for r in reversed(document["revisions"])]
    assert api.get("/definitions/purchase/revisions/1")[1]["source"] == YAML_V1
    assert api.client.http.get("/workflows/definitions/purchase/asl").body == asl


@pytest.mark.parametrize("change, where", [
    ({"format": "other"}, "format"),
    ({"source": "name: purchase\nsteps: [{id: x, type: human, title: X}]\n"}, "document.source"),
    ({"source": "name: [unclosed"}, "document.source"),
    ({"name": "else"}, "document.name"),
    ({"revisions": [{"source": 5}]}, "revisions.0.source"),
])
def test_an_import_that_does_not_hold_together_is_refused_and_changes_nothing(api, change, where):
    put_yaml(api, YAML_V1)
    document = api.get("/definitions/purchase/export")[1]
    assert api.delete("/definitions/purchase?purge=true")[0] == 200
    status, body = api.post("/definitions/import", {**document, **change})
    assert status == 422, body
    assert body["detail"]["issues"][0]["location"] == where
    assert api.get("/definitions?include_inactive=true")[1] == []


def test_start_false_in_the_query_or_body_creates_a_pending_instance_that_start_runs(api):
    put_yaml(api, YAML_V1.replace("type: human\n    title: Review the purchase",
                                  "type: machine\n    task_type: util.log\n    config: {message: hi}"))
    status, pending = api.post("/instances?start=false", {"definition_name": "purchase"})
    assert status == 201 and pending["status"] == "pending"
    assert api.get(f"/instances/{pending['id']}")[1]["status"] == "pending"
    status, started = api.post(f"/instances/{pending['id']}/start")
    assert status == 200 and started["status"] in ("running", "completed")
    assert api.wait(pending["id"])["status"] == "completed"
    assert api.post(f"/instances/{pending['id']}/start")[0] == 409
    status, body = api.post("/instances?start=false", {"definition_name": "purchase", "start": True})
    assert status == 400 and "query and the body" in body["detail"]
    assert api.post("/instances?start=maybe", {"definition_name": "purchase"})[0] == 400
    status, from_body = api.post("/instances", {"definition_name": "purchase", "start": False})
    assert status == 201 and from_body["status"] == "pending"


def test_the_export_document_is_json_by_default_and_format_is_checked(api):
    put_yaml(api, YAML_V1)
    response = api.client.http.get("/workflows/definitions/purchase/export")
    assert response.headers["Content-Type"] == "application/json"
    assert "revisions" not in json.loads(response.body)
    assert api.get("/definitions/purchase/export?format=xml")[0] == 400


def test_who_may_change_a_definition_with_authentication_on(api):
    import app as app_module
    from chalicelib.auth import Authenticator, mint

    secret = "lifecycle-secret-0123456789-0123456789"
    put_yaml(api, YAML_V1)  # authentication off: a shared (tenant-less) definition

    def call(method, path, role, tenant="acme", body=None):
        bearer = mint(secret, f"user-{role}", roles=[role], tenant=tenant)
        kwargs = {"headers": {"authorization": f"Bearer {bearer}", "content-type": "application/json"}}
        if body is not None:
            kwargs["body"] = json.dumps(body)
        response = getattr(api.client.http, method)(f"/workflows{path}", **kwargs)
        return response.status_code, json.loads(response.body)

    app_module.services.auth = Authenticator("hs256", secret)
    try:
        status, body = call("delete", "/definitions/purchase", "editor")
        assert status == 403 and "admin" in body["detail"]
        assert call("post", "/definitions/purchase/revisions/1/restore", "editor")[0] == 403  # shared: admin only
        assert call("delete", "/definitions/purchase?purge=true", "editor")[0] == 403
        assert call("get", "/definitions/purchase/revisions", "viewer", "globex")[0] == 200  # shared: readable
        assert call("delete", "/definitions/purchase", "admin")[1]["active"] is False
        # A tenant's own definition: its editors change it, another tenant does not see it at all.
        own = {**yaml.safe_load(YAML_V1), "name": "acme_only"}
        assert call("put", "/definitions/acme_only", "editor", body=own)[0] == 201
        for path in ("/revisions", "/revisions/1", "/revisions/1/diff?to=1", "/export", "?revision=1"):
            assert call("get", f"/definitions/acme_only{path}", "admin", "globex")[0] == 404, path
        assert call("delete", "/definitions/acme_only", "admin", "globex")[0] == 404
        assert call("post", "/definitions/acme_only/revisions/1/restore", "admin", "globex")[0] == 404
        assert call("delete", "/definitions/acme_only", "editor")[1] == {"name": "acme_only", "active": False,
                                                                        "purged": False}
    finally:
        del app_module.services.auth


def test_a_definition_stored_before_revisions_were_numbered_gets_its_history_on_its_next_change(api, local_aws):
    import app as app_module

    first = put_yaml(api, YAML_V1)[1]
    # As such a definition is stored: pointers without revision_number, no history entries.
    ddb, table = local_aws.client("dynamodb"), app_module.services.settings.definitions_table
    ddb.delete_item(TableName=table, Key={"name": {"S": "purchase"}, "sk": {"S": "hist#000001"}})
    for sk in ("latest", "ver#1.0"):
        ddb.update_item(TableName=table, Key={"name": {"S": "purchase"}, "sk": {"S": sk}},
                        UpdateExpression="REMOVE revision_number")
    assert api.get("/definitions/purchase/revisions")[1] == []
    assert api.get("/definitions/purchase")[1]["revision_number"] is None

    status, second = put_yaml(api, YAML_V2)
    assert status == 201 and second["revision_number"] == 2
    listed = api.get("/definitions/purchase/revisions")[1]
    assert [(r["number"], r["revision"]) for r in listed] == [(2, second["revision"]), (1, first["revision"])]
    assert api.get("/definitions/purchase/revisions/1/diff?to=2")[1]["structural"]["steps_added"] == ["notify"]
    assert api.post("/definitions/purchase/revisions/1/restore")[1]["revision"] == first["revision"]


def test_an_export_imported_into_a_fresh_service_compiles_to_the_same_asl(api, local_aws):
    """The other Stepflow is a new one: every table, state machine and execution of this one is gone."""
    put_yaml(api, YAML_V1)
    put_yaml(api, YAML_V2)
    asl = api.client.http.get("/workflows/definitions/purchase/asl").body
    status, document = api.get("/definitions/purchase/export?history=true")
    assert status == 200
    local_aws.reset()  # a fresh emulated account: nothing of the first service is left
    assert api.get("/definitions/purchase")[0] == 404
    status, imported = api.post("/definitions/import", document)
    assert status == 201 and imported["revisions_created"] == 2, imported
    assert api.client.http.get("/workflows/definitions/purchase/asl").body == asl
    assert [r["number"] for r in reversed(api.get("/definitions/purchase/revisions")[1])] == [1, 2]
