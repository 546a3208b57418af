"""Ad hoc runs through the API: POST /instances with an inline definition registers it as the tenant's
anonymous definition and runs it; the same body reuses the same revision; it is checked exactly as a
registration is; only who may register definitions (editor) may send one."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest

from tests.auth_on import authentication
from tests.integration.test_auth import SECRET, Caller, token

INLINE = {"name": "quick_check", "version": "1.0",
          "input_schema": {"type": "object", "required": ["n"], "properties": {"n": {"type": "number"}}},
          "steps": [{"id": "one", "type": "machine", "task_type": "data.set", "config": {"values": {"done": True}}},
                    {"id": "two", "type": "machine", "task_type": "util.log", "config": {"message": "hi"},
                     "depends_on": ["one"]}]}


@pytest.fixture
def secured(api: Any) -> Iterator[Caller]:
    with authentication(SECRET):
        yield Caller(api)


def test_an_inline_definition_runs_as_an_anonymous_definition_reused_by_the_same_body(api):
    status, first = api.post("/instances", {"definition": INLINE, "input_data": {"n": 1}})
    assert status == 201, first
    name = first["definition_name"]
    assert name.startswith("adhoc-") and len(name) == len("adhoc-") + 16
    assert api.wait(first["id"])["status"] == "completed"
    assert api.get(f"/instances/{first['id']}/result")[1]["result"]["done"] is True

    # The same body (keys in another order) is the same definition and revision; another body another one.
    reordered = dict(reversed(list(INLINE.items())))
    status, second = api.post("/instances", {"input_data": {"n": 2}, "definition": reordered})
    assert status == 201 and second["definition_name"] == name and second["revision"] == first["revision"]
    changed = copy.deepcopy(INLINE)
    changed["steps"][1]["config"]["message"] = "bye"
    status, third = api.post("/instances", {"definition": changed, "input_data": {"n": 3}})
    assert status == 201 and third["definition_name"] not in (name, "quick_check")

    # Hidden from the list unless asked for; readable by name and revision like any definition.
    assert api.get("/definitions")[1] == []
    listed = api.get("/definitions?include_adhoc=true")[1]
    assert sorted(d["name"] for d in listed) == sorted([name, third["definition_name"]])
    assert all(d["adhoc"] is True and d["adhoc_label"] == "quick_check" for d in listed)
    status, detail = api.get(f"/definitions/{name}")
    assert status == 200 and detail["adhoc"] is True and detail["revision_number"] == 1
    assert detail["definition"]["steps"][0]["id"] == "one"
    assert api.get(f"/definitions/{name}?revision=1")[1]["revision"] == first["revision"]
    assert len(api.get(f"/definitions/{name}/revisions")[1]) == 1
    assert api.get("/definitions/quick_check")[0] == 404  # the label is not a name


def test_an_inline_definition_can_be_created_pending_and_started_later(api):
    status, pending = api.post("/instances?start=false", {"definition": INLINE, "input_data": {"n": 1}})
    assert status == 201 and pending["status"] == "pending"
    status, started = api.post(f"/instances/{pending['id']}/start")
    assert status == 200 and started["status"] in ("running", "completed")
    assert api.wait(pending["id"])["status"] == "completed"
    # The name is optional inline: without it the definition has no label.
    unnamed = {k: v for k, v in INLINE.items() if k != "name"}
    status, view = api.post("/instances", {"definition": unnamed, "input_data": {"n": 1}, "start": False})
    assert status == 201 and api.get(f"/definitions/{view['definition_name']}")[1]["adhoc_label"] is None


def test_an_inline_definition_is_checked_as_a_registration_and_bad_input_stores_nothing(api):
    broken = copy.deepcopy(INLINE)
    broken["steps"][1]["depends_on"] = ["nowhere"]
    broken["steps"][0]["task_type"] = "no.such.task"
    status, registered = api.post("/definitions", broken)
    assert status == 422
    status, inline = api.post("/instances", {"definition": {**broken, "name": "quick_check"}})
    assert status == 422 and inline["detail"] == registered["detail"]  # the same issues, the same shape
    for body in ({"definition": INLINE, "input_data": {"n": "not a number"}},  # the input_schema holds
                 {"definition": INLINE, "input_data": {"n": 1}, "surprise": 1},  # unknown fields
                 {"definition": {**INLINE, "name": "no spaces allowed"}},  # the name as registration checks it
                 {"definition": "name: x"}, {"definition": [INLINE]}):
        status, refused = api.post("/instances", body)
        assert status == 422, (body, refused)
    for body in ({"definition": INLINE, "definition_name": "quick_check"}, {"input_data": {"n": 1}}):
        status, refused = api.post("/instances", body)
        assert status == 422 and "definition_name" in refused["detail"]["message"], refused
    for pin in ({"revision": 1}, {"alias": "live"}):  # an inline definition is one revision: nothing to pin
        status, refused = api.post("/instances", {"definition": INLINE, "input_data": {"n": 1}, **pin})
        assert status == 422 and "inline" in refused["detail"]["message"], refused
    assert api.get("/definitions?include_adhoc=true&include_inactive=true")[1] == []
    assert api.get("/instances")[1]["items"] == []


def test_the_anonymous_prefix_is_reserved_for_inline_starts(api):
    status, body = api.post("/definitions", {**INLINE, "name": "adhoc-mine"})
    assert status == 422 and body["detail"]["issues"][0]["code"] == "reserved_name"
    assert api.put("/definitions/adhoc-mine", {**INLINE, "name": "adhoc-mine"})[0] == 422
    name = api.post("/instances", {"definition": INLINE, "input_data": {"n": 1}, "start": False})[1]["definition_name"]
    # Not restored over either: its one revision is what its name stands for.
    assert api.post(f"/definitions/{name}/revisions/1/restore")[0] == 422


def test_only_who_may_register_definitions_may_run_one_inline_and_only_in_its_tenant(secured):
    call = secured
    body = {"definition": INLINE, "input_data": {"n": 1}, "start": False}
    for role in ("viewer", "executor"):
        status, refused = call("POST", "/instances", body, bearer=token(role))
        assert status == 403, (role, refused)
    assert call("GET", "/definitions?include_adhoc=true", bearer=token("admin"))[1] == []
    status, mine = call("POST", "/instances", body, bearer=token("editor"))
    assert status == 201, mine
    # Another tenant's same body is its own anonymous definition; neither sees the other's.
    status, theirs = call("POST", "/instances", body, bearer=token("editor", tenant="globex"))
    assert status == 201 and theirs["definition_name"] != mine["definition_name"]
    assert call("GET", f"/definitions/{mine['definition_name']}", bearer=token("viewer", tenant="globex"))[0] == 404
    listed = call("GET", "/definitions?include_adhoc=true", bearer=token("viewer"))[1]
    assert [d["name"] for d in listed] == [mine["definition_name"]]
    # Once registered, an executor starts it by name as any registered workflow (pending ones too).
    status, again = call("POST", "/instances", {"definition_name": mine["definition_name"], "input_data": {"n": 2}},
                         bearer=token("executor"))
    assert status == 201, again
    assert call("POST", f"/instances/{mine['id']}/start", bearer=token("executor"))[0] == 200
    # The tenant comes from the token: naming another one is refused, nothing is registered for it.
    status, refused = call("POST", "/instances", {**body, "tenant_id": "globex"}, bearer=token("editor"))
    assert status == 422, refused


def test_anonymous_definitions_get_their_state_machines_back_after_a_restart(api):
    import app as app_module

    name = api.post("/instances", {"definition": INLINE, "input_data": {"n": 1}, "start": False})[1]["definition_name"]
    assert name in app_module.services.definitions.restore_state_machines()
    # Deactivated and started again by its inline body: the same revision, active again.
    assert api.delete(f"/definitions/{name}")[0] == 200
    assert api.get("/definitions?include_adhoc=true")[1] == []
    status, view = api.post("/instances", {"definition": INLINE, "input_data": {"n": 1}})
    assert status == 201 and view["definition_name"] == name and api.wait(view["id"])["status"] == "completed"
    assert api.get(f"/definitions/{name}")[1]["revision_number"] == 1
