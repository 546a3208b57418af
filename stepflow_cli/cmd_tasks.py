"""Commands for human tasks: tasks ls/show/complete/claim/unclaim, and approve/reject for approval tasks."""

from __future__ import annotations

import json
from typing import Any

import click
from rich.console import Group
from rich.text import Text

from stepflow_cli import output
from stepflow_cli.client import path_of
from stepflow_cli.completion import instance_ids, task_ids
from stepflow_cli.context import State, connection, pass_state, read_object

PAST = {"approve": "approved", "reject": "rejected"}
TASK_STATUSES = ("pending", "completed", "expired", "canceled")
AS_OPTION = click.option("--as", "actor", metavar="USER",
                         help="Who acts. Needed without a token; with one the service takes it from the token.")


def acting(st: State, actor: str | None, field: str) -> dict[str, str]:
    """The body field naming who acts: the token names them when there is one."""
    if actor:
        return {field: actor}
    if not st.has_token:
        raise click.UsageError("say who acts with --as USER (with a token, the service takes it from the token)")
    return {}


@click.group()
def tasks() -> None:
    """Human tasks: the inbox."""


@tasks.command("ls")
@click.option("--status", type=click.Choice(TASK_STATUSES), help="Default: pending.")
@click.option("--assignee", metavar="USER")
@click.option("--group", metavar="GROUP")
@click.option("--instance", "instance_id", metavar="ID", shell_complete=instance_ids, help="Every task of one instance.")
@click.option("--overdue", is_flag=True)
@click.option("--tenant", metavar="TENANT", help="Without authentication: that tenant's tasks.")
@click.option("--limit", type=click.IntRange(1, 100), default=20, show_default=True)
@click.option("--cursor", metavar="CURSOR", help="The next_cursor of the previous page.")
@connection
@pass_state
def list_tasks(st: State, status: str | None, assignee: str | None, group: str | None, instance_id: str | None,
               overdue: bool, tenant: str | None, limit: int, cursor: str | None) -> None:
    """List tasks (default: pending).

    Filters combine as docs/api.md (Listings) says.
    """
    page = st.client.get("/tasks", {"status": status, "assignee_id": assignee, "assignee_group": group,
                                    "instance_id": instance_id, "overdue": "true" if overdue else None,
                                    "tenant_id": tenant, "limit": limit, "cursor": cursor})
    st.out.result(page, _tasks_page)


def _tasks_page(page: dict[str, Any]) -> Any:
    rows = output.table(("id", "workflow", "step", "status", "assignee", "group", "due", "instance"), (
        (t.get("id"), t.get("workflow"), t.get("step_name"), output.status_cell(t.get("status")), t.get("assignee"),
         t.get("assignee_group"), Text(str(t.get("due_date") or "-"), style="red" if t.get("overdue") else ""),
         t.get("instance_id")) for t in page.get("items") or []))
    if page.get("next_cursor"):
        return Group(rows, Text(f"more: --cursor {page['next_cursor']}", style="dim", no_wrap=True, overflow="ignore"))
    return rows


@tasks.command("show")
@click.argument("task_id", shell_complete=task_ids)
@connection
@pass_state
def show_task(st: State, task_id: str) -> None:
    """One task with its form."""
    st.out.result(st.client.get(path_of("tasks", task_id)), _task)


def _task(task: dict[str, Any]) -> Any:
    block = output.fields([
        ("id", task.get("id")), ("title", task.get("title")), ("workflow", task.get("workflow")),
        ("step", task.get("step_name")), ("instance", task.get("instance_id")),
        ("status", output.status_cell(task.get("status"))), ("assignee", task.get("assignee")),
        ("group", task.get("assignee_group")), ("claimed by", task.get("claimed_by")),
        ("due", task.get("due_date")), ("overdue", task.get("overdue")), ("description", task.get("description")),
        ("completed by", task.get("completed_by")), ("output", task.get("output_data")),
    ])
    form = (task.get("form_schema") or {}).get("properties") or {}
    required = set((task.get("form_schema") or {}).get("required") or [])
    fields_table = output.table(("field", "type", "required", "title"), (
        (name, spec.get("type"), name in required, spec.get("title")) for name, spec in form.items()), title="form")
    return Group(block, Text(""), fields_table)


@tasks.command("complete")
@click.argument("task_id", shell_complete=task_ids)
@click.option("--data", metavar="JSON|@FILE", required=True, help="The form's fields: a JSON object, or @file.")
@click.option("--comment", metavar="TEXT")
@AS_OPTION
@connection
@pass_state
def complete_task(st: State, task_id: str, data: str, comment: str | None, actor: str | None) -> None:
    """Submit a task's form: the workflow goes on with it."""
    body = {"output_data": read_object(data, "--data"), **acting(st, actor, "completed_by")}
    if comment:
        body["comment"] = comment
    found = st.client.post(path_of("tasks", task_id, "complete"), body)
    st.out.result(found, lambda t: Text(f"completed: task {t.get('id', task_id)} ({t.get('status')})"))


@tasks.command("claim")
@click.argument("task_id", shell_complete=task_ids)
@AS_OPTION
@connection
@pass_state
def claim_task(st: State, task_id: str, actor: str | None) -> None:
    """Take a group's task for yourself."""
    found = st.client.post(path_of("tasks", task_id, "claim"), acting(st, actor, "user"))
    st.out.result(found, lambda t: Text(f"claimed: task {t.get('id', task_id)} by {t.get('claimed_by') or t.get('assignee')}"))


@tasks.command("unclaim")
@click.argument("task_id", shell_complete=task_ids)
@AS_OPTION
@connection
@pass_state
def unclaim_task(st: State, task_id: str, actor: str | None) -> None:
    """Give a claimed task back to its group."""
    found = st.client.post(path_of("tasks", task_id, "unclaim"), acting(st, actor, "user"))
    st.out.result(found, lambda t: Text(f"unclaimed: task {t.get('id', task_id)}"))


def _decide(st: State, verb: str, task_id: str, actor: str | None, comment: str | None) -> None:
    body = acting(st, actor, "decided_by")
    if comment:
        body["comment"] = comment
    found = st.client.post(path_of("approvals", task_id, verb), body)
    st.out.result(found, lambda t: Text(f"{PAST[verb]}: task {t.get('id', task_id)}"
                                        + (f" {json.dumps(t['output_data'])}" if t.get("output_data") else "")))


@click.command()
@click.argument("task_id", shell_complete=task_ids)
@click.option("--comment", metavar="TEXT")
@AS_OPTION
@connection
@pass_state
def approve(st: State, task_id: str, comment: str | None, actor: str | None) -> None:
    """Approve an approval task.

    An approval task is a human task whose form has an `approved` field.
    """
    _decide(st, "approve", task_id, actor, comment)


@click.command()
@click.argument("task_id", shell_complete=task_ids)
@click.option("--comment", metavar="TEXT")
@AS_OPTION
@connection
@pass_state
def reject(st: State, task_id: str, comment: str | None, actor: str | None) -> None:
    """Reject an approval task."""
    _decide(st, "reject", task_id, actor, comment)
