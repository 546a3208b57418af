"""Listing at scale: GET /instances and GET /tasks through the app (chalice.test.Client on the LocalRuntime's
moto) at 100 / 10,000 / 100,000 stored items, against the filter-after-query listing they replaced.

`python -m bench.list_bench [--sizes 100,10000,100000] [--write]` prints the section (--write: and replaces it in
bench/results.md, the other sections as they were); `python -m bench` includes it.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from chalicelib.aws.items import to_item
from chalicelib.core.listing import instance_keys, task_keys
from chalicelib.resources import Index, Table

HEADING = "## Listing at scale (`GET /instances`, `GET /tasks`)"
SIZES = (100, 10_000, 100_000)
PAGE = 50
REPEATS = 21
WARM_UP = 3
# The old listing read every item of its index partition when the other filters matched nothing: past
# this many reads the reference run is not waited for; its reads are counted from the data instead.
REFERENCE_READ_CAP = 20_000
WORKFLOWS = ("A", "B", "C", "D")
TENANTS = ("t1", "t2", "t3", "t4")
# The instances table as it was: one index per filter, the others filtered after the query.
OLD_INSTANCES = Table("OldInstances", "old-instances", "id", indexes=(
    Index("by_created", "partition", "created_key"), Index("by_workflow", "definition_name", "created_key"),
    Index("by_status", "status", "created_key"), Index("by_tenant", "tenant_id", "created_key")))
OLD_FILTERS = (("tenant_id", "by_tenant"), ("definition_name", "by_workflow"), ("status", "by_status"))


def old_search(ddb: Any, table: str, filters: dict[str, str], limit: int) -> tuple[list[dict[str, Any]], int, int]:
    """The former InstanceStore.search (most selective index, the other filters after the query, pages
    of max(limit, 25) until the page fills): (items, queries, items read)."""
    index, key, value = "by_created", "partition", "instance"
    for field, name in OLD_FILTERS:
        if filters.get(field):
            index, key, value = name, field, filters[field]
            break
    names, values = {"#h": key, "#d": "deleted_at"}, {":h": {"S": value}}
    parts = ["attribute_not_exists(#d)"]
    for i, (field, wanted) in enumerate(sorted((f, v) for f, v in filters.items() if f != key)):
        names[f"#f{i}"], values[f":f{i}"] = field, {"S": wanted}
        parts.append(f"#f{i} = :f{i}")
    items: list[dict[str, Any]] = []
    queries = read = 0
    start = None
    while True:
        kwargs: dict[str, Any] = {"TableName": table, "IndexName": index, "KeyConditionExpression": "#h = :h",
                                  "FilterExpression": " AND ".join(parts), "ExpressionAttributeNames": names,
                                  "ExpressionAttributeValues": values, "ScanIndexForward": False,
                                  "Limit": max(limit, 25)}
        if start:
            kwargs["ExclusiveStartKey"] = start
        page = ddb.query(**kwargs)
        queries += 1
        read += page["ScannedCount"]
        items += page["Items"]
        start = page.get("LastEvaluatedKey")
        if len(items) >= limit or not start:
            return items[:limit], queries, read


# Like for like: at every stored size each filter case matches the same items, the first MATCHING (or
# PROBE) written, and nothing written after them matches any case (the deliberate no-match case matches
# nothing at all). A page is then full at every size and reads page + 1, so a growth in time between
# sizes comes from what is stored, not from the size of the page.
MATCHING = 60  # items each filter case matches at every size: more than a page
PROBE = 80  # the items the cases draw on: tenant t1's instances, tenant t4's pending tasks of user7 or group3
HOT_TENANT_INSTANCES, HOT_TENANT_TASKS, HOT_USER, HOT_GROUP = "t1", "t4", "user7", "group3"


def _instance(i: int) -> dict[str, Any]:
    created = f"2026-01-01T00:00:00.{i:06d}Z"
    if i < PROBE:  # tenant t1: 60 running, 20 completed or waiting, over four workflows
        tenant, status = HOT_TENANT_INSTANCES, "running" if i < MATCHING else ("completed", "waiting")[i % 2]
    else:  # the other tenants, every status but failed
        tenant, status = TENANTS[1 + i % 3], ("completed", "running", "waiting")[(i // 3) % 3]
    # never failed: the workflow+status query matches nothing
    return {"id": f"inst-{i:07d}", "definition_name": WORKFLOWS[i % 4], "tenant_id": tenant, "status": status,
            "created_at": created, "created_by": f"u{i % 50}", "version": "1", "revision": "r1", "input": {},
            "created_key": f"{created}#inst-{i:07d}"}


def _task(i: int) -> dict[str, Any]:
    created = f"2026-01-01T00:00:00.{i:06d}Z"
    tenant, assignee, group, status = TENANTS[i % 4], f"user{i % 100}", f"group{i % 10}", "pending" if i % 2 else "completed"
    if i < PROBE:  # tenant t4, pending: user7 has the first 60, group3 the last 60
        tenant, status = HOT_TENANT_TASKS, "pending"
        assignee = HOT_USER if i < MATCHING else f"user{10 + i}"
        group = HOT_GROUP if i >= PROBE - MATCHING else f"group{4 + i % 6}"
    elif tenant == HOT_TENANT_TASKS and status == "pending" and (assignee == HOT_USER or group == HOT_GROUP):
        status = "completed"  # user7's and group3's later tasks in t4 are done; elsewhere they may wait
    return {"id": f"task-{i:07d}", "instance_id": f"inst-{i:07d}", "workflow": "A", "step_name": "review",
            "kind": "human", "title": "Review", "status": status, "attempt": 1, "tenant_id": tenant,
            "assignee": assignee, "assignee_group": group, "created_at": created,
            "created_key": f"{created}#task-{i:07d}", "token": f"token-{i}",
            "due_at": "2026-01-08T00:00:00.000Z" if i % 2 else None}  # every other task has a due date


def _write(ddb: Any, table: str, items: Iterator[dict[str, Any]]) -> None:
    batch: list[dict[str, Any]] = []
    for item in items:
        batch.append({"PutRequest": {"Item": to_item(item)}})
        if len(batch) == 25:
            ddb.batch_write_item(RequestItems={table: batch})
            batch = []
    if batch:
        ddb.batch_write_item(RequestItems={table: batch})


class Reads:
    """Calls and items read (ScannedCount) per request, from the app's own DynamoDB client."""

    def __init__(self, events: Any):
        self.calls = self.read = 0
        events.register("after-call.dynamodb", self._after)

    def _after(self, model: Any, parsed: Any = None, **_: Any) -> None:
        self.calls += 1
        if model.name == "Query" and parsed:
            self.read += parsed.get("ScannedCount", 0)

    def reset(self) -> None:
        self.calls = self.read = 0


