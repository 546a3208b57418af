"""Commands for instances: run (and wait or follow), ls, get, logs, cancel, retry, resume."""

from __future__ import annotations

import json
import time
from typing import Any

import click
from rich.console import Group
from rich.text import Text

from stepflow_cli import output, watch
from stepflow_cli.client import path_of
from stepflow_cli.completion import definition_names, instance_ids
from stepflow_cli.context import State, connection, pass_state, read_object

STATUSES = ("pending", "running", "waiting", "completed", "failed", "canceled")


def _started(view: dict[str, Any]) -> Any:
    head = Text("started ", style="bold")
    head.append(str(view.get("id")))
    head.append(f"  {view.get('definition_name')} ({view.get('status')})", style="dim")
    return Group(head, Text(f"stepflow get {view.get('id')}   ·   stepflow logs -f {view.get('id')}", style="dim"))


def _ended(result: dict[str, Any]) -> Any:
    status = str(result.get("status"))
    head = Text(f"{status} ", style=output.STATUS_STYLE.get(status, "bold") + " bold")
    head.append(str(result.get("id")), style="dim")
    lines = [head]
    if result.get("error"):
        error = result["error"]
        lines.append(Text(f"{error.get('error')}: {error.get('message')}" if isinstance(error, dict) else str(error),
                          style="red"))
    if result.get("result") is not None:
        lines.append(Text(json.dumps(result["result"], indent=2, ensure_ascii=False)))
    return Group(*lines)


def steps_table(view: dict[str, Any]) -> Any:
    return output.table(("step", "status", "attempts", "started", "completed", "error"), (
        (s.get("step_name"), output.status_cell(s.get("status")), s.get("attempts"), s.get("started_at"),
         s.get("completed_at"), (s.get("error") or {}).get("error") if isinstance(s.get("error"), dict) else s.get("error"))
        for s in view.get("step_history") or []))


@click.command()
@click.argument("name", shell_complete=definition_names)
@click.option("--input", "input_data", metavar="JSON|@FILE", help="The input data: a JSON object, or @file (JSON/YAML).")
@click.option("--wait", is_flag=True, help="Show the steps' progress until it ends, then the result.")
@click.option("--follow", is_flag=True, help="Print its events as they happen until it ends, then the result.")
@click.option("--timeout", type=click.FloatRange(min=0), metavar="SECONDS",
              help="With --wait/--follow: stop waiting after this long (exit 5; it goes on running).")
@click.option("--correlation-id", metavar="ID", help="Your reference: a tag to find it by (ls --correlation-id).")
@click.option("--idempotency-key", metavar="KEY", help="Repeating the start with the same key returns the same instance.")
@connection
@pass_state
def run(st: State, name: str, input_data: str | None, wait: bool, follow: bool, timeout: float | None,
        correlation_id: str | None, idempotency_key: str | None) -> None:
    """Start an instance of workflow NAME.

    With --wait or --follow: exit 3 when it ends failed or canceled.
    """
    body: dict[str, Any] = {"definition_name": name, "input_data": read_object(input_data, "--input")}
    if correlation_id:
        body["correlation_id"] = correlation_id
    headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
    _, view = st.client.call("POST", "/instances", body=body, headers=headers)
    if not (wait or follow):
        st.out.result(view, _started)
        return
    instance_id = view["id"]
    st.out.note(f"instance {instance_id} started; Ctrl-C stops waiting (the instance goes on)")
    deadline = time.monotonic() + timeout if timeout is not None else None
    try:
        if follow:
            watch.follow(st.client, instance_id, watch.print_event(st.out), deadline=deadline)
        else:
            steps = (st.client.get(path_of("definitions", name)) or {}).get("steps") or []
            watch.watch_steps(st.client, instance_id, steps, deadline=deadline)
    except KeyboardInterrupt:
        output.error(f"stopped waiting; instance {instance_id} goes on (stepflow get {instance_id})")
        raise click.exceptions.Exit(130) from None
    _finish(st, instance_id, follow, timeout)


def _finish(st: State, instance_id: str, followed: bool, timeout: float | None) -> None:
    status, result = st.client.call("GET", path_of("instances", instance_id, "result"))
    if status == 202:
        output.error(f"instance {instance_id} is still {result.get('status')} after {timeout:g} s; it goes on "
                     f"(stepflow logs -f {instance_id})")
        raise click.exceptions.Exit(output.STILL_RUNNING)
    if followed and not st.out.table:
        watch.print_event(st.out)(result)  # after the events, in their form: the last line (or document)
    else:
        if st.out.table and not followed:  # the events told the story already when followed
            st.out.line(steps_table(st.client.get(path_of("instances", instance_id), {"include_outputs": "false"})))
        st.out.result(result, _ended)
    if result.get("status") != "completed":
        raise click.exceptions.Exit(output.INSTANCE_FAILED)


