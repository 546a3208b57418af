"""How the CLI prints: tables (rich) for people, JSON or YAML for scripts, and errors on stderr."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import yaml
from rich.console import Console, RenderableType
from rich.table import Table
from rich.text import Text

# Exit codes (docs/cli.md): scripts can tell a refused request from a failed workflow.
OK = 0
FAILED = 1  # the API refused the request, or the definition has issues
USAGE = 2  # click's own code for a bad command line
INSTANCE_FAILED = 3  # the instance ended failed or canceled
UNREACHABLE = 4  # nothing answered at the endpoint
STILL_RUNNING = 5  # --timeout ran out before the instance ended

STATUS_STYLE = {
    "completed": "green", "succeeded": "green", "running": "yellow", "pending": "dim", "waiting": "blue",
    "failed": "red", "timed_out": "red", "canceled": "dim", "expired": "dim", "skipped": "dim",
}


PIPE_WIDTH = 160  # tables piped to a file or grep: wide enough that rows stay on one line


def console(stderr: bool = False) -> Console:
    # Made per call: click's test runner swaps sys.stdout, and rich must write to the current one.
    stream = sys.stderr if stderr else sys.stdout
    # COLUMNS is read here and passed on: rich reads the environment it saw when it was imported.
    columns = os.environ.get("COLUMNS", "")
    width = int(columns) if columns.isdigit() else (None if stream.isatty() else PIPE_WIDTH)
    return Console(file=stream, highlight=False, soft_wrap=False, width=width)


def cell(value: Any, style: str | None = None) -> Text:
    """A table cell as plain text: an API value must never be read as rich markup."""
    if value is None:
        return Text("-", style="dim")
    if isinstance(value, bool):
        return Text("yes" if value else "no", style=style or "")
    if isinstance(value, Mapping | list):
        return Text(json.dumps(value, ensure_ascii=False), style=style or "")
    return Text(str(value), style=style or "")


def status_cell(status: Any) -> Text:
    return cell(status, STATUS_STYLE.get(str(status), ""))


def table(columns: Sequence[str], rows: Iterable[Sequence[Any]], title: str | None = None) -> Table:
    grid = Table(title=title, title_justify="left", header_style="bold", box=None, pad_edge=False)
    for column in columns:
        grid.add_column(column, overflow="fold")  # an id folds onto the next line rather than losing its end
    for row in rows:
        grid.add_row(*(value if isinstance(value, Text) else cell(value) for value in row))
    return grid


def fields(pairs: Iterable[tuple[str, Any]]) -> Table:
    """A two-column 'name  value' block for one record."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    for name, value in pairs:
        grid.add_row(name, value if isinstance(value, Text) else cell(value))
    return grid


def dump(value: Any, fmt: str) -> str:
    if fmt == "yaml":
        return yaml.safe_dump(value, sort_keys=False, allow_unicode=True, default_flow_style=False).rstrip("\n")
    return json.dumps(value, indent=2, ensure_ascii=False)


class Output:
    """Prints results in the chosen format; `render` makes the table view of a result."""

    def __init__(self, fmt: str):
        self.fmt = fmt

    @property
    def table(self) -> bool:
        return self.fmt == "table"

    def result(self, value: Any, render: Callable[[Any], RenderableType | str | None] | None = None) -> None:
        if self.fmt != "table" or render is None:
            print(dump(value, "json" if self.fmt == "table" else self.fmt))
            return
        shown = render(value)
        if isinstance(shown, str):
            print(shown)
        elif shown is not None:
            console().print(shown)

    def line(self, renderable: RenderableType) -> None:
        console().print(renderable)

    def note(self, message: str) -> None:
        """A remark for people, on stderr, so stdout stays the result."""
        console(stderr=True).print(Text(message, style="dim"))


def error(message: str, issues: Sequence[Mapping[str, Any]] = (), hint: str | None = None) -> None:
    out = console(stderr=True)
    text = Text("error: ", style="bold red")
    text.append(message)
    out.print(text, soft_wrap=True)  # one line each, however narrow the terminal: easy to grep
    for issue in issues:
        out.print(issue_line(issue), soft_wrap=True)
    if hint:
        out.print(Text(hint, style="dim"), soft_wrap=True)


def issue_line(issue: Mapping[str, Any], where: str | None = None) -> Text:
    line = Text("  ")
    if where:
        line.append(where + "  ", style="bold")
    if issue.get("location"):
        line.append(str(issue["location"]) + ": ", style="cyan")
    line.append(str(issue.get("message", "")))
    if issue.get("code"):
        line.append(f" [{issue['code']}]", style="dim")
    if issue.get("hint"):
        line.append(f" ({issue['hint']})", style="dim")
    return line