def _timed(call: Any) -> tuple[float, Any]:
    """Median CPU ms of REPEATS calls after the warm-up (CPU, not wall: the machine is shared)."""
    ms, _, result = _timings(call)
    return ms, result


def _timings(call: Any) -> tuple[float, float, Any]:
    """Median and least CPU ms of REPEATS calls after WARM_UP calls, and the last call's result."""
    for _ in range(WARM_UP):
        call()
    times, result = [], None
    for _ in range(REPEATS):
        begun = time.process_time()
        result = call()
        times.append((time.process_time() - begun) * 1000)
    return statistics.median(times), min(times), result


# (case, query, filters as the former listing took them, tenant). "no filter" and "tenant" are one query
# to the app; the former listing served them differently (no filter read every tenant's instances). The
# no-match case asks a tenant with thousands of instances, which is where a filter after the query read most.
INSTANCE_CASES = (("no filter", "", {}, HOT_TENANT_INSTANCES),
                  ("status", "status=running", {"status": "running"}, HOT_TENANT_INSTANCES),
                  ("workflow+status, no match", "workflow_name=A&status=failed",
                   {"definition_name": "A", "status": "failed"}, "t2"),
                  ("tenant (token's, or tenant_id)", "", {"tenant_id": HOT_TENANT_INSTANCES}, HOT_TENANT_INSTANCES))
TASK_CASES = (("inbox by assignee", f"assignee_id={HOT_USER}", {"assignee": HOT_USER}),
              ("by group", f"assignee_group={HOT_GROUP}", {"assignee_group": HOT_GROUP}))


