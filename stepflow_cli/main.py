"""The `stepflow` command: its group, global options and the commands that are about the CLI itself."""

from __future__ import annotations

import sys

import click
from rich.text import Text

from stepflow_cli import (
    cmd_definitions,
    cmd_events,
    cmd_instances,
    cmd_local,
    cmd_tasks,
    completion,
    config,
    output,
    version,
)
from stepflow_cli.context import ROOT_OPTIONS, State, StepflowGroup, connection, pass_state

COMPLETE_VAR = "_STEPFLOW_COMPLETE"


def root_options(f):  # type: ignore[no-untyped-def]
    for option in reversed(ROOT_OPTIONS):
        f = option(f)
    return connection(f)


@click.group(cls=StepflowGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(version(), "--version", prog_name="stepflow")
@root_options
def cli() -> None:
    """Stepflow from the command line: register workflows, run them, watch them, work their tasks.

    Talks to the REST API at --endpoint (default http://127.0.0.1:8000, where `stepflow server` listens).
    Settings come from flags, then STEPFLOW_ENDPOINT / STEPFLOW_TOKEN / STEPFLOW_OUTPUT, then
    ~/.config/stepflow/config.toml. Exit codes: 0 ok, 1 refused by the API (its message is shown) or
    invalid, 2 bad usage, 3 the instance failed or was canceled, 4 no service at the endpoint, 5 still
    running when --timeout ran out.
    """


for command in (cmd_local.server, cmd_definitions.apply, cmd_definitions.validate, cmd_instances.run,
                cmd_instances.list_instances, cmd_instances.get, cmd_instances.logs, cmd_instances.cancel,
                cmd_instances.retry, cmd_instances.resume, cmd_tasks.tasks, cmd_tasks.approve, cmd_tasks.reject,
                cmd_definitions.graph, cmd_definitions.definitions, cmd_local.token, cmd_events.send):
    cli.add_command(command)


@cli.command("completion")
@click.argument("shell", type=click.Choice(completion.SHELLS))
def completion_command(shell: str) -> None:
    """Print the shell completion script.

    \b
    bash: eval "$(stepflow completion bash)"   (in ~/.bashrc)
    zsh:  eval "$(stepflow completion zsh)"    (in ~/.zshrc)
    fish: stepflow completion fish | source
    """
    click.echo(completion.script(cli, shell), nl=False)


@cli.command("config")
@connection
@pass_state
def show_config(st: State) -> None:
    """Show the settings in effect and their sources."""
    settings = st.settings
    shown = {"endpoint": settings.endpoint, "api_prefix": settings.api_prefix, "api": settings.api_base,
             "output": settings.output, "token": "set" if settings.token else None,
             "config_file": str(config.config_path()), "sources": settings.sources}
    st.out.result(shown, lambda v: output.fields(
        [(k, Text(f"{v[k]}" if v[k] is not None else "-") + Text(f"  ({v['sources'].get(k, 'default')})", style="dim")
          if k in ("endpoint", "api_prefix", "output", "token") else v[k]) for k in v if k != "sources"]))


def main() -> None:
    sys.exit(cli.main(prog_name="stepflow", complete_var=COMPLETE_VAR, standalone_mode=True))
