"""Versions and aliases through the API: an instance keeps the revision it started on, starts pinned to a
revision or routed by an alias's weights, the alias routes themselves, and the deployed path's
qualified ARNs (Step Functions' StartExecution seen through a botocore hook)."""

from __future__ import annotations

import random

import pytest

YAML_V1 = """\
name: purchase
version: "1.0"
steps:
  - {id: review, type: human, title: Review the purchase}
  - {id: record, type: machine, task_type: data.set, config: {values: {recorded: true}}, depends_on: [review]}
"""
YAML_V2 = YAML_V1.replace('version: "1.0"', 'version: "2.0"') + \
    "  - {id: notify, type: machine, task_type: data.set, config: {values: {notified: true}}, depends_on: [record]}\n"
QUICK = {"name": "quick", "version": "1", "steps": [
    {"id": "mark", "type": "machine", "task_type": "data.set", "config": {"values": {"rev": 1}}}]}


def put_yaml(api, text, name="purchase"):
    status, body = api.put(f"/definitions/{name}", raw=text, content_type="application/x-yaml")
    assert status in (200, 201), body
    return body


def finish(api, instance_id):
    task = api.one_task(f"instance_id={instance_id}")
    assert api.post(f"/tasks/{task['id']}/complete", {"output_data": {}, "completed_by": "ann"})[0] == 200
    return api.wait(instance_id)


def test_an_instance_keeps_its_revision_after_a_later_one_is_published(api):
    first = put_yaml(api, YAML_V1)
    status, unpinned = api.post("/instances", {"definition_name": "purchase"})
    assert status == 201 and unpinned["revision_number"] == 1
    status, pinned = api.post("/instances", {"definition_name": "purchase", "revision": 1})
    assert status == 201 and pinned["revision_number"] == 1 and pinned["revision"] == first["revision"]
    api.wait(unpinned["id"], until=("waiting",))
    api.wait(pinned["id"], until=("waiting",))
    second = put_yaml(api, YAML_V2)  # published while both wait at their human step
    assert second["revision_number"] == 2
    # Revision 1 can still be started after revision 2 is published, by number or content id.
    status, late = api.post("/instances", {"definition_name": "purchase", "revision": first["revision"]})
    assert status == 201 and late["revision_number"] == 1
    status, newest = api.post("/instances", {"definition_name": "purchase", "revision": "2"})
    assert status == 201 and newest["revision_number"] == 2
    for instance in (unpinned, pinned, late):
        done = finish(api, instance["id"])
        assert done["status"] == "completed", done
        assert (done["revision"], done["revision_number"]) == (first["revision"], 1)
        assert [s["step_name"] for s in done["step_history"]] == ["review", "record"]
        assert "notified" not in done["output"]
    done = finish(api, newest["id"])
    assert done["status"] == "completed" and done["revision_number"] == 2
    assert [s["step_name"] for s in done["step_history"]] == ["review", "record", "notify"]
    assert done["output"]["notified"] is True
    # A retry of a pinned instance is pinned the same way; a pending one starts what it was pinned to.
    status, waiting = api.post("/instances", {"definition_name": "purchase", "revision": 1})
    assert api.post(f"/instances/{waiting['id']}/cancel")[0] == 200
    status, again = api.post(f"/instances/{waiting['id']}/retry")
    assert status == 201 and again["revision_number"] == 1, again
    status, pending = api.post("/instances", {"definition_name": "purchase", "revision": 1, "start": False})
    assert status == 201 and pending["status"] == "pending"
    assert api.post(f"/instances/{pending['id']}/start")[1]["revision_number"] == 1
    for instance in (again, pending):
        done = finish(api, instance["id"])
        assert done["status"] == "completed" and done["revision_number"] == 1
        assert [s["step_name"] for s in done["step_history"]] == ["review", "record"]


