"""Definition names are unique per tenant and namespace, through the API: two tenants own the same name
without seeing each other, namespaces separate names within a tenant, the list filters, and records stored
before names were scoped are still read."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from chalicelib.auth import Authenticator, mint
from chalicelib.core import definition_keys
from tests.auth_on import authentication

SECRET = "tenant-names-secret-0123456789-0123456789"


def invoice(marker: str, *, human: bool = False) -> dict[str, Any]:
    """An `invoice` whose one machine step records which one ran; with `human`, a review waits first."""
    steps: list[dict[str, Any]] = [{"id": "mark", "type": "machine", "task_type": "data.set",
                                    "config": {"values": {"ran": marker}}}]
    if human:
        steps.insert(0, {"id": "review", "type": "human", "title": "Review"})
        steps[1]["depends_on"] = ["review"]
    return {"name": "invoice", "version": "1.0", "description": marker, "steps": steps}


class Caller:
    """Calls the API as one tenant's user (no token when authentication is off)."""

    def __init__(self, api: Any, tenant: str | None = None, role: str = "admin"):
        self.api, self.tenant, self.role = api, tenant, role

    def __call__(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        headers = {"content-type": "application/json"}
        if self.tenant is not None:
            bearer = mint(SECRET, f"{self.tenant}-{self.role}", roles=[self.role], tenant=self.tenant)
            headers["authorization"] = f"Bearer {bearer}"
        kwargs: dict[str, Any] = {"headers": headers}
        if body is not None:
            kwargs["body"] = json.dumps(body)
        response = getattr(self.api.client.http, method.lower())(self.api.prefix + path, **kwargs)
        return response.status_code, json.loads(response.body)

    def task(self, instance_id: str) -> dict[str, Any]:
        """The instance's one task (stored a moment after the instance shows as waiting)."""
        deadline = time.monotonic() + 30
        while True:
            status, page = self("GET", f"/tasks?instance_id={instance_id}")
            assert status == 200, page
            if page["items"] or time.monotonic() > deadline:
                assert len(page["items"]) == 1, page
                return page["items"][0]  # type: ignore[no-any-return]
            time.sleep(0.1)

    def wait(self, instance_id: str, until: tuple[str, ...]) -> dict[str, Any]:
        deadline = time.monotonic() + 30
        while True:
            status, body = self("GET", f"/instances/{instance_id}")
            assert status == 200, body
            if body["status"] in until or time.monotonic() > deadline:
                return body
            time.sleep(0.1)


@pytest.fixture
def secured(api):
    with authentication(SECRET):
        yield api


def test_two_tenants_own_the_same_name_without_seeing_each_other(secured):
    acme, globex = Caller(secured, "acme"), Caller(secured, "globex")
    status, a = acme("POST", "/definitions", invoice("acme", human=True))
    assert status == 201, a
    # The name is taken elsewhere; for globex it is simply free.
    status, g = globex("PUT", "/definitions/invoice", invoice("globex"))
    assert status == 201, g
    assert (a["tenant_id"], g["tenant_id"]) == ("acme", "globex")
    assert a["revision"] != g["revision"] and a["state_machine_arn"] != g["state_machine_arn"]
    assert a["revision_number"] == g["revision_number"] == 1

    for caller, marker in ((acme, "acme"), (globex, "globex")):
        status, own = caller("GET", "/definitions/invoice")
        assert status == 200 and own["description"] == marker and own["tenant_id"] == marker
        assert [(d["name"], d["tenant_id"]) for d in caller("GET", "/definitions")[1]] == [("invoice", marker)]
        assert [r["number"] for r in caller("GET", "/definitions/invoice/revisions")[1]] == [1]
        exported = caller("GET", "/definitions/invoice/export")[1]
        assert exported["name"] == "invoice" and exported["definition"]["description"] == marker
        assert caller("GET", "/definitions/invoice/asl")[0] == 200

    # Each starts its own: acme's waits for its review, globex's runs its one step.
    status, waiting = acme("POST", "/instances", {"definition_name": "invoice"})
    assert status == 201 and waiting["definition_name"] == "invoice", waiting
    status, ran = globex("POST", "/instances", {"definition_name": "invoice"})
    assert status == 201, ran
    done = globex.wait(ran["id"], ("completed", "failed"))
    assert done["status"] == "completed" and done["output"]["ran"] == "globex", done
    assert done["definition_name"] == "invoice" and done["namespace"] is None
    assert acme.wait(waiting["id"], ("waiting", "failed"))["status"] == "waiting"
    assert globex("GET", f"/instances/{waiting['id']}")[0] == 404
    status, graph = acme("GET", f"/instances/{waiting['id']}/graph")
    assert status == 200 and "review" in graph["mermaid_source"]
    task = acme.task(waiting["id"])
    assert task["workflow"] == "invoice" and acme("GET", f"/tasks/{task['id']}")[1]["workflow"] == "invoice"

    # Purging counts the tenant's own open instances only: acme's waiting one holds acme's, not globex's.
    assert globex("DELETE", "/definitions/invoice?purge=true") == (200, {"name": "invoice", "active": False,
                                                                          "purged": True})
    assert acme("DELETE", "/definitions/invoice?purge=true")[0] == 409
    assert acme("GET", "/definitions/invoice")[1]["active"] is True
    # Completing acme's task runs the rest of acme's revision.
    assert acme("POST", f"/tasks/{task['id']}/complete", {"output_data": {}})[0] == 200
    done = acme.wait(waiting["id"], ("completed", "failed"))
    assert done["status"] == "completed" and done["output"]["ran"] == "acme", done


def test_a_name_another_tenant_has_answers_exactly_as_one_nobody_has(secured):
    acme, globex = Caller(secured, "acme"), Caller(secured, "globex")
    assert acme("POST", "/definitions", {**invoice("acme"), "name": "payroll"})[0] == 201
    probes = [("GET", "/definitions/payroll", None), ("GET", "/definitions/payroll/asl", None),
              ("GET", "/definitions/payroll/graph", None), ("GET", "/definitions/payroll/revisions", None),
              ("GET", "/definitions/payroll/revisions/1", None), ("GET", "/definitions/payroll/export", None),
              ("DELETE", "/definitions/payroll", None), ("POST", "/definitions/payroll/revisions/1/restore", None),
              ("POST", "/definitions/payroll/run", {}), ("POST", "/instances", {"definition_name": "payroll"})]
    elsewhere = [globex(method, path, body) for method, path, body in probes]
    assert {status for status, _ in elsewhere} == {404}, elsewhere
    assert globex("GET", "/definitions")[1] == []
    assert acme("DELETE", "/definitions/payroll?purge=true")[1]["purged"] is True
    nowhere = [globex(method, path, body) for method, path, body in probes]
    assert elsewhere == nowhere


def test_namespaces_separate_names_within_a_tenant_and_the_list_filters(api):
    local = Caller(api)  # authentication off: an administrator of no tenant
    assert local("PUT", "/definitions/invoice?namespace=billing", invoice("billing"))[0] == 201
    assert local("PUT", "/definitions/invoice", invoice("plain"))[0] == 201
    assert local("GET", "/definitions/invoice?namespace=billing")[1]["description"] == "billing"
    status, plain = local("GET", "/definitions/invoice")
    assert status == 200 and plain["description"] == "plain" and plain["namespace"] is None
    assert [(d["name"], d["namespace"]) for d in local("GET", "/definitions")[1]] == [("invoice", None),
                                                                                     ("invoice", "billing")]
    assert [d["description"] for d in local("GET", "/definitions?namespace=billing")[1]] == ["billing"]
    assert local("GET", "/definitions?namespace=shipping")[1] == []
    assert local("GET", "/definitions/invoice?namespace=shipping")[0] == 404

    status, started = local("POST", "/instances", {"definition_name": "invoice", "namespace": "billing"})
    assert status == 201 and started["namespace"] == "billing", started
    done = local.wait(started["id"], ("completed", "failed"))
    assert done["output"]["ran"] == "billing" and done["definition_name"] == "invoice"
    status, listed = local("GET", "/instances")
    assert {(i["id"], i["namespace"]) for i in listed["items"]} >= {(started["id"], "billing")}
    assert local("GET", f"/instances/{started['id']}/graph")[0] == 200

    # Deactivated, it leaves the list unless include_inactive asks for it.
    assert local("DELETE", "/definitions/invoice?namespace=billing")[1] == {"name": "invoice", "active": False,
                                                                            "purged": False}
    assert [d["namespace"] for d in local("GET", "/definitions")[1]] == [None]
    assert [d["active"] for d in local("GET", "/definitions?namespace=billing&include_inactive=true")[1]] == [False]
    assert local("GET", "/definitions/invoice")[1]["active"] is True

    for path in ("/definitions?namespace=no%20spaces", "/definitions/invoice?namespace=-x"):
        status, body = local("GET", path)
        assert status == 422 and body["detail"]["issues"][0]["location"] == "namespace", body
    status, body = local("POST", "/instances", {"definition_name": "invoice", "namespace": "a/b"})
    assert status == 422 and body["detail"]["issues"][0]["location"] == "namespace", body

    # Without authentication, `tenant_id` acts for a tenant, as it does for instances and listings.
    assert local("PUT", "/definitions/invoice?tenant_id=acme", invoice("acme"))[1]["tenant_id"] == "acme"
    assert local("GET", "/definitions/invoice?tenant_id=acme")[1]["description"] == "acme"
    assert local("GET", "/definitions/invoice")[1]["description"] == "plain"
    assert [d["description"] for d in local("GET", "/definitions?tenant_id=acme")[1]] == ["acme"]
    status, started = local("POST", "/instances", {"definition_name": "invoice", "tenant_id": "acme"})
    assert local.wait(started["id"], ("completed", "failed"))["output"]["ran"] == "acme"
    status, body = local("GET", "/definitions/invoice?tenant_id=" + "t" * 101)
    assert status == 422 and body["detail"]["issues"][0]["location"] == "tenant_id", body
    # What cannot be a name is refused as such wherever it is sent, never looked up.
    for bad in ("not a name", "n" * 3000):
        document = {"format": "stepflow.definition/v1", "name": bad, "definition": {**invoice("x"), "name": bad}}
        assert local("POST", "/definitions/import", document)[0] == 422
        assert local("POST", "/definitions", {**invoice("x"), "name": bad})[0] == 422
        assert local("POST", "/instances", {"definition_name": bad[:80]})[0] == 404


def test_a_shared_definition_is_read_by_every_tenant_until_one_registers_its_own(secured):
    import app as app_module

    del app_module.services.auth  # authentication off: stored with no tenant, shared
    try:
        assert Caller(secured)("PUT", "/definitions/invoice", invoice("old"))[0] == 201
        assert Caller(secured)("PUT", "/definitions/invoice", invoice("shared"))[0] == 201
    finally:
        app_module.services.auth = Authenticator("hs256", SECRET)
    acme, globex = Caller(secured, "acme", "editor"), Caller(secured, "globex")
    # An admin of a tenant changes the shared definition itself; it stays shared.
    status, restored = globex("POST", "/definitions/invoice/revisions/1/restore")
    assert status == 201 and restored["tenant_id"] is None and restored["description"] == "old", restored
    assert globex("POST", "/definitions/invoice/revisions/2/restore")[1]["revision_number"] == 4
    assert acme("GET", "/definitions/invoice")[1]["description"] == "shared"
    assert acme("DELETE", "/definitions/invoice")[0] == 403  # a shared definition is changed by an admin only
    status, own = acme("PUT", "/definitions/invoice", invoice("acme"))
    assert status == 201 and own["tenant_id"] == "acme" and own["revision_number"] == 1
    assert acme("GET", "/definitions/invoice")[1]["description"] == "acme"
    assert [d["description"] for d in acme("GET", "/definitions")[1]] == ["acme"]  # its own hides the shared
    assert globex("GET", "/definitions/invoice")[1]["description"] == "shared"
    assert [d["tenant_id"] for d in globex("GET", "/definitions")[1]] == [None]


def test_records_stored_before_names_were_scoped_are_their_tenants(secured, local_aws):
    """Such a definition is keyed by its bare name and carries its tenant_id; such an instance has no
    definition_key. The tenant reads, changes and runs them as before; another tenant finds nothing."""
    import app as app_module

    settings = app_module.services.settings
    del app_module.services.auth
    try:
        assert Caller(secured)("PUT", "/definitions/invoice", invoice("old", human=True))[0] == 201
    finally:
        app_module.services.auth = Authenticator("hs256", SECRET)
    ddb = local_aws.client("dynamodb")
    for sk in ("latest", "ver#1.0"):
        ddb.update_item(TableName=settings.definitions_table, Key={"name": {"S": "invoice"}, "sk": {"S": sk}},
                        UpdateExpression="SET tenant_id = :t", ExpressionAttributeValues={":t": {"S": "acme"}})
    acme, globex = Caller(secured, "acme"), Caller(secured, "globex")
    assert acme("GET", "/definitions/invoice")[1]["description"] == "old"
    assert [d["tenant_id"] for d in acme("GET", "/definitions")[1]] == ["acme"]
    assert globex("GET", "/definitions/invoice")[0] == 404 and globex("GET", "/definitions")[1] == []

    status, started = acme("POST", "/instances", {"definition_name": "invoice"})
    assert status == 201, started
    assert acme.wait(started["id"], ("waiting", "failed"))["status"] == "waiting"
    ddb.update_item(TableName=settings.instances_table, Key={"id": {"S": started["id"]}},
                    UpdateExpression="REMOVE definition_key, namespace")
    assert acme("GET", f"/instances/{started['id']}")[1]["definition_name"] == "invoice"
    assert acme("GET", f"/instances/{started['id']}/graph")[0] == 200
    # Its next revision continues the same history, and the open instance still holds it from a purge.
    status, second = acme("PUT", "/definitions/invoice", invoice("new"))
    assert status == 201 and second["revision_number"] == 2 and second["tenant_id"] == "acme"
    assert [r["number"] for r in acme("GET", "/definitions/invoice/revisions")[1]] == [2, 1]
    assert acme("DELETE", "/definitions/invoice?purge=true")[0] == 409
    # globex registering the name makes globex's own, beside it.
    assert globex("PUT", "/definitions/invoice", invoice("globex"))[1]["revision_number"] == 1
    assert acme("GET", "/definitions/invoice")[1]["description"] == "new"


def test_retry_and_resume_run_the_tenants_own_definition(secured):
    acme, globex = Caller(secured, "acme"), Caller(secured, "globex")
    failing = {"name": "invoice", "version": "1.0", "steps": [
        {"id": "check", "type": "machine", "task_type": "data.assert",
         "config": {"condition": "amount > 0", "error": "Invoice.Empty", "message": "nothing to invoice"}}]}
    assert acme("PUT", "/definitions/invoice", failing)[0] == 201
    assert globex("PUT", "/definitions/invoice", invoice("globex"))[0] == 201  # would succeed on any input
    status, started = acme("POST", "/instances", {"definition_name": "invoice", "input_data": {"amount": 0}})
    assert status == 201, started
    assert acme.wait(started["id"], ("completed", "failed"))["status"] == "failed"
    status, retried = acme("POST", f"/instances/{started['id']}/retry")
    assert status == 201 and retried["retry_of"] == started["id"], retried
    assert acme.wait(retried["id"], ("completed", "failed"))["status"] == "failed"  # acme's check, again
    status, resumed = acme("POST", f"/instances/{retried['id']}/resume")
    assert status == 200 and resumed["id"] == retried["id"], resumed
    assert acme.wait(retried["id"], ("completed", "failed"))["status"] == "failed"


def test_aliases_and_pinned_starts_are_the_tenants_own(secured):
    acme, globex = Caller(secured, "acme"), Caller(secured, "globex")
    # The same body in both tenants: the same content id, yet each tenant's own revision.
    first = acme("PUT", "/definitions/invoice", invoice("same", human=True))[1]
    assert globex("PUT", "/definitions/invoice", invoice("same", human=True))[1]["revision"] == first["revision"]
    assert acme("PUT", "/definitions/invoice", invoice("acme-2", human=True))[1]["revision_number"] == 2
    status, canary = acme("PUT", "/definitions/invoice/aliases/canary", {"routes": [{"revision": 1}]})
    assert status == 200 and canary["name"] == "invoice", canary
    # Another tenant's aliases are not found, exactly as an alias the caller's own definition lacks.
    missing = globex("GET", "/definitions/invoice/aliases/canary")
    assert missing[0] == 404 and "acme" not in json.dumps(missing[1]), missing
    assert acme("GET", "/definitions/invoice/aliases/nothing")[1]["detail"] == \
        missing[1]["detail"].replace("canary", "nothing")
    assert [a["alias"] for a in globex("GET", "/definitions/invoice/aliases")[1]] == ["live"]
    assert globex("PUT", "/definitions/invoice/aliases/canary", {"routes": [{"revision": 2}]})[0] == 404  # no 2
    # A tenant with no definition of the name: the same 404 as a name nobody has.
    initech = Caller(secured, "initech")
    probes = [("GET", "/definitions/{}/aliases", None), ("GET", "/definitions/{}/aliases/canary", None),
              ("PUT", "/definitions/{}/aliases/canary", {"routes": [{"revision": 1}]})]
    for method, path, body in probes:
        status, answer = initech(method, path.format("invoice"), body)
        nobody = initech(method, path.format("nobody"), body)
        assert status == nobody[0] == 404 and answer["detail"] == nobody[1]["detail"].replace("nobody", "invoice")
    # Starts pinned to revision 1 (by number and through the alias) run each tenant's revision 1 on a
    # state machine of its own, whose steps load that tenant's definition.
    runs = [(acme, acme("POST", "/instances", {"definition_name": "invoice", "revision": 1})[1]),
            (acme, acme("POST", "/instances", {"definition_name": "invoice", "alias": "canary"})[1]),
            (globex, globex("POST", "/instances", {"definition_name": "invoice", "revision": 1})[1])]
    for caller, started in runs:
        assert started.get("revision_number") == 1, started
        task = caller.task(started["id"])
        assert caller("POST", f"/tasks/{task['id']}/complete", {"output_data": {}})[0] == 200
        done = caller.wait(started["id"], ("completed", "failed"))
        assert done["status"] == "completed" and done["output"]["ran"] == "same", done
    import app as app_module

    machines = app_module.services.machines
    keys = [definition_keys.revision_key(definition_keys.key(t, None, "invoice"), first["revision"])
            for t in ("acme", "globex")]
    assert len({machines.machine_name(k) for k in keys}) == 2
    assert all(machines.arn_for(k) for k in keys), keys  # each tenant's revision 1 has its own


def test_an_inline_definition_is_the_tenants_own_in_its_namespace(secured):
    acme, globex = Caller(secured, "acme"), Caller(secured, "globex")
    inline = {"version": "1", "steps": [{"id": "mark", "type": "machine", "task_type": "data.set",
                                         "config": {"values": {"ran": "inline"}}}]}
    status, started = acme("POST", "/instances", {"definition": inline, "namespace": "billing"})
    assert status == 201 and started["namespace"] == "billing", started
    name = started["definition_name"]
    assert acme.wait(started["id"], ("completed", "failed"))["output"]["ran"] == "inline"
    import app as app_module

    found = app_module.services.definitions.find(name, "acme", "billing")
    assert found["key"] == definition_keys.key("acme", "billing", name) and found["adhoc"] is True
    assert acme("GET", f"/definitions/{name}?namespace=billing")[0] == 200
    assert acme("GET", f"/definitions/{name}")[0] == 404  # another namespace's
    assert globex("GET", f"/definitions/{name}?namespace=billing")[0] == 404
    listed = acme("GET", "/definitions?include_adhoc=true&namespace=billing")[1]
    assert [(d["name"], d["namespace"]) for d in listed] == [(name, "billing")]
    assert globex("GET", "/definitions?include_adhoc=true")[1] == []
