"""The REST API through chalice.test.Client on the embedded runtime: definitions, plugins, instances."""

from __future__ import annotations

import copy

import pytest

from chalicelib.examples import bundled


def register(api, data):
    status, body = api.post("/definitions", data)
    assert status in (200, 201), body
    return body


def test_a_definition_too_large_only_once_its_arns_are_bound_is_refused_and_nothing_is_stored(api, local_aws):
    import app as app_module
    from chalicelib.resources import FUNCTIONS
    from tests.oversize import only_too_large_when_bound

    # The ARNs this stage binds into the state machine, as the service knows them.
    bindings = {f.placeholder: local_aws.function_arns[f.name] for f in FUNCTIONS}
    assert app_module.services.settings.step_runner_arn == bindings["StepRunnerFunctionArn"]
    data = only_too_large_when_bound(bindings)  # asserts: unbound <= 1 MiB < bound
    status, body = api.post("/definitions/validate", data)
    assert status == 200 and body["valid"] is False
    assert [i["code"] for i in body["issues"]] == ["too_large"]
    status, body = api.post("/definitions", data)
    assert status == 422, body
    assert [(i["code"], i["location"]) for i in body["detail"]["issues"]] == [("too_large", "definition")]
    assert "ARNs bound" in body["detail"]["issues"][0]["message"]
    # Refused before anything is stored: no revision, no pointer, no state machine.
    assert api.get("/definitions/oversize")[0] == 404
    assert api.get("/definitions")[1] == []
    assert local_aws.client("stepfunctions").list_state_machines()["stateMachines"] == []


def test_health(api):
    assert api.get("/health") == (200, {"status": "healthy", "stage": "local"})


def test_register_list_and_get_a_definition(api):
    data = bundled()["image_pipeline"]
    status, body = api.post("/definitions", data)
    assert status == 201
    assert body["name"] == "image_pipeline" and len(body["revision"]) == 16
    assert body["steps"] == ["generate", "refine"]
    assert body["edges"] == [{"source": "generate", "target": "refine", "condition": None}]
    assert body["initial_step"] == "generate" and body["terminal_steps"] == ["refine"]
    assert body["state_machine_arn"].endswith(":stateMachine:stepflow-local-image_pipeline")

    # The same content again is the same revision: nothing new is created.
    again_status, again = api.post("/definitions", data)
    assert again_status == 200 and again["revision"] == body["revision"]

    status, listed = api.get("/definitions")
    assert status == 200 and [d["name"] for d in listed] == ["image_pipeline"]
    status, one = api.get("/definitions/image_pipeline")
    assert status == 200 and one["definition"]["steps"][1]["input_mappings"][0]["to_field"] == "base_image_url"


def test_new_version_moves_latest_and_old_version_stays_readable(api):
    data = copy.deepcopy(bundled()["image_pipeline"])
    first = register(api, data)
    data["version"] = "2.0.0"
    data["description"] = "second"
    second = register(api, data)
    assert second["revision"] != first["revision"]
    assert api.get("/definitions/image_pipeline")[1]["version"] == "2.0.0"
    status, old = api.get("/definitions/image_pipeline?version=1.0.0")
    assert status == 200 and old["revision"] == first["revision"]
    assert api.get("/definitions/image_pipeline?version=9")[0] == 404


def test_yaml_body_is_accepted(api):
    text = "name: tiny\nsteps:\n  - {id: only, type: machine, task_type: util.log, config: {message: hi}}\n"
    status, body = api.post("/definitions", raw=text, content_type="application/x-yaml")
    assert status == 201, body
    assert body["steps"] == ["only"]


def test_invalid_definition_gets_every_issue_and_changes_nothing(api):
    data = {"name": "bad", "steps": [
        {"id": "a", "type": "machine", "task_type": "nope"},
        {"id": "g", "type": "gateway", "depends_on": ["a"]},
        {"id": "b", "type": "machine", "task_type": "data.set", "config": {}, "depends_on": ["g"],
         "condition": "x >>> 1"},
    ]}
    status, body = api.post("/definitions", data)
    assert status == 422
    codes = [i["code"] for i in body["detail"]["issues"]]
    assert codes == ["unknown_task_type", "gateway_without_default", "invalid_condition", "invalid_config"]
    assert all(i["location"] and i["message"] for i in body["detail"]["issues"])
    assert api.get("/definitions/bad")[0] == 404
    assert api.get("/definitions")[1] == []


def test_validate_is_a_dry_run_with_the_compiled_asl(api):
    status, body = api.post("/definitions/validate", bundled()["order_fulfilment"])
    assert status == 200 and body["valid"] is True and body["issues"] == []
    assert body["asl"]["StartAt"] == "receive"
    status, bad = api.post("/definitions/validate", {"name": "x", "steps": []})
    assert status == 200 and bad["valid"] is False and bad["asl"] is None
    assert bad["issues"][0]["location"] == "steps"
    assert api.get("/definitions")[1] == []


