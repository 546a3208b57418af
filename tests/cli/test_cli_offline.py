"""The `stepflow` command's own logic, no service: settings, located issues, definition diffs, graph drawing,
tokens, completion, and the line it keeps (a client of the HTTP API, never of the service's code)."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest
import yaml

from stepflow_cli import config, diff, graph_text, locate
from stepflow_cli.cmd_local import LOCAL_JWT_SECRET
from stepflow_cli.main import cli
from tests.cli.support import Stepflow
from tests.local_service import free_port

PACKAGE = Path(__file__).resolve().parents[2] / "stepflow_cli"


@pytest.fixture
def stepflow(tmp_path) -> Stepflow:
    return Stepflow(f"http://127.0.0.1:{free_port()}", tmp_path / "config.toml")  # nothing listens there


# -------------------------------------------------------------------------------------------- settings


def test_each_setting_comes_from_the_first_source_that_has_it(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text('endpoint = "http://file:1"\noutput = "yaml"\ntoken = "file-token"\n\n'
                    '[profiles.prod]\nendpoint = "https://prod.example/api"\ntoken = "prod-token"\n')
    plain = config.resolve({}, env={}, path=path)
    assert (plain.endpoint, plain.output, plain.token) == ("http://file:1", "yaml", "file-token")
    profiled = config.resolve({}, env={"STEPFLOW_PROFILE": "prod"}, path=path)
    assert (profiled.endpoint, profiled.token, profiled.output) == ("https://prod.example/api", "prod-token", "yaml")
    assert profiled.sources["endpoint"] == f"{path} [profiles.prod]" and profiled.sources["output"] == str(path)
    env = config.resolve({}, env={"STEPFLOW_TOKEN": "env-token", "STEPFLOW_PROFILE": "prod"}, path=path)
    assert env.token == "env-token" and env.sources["token"] == "environment"
    flagged = config.resolve({"token": "flag-token", "output": "json"}, env={"STEPFLOW_TOKEN": "env-token"}, path=path)
    assert (flagged.token, flagged.output, flagged.sources["token"]) == ("flag-token", "json", "flag")
    default = config.resolve({}, env={}, path=tmp_path / "absent.toml")
    assert default.api_base == "http://127.0.0.1:8000/workflows" and default.token is None and not default.sources


def test_the_api_base_adds_the_prefix_once():
    assert config.Settings("https://x.example/api/").api_base == "https://x.example/api/workflows"
    assert config.Settings("https://x.example/api/workflows").api_base == "https://x.example/api/workflows"
    assert config.Settings("http://h:1", api_prefix="/").api_base == "http://h:1"
    assert config.Settings("http://h:1", api_prefix="v2/flows").api_base == "http://h:1/v2/flows"


@pytest.mark.parametrize(("text", "message"), [
    ("endpoint = ", "is not valid TOML"),
    ('endpont = "http://x"', "unknown setting 'endpont'"),
    ("endpoint = 3", "'endpoint' in the config file must be a string"),
    ('output = "xml"', "output 'xml'"),
    ('endpoint = "localhost:8000"', "must be an http:// or https:// URL"),
])
def test_a_config_file_that_cannot_be_used_is_named_with_the_reason(tmp_path, text, message):
    path = tmp_path / "config.toml"
    path.write_text(text)
    with pytest.raises(config.ConfigError, match=message):
        config.resolve({}, env={}, path=path)
    with pytest.raises(config.ConfigError, match="no profile 'x'"):
        config.resolve({}, env={}, profile="x", path=tmp_path / "absent.toml")


def test_the_config_file_lives_where_xdg_says():
    assert config.config_path({"XDG_CONFIG_HOME": "/c"}) == Path("/c/stepflow/config.toml")
    assert config.config_path({"STEPFLOW_CONFIG": "/elsewhere.toml", "XDG_CONFIG_HOME": "/c"}) == Path("/elsewhere.toml")
    assert config.config_path({}) == Path.home() / ".config" / "stepflow" / "config.toml"


# -------------------------------------------------------------------------------------- pure helpers


def test_an_issue_location_becomes_the_line_of_the_file():
    text = ("name: x\nversion: 1.0.0\nsteps:\n  - id: a\n    type: machine\n  - id: b\n    config:\n"
            "      url: http://x\n    depends_on:\n      - a\n      - ghost\n")
    root = locate.lines_of(text)
    assert locate.path_of("steps[1].depends_on[1]") == ["steps", 1, "depends_on", 1]
    assert locate.line_of(root, "steps[1].depends_on[1]") == 11
    assert locate.line_of(root, "steps[1].config.url") == 8
    assert locate.line_of(root, "steps[1].timeout") == 6  # not in the file: the deepest place that is
    assert locate.line_of(root, "name") == 1
    assert locate.line_of(root, "") is None and locate.line_of(locate.lines_of("a: [unclosed"), "a") is None
    as_json = locate.lines_of(json.dumps({"name": "x", "steps": [{"id": "a"}, {"id": "b"}]}, indent=1))
    assert locate.line_of(as_json, "steps[1].id") == 8


def test_a_diff_names_added_removed_and_changed_steps_and_fields():
    old = {"name": "w", "version": "1.0.0", "steps": [
        {"id": "a", "retry": {"max_attempts": 3}}, {"id": "b", "config": {"x": 1}}, {"id": "gone"}]}
    new = {"name": "w", "version": "1.1.0", "description": "now described", "steps": [
        {"id": "a", "retry": {"max_attempts": 5}}, {"id": "b", "config": {"x": 1}}, {"id": "new"}]}
    assert diff.changes(old, new) == [
        {"change": "changed", "what": "description", "details": ['description (new) → "now described"']},
        {"change": "changed", "what": "version", "details": ['version "1.0.0" → "1.1.0"']},
        {"change": "changed", "what": "step a", "details": ["retry.max_attempts 3 → 5"]},
        {"change": "added", "what": "step new", "details": []},
        {"change": "removed", "what": "step gone", "details": []},
    ]
    assert diff.changes(new, new) == []
    swapped = {**old, "steps": list(reversed(old["steps"]))}
    assert diff.changes(old, swapped) == [{"change": "changed", "what": "step order", "details": []}]


def test_a_graph_is_drawn_in_dependency_order_with_its_conditions():
    graph = {"name": "g", "version": "1", "nodes": [
        {"id": "end", "label": "End", "type": "machine", "is_terminal": True},
        {"id": "check", "label": "Check", "type": "gateway"},
        {"id": "start", "label": "[bold]Start[/bold]", "type": "machine"},
        {"id": "big", "label": "Big", "type": "human"}],
        "edges": [{"source": "start", "target": "check"}, {"source": "check", "target": "big", "condition": "n > 1"},
                  {"source": "check", "target": "end", "is_default": True}, {"source": "big", "target": "end"}]}
    assert graph_text.order(graph["nodes"], graph["edges"]) == ["start", "check", "big", "end"]
    from rich.console import Console

    console = Console(width=100, record=True, color_system=None)
    console.print(graph_text.render(graph))
    drawn = console.export_text()
    assert "[bold]Start[/bold]" in drawn  # a label is text, never markup
    assert drawn.index("Start") < drawn.index("Check") < drawn.index("Big") < drawn.index("End")
    assert "├─▶ big  if n > 1" in drawn and "└─▶ end  otherwise" in drawn
    cyclic = [{"source": "a", "target": "b"}, {"source": "b", "target": "a"}]
    assert graph_text.order([{"id": "a"}, {"id": "b"}], cyclic) == ["a", "b"]  # still shown


# ------------------------------------------------------------------------------------- the command


def test_the_development_token_is_what_a_local_service_accepts(stepflow):
    from chalicelib.auth import Authenticator
    from chalicelib.config import LOCAL_JWT_SECRET as SERVICE_SECRET

    assert LOCAL_JWT_SECRET == SERVICE_SECRET
    token = stepflow("token", "--role", "editor", "--tenant", "acme", "--user", "alice", "--groups", "a,b")
    assert token.exit_code == 0 and token.stdout.count("\n") == 1
    caller = Authenticator("hs256", SERVICE_SECRET).authenticate("Bearer " + token.stdout.strip())
    assert (caller.id, caller.role, caller.tenant_id, caller.groups) == ("alice", "editor", "acme", ("a", "b"))

    secret = "another-secret-of-at-least-32-bytes!"
    minted = json.loads(stepflow("token", "-o", "json", env={"STEPFLOW_JWT_SECRET": secret}).stdout)
    assert Authenticator("hs256", secret).authenticate("Bearer " + minted["token"]).role == "viewer"
    assert minted["claims"]["exp"] - minted["claims"]["iat"] == 3600
    short = stepflow("token", "--secret", "too-short")
    assert short.exit_code == 2 and "under 32 bytes" in short.stderr


def test_nothing_listening_is_exit_4_with_the_reason(stepflow):
    result = stepflow("ls")
    assert result.exit_code == 4
    assert result.stderr.startswith(f"error: cannot reach Stepflow at {stepflow.endpoint}/workflows")
    assert "stepflow server" in result.stderr and not result.stdout


def test_bad_usage_is_exit_2_before_anything_is_sent(stepflow, tmp_path):
    assert stepflow("run", "w", "--input", "{oops").exit_code == 2
    missing = stepflow("run", "w", "--input", f"@{tmp_path / 'none.json'}")
    assert missing.exit_code == 2 and "cannot read" in missing.stderr
    assert stepflow("ls", "--status", "sleeping").exit_code == 2
    assert stepflow("ls", "-o", "xml").exit_code == 2
    assert stepflow("--endpoint", "localhost:8000", "ls").exit_code == 2  # not a URL: said so, nothing sent


def test_shell_completion_scripts_and_completions(stepflow):
    for shell in ("bash", "zsh", "fish"):
        script = stepflow("completion", shell)
        assert script.exit_code == 0 and "_STEPFLOW_COMPLETE" in script.stdout
    completed = stepflow(env={"_STEPFLOW_COMPLETE": "bash_complete", "COMP_WORDS": "stepflow t",
                              "COMP_CWORD": "1"})
    assert completed.stdout.split() == ["plain,tasks", "plain,token"]
    options = stepflow(env={"_STEPFLOW_COMPLETE": "bash_complete", "COMP_WORDS": "stepflow run x --w",
                            "COMP_CWORD": "3"})
    assert "plain,--wait" in options.stdout.split()
    # Names come from the API; with no service there, no completions and no error in the shell.
    quiet = stepflow(env={"_STEPFLOW_COMPLETE": "bash_complete", "COMP_WORDS": "stepflow run ", "COMP_CWORD": "2"})
    assert quiet.exit_code == 0 and quiet.stdout.strip() == "" and quiet.stderr == ""


def test_every_api_command_takes_output_endpoint_and_token_after_its_name():
    def commands(group, prefix=""):
        for name, command in group.commands.items():
            if hasattr(command, "commands"):
                yield from commands(command, f"{prefix}{name} ")
            else:
                yield f"{prefix}{name}", {o for p in command.params for o in getattr(p, "opts", [])}

    found = dict(commands(cli))
    assert {"server", "apply", "validate", "run", "ls", "get", "logs", "cancel", "retry", "resume", "tasks ls",
            "tasks show", "tasks complete", "tasks claim", "approve", "reject", "token", "graph"} <= set(found)
    for name, options in found.items():
        if name not in ("server", "completion", "token"):
            assert {"-o", "--endpoint", "--token"} <= options, name


def test_the_cli_imports_no_service_code_but_the_server_command_does():
    imports: dict[str, set[str]] = {}
    for path in PACKAGE.glob("*.py"):
        names = imports.setdefault(path.name, set())
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module:
                names.add(node.module.split(".")[0])
    service = {"chalicelib", "stepflow_local", "app", "infra"}
    assert {name: used & service for name, used in imports.items() if used & service} == {
        "cmd_local.py": {"stepflow_local"}}
    source = (PACKAGE / "cmd_local.py").read_text()
    # ... and only inside `server`, so no other command loads it.
    assert source.index("from stepflow_local.server import") > source.index("def server(")


def test_yaml_output_is_yaml_of_the_same_data(stepflow):
    token = yaml.safe_load(stepflow("token", "-o", "yaml", "--user", "ann").stdout)
    assert token["claims"]["sub"] == "ann" and token["token"].count(".") == 2
