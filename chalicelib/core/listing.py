"""Listing indexes: the derived key attributes every write keeps in step, and which index serves a query.

Every listing is one index query. Each index is keyed on a composite of the tenant and the filters it
serves (`<tenant>#<workflow>#<status>`), written as a derived attribute on the item, so a page reads
the items it returns and one more, never another tenant's and never the ones a filter would drop. A
filter combination no index serves is refused (Unindexed) rather than scanned.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

NO_TENANT = "-"


class Unindexed(ValueError):
    """No index serves this combination of filters; `supported` lists the ones that do."""

    def __init__(self, given: tuple[str, ...], supported: list[tuple[str, ...]]):
        self.given = given
        self.supported = supported
        super().__init__("no index serves these filters together")


@dataclass(frozen=True)
class Family:
    """One listing index: its name, the item attribute it is keyed on, and the filters in that key."""

    index: str
    attribute: str
    fields: tuple[str, ...]
    deleted: bool = False  # instances: True when deleted ones are in it too (else it is sparse on them)
    range_key: str = "created_key"


def created_key(record: Mapping[str, Any]) -> str:
    """The range key of the listing indexes: creation time, then id (unique, and newest first reversed)."""
    return f"{record['created_at']}#{record['id']}"


def range_value(family: Family, record: Mapping[str, Any]) -> str:
    """`record`'s range key in `family`'s index, derived where it is (a listing need not read it)."""
    return created_key(record) if family.range_key == "created_key" else record[family.range_key]


def _escape(value: Any) -> str:
    # '#' separates the parts: escaped inside one, so "a#b"+"c" and "a"+"b#c" never meet.
    return str(value).replace("%", "%25").replace("#", "%23")


def scope(tenant: str | None) -> str:
    """The tenant part of every key: '=' + the tenant, or '-' for records without one."""
    return NO_TENANT if tenant in (None, "") else "=" + _escape(tenant)


def key_value(tenant: str | None, values: Iterable[Any]) -> str:
    return "#".join([scope(tenant), *(_escape(v) for v in values)])


# -- instances ---------------------------------------------------------------------------------------
INSTANCE_FAMILIES = (
    Family("list_live", "lk_live", ()),
    Family("list_live_status", "lk_live_s", ("status",)),
    Family("list_live_workflow", "lk_live_w", ("definition_name",)),
    Family("list_live_workflow_status", "lk_live_ws", ("definition_name", "status")),
    Family("list_live_creator", "lk_live_u", ("created_by",)),
    Family("list_live_creator_status", "lk_live_us", ("created_by", "status")),
    Family("list_live_correlation", "lk_live_c", ("correlation_id",)),
    # Which calling system started it (the origin_* fields): live instances only, sparse on the field.
    Family("list_live_origin", "lk_live_o", ("origin_instance",)),
    Family("list_live_origin_tenant", "lk_live_ot", ("origin_tenant_id",)),
    Family("list_all", "lk_all", (), deleted=True),
    Family("list_all_status", "lk_all_s", ("status",), deleted=True),
    Family("list_all_workflow", "lk_all_w", ("definition_name",), deleted=True),
    Family("list_all_creator", "lk_all_u", ("created_by",), deleted=True),
    Family("list_all_correlation", "lk_all_c", ("correlation_id",), deleted=True),
)
# What the keys derive from: a write that changes one of these rewrites the keys (InstanceStore.update).
INSTANCE_KEY_INPUTS = frozenset({"tenant_id", "status", "deleted_at", "definition_name", "created_by",
                                 "correlation_id", "origin_instance", "origin_tenant_id"})
INSTANCE_KEY_ATTRIBUTES = frozenset(f.attribute for f in INSTANCE_FAMILIES)


def instance_keys(record: Mapping[str, Any]) -> dict[str, str | None]:
    """Every listing key of an instance as `record` is (None: not in that index)."""
    keys: dict[str, str | None] = {}
    for family in INSTANCE_FAMILIES:
        values = [record.get(f) for f in family.fields]
        live = family.deleted or not record.get("deleted_at")
        keys[family.attribute] = key_value(record.get("tenant_id"), values) \
            if live and all(v not in (None, "") for v in values) else None
    return keys


def instance_index(filters: Mapping[str, Any], *, tenant: str | None,
                   include_deleted: bool) -> tuple[Family, str]:
    """The index and key value that serve these filters for this tenant; Unindexed when none does."""
    given = tuple(sorted(f for f, v in filters.items() if v not in (None, "")))
    for family in INSTANCE_FAMILIES:
        if family.deleted == include_deleted and tuple(sorted(family.fields)) == given:
            return family, key_value(tenant, [filters[f] for f in family.fields])
    raise Unindexed(given, [f.fields for f in INSTANCE_FAMILIES if f.deleted == include_deleted])


# -- tasks -------------------------------------------------------------------------------------------
TASK_FAMILIES = (
    Family("inbox_status", "tk_s", ("status",)),
    Family("inbox_assignee", "tk_a", ("assignee", "status")),
    Family("inbox_group", "tk_g", ("assignee_group", "status")),
    Family("inbox_instance", "tk_i", ("instance_id",)),
    # Who decided (completed) a task: "my decisions", every status it can have then.
    Family("inbox_decider", "tk_c", ("completed_by",)),
)
# Sparse: only pending tasks with a due date, ordered by it. The overdue list is the part due by now
# (a range condition on due_at with the clock's now), so a task is in it the moment it passes its due
# date, whether or not the sweep has escalated it yet.
TASK_OVERDUE = Family("inbox_overdue", "tk_o", (), range_key="due_at")
TASK_KEY_ATTRIBUTES = frozenset(f.attribute for f in (*TASK_FAMILIES, TASK_OVERDUE))


def task_keys(record: Mapping[str, Any]) -> dict[str, str | None]:
    """Every inbox key of a task as `record` is (None: not in that index)."""
    keys: dict[str, str | None] = {}
    for family in TASK_FAMILIES:
        values = [record.get(f) for f in family.fields]
        keys[family.attribute] = key_value(record.get("tenant_id"), values) \
            if all(v not in (None, "") for v in values) else None
    dated = record.get("status") == "pending" and record.get("due_at")
    keys[TASK_OVERDUE.attribute] = key_value(record.get("tenant_id"), ()) if dated else None
    return keys


# A task offered to candidate groups besides its primary group has one membership item per other group
# (`member#<task id>#<group>`), in the same table, keyed like a task in inbox_group: so `assignee_group=G`
# finds every task G may work in one query. A membership holds no view; the page reads its task.
MEMBER_PREFIX = "member#"
TASK_GROUP = TASK_FAMILIES[2]


def memberships(record: Mapping[str, Any] | None) -> dict[str, dict[str, str]]:
    """The membership items a task has as `record` is (none for None), by item id."""
    if not record or not record.get("status"):
        return {}
    primary = record.get("assignee_group")
    groups = [g for g in dict.fromkeys(record.get("candidate_groups") or ()) if g not in (None, "", primary)]
    items = {}
    for group in groups:
        item_id = f"{MEMBER_PREFIX}{record['id']}#{_escape(group)}"
        item = {"id": item_id, "task_id": record["id"], "created_at": record["created_at"],
                TASK_GROUP.attribute: key_value(record.get("tenant_id"), [group, record["status"]])}
        item["created_key"] = created_key(item)
        items[item_id] = item
    return items


def task_index(filters: Mapping[str, Any], *, tenant: str | None, overdue: bool) -> tuple[Family, str]:
    """The index for an inbox query (status defaults to pending except by instance); Unindexed else."""
    given = {f: v for f, v in filters.items() if v not in (None, "")}
    if overdue:
        if set(given) - {"status"} or given.get("status", "pending") != "pending":
            raise Unindexed(("overdue", *sorted(given)), [("overdue",), ("overdue", "status=pending")])
        return TASK_OVERDUE, key_value(tenant, ())
    if "instance_id" not in given and "completed_by" not in given:
        given.setdefault("status", "pending")
    names = tuple(sorted(given))
    for family in TASK_FAMILIES:
        if tuple(sorted(family.fields)) == names:
            return family, key_value(tenant, [given[f] for f in family.fields])
    raise Unindexed(names, [f.fields for f in TASK_FAMILIES] + [("overdue",)])


# -- counters (tasks) --------------------------------------------------------------------------------
COUNTER_PREFIX = "counter#"
PENDING = "pending"
OVERDUE = "overdue"
GROUP_PREFIX = "group="
NO_GROUP = "(none)"


def counter_id(tenant: str | None) -> str:
    return COUNTER_PREFIX + scope(tenant)


def counted(record: Mapping[str, Any] | None) -> dict[tuple[str, str], int]:
    """What a task adds to its tenant's counters: pending (total and per group) and overdue."""
    if not record:
        return {}
    where = counter_id(record.get("tenant_id"))
    counts: dict[tuple[str, str], int] = {}
    if record.get("status") == "pending":
        counts[(where, PENDING)] = 1
        counts[(where, GROUP_PREFIX + (record.get("assignee_group") or NO_GROUP))] = 1
    if record.get("overdue_state"):
        counts[(where, OVERDUE)] = 1
    return counts