@pytest.mark.parametrize("raw, status", [("{not json", 400), ("", 400), ("[1, 2]", 422), ("null", 422)])
def test_unreadable_bodies_are_4xx(api, raw, status):
    assert api.post("/definitions", raw=raw)[0] == status
    assert api.post("/instances", raw=raw)[0] == status


def test_oversized_body_is_413(api):
    assert api.post("/definitions", raw='{"name": "' + "x" * 300_000 + '"}')[0] == 413


def test_plugins_catalog(api):
    status, plugins = api.get("/plugins")
    assert status == 200
    ids = [p["id"] for p in plugins]
    assert {"util.log", "data.set", "data.assert", "util.sleep", "http.request", "expense.process"} <= set(ids)
    status, one = api.get("/plugins/http.request")
    assert status == 200
    assert set(one) >= {"id", "name", "category", "description", "inputSchema", "outputSchema", "configSchema"}
    assert "url" in one["configSchema"]["properties"]
    assert api.get("/plugins/no.such")[0] == 404


def test_start_validates_input_against_the_input_schema(api):
    register(api, bundled()["order_fulfilment"])
    status, body = api.post("/instances", {"definition_name": "order_fulfilment", "input_data": {"amount": "lots"}})
    assert status == 422
    locations = [i["location"] for i in body["detail"]["issues"]]
    assert locations == ["input_data", "input_data", "input_data.amount"]
    assert api.get("/instances")[1]["items"] == []


def test_start_refuses_unknown_fields_and_unknown_workflows(api):
    status, body = api.post("/instances", {"definition_name": "x", "sneaky": 1})
    assert status == 422 and body["detail"]["issues"][0]["location"] == "sneaky"
    assert api.post("/instances", {"definition_name": "missing"})[0] == 404


def test_instance_runs_to_completed_with_merged_data_and_step_history(api):
    register(api, bundled()["order_fulfilment"])
    status, started = api.post("/instances", {
        "definition_name": "order_fulfilment", "user_id": "ada@example.com", "correlation_id": "c-1",
        "input_data": {"order_id": "42", "amount": 80, "customer": {"name": "Ada"}}})
    assert status == 201 and started["status"] in ("running", "completed")
    done = api.wait(started["id"])
    assert done["status"] == "completed", done
    data = done["context_data"]
    assert data["route"] == "automatic"  # 80 is not a large order
    assert data["confirmation"] == {"reference": "ORD-42", "shipping": 4.5}
    assert data["message"] == "Order ORD-42 for Ada confirmed"
    assert done["output"] == data
    history = {s["step_name"]: s for s in done["step_history"]}
    assert "manual_review" not in history
    assert all(s["status"] == "succeeded" for s in history.values())
    assert history["check_stock"]["attempts"] == 1
    assert done["progress"] == {"completed_steps": 7, "skipped_steps": 1, "total_steps": 8, "percent": 100}
    assert done["created_by"] == "ada@example.com" and done["correlation_id"] == "c-1"


def test_list_instances_filters_and_pages(api):
    register(api, bundled()["image_pipeline"])
    register(api, bundled()["order_fulfilment"])
    ids = []
    for prompt in ("a", "b", "c"):
        ids.append(api.post("/instances", {"definition_name": "image_pipeline", "input_data": {"prompt": prompt}})[1]["id"])
    bad = api.post("/instances", {"definition_name": "order_fulfilment",
                                  "input_data": {"order_id": "1", "amount": 5, "customer": {"name": "B"}}})[1]["id"]
    for instance_id in [*ids, bad]:
        api.wait(instance_id)
    status, page = api.get("/instances?workflow_name=image_pipeline&limit=2")
    assert status == 200 and [i["id"] for i in page["items"]] == [ids[2], ids[1]]
    status, rest = api.get(f"/instances?workflow_name=image_pipeline&limit=2&cursor={page['next_cursor']}")
    assert [i["id"] for i in rest["items"]] == [ids[0]] and rest["next_cursor"] is None
    status, page = api.get("/instances?workflow_name=image_pipeline&limit=2&offset=2")
    assert [i["id"] for i in page["items"]] == [ids[0]]
    assert api.get("/instances?cursor=garbage")[0] == 400
    status, page = api.get("/instances?status=completed&limit=100")
    assert {i["id"] for i in page["items"]} == {*ids, bad}
    assert api.get("/instances?status=failed")[1]["items"] == []
    assert api.get("/instances?status=bogus")[0] == 400
    assert api.get("/instances?limit=101")[0] == 400
    assert api.get("/instances?limit=abc")[0] == 400


def test_unknown_instance_is_404(api):
    assert api.get("/instances/does-not-exist")[0] == 404
    assert api.get("/instances/" + "x" * 500)[0] == 404
