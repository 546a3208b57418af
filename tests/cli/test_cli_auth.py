"""The `stepflow` command against a local service with authentication on: its own development tokens are
accepted, a missing or weak one is refused with the API's reason, and who acts comes from the token."""

from __future__ import annotations

import json

import pytest

from tests.cli.support import Stepflow, until
from tests.local_service import LocalService

pytestmark = pytest.mark.e2e

SECRET = "cli-test-secret-0123456789-0123456789"
EXPENSE = {"requester": "alice", "manager": "bob", "amount": 20}


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    started = LocalService(tmp_path_factory.mktemp("cli-auth") / "service.log",
                           env={"STEPFLOW_AUTH": "hs256", "STEPFLOW_JWT_SECRET": SECRET})
    try:
        started.start()
    except RuntimeError as exc:
        pytest.fail(str(exc))
    yield started
    started.stop()


@pytest.fixture(scope="module")
def stepflow(service, tmp_path_factory) -> Stepflow:
    return Stepflow(service.base, tmp_path_factory.mktemp("config") / "config.toml",
                    env={"STEPFLOW_JWT_SECRET": SECRET})


def token(stepflow, *args: str) -> str:
    minted = stepflow("token", *args)
    assert minted.exit_code == 0, minted.output
    return minted.stdout.strip()


def test_without_a_token_the_api_s_401_is_shown_with_what_to_do(stepflow):
    refused = stepflow("definitions", "ls")
    assert refused.exit_code == 1
    assert refused.stderr.splitlines()[0] == "error: authentication required: send 'Authorization: Bearer <token>'"
    assert "stepflow token --role editor" in refused.stderr
    forged = stepflow("definitions", "ls", "--token", token(stepflow, "--secret", "x" * 40))
    assert forged.exit_code == 1 and "error: " in forged.stderr


def test_roles_from_the_token_decide_and_the_refusal_names_the_role(stepflow, tmp_path):
    viewer = token(stepflow, "--role", "viewer", "--tenant", "acme")
    listed = stepflow("definitions", "ls", "--token", viewer, "-o", "json")
    assert listed.exit_code == 0 and {d["name"] for d in json.loads(listed.stdout)} >= {"order_fulfilment"}
    path = tmp_path / "mine.yaml"
    path.write_text("name: cli_acme_flow\nversion: 1.0.0\nsteps:\n  - {id: a, type: machine, task_type: data.set, "
                    "config: {values: {x: 1}}}\n")
    forbidden = stepflow("apply", "-f", str(path), "--token", viewer)
    assert forbidden.exit_code == 1 and forbidden.stderr.strip() == "error: this needs the editor role; you have viewer"
    editor = token(stepflow, "--role", "editor", "--tenant", "acme")
    assert stepflow("apply", "-f", str(path), env={"STEPFLOW_TOKEN": editor}).stdout.startswith("created: ")
    other_tenant = token(stepflow, "--role", "editor", "--tenant", "globex")
    hidden = stepflow("definitions", "show", "cli_acme_flow", "--token", other_tenant)
    assert hidden.exit_code == 1 and "no definition named 'cli_acme_flow'" in hidden.stderr


def test_who_completes_a_task_comes_from_the_token(stepflow, service):
    stepflow.config.write_text(f'[profiles.bob]\nendpoint = "{service.base}"\n'
                               f'token = "{token(stepflow, "--role", "executor", "--tenant", "acme", "--user", "bob")}"\n')
    try:
        as_bob = ("--profile", "bob")
        started = json.loads(stepflow(*as_bob, "run", "expense_approval", "--input", json.dumps(EXPENSE),
                                      "-o", "json").stdout)
        task = until(lambda: next(iter(json.loads(stepflow(*as_bob, "tasks", "ls", "--instance", started["id"],
                                                            "-o", "json").stdout)["items"]), None))
        posing = stepflow(*as_bob, "tasks", "complete", task["id"], "--data", '{"approved": true}', "--as", "mallory")
        assert posing.exit_code == 1 and "'completed_by' is taken from your token" in posing.stderr
        done = stepflow(*as_bob, "tasks", "complete", task["id"], "--data", '{"approved": true}')  # no --as needed
        assert done.exit_code == 0, done.output
        shown = json.loads(stepflow(*as_bob, "tasks", "show", task["id"], "-o", "json").stdout)
        assert shown["completed_by"] == "bob"
    finally:
        stepflow.config.unlink()
