"""Following an instance: its event log as it grows, a board of its steps while it runs, and how it ended."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from contextlib import nullcontext
from typing import Any

from rich.live import Live
from rich.text import Text

from stepflow_cli import output
from stepflow_cli.client import Client, EventPage

# How long the service holds one read of the log open while nothing happens (it allows up to 20 s).
LONG_POLL_SECONDS = 10.0
HEARTBEAT_GRACE = 20.0  # a followed stream sends a heartbeat at least every 15 s while nothing happens
TERMINAL = ("completed", "failed", "canceled")
MAX_SUMMARY = 160
STATE_BY_EVENT = {"step.started": "running", "step.succeeded": "succeeded", "step.failed": "failed",
                  "step.retried": "retrying", "task.created": "waiting", "task.completed": "succeeded",
                  "task.expired": "failed", "task.canceled": "canceled"}


def follow(client: Client, instance_id: str, on_event: Callable[[dict[str, Any]], Any], *,
           after: str | None = None, deadline: float | None = None) -> EventPage | None:
    """Hands every event after `after` to on_event, in order, until the instance has ended and its log is
    read to the end (returns the last page), or until the monotonic `deadline` passes (returns None).

    Reads the followed stream: on the local server one connection carries it all; behind API Gateway
    each answer ends within its limit and the stream is asked again from the cursor.
    """
    cursor = after
    while True:
        wait, read_timeout = LONG_POLL_SECONDS, LONG_POLL_SECONDS + HEARTBEAT_GRACE
        if deadline is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            # A read that sees nothing by the deadline times out there (the stream sends heartbeats).
            wait, read_timeout = min(wait, remaining), max(0.1, min(read_timeout, remaining + 0.5))
        stream = client.follow_events(instance_id, after=cursor, wait=wait, read_timeout=read_timeout)
        for event in stream.events():
            on_event(event)
            if deadline is not None and time.monotonic() >= deadline:
                stream.response.close()
                return None
        cursor = stream.cursor
        if stream.ended:
            return EventPage([], cursor, False, True, stream.status)


def read_all(client: Client, instance_id: str, after: str | None = None) -> Iterable[dict[str, Any]]:
    """The events there are now, every page of them."""
    cursor = after
    while True:
        page = client.events(instance_id, after=cursor)
        yield from page.events
        cursor = page.cursor
        if not page.more:
            return


def summary(event: Mapping[str, Any]) -> str:
    """One line about an event's data: the fields people look for first, else the data itself."""
    data = event.get("data") or {}
    kind = event.get("type", "")
    parts = []
    if "attempt" in data and kind.startswith("step."):
        parts.append(f"attempt {data['attempt']}")
    if data.get("error"):
        parts.append(f"{data['error']}: {data.get('message') or ''}".rstrip(": "))
    if data.get("next_attempt"):
        parts.append(f"next attempt {data['next_attempt']}")
    if data.get("fallback_follows"):
        parts.append("fallback follows")
    if kind == "task.created":
        who = data.get("assignee") or data.get("assignee_group") or "anyone"
        parts.append(f"task {data.get('task_id')} for {who}")
    elif kind in ("task.completed", "task.expired", "task.canceled"):
        if data.get("task_id"):
            parts.append(f"task {data['task_id']}")
        for key in ("completed_by", "reason"):
            if data.get(key):
                parts.append(f"{key.replace('_', ' ')} {data[key]}")
    elif kind == "step.succeeded" and "output" in data:
        parts.append("output " + json.dumps(data["output"], ensure_ascii=False, separators=(",", ":")))
    elif kind.startswith("instance."):
        parts.extend(f"{k} {data[k]}" for k in ("status", "run") if data.get(k))
    elif not parts:
        parts.append(json.dumps(data, ensure_ascii=False, separators=(",", ":")))
    text = " · ".join(p for p in parts if p)
    return text if len(text) <= MAX_SUMMARY else text[:MAX_SUMMARY - 1] + "…"


def event_line(event: Mapping[str, Any]) -> Text:
    at = str(event.get("at", ""))
    clock = at[11:23] if len(at) >= 23 else at
    kind = str(event.get("type", ""))
    style = "red" if kind.endswith(("failed", "expired")) else "green" if kind.endswith(("succeeded", "completed")) \
        else ""
    line = Text(clock, style="dim")
    line.append("  ")
    line.append(f"{kind:<16}", style=style)
    line.append(f" {event.get('step') or '':<18}", style="bold")
    line.append(" " + summary(event))
    return line


def print_event(out: output.Output) -> Callable[[dict[str, Any]], None]:
    """How `logs` and `run --follow` print each event: a line for people, NDJSON or YAML documents for scripts."""
    def emit(event: dict[str, Any]) -> None:
        if out.fmt == "json":
            print(json.dumps(event, ensure_ascii=False, separators=(",", ":")), flush=True)
        elif out.fmt == "yaml":
            print("---\n" + output.dump(event, "yaml"), flush=True)
        else:
            output.console().print(event_line(event), soft_wrap=True)  # one line per event, whatever its length
    return emit


class Board:
    """The steps of a running instance and what the log last said about each (for `run --wait`)."""

    def __init__(self, steps: Iterable[str]):
        self.state: dict[str, str] = {step: "pending" for step in steps}
        self.attempts: dict[str, int] = {}
        self.notes: dict[str, str] = {}  # what a person may want to act on: the task waiting, the last error
        self.instance = "running"

    def update(self, event: Mapping[str, Any]) -> str | None:
        """Applies an event; returns the step whose state changed, if one did."""
        kind = event.get("type", "")
        if kind == "instance.ended":
            self.instance = str((event.get("data") or {}).get("status") or "ended")
        step, new = event.get("step"), STATE_BY_EVENT.get(kind)
        if not step or not new:
            return None
        attempt = (event.get("data") or {}).get("attempt")
        if isinstance(attempt, int):
            self.attempts[step] = attempt
        changed = self.state.get(step) != new
        self.state[step] = new
        if kind in ("task.created", "step.failed", "step.retried"):
            self.notes[step] = summary(event)
        elif kind in ("step.succeeded", "task.completed"):
            self.notes.pop(step, None)
        return step if changed else None

    def render(self) -> Any:
        done = sum(1 for s in self.state.values() if s == "succeeded")
        return output.table(("step", "status", "attempt", ""), (
            (step, output.status_cell(status), self.attempts.get(step), output.cell(self.notes.get(step, ""), "dim"))
            for step, status in self.state.items()), title=f"{done}/{len(self.state)} steps done")


def watch_steps(client: Client, instance_id: str, steps: Iterable[str], *,
                deadline: float | None = None) -> EventPage | None:
    """Follows the log, showing the board live on a terminal, or a line per step change on stderr otherwise."""
    board = Board(steps)
    err = output.console(stderr=True)
    live = Live(board.render(), console=err, transient=True, refresh_per_second=8) if err.is_terminal \
        else nullcontext()

    def on_event(event: dict[str, Any]) -> None:
        step = board.update(event)
        if isinstance(live, Live):
            live.update(board.render())
        elif step:
            line = Text("  ")
            line.append(f"{step:<20}", style="bold")
            line.append_text(output.status_cell(board.state[step]))
            if event.get("type") in ("step.failed", "step.retried", "task.created"):
                line.append(" " + summary(event), style="dim")
            err.print(line)
            sys.stderr.flush()

    with live:
        return follow(client, instance_id, on_event, deadline=deadline)
