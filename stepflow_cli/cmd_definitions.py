"""Commands for definitions: apply (register, and what changed), validate (issues located in the file), graph, ls."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click
import yaml
from rich.text import Text

from stepflow_cli import diff, graph_text, locate, output
from stepflow_cli.client import ApiError, path_of
from stepflow_cli.completion import definition_names, instance_ids
from stepflow_cli.context import State, connection, pass_state

FILE_OPTION = click.option("-f", "--file", "path", required=True, metavar="FILE",
                           type=click.Path(dir_okay=False, allow_dash=True, path_type=Path),
                           help="A definition in YAML or JSON (- reads stdin).")


def read_definition(path: Path) -> tuple[str, str]:
    """The file's text and the content type to send it as."""
    try:
        text = sys.stdin.read() if str(path) == "-" else path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise click.BadParameter(f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}",
                                 param_hint="--file") from None
    return text, "application/json" if path.suffix.lower() == ".json" else "application/x-yaml"


def name_in(root: yaml.Node | None) -> str | None:
    if isinstance(root, yaml.MappingNode):
        for key, value in root.value:
            if getattr(key, "value", None) == "name" and isinstance(value, yaml.ScalarNode) and value.value:
                return str(value.value)
    return None


def located(issues: list[dict[str, Any]], root: yaml.Node | None) -> list[dict[str, Any]]:
    """The API's issues, each with the `line` of the file it points at (when the file has that place)."""
    return [{**issue, "line": locate.line_of(root, str(issue.get("location") or ""))} for issue in issues]


def print_issues(st: State, path: Path, issues: list[dict[str, Any]]) -> None:
    shown = "stdin" if str(path) == "-" else str(path)
    for issue in issues:
        where = f"{shown}:{issue['line']}" if issue.get("line") else shown
        output.console().print(output.issue_line(issue, where), soft_wrap=True)


def refused(st: State, path: Path, root: yaml.Node | None, exc: ApiError) -> None:
    """A 4xx for the definition: its message and issues, located, then exit 1."""
    issues = located(exc.issues, root)
    if st.out.table:
        output.error(exc.message)
        print_issues(st, path, issues)
    else:
        st.out.result({"valid": False, "status": exc.status, "message": exc.message, "issues": issues})
    raise click.exceptions.Exit(output.FAILED)


@click.command()
@FILE_OPTION
@click.option("--dry-run", is_flag=True, help="Validate and say whether a new revision would be stored; store nothing.")
@connection
@pass_state
def apply(st: State, path: Path, dry_run: bool) -> None:
    """Register a definition, showing what changed."""
    text, content_type = read_definition(path)
    root = locate.lines_of(text)
    name = name_in(root)
    previous = None
    if name:
        try:
            previous = st.client.get(path_of("definitions", name))
        except ApiError as exc:
            if exc.status != 404:
                raise
    if dry_run:
        return _dry_run(st, path, root, text, content_type, previous)
    try:
        # PUT when the file names its definition (a new revision only when the content changed).
        status, stored = st.client.call("PUT" if name else "POST", path_of("definitions", name) if name
                                        else "/definitions", text=text, content_type=content_type)
    except ApiError as exc:
        if exc.status in (400, 422):
            refused(st, path, root, exc)
        raise
    result = "created" if previous is None and status == 201 else "updated" if status == 201 else "unchanged"
    found = diff.changes(previous.get("definition") or {}, stored.get("definition") or {}) \
        if previous and result == "updated" else []
    st.out.result({"result": result, "previous_revision": previous.get("revision") if previous else None,
                   "changes": found, "diff": _service_diff(st, previous, stored) if result == "updated" else None,
                   "definition": stored}, _applied)


def _service_diff(st: State, previous: dict[str, Any] | None, stored: dict[str, Any]) -> dict[str, Any] | None:
    """The service's diff of the two revisions (sources and structure), when it keeps revision numbers."""
    old, new = (previous or {}).get("revision_number"), stored.get("revision_number")
    if not old or not new:
        return None
    try:
        return st.client.get(path_of("definitions", stored["name"], "revisions", str(old), "diff"),  # type: ignore[no-any-return]
                             {"to": str(new)})
    except ApiError as exc:
        if exc.status == 404:  # a service without revision history
            return None
        raise


def _applied(value: dict[str, Any]) -> Any:
    stored = value["definition"]
    head = Text(f"{value['result']}: ", style="bold green" if value["result"] != "unchanged" else "bold")
    head.append(f"{stored.get('name')} {stored.get('version')} ")
    if value["result"] == "updated":
        head.append(f"revision {value['previous_revision']} → {stored.get('revision')}", style="dim")
    else:
        head.append(f"revision {stored.get('revision')}", style="dim")
    lines = [head]
    for change in value["changes"]:
        mark, style = {"added": ("+", "green"), "removed": ("-", "red")}.get(change["change"], ("~", "yellow"))
        lines.append(Text(f"  {mark} {change['what']}", style=style))
        lines.extend(Text(f"      {detail}", style="dim") for detail in change["details"])
    structural = (value.get("diff") or {}).get("structural") or {}
    for mark, key, style in (("+", "edges_added", "green"), ("-", "edges_removed", "red")):
        for edge in structural.get(key) or []:
            when = f" when {edge['condition']}" if edge.get("condition") else ""
            lines.append(Text(f"  {mark} edge {edge['source']} → {edge['target']}{when}", style=style))
    from rich.console import Group

    return Group(*lines)