def run(sizes: tuple[int, ...] = SIZES) -> list[dict[str, Any]]:
    if min(sizes) < PROBE:
        raise ValueError(f"every size stores at least the {PROBE} items the cases match")
    from chalice.test import Client

    from chalicelib.aws.clients import client
    from stepflow_local.runtime import LocalRuntime

    rows: list[dict[str, Any]] = []
    with LocalRuntime() as runtime:
        import app as app_module

        ddb = client("dynamodb", runtime.region)
        # Counted on the client the app itself holds (its services keep theirs for the process's life).
        reads = Reads(app_module.services.ddb.meta.events)
        old_table = "bench-old-instances"
        ddb.create_table(**OLD_INSTANCES.create_table_request(old_table))
        written = 0
        with Client(app_module.app) as http:
            for size in sorted(sizes):
                begun = time.perf_counter()
                new = range(written, size)
                _write(ddb, runtime.table_names["instances"], ({**r, **instance_keys(r)} for r in map(_instance, new)))
                _write(ddb, old_table, ({**r, "partition": "instance"} for r in map(_instance, new)))
                _write(ddb, runtime.table_names["tasks"], ({**r, **task_keys(r)} for r in map(_task, new)))
                written = size
                seeded = time.perf_counter() - begun
                load = os.getloadavg()[0]
                instances, tasks = [_instance(i) for i in range(size)], [_task(i) for i in range(size)]
                for name, params, old_filters, tenant in INSTANCE_CASES:
                    url = f"/workflows/instances?limit={PAGE}&tenant_id={tenant}" + (f"&{params}" if params else "")
                    reads.reset()
                    ms, least, response = _timings(lambda url=url: http.http.get(url))
                    matching = _matching(instances, {**old_filters, "tenant_id": tenant})
                    _check(response, matching)
                    calls, read = reads.calls // (REPEATS + WARM_UP), reads.read // (REPEATS + WARM_UP)
                    reference = {**old_filters, "tenant_id": tenant} if name != "no filter" else {}
                    expected_reads = _old_reads(instances, reference)
                    if expected_reads <= REFERENCE_READ_CAP:
                        old_ms, (_, queries, old_read) = _timed(lambda f=reference: old_search(ddb, old_table, f, PAGE))
                    else:
                        old_ms, queries, old_read = None, -(-expected_reads // 50), expected_reads
                    rows.append({"api": "/instances", "case": name, "size": size, "matching": matching, "ms": ms, "least": least,
                                 "calls": calls, "read": read, "old_ms": old_ms, "old_queries": queries, "old_read": old_read,
                                 "seed_s": seeded, "load": load})
                for name, params, filters in TASK_CASES:
                    url = f"/workflows/tasks?limit={PAGE}&tenant_id={HOT_TENANT_TASKS}&{params}"
                    reads.reset()
                    ms, least, response = _timings(lambda url=url: http.http.get(url))
                    matching = _matching(tasks, {**filters, "tenant_id": HOT_TENANT_TASKS, "status": "pending"})
                    _check(response, matching)
                    rows.append({"api": "/tasks", "case": name, "size": size, "matching": matching, "ms": ms, "least": least,
                                 "calls": reads.calls // (REPEATS + WARM_UP),
                                 "read": reads.read // (REPEATS + WARM_UP), "old_ms": None, "old_queries": None,
                                 "old_read": None, "seed_s": seeded, "load": load})
    return rows


def _matching(records: list[dict[str, Any]], filters: dict[str, str]) -> int:
    """How many stored records a case matches, counted from the data."""
    return sum(all(r.get(f) == v for f, v in filters.items()) for r in records)


def _check(response: Any, matching: int) -> None:
    """The page is what the data says it must be: full (and continued) when more than a page matches."""
    assert response.status_code == 200, response.body
    body = response.json_body
    assert len(body["items"]) == min(matching, PAGE), (len(body["items"]), matching)
    assert (body["next_cursor"] is not None) == (matching > PAGE), body["next_cursor"]


def _old_reads(items: list[dict[str, Any]], filters: dict[str, str]) -> int:
    """Items the old search reads for a page: its index partition until the page fills (counted)."""
    for field, _ in OLD_FILTERS:
        if filters.get(field):
            part = [r for r in items if r[field] == filters[field]]
            break
    else:
        part = items
    part.sort(key=lambda r: r["created_key"], reverse=True)
    matched = 0
    for n, record in enumerate(part, 1):
        matched += all(record.get(f) == v for f, v in filters.items())
        if matched == PAGE:
            return -(-n // 50) * 50 if n % 50 else n  # whole pages of 50 are read
    return len(part)


def report_markdown(rows: list[dict[str, Any]]) -> str:
    smallest = min(r["size"] for r in rows)
    base = {(r["api"], r["case"]): r for r in rows if r["size"] == smallest}
    lines = [
        HEADING,
        "",
        f"Through the app in-process (chalice.test.Client on the LocalRuntime's moto), page size {PAGE}, median CPU time "
        f"of {REPEATS} requests after {WARM_UP} to warm up (CPU, not wall: the machine is shared); items seeded with "
        "batch_write_item. Target: every listing at 100,000 stored within 2x of its time at 100 stored, and reading "
        "at most page + 1 items. The verdict is on the median; *least* (the fastest of the "
        f"{REPEATS}, the one least disturbed by other work on the machine) is shown beside it to tell the machine's "
        "load from a growth in cost.",
        "",
        f"**Like for like.** At every stored size each case matches the same items: the first {PROBE} written. Tenant "
        f"{HOT_TENANT_INSTANCES} has {PROBE} instances ({MATCHING} running, the others completed or waiting, over four "
        f"workflows); tenant {HOT_TENANT_TASKS} has {PROBE} pending tasks ({MATCHING} assigned to {HOT_USER}, "
        f"{MATCHING} in {HOT_GROUP}, other assignees and groups for the rest). Nothing written after them matches "
        "a case: the other instances belong to tenants t2-t4 (every status but failed), the other tasks are "
        f"spread over four tenants, 100 assignees, 10 groups, pending and completed ({HOT_USER}'s and "
        f"{HOT_GROUP}'s later tasks in {HOT_TENANT_TASKS} are completed); every other task has a due date. So every case but the deliberate no-match "
        f"returns a full page of {PAGE} and a cursor at every size (the run checks it), and what differs between "
        "sizes is only what is stored. *Matching* counts from the data the items a case matches. The no-match "
        "case asks tenant t2, which holds about a third of what is stored. (An earlier form of this table "
        "compared a full page at 10,000 and 100,000 with whatever matched at 100 stored, as little as 1 task, "
        "and so measured the size of the page rather than what is stored.)",
        "",
        "*Calls* and *read* are the app's DynamoDB calls and the items its queries read (ScannedCount) per "
        "request: every listing is one query reading at most page + 1 items at every size. *Old* is the former "
        "`InstanceStore.search` (one index per filter, the other filters after the query) on a table with the "
        f"former indexes, in the same run; where it would read more than {REFERENCE_READ_CAP:,} items it is not run "
        "and its reads are counted from the data.",
        "",
        "Stock moto answers a query by sorting and walking every item of the table (its `Table.query`); the "
        "local runtime answers it from sorted per-index groups kept in step with every write "
        "(`stepflow_local/moto_index.py`), so the time column follows the page, as the *read* column (what "
        "DynamoDB would read and bill) does. Listings read only the attributes they show (ProjectionExpression), "
        "and the local runtime writes attribute values out directly (`stepflow_local/moto_attribute_values.py`) "
        "rather than through moto's generic shape walk. What a page costs per item is mostly botocore parsing the "
        "response on the client (about 1.6 us per attribute, which the Lambda pays too) and moto's share.",
        "",
        "| API | case | stored | matching | ms | vs @100 | time <= 2x @100 | least ms (vs @100) | calls | read "
        "| reads <= page+1 | old ms | old queries | old read |",
        "|:--|:--|---:|---:|---:|---:|:-:|---:|---:|---:|:-:|---:|---:|---:|",
    ]
    for r in rows:
        first, first_least = base[(r["api"], r["case"])]["ms"], base[(r["api"], r["case"])]["least"]
        reads_ok = "PASS" if r["read"] <= PAGE + 1 and r["calls"] == 1 else "MISS"
        ratio = r["ms"] / first
        time_ok = "PASS" if r["ms"] <= 2 * first else f"MISS ({ratio:.1f}x)"
        old_ms = "-" if r["old_queries"] is None else ("not run" if r["old_ms"] is None else f"{r['old_ms']:.1f}")
        lines.append(f"| {r['api']} | {r['case']} | {r['size']:,} | {r['matching']} | {r['ms']:.1f} | {ratio:.1f}x | "
                     f"{time_ok} | {r['least']:.1f} ({r['least'] / first_least:.1f}x) | {r['calls']} | {r['read']} | {reads_ok} | {old_ms} | "
                     f"{r['old_queries'] if r['old_queries'] is not None else '-'}"
                     f" | {r['old_read'] if r['old_read'] is not None else '-'} |")
    seeding = sorted({(r["size"], r["seed_s"], r["load"]) for r in rows})
    lines += ["", "Seeding (instances, former-index copy, tasks): " + ", ".join(
        f"{size:,} in {secs:.0f} s" for size, secs, _ in seeding) + ". Load average (1 min) of the machine as each "
        "size was measured: " + ", ".join(f"{load:.1f} at {size:,}" for size, _, load in seeding) + " (2 cores)."]
    return "\n".join(lines) + "\n"


def replace_section(results: str, section: str) -> str:
    """`results` (bench/results.md) with this benchmark's section replaced by `section`, the others as they were."""
    start = results.index(HEADING)
    following = [i for i in (results.find("\n## ", start + 1), results.find("\n<!--", start + 1)) if i != -1]
    end = min(following) + 1 if following else len(results)
    return results[:start] + section.rstrip("\n") + "\n\n" + results[end:].lstrip("\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)), help="stored items per run, comma-separated")
    parser.add_argument("--write", action="store_true", help="replace this section of bench/results.md (only it)")
    args = parser.parse_args(argv)
    begun = time.perf_counter()
    text = report_markdown(run(tuple(int(s) for s in args.sizes.split(","))))
    text += (f"\nThis section took {time.perf_counter() - begun:.0f} s (run alone, "
             f"`python -m bench.list_bench`, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC).\n")
    print(text)
    if args.write:
        results = Path(__file__).with_name("results.md")
        results.write_text(replace_section(results.read_text(encoding="utf-8"), text), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
