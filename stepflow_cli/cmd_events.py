"""The send command: an event into a running instance, or to whichever instance waits for it."""

from __future__ import annotations

from typing import Any

import click
from rich.text import Text

from stepflow_cli.client import path_of
from stepflow_cli.completion import instance_ids
from stepflow_cli.context import State, connection, pass_state, read_object


def _sent(answer: dict[str, Any]) -> Any:
    status = str(answer.get("status") or ("delivered" if answer.get("completed") else "accepted"))
    line = Text(f"{status} ", style="bold")
    if answer.get("instance_id"):
        line.append(str(answer["instance_id"]))
    if answer.get("step_name"):
        line.append(f"  step {answer['step_name']}", style="dim")
    if status == "kept" and answer.get("expires_at"):
        line.append(f"  kept until {answer['expires_at']} for a step that starts to wait", style="dim")
    return line


@click.command()
@click.argument("event_type")
@click.option("--instance", "instance_id", metavar="ID", shell_complete=instance_ids,
              help="Send it to this instance (its receive step for the type, or the webhook step --step names).")
@click.option("--key", "correlation_key", metavar="KEY",
              help="Without --instance: the correlation key the waiting receive step matches on.")
@click.option("--data", "data", metavar="JSON|@FILE", help="The event's data: a JSON object, or @file (JSON/YAML).")
@click.option("--step", metavar="STEP", help="With --instance: the step it is for.")
@click.option("--id", "event_id", metavar="ID", help="Your id for the event: sending it again is a duplicate, not a second event.")
@click.option("--ttl", "ttl_seconds", type=click.IntRange(min=1), metavar="SECONDS",
              help="How long it is kept when no step waits for it yet.")
@connection
@pass_state
def send(st: State, event_type: str, instance_id: str | None, correlation_key: str | None, data: str | None,
         step: str | None, event_id: str | None, ttl_seconds: int | None) -> None:
    """Send an event of EVENT_TYPE to a running workflow.

    With --instance, to that instance; otherwise to whichever instance of yours has a receive step
    waiting for the type (and --key), or kept until one does.
    """
    if instance_id and correlation_key:
        raise click.UsageError("--key matches waiting instances; with --instance the event goes to that one")
    if step and not instance_id:
        raise click.UsageError("--step names a step of the instance --instance gives")
    body: dict[str, Any] = {"type": event_type, "data": read_object(data, "--data")}
    for name, value in (("correlation_key", correlation_key), ("step", step), ("id", event_id),
                        ("ttl_seconds", ttl_seconds)):
        if value is not None:
            body[name] = value
    path = path_of("instances", instance_id, "events") if instance_id else "/events"
    _, answer = st.client.call("POST", path, body=body)
    st.out.result(answer, _sent)
