"""The contract against the running local service, authentication on: a client generated from its
/openapi.json (openapi-python-client) runs a workflow through a human task, and schemathesis sends
every operation generated requests, with and without a token, against real resources: zero server
errors, and every answer's status, content type and body as the document declares."""

from __future__ import annotations

import importlib
import json
import os
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from chalicelib.auth import mint
from tests.local_service import LocalService, call

ROOT = Path(__file__).resolve().parents[2]
SECRET = "schemathesis-secret-0123456789-0123456789"
pytestmark = pytest.mark.e2e
MAX_EXAMPLES = "4"  # per operation and run: ~39 operations x 2 runs stays well inside a minute on 2 cores
BIN = Path(sys.executable).parent
CLIENT = "stepflow_api_client"  # the generated package
# A definition name belongs to one tenant: the client's and the fuzzer's are told apart by a prefix.
REVIEW = {
    "name": "review", "description": "A form to fill, then done",
    "steps": [
        {"id": "prepare", "type": "machine", "task_type": "data.set", "config": {"values": {"prepared": True}}},
        {"id": "review", "type": "human", "depends_on": ["prepare"], "assignee_group": "reviewers",
         "form_schema": {"type": "object", "required": ["approved"], "properties": {"approved": {"type": "boolean"}}}},
    ],
}
QUICK = {"name": "quick", "steps": [
    {"id": "note", "type": "machine", "task_type": "data.set", "config": {"values": {"noted": True}}}]}


def token(tenant: str, user: str = "fuzzer") -> str:
    return mint(SECRET, user, roles=["admin"], tenant=tenant)


@pytest.fixture(scope="module")
def secured_service(tmp_path_factory):
    started = LocalService(tmp_path_factory.mktemp("contract") / "service.log",
                           {"STEPFLOW_AUTH": "hs256", "STEPFLOW_JWT_SECRET": SECRET})
    try:
        started.start()
    except RuntimeError as exc:
        pytest.fail(str(exc))
    yield started.base, started.log
    started.stop()