@click.command("ls")
@click.option("--status", type=click.Choice(STATUSES))
@click.option("--workflow", metavar="NAME", shell_complete=definition_names, help="Instances of this workflow.")
@click.option("--created-by", metavar="USER")
@click.option("--correlation-id", metavar="ID")
@click.option("--tenant", metavar="TENANT", help="Without authentication: that tenant's instances.")
@click.option("--limit", type=click.IntRange(1, 100), default=20, show_default=True)
@click.option("--cursor", metavar="CURSOR", help="The next_cursor of the previous page.")
@connection
@pass_state
def list_instances(st: State, status: str | None, workflow: str | None, created_by: str | None,
                   correlation_id: str | None, tenant: str | None, limit: int, cursor: str | None) -> None:
    """List instances, newest first.

    Filters combine as docs/api.md (Listings) says.
    """
    page = st.client.get("/instances", {"status": status, "workflow_name": workflow, "created_by": created_by,
                                        "correlation_id": correlation_id, "tenant_id": tenant, "limit": limit,
                                        "cursor": cursor})
    st.out.result(page, _instances_page)


def _instances_page(page: dict[str, Any]) -> Any:
    rows = output.table(("id", "workflow", "status", "created", "completed"), (
        (i.get("id"), i.get("definition_name"), output.status_cell(i.get("status")), i.get("created_at"),
         i.get("completed_at")) for i in page.get("items") or []))
    if page.get("next_cursor"):
        return Group(rows, Text(f"more: --cursor {page['next_cursor']}", style="dim", no_wrap=True, overflow="ignore"))
    return rows


@click.command()
@click.argument("instance_id", shell_complete=instance_ids)
@click.option("--no-outputs", is_flag=True, help="Leave the steps' outputs out.")
@connection
@pass_state
def get(st: State, instance_id: str, no_outputs: bool) -> None:
    """One instance: status, progress, steps, data."""
    view = st.client.get(path_of("instances", instance_id), {"include_outputs": "false" if no_outputs else None})
    st.out.result(view, _instance)


def _instance(view: dict[str, Any]) -> Any:
    progress = view.get("progress") or {}
    block = output.fields([
        ("id", view.get("id")), ("workflow", f"{view.get('definition_name')} {view.get('version')}"),
        ("status", output.status_cell(view.get("status"))), ("current", ", ".join(view.get("current_steps") or []) or None),
        ("progress", f"{progress.get('completed_steps')}/{progress.get('total_steps')} steps"),
        ("created", view.get("created_at")), ("completed", view.get("completed_at")),
        ("error", view.get("error")), ("retry of", view.get("retry_of")), ("retried by", view.get("retried_by")),
    ])
    data = Text(json.dumps(view.get("output") if view.get("output") is not None else view.get("context_data"),
                           indent=2, ensure_ascii=False))
    return Group(block, Text(""), steps_table(view), Text(""), Text("output" if view.get("output") is not None
                                                                     else "data", style="bold"), data)


@click.command()
@click.argument("instance_id", shell_complete=instance_ids)
@click.option("-f", "--follow", is_flag=True, help="Keep reading until the instance ends.")
@click.option("--after", metavar="SEQ", help="Only events after this one (an event's seq).")
@connection
@pass_state
def logs(st: State, instance_id: str, follow: bool, after: str | None) -> None:
    """An instance's events; -f follows until it ends.

    -o json prints one JSON object per line, as the API sends them.
    """
    emit = watch.print_event(st.out)
    if not follow:
        for event in watch.read_all(st.client, instance_id, after):
            emit(event)
        return
    try:
        watch.follow(st.client, instance_id, emit, after=after)
    except KeyboardInterrupt:
        raise click.exceptions.Exit(130) from None


def _action(st: State, verb: str, instance_id: str, **params: Any) -> None:
    found = st.client.post(path_of("instances", instance_id, verb), params=params or None)
    st.out.result(found, lambda v: Text(f"{verb}: {v.get('id', instance_id)} is {v.get('status')}"
                                        + (f" (retry of {v['retry_of']})" if verb == "retry" and v.get("retry_of")
                                           else "")))


@click.command()
@click.argument("instance_id", shell_complete=instance_ids)
@click.option("--reason", metavar="TEXT", help="Kept with the instance (at most 1,000 characters).")
@connection
@pass_state
def cancel(st: State, instance_id: str, reason: str | None) -> None:
    """Stop a running instance; its open tasks are canceled."""
    _action(st, "cancel", instance_id, reason=reason)


@click.command()
@click.argument("instance_id", shell_complete=instance_ids)
@connection
@pass_state
def retry(st: State, instance_id: str) -> None:
    """Start again: a new instance, same input."""
    _action(st, "retry", instance_id)


@click.command()
@click.argument("instance_id", shell_complete=instance_ids)
@connection
@pass_state
def resume(st: State, instance_id: str) -> None:
    """Continue a failed instance from its failed step."""
    _action(st, "resume", instance_id)
