"""Listing instances by where they came from (origin_instance, origin_tenant_id) and by correlation_id:
only the matching instances of the caller's tenant, page by page, each page one index query reading at
most a page and one item; combinations no index serves are refused before anything is read."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.test_lifecycle import pipeline
from tests.integration.test_listing_budget import Calls

LIMIT = 2


@pytest.fixture
def calls(api: Any, local_aws: Any) -> Iterator[Calls]:
    """The DynamoDB operations the app sends and the items each query read."""
    from chalicelib.aws.clients import client

    counter = Calls()
    events = client("dynamodb", local_aws.region).meta.events
    events.register("before-call.dynamodb", counter.before)
    events.register("after-call.dynamodb", counter.after)
    yield counter
    events.unregister("before-call.dynamodb", counter.before)
    events.unregister("after-call.dynamodb", counter.after)


def _seed(api: Any) -> dict[str, dict[str, Any]]:
    pipeline(api)
    made = {}
    for i in range(9):
        body = {"definition_name": "image_pipeline", "input_data": {"prompt": str(i)}, "start": False,
                "tenant_id": "t2" if i == 8 else "t1", "correlation_id": f"order-{i}",
                "origin_instance": "api-prod" if i % 3 else "api-staging",
                "origin_tenant_id": f"shop-{i % 2}"}
        if i == 7:
            body.pop("origin_instance")  # not in the origin index at all
        status, view = api.post("/instances", body)
        assert status == 201, view
        made[view["id"]] = {**body, "id": view["id"]}
    return made


def _all_pages(api: Any, calls: Calls, query: str) -> list[dict[str, Any]]:
    items, cursor = [], None
    while True:
        calls.reset()
        status, page = api.get(f"/instances?limit={LIMIT}&{query}" + (f"&cursor={cursor}" if cursor else ""))
        assert status == 200, (query, page)
        assert calls.operations == ["Query"] and calls.read[0] <= LIMIT + 1, (query, calls.operations, calls.read)
        assert len(page["items"]) <= LIMIT
        items += page["items"]
        cursor = page["next_cursor"]
        if not cursor:
            return items


def test_origin_and_correlation_filters_list_exactly_the_matching_instances_of_the_tenant(api, calls):
    made = _seed(api)
    for field, value in (("origin_instance", "api-prod"), ("origin_instance", "api-staging"),
                         ("origin_tenant_id", "shop-1"), ("correlation_id", "order-3")):
        listed = _all_pages(api, calls, f"tenant_id=t1&{field}={value}")
        expected = {i for i, b in made.items() if b.get(field) == value and b["tenant_id"] == "t1"}
        assert {r["id"] for r in listed} == expected and len(listed) == len(expected), (field, value)
        assert expected and all(r[field] == value and r["tenant_id"] == "t1" for r in listed)
        newest_first = [r["created_at"] for r in listed]
        assert newest_first == sorted(newest_first, reverse=True)
    # The other tenant's instance is only in its own tenant's listing.
    assert [r["id"] for r in _all_pages(api, calls, "tenant_id=t2&origin_tenant_id=shop-0")] == \
        [i for i, b in made.items() if b["tenant_id"] == "t2"]
    assert _all_pages(api, calls, "tenant_id=t1&origin_instance=nowhere") == []


def test_a_deleted_instance_leaves_the_origin_listing_and_unserved_combinations_are_refused(api, calls):
    made = _seed(api)
    gone = next(i for i, b in made.items() if b.get("origin_instance") == "api-staging" and b["tenant_id"] == "t1")
    assert api.delete(f"/instances/{gone}")[0] == 200
    listed = _all_pages(api, calls, "tenant_id=t1&origin_instance=api-staging")
    assert gone not in {r["id"] for r in listed} and listed
    for query in ("origin_instance=api-prod&status=pending", "origin_tenant_id=shop-1&workflow_name=image_pipeline",
                  "origin_instance=api-prod&origin_tenant_id=shop-1", "origin_instance=api-prod&include_deleted=true"):
        calls.reset()
        status, body = api.get(f"/instances?tenant_id=t1&{query}")
        assert status == 400, (query, body)
        assert "origin_instance" in body["detail"] or "origin_tenant_id" in body["detail"]
        assert "Combinations that work" in body["detail"] and calls.operations == []