def _dry_run(st: State, path: Path, root: yaml.Node | None, text: str, content_type: str,
             previous: dict[str, Any] | None) -> None:
    try:
        checked = st.client.post("/definitions/validate", text=text, content_type=content_type)
    except ApiError as exc:
        if exc.status in (400, 422):
            refused(st, path, root, exc)
        raise
    if not checked.get("valid"):
        refused(st, path, root, ApiError(422, "the definition is not valid", checked.get("issues") or []))
    stored = previous.get("revision") if previous else None
    would = "unchanged" if stored == checked.get("revision") else "updated" if previous else "created"
    # The API has no endpoint that returns a definition as it would be stored without storing it, so the
    # step-by-step comparison can only be made by `apply` itself, from the two stored revisions.
    st.out.result({"result": would, "dry_run": True, "previous_revision": stored, "revision": checked.get("revision")},
                  lambda v: Text(f"would be {v['result']}: revision {v['revision']}"
                                 + (f" (stored: {v['previous_revision']})" if v["previous_revision"] else "")
                                 + ("; nothing stored. The API has no dry-run diff: `apply` shows the changes "
                                    "once it has stored the new revision." if v["result"] == "updated" else
                                    "; nothing stored.")))


@click.command()
@FILE_OPTION
@connection
@pass_state
def validate(st: State, path: Path) -> None:
    """Check a definition; store nothing.

    Issues point at lines of the file; exit 1 when there are any.
    """
    text, content_type = read_definition(path)
    root = locate.lines_of(text)
    try:
        checked = st.client.post("/definitions/validate", text=text, content_type=content_type)
    except ApiError as exc:
        if exc.status in (400, 413, 422):
            refused(st, path, root, exc)
        raise
    issues = located(checked.get("issues") or [], root)
    if not st.out.table:
        st.out.result({**checked, "issues": issues})
    elif checked.get("valid"):
        st.out.line(Text(f"valid: {path} (revision {checked.get('revision')})", style="green"))
    else:
        output.error(f"{path}: {len(issues)} issue{'s' if len(issues) != 1 else ''}")
        print_issues(st, path, issues)
    if not checked.get("valid"):
        raise click.exceptions.Exit(output.FAILED)


@click.command()
@click.argument("name", required=False, shell_complete=definition_names)
@click.option("--instance", "instance_id", metavar="ID", shell_complete=instance_ids,
              help="An instance's graph, coloured by the state of each step.")
@click.option("--version", "def_version", metavar="VERSION", help="An older version of the definition.")
@click.option("--text", "as_text", is_flag=True, help="Draw it in the terminal instead of printing Mermaid.")
@connection
@pass_state
def graph(st: State, name: str | None, instance_id: str | None, def_version: str | None, as_text: bool) -> None:
    """A workflow's graph: Mermaid, or text (--text).

    Paste the Mermaid into any Mermaid renderer; --text draws it in the terminal.
    """
    if bool(name) == bool(instance_id):
        raise click.UsageError("give a definition NAME or --instance ID")
    fmt = "mermaid" if st.out.table and not as_text else "json"
    if instance_id:
        found = st.client.get(path_of("instances", instance_id, "graph"), {"graph_format": fmt})
    else:
        found = st.client.get(path_of("definitions", str(name), "graph"), {"graph_format": fmt, "version": def_version})
    st.out.result(found, graph_text.render if as_text else lambda g: g.get("mermaid_source", "").rstrip("\n"))


@click.group()
def definitions() -> None:
    """Registered workflow definitions."""


@definitions.command("ls")
@click.option("--namespace", metavar="NAMESPACE", help="Only this namespace's definitions.")
@click.option("--include-inactive", is_flag=True, help="Deactivated definitions too.")
@connection
@pass_state
def list_definitions(st: State, namespace: str | None, include_inactive: bool) -> None:
    """The registered definitions (latest revision of each)."""
    found = st.client.get("/definitions",
                          {"namespace": namespace, "include_inactive": "true" if include_inactive else None})
    st.out.result(found, lambda rows: output.table(
        ("name", "version", "revision", "steps", "created", "description"),
        ((d.get("name"), d.get("version"), d.get("revision"), len(d.get("steps") or []), d.get("created_at"),
          d.get("description")) for d in rows)))


@definitions.command("show")
@click.argument("name", shell_complete=definition_names)
@click.option("--version", "def_version", metavar="VERSION", help="An older version.")
@click.option("--asl", is_flag=True, help="The compiled state machine (Amazon States Language) instead.")
@click.option("--namespace", metavar="NAMESPACE", help="The definition of this name in this namespace.")
@connection
@pass_state
def show_definition(st: State, name: str, def_version: str | None, asl: bool, namespace: str | None) -> None:
    """One definition as stored (defaults filled in)."""
    params = {"version": def_version, "namespace": namespace}
    if asl:
        st.out.result(st.client.get(path_of("definitions", name, "asl"), params))
        return
    found = st.client.get(path_of("definitions", name), params)
    st.out.result(found, lambda d: output.dump(d.get("definition"), "yaml"))