@pytest.fixture(scope="module")
def generated_client(secured_service, tmp_path_factory):
    """The client package openapi-python-client generates from the served document, importable."""
    base, _ = secured_service
    where = tmp_path_factory.mktemp("client")
    with urllib.request.urlopen(f"{base}/openapi.json", timeout=30) as answer:
        (where / "openapi.json").write_bytes(answer.read())
    (where / "config.yaml").write_text("post_hooks: []\n")  # no formatter run over the generated code
    done = subprocess.run([str(BIN / "openapi-python-client"), "generate", "--path", "openapi.json", "--meta", "none",
                           "--output-path", CLIENT, "--config", "config.yaml"], cwd=where, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0 and (where / CLIENT / "client.py").exists(), done.stdout + done.stderr
    # The warnings: a YAML body (these also take JSON, which the client sends), and the audit export's NDJSON
    # answer (read it as lines of JSON; the client types the JSON listing, GET /audit).
    warned = re.findall(r"WARNING parsing (\S+ \S+)", done.stdout + done.stderr)
    assert set(warned) <= {"POST /workflows/definitions", "POST /workflows/definitions/validate",
                           "PUT /workflows/definitions/{name}", "POST /workflows/definitions/import",
                           "GET /workflows/audit/export"}, done.stdout
    sys.path.insert(0, str(where))
    try:
        yield importlib.import_module(CLIENT)
    finally:
        sys.path.remove(str(where))
        for name in [m for m in sys.modules if m == CLIENT or m.startswith(CLIENT + ".")]:
            del sys.modules[name]


def test_a_generated_client_runs_a_workflow_through_its_human_task(secured_service, generated_client):
    base, _ = secured_service
    models = importlib.import_module(f"{CLIENT}.models")
    register, start, list_instances, get_instance, get_result, list_tasks, complete = (
        importlib.import_module(f"{CLIENT}.api.{module}") for module in (
            "definitions.register_definition", "instances.start_instance", "instances.list_instances",
            "instances.get_instance", "instances.get_result", "tasks.list_tasks", "tasks.complete_task"))
    # An answer with a status the document does not declare raises (errors.UnexpectedStatus).
    client = generated_client.AuthenticatedClient(base_url=base, token=token("client", "ann"),
                                                  raise_on_unexpected_status=True, timeout=30.0)

    definition = models.Definition.from_dict({**REVIEW, "name": "client_review"})
    registered = register.sync_detailed(client=client, body=definition)
    assert registered.status_code == 201 and isinstance(registered.parsed, models.DefinitionDetail)
    assert registered.parsed.steps == ["prepare", "review"] and registered.parsed.state_machine_arn

    started = start.sync_detailed(client=client, body=models.StartInstance(definition_name="client_review",
                                                                          correlation_id="client-1"))
    assert started.status_code == 201 and isinstance(started.parsed, models.Instance)
    instance_id = started.parsed.id
    assert started.parsed.status in (models.InstanceStatus.RUNNING, models.InstanceStatus.WAITING)

    page = list_instances.sync(client=client, workflow_name="client_review", limit=10)
    assert isinstance(page, models.InstancePage) and [i.id for i in page.items] == [instance_id]
    assert page.next_cursor is None and page.items[0].status in tuple(models.InstanceStatus)

    deadline = time.monotonic() + 30
    while True:
        waiting = list_tasks.sync(client=client, instance_id=instance_id)
        assert isinstance(waiting, models.TaskPage)
        if waiting.items:
            break
        assert time.monotonic() < deadline, "the review task never appeared"
        time.sleep(0.2)
    [task] = waiting.items
    assert task.step_name == "review" and task.status == models.TaskStatus.PENDING and task.kind.value == "human"

    form = models.CompleteTask(output_data=models.CompleteTaskOutputData.from_dict({"approved": True}))
    refused = complete.sync_detailed(task.id, client=client, body=models.CompleteTask(
        output_data=models.CompleteTaskOutputData.from_dict({"approved": "yes"})))
    assert refused.status_code == 422 and isinstance(refused.parsed, models.Error)
    done = complete.sync(task.id, client=client, body=form)
    assert isinstance(done, models.Task) and done.status == models.TaskStatus.COMPLETED
    assert done.completed_by == "ann" and done.output_data.to_dict() == {"approved": True}

    deadline = time.monotonic() + 30
    while True:
        instance = get_instance.sync(instance_id, client=client)
        assert isinstance(instance, models.Instance)
        if instance.status == models.InstanceStatus.COMPLETED:
            break
        assert time.monotonic() < deadline, f"the instance did not complete: {instance.status}"
        time.sleep(0.2)
    assert [s.step_name for s in instance.step_history] == ["prepare", "review"]
    assert {s.status for s in instance.step_history} == {models.StepStatus.SUCCEEDED}
    assert instance.progress.percent == 100 and instance.error is None
    result = get_result.sync(instance_id, client=client)
    assert isinstance(result, models.InstanceResult) and result.result.to_dict()["approved"] is True

    missing = get_instance.sync_detailed("no-such-instance", client=client)
    assert missing.status_code == 404 and isinstance(missing.parsed, models.Error)


@pytest.fixture(scope="module")
def fuzz_targets(secured_service) -> dict[str, Any]:
    """Real resources of the fuzzing token's tenant, so generated requests reach past 404: a definition
    that finishes at once, an instance waiting on a human task, and that task."""
    base, _ = secured_service
    headers = {"Authorization": "Bearer " + token("fuzz")}
    for definition in (REVIEW, QUICK):
        named = {**definition, "name": "fuzz_" + definition["name"]}
        status, body = call("POST", f"{base}/workflows/definitions", named, headers)
        assert status in (200, 201), body
    status, started = call("POST", f"{base}/workflows/instances", {"definition_name": "fuzz_review"}, headers)
    assert status == 201, started
    deadline = time.monotonic() + 30
    while True:
        status, page = call("GET", f"{base}/workflows/tasks?instance_id={started['id']}", None, headers)
        if status == 200 and page["items"]:
            break
        assert time.monotonic() < deadline, page
        time.sleep(0.2)
    # A run waits for its result (up to 25 s, or all of it for `start: false`): a second is enough here.
    # A followed read of the waiting instance's log would stream until it ends, and a purge would remove
    # the instance the other operations read: both are tested on their own (test_live_streams.py,
    # test_lifecycle.py), not fuzzed here.
    return {"name": "fuzz_quick", "instance_id": started["id"], "task_id": page["items"][0]["id"],
            "plugin_id": "data.set", "body.wait_seconds": 1, "follow": False, "purge": False}


@pytest.mark.parametrize("with_token", [False, True], ids=["no-token", "admin-token"])
def test_schemathesis_finds_no_server_errors_and_no_contract_breaks(secured_service, fuzz_targets, with_token,
                                                                    capsys, tmp_path):
    base, log = secured_service
    # Path parameters name the real resources (/ui/{name}, an asset's name, stays generated).
    pinned = ", ".join(f"{json.dumps(name)} = {json.dumps(value)}" for name, value in fuzz_targets.items())
    (tmp_path / "schemathesis.toml").write_text(
        f"[[operations]]\ninclude-path-regex = '^/workflows/'\nparameters = {{ {pinned} }}\n")
    command = [str(BIN / "st"), "run", f"{base}/openapi.json", "-n", MAX_EXAMPLES,
               "--phases", "examples,fuzzing", "--request-timeout", "30", "--seed", "20260101",
               "-c", "not_a_server_error,response_schema_conformance,status_code_conformance,"
                     "content_type_conformance",
               "--report", "ndjson", "--report-ndjson-path", str(tmp_path / "events.ndjson")]
    if with_token:
        command += ["-H", "Authorization: Bearer " + token("fuzz")]
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=240,
                            env={**os.environ, "NO_COLOR": "1"})
    out = result.stdout + result.stderr
    generated = re.search(r"(\d+) generated", out)
    with capsys.disabled():
        print(f"\nschemathesis ({'admin token' if with_token else 'no token'}): "
              f"{generated.group(1) if generated else '?'} cases")
    assert result.returncode == 0, out[-6000:] + "\n--- service log ---\n" + log.read_text()[-3000:]
    assert generated and int(generated.group(1)) > 0
    if with_token:  # the pinned resources were reached: their answers' bodies were checked, not only 404s
        succeeded = successes(tmp_path / "events.ndjson")
        assert {"GET /workflows/definitions/{name}", "GET /workflows/instances/{instance_id}",
                "GET /workflows/tasks/{task_id}", "GET /workflows/plugins/{plugin_id}"} <= succeeded, succeeded


def successes(report: Path) -> set[str]:
    """The operations that answered 2xx at least once, from schemathesis' NDJSON event report."""
    found = set()
    for line in report.read_text().splitlines():
        scenario = json.loads(line).get("ScenarioFinished")
        for interaction in (scenario or {}).get("recorder", {}).get("interactions", {}).values():
            if 200 <= ((interaction.get("response") or {}).get("status_code") or 0) < 300:
                found.add(scenario["recorder"]["label"])
    return found