def counter_deltas(before: Mapping[str, Any] | None, after: Mapping[str, Any] | None) -> dict[str, dict[str, int]]:
    """Per counter item, the amounts to ADD when a task goes from `before` to `after` (None: absent)."""
    deltas: dict[tuple[str, str], int] = {}
    for key, n in counted(after).items():
        deltas[key] = deltas.get(key, 0) + n
    for key, n in counted(before).items():
        deltas[key] = deltas.get(key, 0) - n
    by_item: dict[str, dict[str, int]] = {}
    for (item, attribute), n in sorted(deltas.items()):
        if n:
            by_item.setdefault(item, {})[attribute] = n
    return by_item


# What the counters derive from: a write that changes one of these is pinned to the values it assumed.
COUNTER_INPUTS = ("status", "assignee_group", "overdue_state", "tenant_id")


def metrics_of(counters: Mapping[str, Any]) -> dict[str, Any]:
    """pending_by_group, pending_total and overdue_count from a tenant's counter item."""
    groups = {k[len(GROUP_PREFIX):]: int(v) for k, v in counters.items() if k.startswith(GROUP_PREFIX) and int(v)}
    return {"pending_by_group": dict(sorted(groups.items())), "pending_total": int(counters.get(PENDING) or 0),
            "overdue_count": int(counters.get(OVERDUE) or 0)}