def test_alias_weights_route_starts_between_two_revisions(api, monkeypatch):
    import app as app_module

    assert api.post("/definitions", QUICK)[0] == 201
    second = {**QUICK, "version": "2", "steps": [{**QUICK["steps"][0], "config": {"values": {"rev": 2}}}]}
    assert api.post("/definitions", second)[0] == 201
    status, alias = api.put("/definitions/quick/aliases/canary",
                            {"routes": [{"revision": 1, "weight": 90}, {"revision": 2, "weight": 10}]})
    assert status == 200, alias
    assert [(r["revision"], r["weight"]) for r in alias["routes"]] == [(1, 90), (2, 10)]
    monkeypatch.setattr(app_module.services.routing, "rng", random.Random(20261130))
    ids = []
    for _ in range(200):
        status, started = api.post("/instances", {"definition_name": "quick", "alias": "canary"})
        assert status == 201, started
        assert started["alias"] == "canary" and started["revision_number"] in (1, 2)
        ids.append(started["id"])
    on_second = 0
    for instance_id in ids:
        done = api.wait(instance_id, timeout=120)
        assert done["status"] == "completed", done
        # The revision recorded is the revision that ran.
        assert done["output"]["rev"] == done["revision_number"]
        on_second += done["revision_number"] == 2
    assert abs(on_second / 200 - 0.10) <= 0.06, on_second


def test_live_follows_the_latest_revision_and_aliases_are_checked(api):
    put_yaml(api, YAML_V1)
    put_yaml(api, YAML_V2)
    status, aliases = api.get("/definitions/purchase/aliases")
    assert status == 200 and [a["alias"] for a in aliases] == ["live"]
    assert aliases[0]["follows_latest"] is True and aliases[0]["routes"][0]["revision"] == 2
    # A canary on live holds until the next registration makes its revision live.
    status, live = api.put("/definitions/purchase/aliases/live",
                           {"routes": [{"revision": 2, "weight": 50}, {"revision": 1, "weight": 50}]})
    assert status == 200 and live["follows_latest"] is False and live["updated_at"]
    assert api.get("/definitions/purchase/aliases/live")[1]["routes"] == live["routes"]
    put_yaml(api, YAML_V2.replace('version: "2.0"', 'version: "3.0"'))
    live = api.get("/definitions/purchase/aliases/live")[1]
    assert live["follows_latest"] is True and [r["revision"] for r in live["routes"]] == [3]
    bad = {
        "weights": {"routes": [{"revision": 1, "weight": 90}, {"revision": 2, "weight": 20}]},
        "three": {"routes": [{"revision": n, "weight": w} for n, w in ((1, 40), (2, 30), (3, 30))]},
        "none": {"routes": []},
        "twice": {"routes": [{"revision": 1, "weight": 50}, {"revision": "1", "weight": 50}]},
        "extra": {"routes": [{"revision": 1, "weight": 100, "x": 1}]},
        "shape": ["routes"],
        "weight": {"routes": [{"revision": 1, "weight": 100.5}]},
    }
    for case, body in bad.items():
        status, refused = api.put("/definitions/purchase/aliases/canary", body)
        assert status == 422, (case, refused)
        assert refused["detail"]["issues"][0]["message"], case
    assert api.put("/definitions/purchase/aliases/9lives", {"routes": [{"revision": 1}]})[0] == 422
    status, missing = api.put("/definitions/purchase/aliases/canary", {"routes": [{"revision": 7}]})
    assert status == 404 and "no revision '7'" in missing["detail"]
    assert api.get("/definitions/purchase/aliases/canary")[0] == 404
    assert api.get("/definitions/nothing/aliases")[0] == 404
    assert api.put("/definitions/nothing/aliases/canary", {"routes": [{"revision": 1}]})[0] == 404
    # Starts: one pin at most, and an unknown one is not found (and creates nothing).
    status, both = api.post("/instances", {"definition_name": "purchase", "revision": 1, "alias": "live"})
    assert status == 422 and "not both" in both["detail"]["message"]
    for pin in ({"revision": 9}, {"revision": "unknown"}, {"revision": "0123456789abcdef"}, {"alias": "canary"},
                {"alias": "no such alias!"}):
        status, refused = api.post("/instances", {"definition_name": "purchase", **pin})
        assert status == 404, (pin, refused)
    assert api.get("/instances?workflow_name=purchase")[1]["items"] == []
    for path in ("/definitions/purchase", "/definitions/purchase/asl", "/definitions/purchase/graph"):
        assert api.get(f"{path}?revision=unknown")[0] == 404, path
    assert api.get("/definitions/purchase/revisions/unknown")[0] == 404


