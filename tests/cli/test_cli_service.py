"""The `stepflow` command against the local service it starts itself (`stepflow server`), authentication off:
every API command, its output formats and its exit codes."""

from __future__ import annotations

import json
import sys
import textwrap
import time

import pytest
import yaml

from tests.cli.support import Stepflow, until
from tests.local_service import LocalService

pytestmark = pytest.mark.e2e

ORDER = {"order_id": "A1", "amount": 20, "customer": {"name": "Ada"}}
EXPENSE = {"requester": "alice", "manager": "bob", "amount": 2500}
GUARDED = textwrap.dedent("""\
    # A workflow that fails when its input says so: data.assert fails the step with a named error.
    name: cli_guarded
    version: 1.0.0
    description: Fails on a non-positive amount.
    steps:
      - id: check
        type: machine
        task_type: data.assert
        config: {condition: "amount > 0", error: Orders.BadAmount, message: "amount {{ amount }} is not positive"}
      - id: done
        type: machine
        task_type: data.set
        depends_on: [check]
        config: {values: {ok: true}}
    """)


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    # Started the way a user starts it: the `stepflow server` command.
    started = LocalService(tmp_path_factory.mktemp("cli") / "service.log",
                           command=[sys.executable, "-m", "stepflow_cli", "server"])
    try:
        started.start()
    except RuntimeError as exc:
        pytest.fail(str(exc))
    yield started
    started.stop()


@pytest.fixture(scope="module")
def stepflow(service, tmp_path_factory) -> Stepflow:
    return Stepflow(service.base, tmp_path_factory.mktemp("config") / "config.toml")


@pytest.fixture(scope="module")
def guarded(stepflow, tmp_path_factory):
    path = tmp_path_factory.mktemp("defs") / "guarded.yaml"
    path.write_text(GUARDED)
    assert stepflow("apply", "-f", str(path)).exit_code == 0
    return path


def data(result) -> dict:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def waiting_task(stepflow, instance_id: str, step: str) -> dict:
    def pending():
        page = data(stepflow("tasks", "ls", "--instance", instance_id, "-o", "json"))
        return next((t for t in page["items"] if t["step_name"] == step and t["status"] == "pending"), None)

    return until(pending)


def test_server_started_by_the_cli_serves_the_bundled_examples(stepflow):
    listed = stepflow("definitions", "ls")
    assert listed.exit_code == 0
    assert {"order_fulfilment", "expense_approval", "image_pipeline"} <= set(listed.stdout.split())
    as_json = data(stepflow("definitions", "ls", "-o", "json"))
    assert {d["name"] for d in as_json} >= {"order_fulfilment", "expense_approval"}
    as_yaml = yaml.safe_load(stepflow("-o", "yaml", "definitions", "ls").stdout)
    assert as_yaml == as_json
    assert data(stepflow("definitions", "ls", "--include-inactive", "-o", "json")) == as_json  # none deactivated
    assert data(stepflow("definitions", "ls", "--namespace", "elsewhere", "-o", "json")) == []
    assert stepflow("definitions", "show", "order_fulfilment", "--namespace", "elsewhere").exit_code != 0
    shown = stepflow("definitions", "show", "order_fulfilment")
    assert yaml.safe_load(shown.stdout)["name"] == "order_fulfilment"
    asl = data(stepflow("definitions", "show", "order_fulfilment", "--asl", "-o", "json"))
    assert "States" in asl and "StartAt" in asl


def test_apply_reports_created_unchanged_and_what_an_update_changed(stepflow, tmp_path):
    path = tmp_path / "greeting.yaml"
    body = {"name": "cli_greeting", "version": "1.0.0", "steps": [
        {"id": "hello", "type": "machine", "task_type": "data.set", "config": {"values": {"greeting": "hi"}}}]}
    path.write_text(yaml.safe_dump(body))
    created = stepflow("apply", "-f", str(path))
    assert created.exit_code == 0 and created.stdout.startswith("created: cli_greeting 1.0.0"), created.output

    again = data(stepflow("apply", "-f", str(path), "-o", "json"))
    assert again["result"] == "unchanged" and again["changes"] == []

    body["version"] = "1.1.0"
    body["steps"][0]["config"]["values"]["greeting"] = "hello"
    body["steps"].append({"id": "shout", "type": "machine", "task_type": "data.set", "depends_on": ["hello"],
                          "config": {"values": {"loud": "HELLO"}}})
    path.write_text(yaml.safe_dump(body))
    dry = data(stepflow("apply", "-f", str(path), "--dry-run", "-o", "json"))
    assert dry["result"] == "updated" and dry["dry_run"] and dry["previous_revision"] == again["definition"]["revision"]
    assert data(stepflow("definitions", "show", "cli_greeting", "-o", "json"))["version"] == "1.0.0"  # nothing stored

    updated = stepflow("apply", "-f", str(path))
    assert updated.exit_code == 0, updated.output
    assert updated.stdout.startswith(f"updated: cli_greeting 1.1.0 revision {again['definition']['revision']} → ")
    assert "~ version" in updated.stdout and "+ step shout" in updated.stdout
    assert 'config.values.greeting "hi" → "hello"' in updated.stdout
    assert "+ edge hello → shout" in updated.stdout
    # -o json carries the service's diff of the two revisions: the sources as written and the structure.
    body["description"] = "louder"
    path.write_text(yaml.safe_dump(body))
    described = data(stepflow("apply", "-f", str(path), "-o", "json"))
    assert described["result"] == "updated" and described["diff"]["structural"]["fields_changed"] == ["description"]
    assert "+description: louder\n" in described["diff"]["source_diff"]


