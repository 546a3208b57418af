"""The scheduled sweep's reads with 10,000 waiting instances: DynamoDB items read by every pass of
overdue_sweep, divided by the items that were due (tasks past their due date, instances whose watch
has come), against the target of 1.1. The records are written straight into the local runtime's
tables (no executions run): waiting instances, each with one pending human task."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from chalicelib.aws.items import to_item
from chalicelib.core.listing import instance_keys, task_keys
from chalicelib.core.tasks import OPEN
from chalicelib.core.times import iso
from stepflow_local.call_count import CallCounter

TARGET = 1.1


def _batch(ddb: Any, table: str, items: list[dict[str, Any]]) -> None:
    for i in range(0, len(items), 25):
        request = {table: [{"PutRequest": {"Item": to_item(item)}} for item in items[i:i + 25]]}
        while request:
            request = ddb.batch_write_item(RequestItems=request).get("UnprocessedItems") or None


def seed(services: Any, waiting: int, due_tasks: int, due_watches: int) -> None:
    """`waiting` instances waiting on a task (due in a day), `due_tasks` of those tasks already due,
    and `due_watches` running instances whose watch has come (a status event that never arrived)."""
    now = datetime.now(UTC)
    long_ago = iso(now - timedelta(hours=1))
    instances, tasks = [], []
    for n in range(waiting + due_watches):
        instance_id = f"bench-{n:06d}"
        watched = n >= waiting
        instances.append({"id": instance_id, "partition": "instance", "definition_name": "bench",
                          "version": "1", "revision": "r", "status": "running" if watched else "waiting",
                          "created_at": long_ago, "created_key": f"{long_ago}#{instance_id}",
                          "execution_arn": f"arn:aws:states:us-east-1:123456789012:execution:bench:{instance_id}",
                          **({"chore": "watch", "chore_at": long_ago} if watched else {})})
        instances[-1].update({k: v for k, v in instance_keys(instances[-1]).items() if v is not None})
        if watched:
            continue
        due = iso(now - timedelta(minutes=5)) if n < due_tasks else iso(now + timedelta(days=1))
        task = {"id": f"task-{n:06d}", "instance_id": instance_id, "workflow": "bench", "revision": "r",
                "step_name": "review", "kind": "human", "status": "pending", "created_at": long_ago,
                "created_key": f"{long_ago}#task-{n:06d}", "attempt": 1, "due_at": due, "due_state": OPEN,
                "escalation": {"action": "notify"}}
        tasks.append({**task, **{k: v for k, v in task_keys(task).items() if v is not None}})
    _batch(services.ddb, services.settings.instances_table, instances)
    _batch(services.ddb, services.settings.tasks_table, tasks)


def run(services: Any, region: str, sweep: Any, *, waiting: int = 10_000, due_tasks: int = 100,
        due_watches: int = 20) -> dict[str, Any]:
    seed(services, waiting, due_tasks, due_watches)
    due = due_tasks + due_watches
    counter = CallCounter(region).attach()
    try:
        stats = sweep()
        swept = counter.items_read
        calls = dict(counter.calls)
        # What the reconcile pass read before the watch: every live instance older than two minutes.
        counter.reset()
        cutoff = iso(datetime.now(UTC) - timedelta(minutes=2))
        for status in ("running", "waiting"):
            services.instance_store.with_status(status, created_before=cutoff)
        baseline_reconcile = counter.items_read
    finally:
        counter.detach()
    return {"waiting": waiting, "due": due, "items_read": swept, "ratio": swept / due, "calls": calls,
            "stats": stats, "baseline_items_read": baseline_reconcile + due_tasks,
            "baseline_ratio": (baseline_reconcile + due_tasks) / due}


def report_markdown(result: dict[str, Any]) -> str:
    met = "met" if result["ratio"] <= TARGET else "**missed**"
    return "\n".join([
        "## The scheduled sweep's reads with 10,000 waiting instances", "",
        f"{result['waiting']:,} instances waiting on a human task (written straight into the local runtime's "
        f"tables), of which {result['due']} items are due: tasks past their due date and instances whose "
        "watch has come. Items = DynamoDB items returned to the sweep by every pass (app.py overdue_sweep).", "",
        "| | items read | due items | read ÷ due | target |", "|---|---:|---:|---:|---:|",
        f"| before (every live instance read by reconcile, plus the due tasks; its DescribeExecution and "
        f"history read per instance not counted) | {result['baseline_items_read']:,} | {result['due']} | "
        f"{result['baseline_ratio']:.1f} | ≤ {TARGET} |",
        f"| now (watch chore) | {result['items_read']:,} | {result['due']} | {result['ratio']:.2f} | "
        f"≤ {TARGET} ({met}) |", "",
        f"Calls the sweep made: {', '.join(f'{k} {v}' for k, v in sorted(result['calls'].items()))}.", "",
    ])