@pytest.fixture
def deployed_routing(monkeypatch):
    """The deployed routing on the local runtime, with StartExecution and DescribeExecution of qualified
    ARNs answered by a botocore hook (the emulator cannot start them): what Step Functions was asked."""
    from botocore.awsrequest import AWSResponse

    import app as app_module
    from chalicelib.service.routing import QualifiedRouting

    services = app_module.services
    routing = QualifiedRouting(services.machines)
    for holder in (services.instances, services.aliases):
        monkeypatch.setattr(holder, "_routing", routing)
    started: list[dict] = []
    picked: dict[str, str] = {}  # execution ARN -> the version Step Functions "chose"

    def keep(params, context, **_):
        context["api_params"] = params  # what the caller asked, as the operation names it

    def answer(model, context, **_):
        params = context.get("api_params") or {}
        if model.name == "StartExecution" and params["stateMachineArn"].count(":") == 7:
            started.append(params)
            arn = params["stateMachineArn"]
            execution = ":".join(arn.split(":")[:7]).replace(":stateMachine:", ":execution:") + ":" + params["name"]
            # An alias is answered with its second route's version, so the test sees the read-back.
            picked[execution] = arn if arn.rsplit(":", 1)[-1].isdigit() else services.aliases.routes(
                "purchase", arn.rsplit(":", 1)[-1], services.definitions.get("purchase"))[-1].version_arn
            return AWSResponse(execution, 200, {}, None), {"executionArn": execution, "startDate": 0}
        if model.name == "DescribeExecution" and params["executionArn"] in picked:
            return AWSResponse(params["executionArn"], 200, {}, None), {
                "executionArn": params["executionArn"], "stateMachineArn": "x", "status": "RUNNING", "startDate": 0,
                "stateMachineVersionArn": picked[params["executionArn"]]}
        return None

    events = services.machines._sfn.meta.events
    events.register("before-parameter-build.stepfunctions", keep)
    events.register("before-call.stepfunctions", answer)
    yield started
    events.unregister("before-call.stepfunctions", answer)
    events.unregister("before-parameter-build.stepfunctions", keep)


def test_the_deployed_path_starts_versions_and_aliases_by_their_qualified_arns(api, deployed_routing):
    first = put_yaml(api, YAML_V1)
    put_yaml(api, YAML_V2)
    machine = first["state_machine_arn"]
    status, pinned = api.post("/instances", {"definition_name": "purchase", "revision": 1})
    assert status == 201 and pinned["revision_number"] == 1
    version_one = deployed_routing[-1]["stateMachineArn"]
    assert version_one.startswith(machine + ":") and version_one.rsplit(":", 1)[-1].isdigit()
    assert api.put("/definitions/purchase/aliases/canary",
                   {"routes": [{"revision": 1, "weight": 70}, {"revision": 2, "weight": 30}]})[0] == 200
    status, routed = api.post("/instances", {"definition_name": "purchase", "alias": "canary"})
    assert status == 201, routed
    assert deployed_routing[-1]["stateMachineArn"] == f"{machine}:canary"
    # Step Functions picked the second route: the instance records revision 2, learned from the execution.
    import app as app_module

    record = app_module.services.instance_store.get(routed["id"])
    assert (record["revision_number"], record["alias"]) == (2, "canary")
    assert record["launch_target"] != version_one and record["launch_target"].startswith(machine + ":")
    assert len(deployed_routing) == 2
    # Step Functions' own alias routes as ours does.
    described = app_module.services.machines._sfn.describe_state_machine_alias(
        stateMachineAliasArn=f"{machine}:canary")
    assert [r["weight"] for r in described["routingConfiguration"]] == [70, 30]
    # `live` was never given routes: it is the latest revision, started by its version's ARN, and Step
    # Functions holds no alias for it.
    sfn = app_module.services.machines._sfn
    with pytest.raises(sfn.exceptions.ResourceNotFound):
        sfn.describe_state_machine_alias(stateMachineAliasArn=f"{machine}:live")