def test_apply_and_validate_point_issues_at_lines_of_the_file(stepflow, tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("name: cli_broken\nversion: 1.0.0\nsteps:\n  - id: a\n    type: machine\n"
                    "    task_type: no.such.type\n    depends_on: [ghost]\n")
    checked = stepflow("validate", "-f", str(path))
    assert checked.exit_code == 1
    assert f"{path}:6  steps[0].task_type: unknown task type 'no.such.type'" in checked.stdout
    assert f"{path}:7  steps[0].depends_on[0]: 'a' depends on unknown step 'ghost'" in checked.stdout
    assert "2 issues" in checked.stderr
    as_json = json.loads(stepflow("validate", "-f", str(path), "-o", "json").stdout)
    assert as_json["valid"] is False and {i["line"] for i in as_json["issues"]} == {6, 7}

    refused = stepflow("apply", "-f", str(path))
    assert refused.exit_code == 1 and "the definition is not valid" in refused.stderr
    assert f"{path}:6" in refused.stdout
    assert stepflow("definitions", "show", "cli_broken").exit_code == 1  # nothing stored

    fine = stepflow("validate", "-f", "chalicelib/examples/order_fulfilment.yaml")
    assert fine.exit_code == 0 and fine.stdout.startswith("valid: ")

    unreadable = stepflow("validate", "-f", "-", stdin="steps: [unclosed\n")
    assert unreadable.exit_code == 1 and unreadable.stderr.startswith("error: ")
    assert stepflow("validate", "-f", str(tmp_path / "missing.yaml")).exit_code == 2


def test_run_and_wait_prints_the_result(stepflow):
    ran = stepflow("run", "order_fulfilment", "--input", json.dumps(ORDER), "--wait")
    assert ran.exit_code == 0, ran.output
    assert "completed" in ran.stdout and '"message": "Order ORD-A1 for Ada confirmed"' in ran.stdout
    assert "confirm             succeeded" in ran.stderr  # the progress, a line per step (not a terminal)
    result = data(stepflow("run", "order_fulfilment", "--input", json.dumps(ORDER), "--wait", "-o", "json"))
    assert result["status"] == "completed" and result["result"]["route"] == "automatic"


def test_run_reads_input_from_a_file_and_starts_without_waiting(stepflow, tmp_path):
    (tmp_path / "order.yaml").write_text(yaml.safe_dump({**ORDER, "amount": 5000}))
    started = data(stepflow("run", "order_fulfilment", "--input", f"@{tmp_path / 'order.yaml'}", "-o", "json"))
    assert started["status"] in ("running", "completed") and started["input_data"]["amount"] == 5000
    shown = stepflow("run", "order_fulfilment", "--input", json.dumps(ORDER))
    assert shown.exit_code == 0 and shown.stdout.startswith("started ")


def test_a_failed_instance_exits_3_with_its_error_and_resume_and_retry_act_on_it(stepflow, guarded):
    failed = stepflow("run", "cli_guarded", "--input", '{"amount": -1}', "--wait")
    assert failed.exit_code == 3, failed.output
    assert "Orders.BadAmount: amount -1 is not positive" in failed.stdout
    as_json = json.loads(stepflow("run", "cli_guarded", "--input", '{"amount": -1}', "--follow", "-o", "json").stdout
                         .splitlines()[-1])
    assert as_json["status"] == "failed" and as_json["error"]["error"] == "Orders.BadAmount"
    instance_id = as_json["id"]

    resumed = stepflow("resume", instance_id)
    assert resumed.exit_code == 0 and resumed.stdout.startswith(f"resume: {instance_id} is "), resumed.output
    # The resumed run fails again on the same input; a retry is for an ended instance, so wait for that end.
    deadline = time.monotonic() + 60
    while data(stepflow("get", instance_id, "-o", "json"))["status"] not in ("failed", "canceled"):
        assert time.monotonic() < deadline, "the resumed instance did not end"
        time.sleep(0.2)
    retried = data(stepflow("retry", instance_id, "-o", "json"))
    assert retried["retry_of"] == instance_id and retried["id"] != instance_id


def test_follow_prints_the_events_then_the_result(stepflow):
    followed = stepflow("run", "order_fulfilment", "--input", json.dumps(ORDER), "--follow")
    assert followed.exit_code == 0, followed.output
    lines = followed.stdout.splitlines()
    assert "instance.started" in lines[0]
    assert any("step.succeeded" in line and "confirm" in line for line in lines)
    assert any("instance.ended" in line for line in lines) and "completed" in followed.stdout


def test_wait_with_a_timeout_exits_5_and_leaves_it_running(stepflow):
    ran = stepflow("run", "expense_approval", "--input", json.dumps({**EXPENSE, "amount": 5}), "--wait",
                   "--timeout", "1")
    assert ran.exit_code == 5, ran.output
    assert "is still waiting after 1 s" in ran.stderr or "is still running after 1 s" in ran.stderr
    instance_id = ran.stderr.split("instance ")[1].split()[0]
    assert data(stepflow("get", instance_id, "-o", "json"))["status"] in ("running", "waiting")
    assert stepflow("cancel", instance_id, "--reason", "test over").exit_code == 0


def test_logs_follow_a_running_instance_until_it_ends(stepflow):
    started = data(stepflow("run", "expense_approval", "--input", json.dumps(EXPENSE), "-o", "json"))
    instance_id = started["id"]
    follower = stepflow.process("logs", "-f", instance_id)  # the real program, reading while it runs
    try:
        manager = waiting_task(stepflow, instance_id, "manager_approval")
        assert stepflow("tasks", "complete", manager["id"], "--data", '{"approved": true}', "--as", "bob").exit_code == 0
        finance = waiting_task(stepflow, instance_id, "finance_approval")
        assert stepflow("approve", finance["id"], "--as", "carol", "--comment", "fine").exit_code == 0
        out, err = follower.communicate(timeout=60)
    finally:
        if follower.poll() is None:
            follower.kill()
    assert follower.returncode == 0, err
    kinds = [line.split()[1] for line in out.splitlines()]
    assert kinds[0] == "instance.started" and kinds[-1] == "instance.ended", out
    assert kinds.count("task.created") == 2 and kinds.count("task.completed") == 2
    assert "completed by bob" in out and "completed by carol" in out

    # Without -f: what is there, all of it; as JSON, one event per line as the API sends them.
    events = [json.loads(line) for line in stepflow("logs", instance_id, "-o", "json").stdout.splitlines()]
    assert [e["type"] for e in events] == kinds
    later = stepflow("logs", instance_id, "--after", events[-2]["seq"], "-o", "json").stdout.splitlines()
    assert [json.loads(line)["type"] for line in later] == ["instance.ended"]


def test_tasks_ls_show_complete_claim_approve_and_reject(stepflow):
    started = data(stepflow("run", "expense_approval", "--input", json.dumps(EXPENSE), "-o", "json"))
    task = waiting_task(stepflow, started["id"], "manager_approval")
    listed = stepflow("tasks", "ls", "--assignee", "bob")
    assert listed.exit_code == 0 and task["id"] in listed.stdout
    shown = stepflow("tasks", "show", task["id"])
    assert "Manager Approval" in shown.stdout and "approved" in shown.stdout and "boolean" in shown.stdout
    assert data(stepflow("tasks", "show", task["id"], "-o", "json"))["form_schema"]["required"] == ["approved"]

    nobody = stepflow("tasks", "complete", task["id"], "--data", '{"approved": true}')
    assert nobody.exit_code == 2 and "--as USER" in nobody.stderr  # without a token someone must be named
    bad_field = stepflow("tasks", "complete", task["id"], "--data", '{"approved": true, "amount": 1}', "--as", "bob")
    assert bad_field.exit_code == 1 and "output_data.amount" in bad_field.stderr  # the API's field error, located
    approved = stepflow("approve", task["id"], "--as", "bob", "--comment", "fine")
    assert approved.exit_code == 0 and approved.stdout.startswith(f"approved: task {task['id']}"), approved.output
    twice = stepflow("tasks", "complete", task["id"], "--data", '{"approved": false}', "--as", "bob")
    assert twice.exit_code == 1 and "already completed" in twice.stderr

    group_task = waiting_task(stepflow, started["id"], "finance_approval")  # the finance group's, nobody's yet
    assert group_task["id"] in stepflow("tasks", "ls", "--group", "finance").stdout
    claimed = stepflow("tasks", "claim", group_task["id"], "--as", "carol")
    assert claimed.exit_code == 0 and claimed.stdout == f"claimed: task {group_task['id']} by carol\n", claimed.output
    taken = stepflow("tasks", "claim", group_task["id"], "--as", "dave")
    assert taken.exit_code == 1 and "assigned to carol" in taken.stderr
    assert stepflow("tasks", "unclaim", group_task["id"], "--as", "carol").exit_code == 0
    rejected = stepflow("reject", group_task["id"], "--as", "dave", "-o", "json")
    assert data(rejected)["output_data"]["finance_approved"] is False
    ended = until(lambda: (v := data(stepflow("get", started["id"], "-o", "json")))["status"] == "completed" and v)
    assert ended["output"]["finance_approved"] is False


def test_ls_and_get_with_filters_and_formats(stepflow):
    started = data(stepflow("run", "order_fulfilment", "--input", json.dumps(ORDER), "--wait", "-o", "json"))
    page = data(stepflow("ls", "--workflow", "order_fulfilment", "--status", "completed", "--limit", "2", "-o", "json"))
    assert len(page["items"]) == 2 and {i["status"] for i in page["items"]} == {"completed"}
    assert page["next_cursor"]
    following = data(stepflow("ls", "--workflow", "order_fulfilment", "--status", "completed", "--limit", "2",
                              "--cursor", page["next_cursor"], "-o", "json"))
    assert not {i["id"] for i in following["items"]} & {i["id"] for i in page["items"]}
    table = stepflow("ls", "--workflow", "order_fulfilment", "--limit", "2")
    assert "more: --cursor " in table.stdout
    refused = stepflow("ls", "--workflow", "order_fulfilment", "--correlation-id", "x")
    assert refused.exit_code == 1 and "cannot be combined" in refused.stderr

    shown = stepflow("get", started["id"])
    assert started["id"] in shown.stdout and "confirm" in shown.stdout and "Order ORD-A1 for Ada" in shown.stdout
    view = yaml.safe_load(stepflow("get", started["id"], "--no-outputs", "-o", "yaml").stdout)
    assert view["status"] == "completed" and all("output" not in s for s in view["step_history"])


def test_graph_as_mermaid_text_and_json_for_definitions_and_instances(stepflow):
    mermaid = stepflow("graph", "order_fulfilment")
    assert mermaid.exit_code == 0 and mermaid.stdout.startswith("flowchart")
    assert 's_decide{"Large order?"}' in mermaid.stdout
    text = stepflow("graph", "order_fulfilment", "--text").stdout
    assert text.index("Receive order") < text.index("Large order?") < text.index("Confirm order")
    assert "if amount > 1000 or fraud_score >= 50" in text and "otherwise" in text
    as_json = data(stepflow("graph", "order_fulfilment", "-o", "json"))
    assert {n["id"] for n in as_json["nodes"]} >= {"receive", "confirm"} and "mermaid_source" not in as_json

    ran = data(stepflow("run", "order_fulfilment", "--input", json.dumps(ORDER), "--wait", "-o", "json"))
    drawn = stepflow("graph", "--instance", ran["id"], "--text").stdout
    assert "completed" in drawn and "not_reached" in drawn  # the branch not taken
    assert "classDef completed" in stepflow("graph", "--instance", ran["id"]).stdout
    assert stepflow("graph").exit_code == 2


def test_the_api_s_errors_become_messages_and_exit_codes(stepflow, tmp_path):
    missing = stepflow("get", "no-such-instance")
    assert missing.exit_code == 1 and missing.stderr.strip() == "error: no instance 'no-such-instance'"
    assert stepflow("run", "no_such_workflow").exit_code == 1
    bad_input = stepflow("run", "order_fulfilment", "--input", '{"order_id": 1}')
    assert bad_input.exit_code == 1 and "input_data" in bad_input.stderr  # the 422's issues, each on a line
    assert stepflow("run", "order_fulfilment", "--input", "{not json").exit_code == 2
    assert stepflow("run", "order_fulfilment", "--input", "[1, 2]").exit_code == 2
    wrong_prefix = stepflow("--api-prefix", "/elsewhere", "ls")
    assert wrong_prefix.exit_code == 1 and "check --endpoint and --api-prefix" in wrong_prefix.stderr


def test_the_program_exits_with_a_message_never_a_traceback(stepflow):
    process = stepflow.process("cancel", "no-such-instance")
    out, err = process.communicate(timeout=60)
    assert process.returncode == 1 and err == "error: no instance 'no-such-instance'\n" and out == ""
    closed = stepflow.process("ls", env={"STEPFLOW_ENDPOINT": "http://127.0.0.1:9"})
    out, err = closed.communicate(timeout=60)
    assert closed.returncode == 4 and "cannot reach Stepflow at http://127.0.0.1:9/workflows" in err
    assert "Traceback" not in err


def test_settings_come_from_the_config_file_a_profile_the_environment_and_flags(stepflow, service):
    stepflow.config.write_text(f'output = "json"\nendpoint = "http://127.0.0.1:9"\n\n[profiles.local]\n'
                               f'endpoint = "{service.base}"\n')
    try:
        unreachable = stepflow("definitions", "ls", env={"STEPFLOW_ENDPOINT": None})
        assert unreachable.exit_code == 4  # the file's endpoint
        via_profile = stepflow("--profile", "local", "definitions", "ls", env={"STEPFLOW_ENDPOINT": None})
        assert via_profile.exit_code == 0 and json.loads(via_profile.stdout)  # the file's output: json
        shown = data(stepflow("--profile", "local", "config", env={"STEPFLOW_ENDPOINT": None}))
        assert shown["endpoint"] == service.base and shown["sources"]["endpoint"].endswith("[profiles.local]")
        flagged = data(stepflow("config", "--endpoint", "http://127.0.0.1:1234/workflows"))
        assert flagged["sources"]["endpoint"] == "flag" and flagged["api"] == "http://127.0.0.1:1234/workflows"
        unknown = stepflow("--profile", "nope", "ls")
        assert unknown.exit_code == 2 and "no profile 'nope'" in unknown.stderr
    finally:
        stepflow.config.unlink()


RECEIVING = textwrap.dedent("""\
    name: cli_receive
    steps:
      - id: paid
        type: receive
        event_type: order.paid
        correlation_key: "{{ order_id }}"
    """)


def test_send_delivers_an_event_by_correlation_key_or_to_an_instance(stepflow, tmp_path):
    path = tmp_path / "receive.yaml"
    path.write_text(RECEIVING)
    assert stepflow("apply", "-f", str(path)).exit_code == 0

    def ended(instance_id: str) -> dict | None:
        view = data(stepflow("get", instance_id, "-o", "json"))
        return view if view["status"] in ("completed", "failed", "canceled") else None

    # By correlation key: taken by the instance whose receive step matches (now, or once it waits).
    first = data(stepflow("run", "cli_receive", "--input", '{"order_id": "C-1"}', "-o", "json"))["id"]
    sent = data(stepflow("send", "order.paid", "--key", "C-1", "--data", '{"amount": 3}', "--id", "c-1", "-o", "json"))
    assert sent["status"] in ("delivered", "kept"), sent
    done = until(lambda: ended(first))
    assert done["status"] == "completed" and done["context_data"]["paid"] == {"amount": 3}, done
    again = data(stepflow("send", "order.paid", "--key", "C-1", "--id", "c-1", "-o", "json"))
    assert again == {"status": "duplicate", "id": "c-1"}

    # To one instance: its receive step for the type takes it.
    second = data(stepflow("run", "cli_receive", "--input", '{"order_id": "C-2"}', "-o", "json"))["id"]
    to_it = data(stepflow("send", "order.paid", "--instance", second, "--data", '{"amount": 4}', "-o", "json"))
    assert to_it["instance_id"] == second, to_it
    done = until(lambda: ended(second))
    assert done["status"] == "completed" and done["context_data"]["paid"] == {"amount": 4}, done

    # For people: one line saying what became of it; a key nobody waits for keeps it.
    kept = stepflow("send", "order.paid", "--key", "C-none", "--ttl", "60")
    assert kept.exit_code == 0 and kept.stdout.startswith("kept ") and "kept until" in kept.stdout, kept.output
    # Refused before anything is sent: a key and an instance together; an event to an ended instance.
    assert stepflow("send", "order.paid", "--instance", second, "--key", "C-2").exit_code == 2
    ended_send = stepflow("send", "order.paid", "--instance", second)
    assert ended_send.exit_code == 1 and "no longer takes events" in ended_send.output, ended_send.output
