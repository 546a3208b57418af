"""Shell completion: the script for each shell, and names and ids completed from the API (quietly, on failure none)."""

from __future__ import annotations

from typing import Any

import click
from click.shell_completion import CompletionItem

SHELLS = ("bash", "zsh", "fish")


def _ask(ctx: click.Context, path: str, params: dict[str, Any] | None = None) -> Any:
    from stepflow_cli.context import state

    try:
        return state(ctx).client.get(path, params)
    except Exception:  # noqa: BLE001 - completing a word must never print an error into the shell
        return None


def definition_names(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    found = _ask(ctx, "/definitions") or []
    return [CompletionItem(d["name"], help=d.get("description"))
            for d in found if isinstance(d, dict) and str(d.get("name", "")).startswith(incomplete)]


def instance_ids(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    found = (_ask(ctx, "/instances", {"limit": 50}) or {}).get("items") or []
    return [CompletionItem(i["id"], help=f"{i.get('definition_name')} {i.get('status')}")
            for i in found if str(i.get("id", "")).startswith(incomplete)]


def task_ids(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    found = (_ask(ctx, "/tasks", {"limit": 50}) or {}).get("items") or []
    return [CompletionItem(t["id"], help=f"{t.get('workflow')} {t.get('step_name')}")
            for t in found if str(t.get("id", "")).startswith(incomplete)]


def script(cli: click.Command, shell: str, prog: str = "stepflow") -> str:
    """The completion script click generates for the shell (what `eval` or a completion file loads)."""
    from click.shell_completion import get_completion_class

    cls = get_completion_class(shell)
    if cls is None:
        raise click.BadParameter(f"one of {', '.join(SHELLS)}")
    return cls(cli, {}, prog, "_STEPFLOW_COMPLETE").source()