def test_what_a_pinned_start_costs_in_aws_calls(api, local_aws):
    from stepflow_local.call_count import CallCounter

    put_yaml(api, YAML_V1)
    put_yaml(api, YAML_V2)
    for number in (1, 2):  # warm: each revision's state machine made, its record cached
        assert api.post("/instances", {"definition_name": "purchase", "revision": number})[0] == 201
    counter = CallCounter(local_aws.region).attach()
    costs = {}
    try:
        for name, pin in (("latest", {"revision": 2}), ("older", {"revision": 1}), ("alias", {"alias": "live"})):
            counter.reset()
            assert api.post("/instances", {"definition_name": "purchase", **pin})[0] == 201
            costs[name] = dict(sorted(counter.calls.items()))
    finally:
        counter.detach()
    # ... and the request's audit record (PutItem, chalicelib/api/audit.py).
    start = {"dynamodb.GetItem": 1, "dynamodb.TransactWriteItems": 1, "stepfunctions.StartExecution": 1,
             "dynamodb.UpdateItem": 1, "dynamodb.PutItem": 1}
    # Locally the revision's own state machine is looked up (DescribeStateMachine); in AWS the version's
    # ARN is started instead. The latest revision is named by the guard's read; an older one by its history
    # entry; an alias by its item (and, in AWS, the revision Step Functions picked by DescribeExecution).
    local = {**start, "stepfunctions.DescribeStateMachine": 1}
    assert costs["latest"] == local
    assert costs["older"] == {**local, "dynamodb.GetItem": 2}
    assert costs["alias"] == {**local, "dynamodb.GetItem": 2}


def test_a_registration_cut_short_converges_when_it_is_sent_again(api, deployed_routing, monkeypatch):
    import app as app_module
    from chalicelib.errors import UpstreamError

    services = app_module.services
    sfn = services.machines._sfn
    first = put_yaml(api, YAML_V1)
    machine = first["state_machine_arn"]

    def fail_once(target, name):
        original = getattr(target, name)

        def failing(*args, **kwargs):
            monkeypatch.setattr(target, name, original)
            raise UpstreamError("cut short")
        monkeypatch.setattr(target, name, failing)

    # Cut after the version is published, before it is recorded: the retry publishes and records.
    fail_once(services.definition_store, "point_to")
    status, _ = api.put("/definitions/purchase", raw=YAML_V2, content_type="application/x-yaml")
    assert status == 502
    assert services.definitions.get("purchase")["revision_number"] == 1
    second = put_yaml(api, YAML_V2)
    assert second["revision_number"] == 2
    version = services.definitions.entry("purchase", "2")["state_machine_version_arn"]
    assert version and version.startswith(machine + ":")
    # Routes set on `live` make Step Functions' alias for it; from then on each registration moves it.
    assert api.put("/definitions/purchase/aliases/live", {"routes": [{"revision": 2}]})[0] == 200
    live = sfn.describe_state_machine_alias(stateMachineAliasArn=f"{machine}:live")["routingConfiguration"]
    assert live == [{"stateMachineVersionArn": version, "weight": 100}]
    # Cut after the pointer moved, before `live` moved: the same content again moves it.
    fail_once(services.machines, "point_alias")
    status, _ = api.put("/definitions/purchase", raw=YAML_V1.replace("1.0", "3.0"), content_type="application/x-yaml")
    assert status == 502
    third = services.definitions.entry("purchase", "3")["state_machine_version_arn"]
    live = sfn.describe_state_machine_alias(stateMachineAliasArn=f"{machine}:live")["routingConfiguration"]
    assert live == [{"stateMachineVersionArn": version, "weight": 100}]  # behind
    status, again = api.put("/definitions/purchase", raw=YAML_V1.replace("1.0", "3.0"),
                            content_type="application/x-yaml")
    assert status == 200 and again["revision_number"] == 3
    live = sfn.describe_state_machine_alias(stateMachineAliasArn=f"{machine}:live")["routingConfiguration"]
    assert live == [{"stateMachineVersionArn": third, "weight": 100}]
