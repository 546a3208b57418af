"""Listing keys: derived from the record as it is, tenant first, sparse where they should be; every
filter combination maps to one index or is refused naming the ones that work."""

import pytest

from chalicelib.core.listing import (
    Unindexed,
    counter_deltas,
    instance_index,
    instance_keys,
    metrics_of,
    task_index,
    task_keys,
)

RECORD = {"id": "i1", "tenant_id": "acme", "status": "running", "definition_name": "flow", "created_by": "ann",
          "correlation_id": "c#1", "origin_instance": "api-prod", "origin_tenant_id": "shop"}


def test_instance_keys_carry_the_tenant_and_leave_deleted_ones_out_of_the_live_indexes():
    keys = instance_keys(RECORD)
    assert keys["lk_live"] == "=acme" and keys["lk_live_ws"] == "=acme#flow#running"
    assert keys["lk_live_c"] == "=acme#c%231"  # a '#' inside a value cannot forge another key
    deleted = instance_keys({**RECORD, "deleted_at": "2026-01-01T00:00:00Z"})
    assert {k for k, v in deleted.items() if v} == {"lk_all", "lk_all_s", "lk_all_w", "lk_all_u", "lk_all_c"}
    assert keys["lk_live_o"] == "=acme#api-prod" and keys["lk_live_ot"] == "=acme#shop"
    assert instance_keys({**RECORD, "origin_instance": None})["lk_live_o"] is None  # sparse
    tenantless = instance_keys({**RECORD, "tenant_id": None, "created_by": None})
    assert tenantless["lk_live_s"] == "-#running" and tenantless["lk_live_u"] is None


def test_each_instance_filter_combination_has_one_index_or_is_refused():
    family, value = instance_index({"status": "failed", "definition_name": "A"}, tenant="t", include_deleted=False)
    assert family.index == "list_live_workflow_status" and value == "=t#A#failed"
    assert instance_index({}, tenant=None, include_deleted=True)[0].index == "list_all"
    with pytest.raises(Unindexed) as refused:
        instance_index({"status": "failed", "created_by": "u", "definition_name": "A"}, tenant="t",
                       include_deleted=False)
    assert ("definition_name", "status") in refused.value.supported
    family, value = instance_index({"origin_tenant_id": "shop"}, tenant="t", include_deleted=False)
    assert family.index == "list_live_origin_tenant" and value == "=t#shop"
    with pytest.raises(Unindexed):  # the origin indexes are of live instances only
        instance_index({"origin_instance": "api"}, tenant="t", include_deleted=True)


def test_task_keys_and_inbox_indexes():
    task = {"tenant_id": "t", "status": "pending", "assignee": "bob", "assignee_group": "g", "instance_id": "i"}
    assert task_keys(task)["tk_a"] == "=t#bob#pending" and task_keys(task)["tk_o"] is None
    # inbox_overdue holds pending tasks with a due date (the list reads the part due by now).
    assert task_keys({**task, "due_at": "2026-01-01T00:00:00Z"})["tk_o"] == "=t"
    assert task_keys({**task, "due_at": "2026-01-01T00:00:00Z", "status": "completed"})["tk_o"] is None
    assert task_index({"assignee_group": "g"}, tenant="t", overdue=False)[1] == "=t#g#pending"
    assert task_index({"instance_id": "i"}, tenant="t", overdue=False)[0].index == "inbox_instance"
    with pytest.raises(Unindexed):
        task_index({"assignee": "a", "assignee_group": "g"}, tenant="t", overdue=False)
    with pytest.raises(Unindexed):
        task_index({"status": "completed"}, tenant="t", overdue=True)


def test_counter_deltas_follow_the_transition():
    pending = {"tenant_id": "t", "status": "pending", "assignee_group": "g"}
    assert counter_deltas(None, pending) == {"counter#=t": {"group=g": 1, "pending": 1}}
    assert counter_deltas(pending, {**pending, "status": "completed"}) == {"counter#=t": {"group=g": -1, "pending": -1}}
    moved = counter_deltas({**pending, "overdue_state": "open"}, {**pending, "assignee_group": "h"})
    assert moved == {"counter#=t": {"group=g": -1, "group=h": 1, "overdue": -1}}
    assert counter_deltas(pending, dict(pending)) == {}
    assert metrics_of({"pending": 3, "group=g": 2, "group=(none)": 1, "group=h": 0, "overdue": 1}) == {
        "pending_by_group": {"(none)": 1, "g": 2}, "pending_total": 3, "overdue_count": 1}


def test_a_task_has_a_membership_item_per_candidate_group_besides_its_primary_one():
    from chalicelib.core.listing import memberships

    task = {"id": "t1", "tenant_id": "t", "status": "pending", "created_at": "2026-01-01T00:00:00Z",
            "assignee_group": "g", "candidate_groups": ["g", "a#b", "h", "h"]}
    items = memberships(task)
    assert sorted(items) == ["member#t1#a%23b", "member#t1#h"]
    assert items["member#t1#h"] == {"id": "member#t1#h", "task_id": "t1", "created_at": "2026-01-01T00:00:00Z",
                                    "tk_g": "=t#h#pending", "created_key": "2026-01-01T00:00:00Z#member#t1#h"}
    assert memberships({**task, "status": "completed"})["member#t1#h"]["tk_g"] == "=t#h#completed"
    assert memberships(None) == {} and memberships({**task, "candidate_groups": ["g"]}) == {}
