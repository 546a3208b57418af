"""The key-value store through the API and from steps: versions and conditional writes (one winner among
racing writers), expiry judged by the clock, keys listed by prefix with sealed cursors, each tenant's
namespaces apart, and kv.put / kv.get / kv.delete in running workflows on the local runtime."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.auth_on import authentication
from tests.integration.test_auth import FOREIGN, SECRET, Caller, token, wait_status

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def call(api: Any, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
         ) -> tuple[int, Any, dict[str, str]]:
    kwargs: dict[str, Any] = {"headers": {"content-type": "application/json", **(headers or {})}}
    if body is not None:
        kwargs["body"] = body if isinstance(body, str) else json.dumps(body)
    response = getattr(api.client.http, method.lower())(api.prefix + path, **kwargs)
    try:
        parsed = json.loads(response.body)
    except ValueError:
        parsed = response.body
    return response.status_code, parsed, dict(response.headers)


@pytest.fixture
def secured(api: Any) -> Iterator[Caller]:
    with authentication(SECRET):
        yield Caller(api)


class Clock:
    def __init__(self, at: datetime):
        self.at = at

    def __call__(self) -> datetime:
        return self.at


@pytest.fixture
def clock(api):
    """The app's store on a clock the test moves."""
    import app as app_module
    from chalicelib.aws.kv_store import KvStore
    from chalicelib.service.kv import KvService

    services = app_module.services
    moved = Clock(T0)
    services.kv = KvService(KvStore(services.ddb, services.settings.kv_table), moved)
    try:
        yield moved
    finally:
        del services.kv


def test_an_entry_is_created_read_replaced_conditionally_and_deleted(api):
    status, created, headers = call(api, "PUT", "/kv/orders/o-1", {"value": {"total": 12.5, "items": [1, 2]}})
    assert status == 201, created
    assert headers["ETag"] == '"1"'
    assert created == {"namespace": "orders", "key": "o-1", "value": {"total": 12.5, "items": [1, 2]},
                       "version": 1, "updated_at": created["updated_at"]}
    status, read, headers = call(api, "GET", "/kv/orders/o-1")
    assert (status, read, headers["ETag"]) == (200, created, '"1"')

    status, body, _ = call(api, "PUT", "/kv/orders/o-1", {"value": "x"}, {"If-None-Match": "*"})
    assert status == 412 and "exists already" in body["detail"]
    status, body, headers = call(api, "PUT", "/kv/orders/o-1", {"value": None}, {"If-Match": '"1"'})
    assert (status, body["value"], body["version"], headers["ETag"]) == (200, None, 2, '"2"')
    status, body, _ = call(api, "PUT", "/kv/orders/o-1", {"value": "stale"}, {"If-Match": '"1"'})
    assert status == 412 and "not at version 1" in body["detail"]
    assert call(api, "GET", "/kv/orders/o-1")[1]["value"] is None  # the refused write changed nothing

    assert call(api, "DELETE", "/kv/orders/o-1", headers={"If-Match": '"1"'})[0] == 412
    status, body, _ = call(api, "DELETE", "/kv/orders/o-1", headers={"If-Match": '"2"'})
    assert (status, body) == (200, {"namespace": "orders", "key": "o-1", "deleted": True, "version": 2})
    assert call(api, "GET", "/kv/orders/o-1")[0] == 404
    assert call(api, "DELETE", "/kv/orders/o-1")[0] == 404
    assert call(api, "PUT", "/kv/orders/o-1", {"value": 1}, {"If-Match": "*"})[0] == 412  # * needs an entry
    status, body, headers = call(api, "PUT", "/kv/orders/o-1", {"value": 1}, {"If-None-Match": "*"})
    assert (status, body["version"]) == (201, 1)


def test_concurrent_writes_with_the_same_version_have_exactly_one_winner(api):
    assert call(api, "PUT", "/kv/counters/hits", {"value": 0})[0] == 201
    writers = 12
    barrier = threading.Barrier(writers)

    def write(n: int) -> tuple[int, Any]:
        barrier.wait(timeout=30)
        status, body, _ = call(api, "PUT", "/kv/counters/hits", {"value": n}, {"If-Match": '"1"'})
        return status, body

    with ThreadPoolExecutor(max_workers=writers) as pool:
        results = list(pool.map(write, range(1, writers + 1)))
    statuses = sorted(status for status, _ in results)
    assert statuses == [200] + [412] * (writers - 1), results
    status, stored, headers = call(api, "GET", "/kv/counters/hits")
    winner = next(body for status, body in results if status == 200)
    assert (stored["version"], headers["ETag"]) == (2, '"2"')
    assert stored["value"] == winner["value"]


def test_an_expired_entry_is_absent_before_any_deletion(api, clock):
    status, body, _ = call(api, "PUT", "/kv/sessions/s-1", {"value": {"user": "ann"}, "ttl_seconds": 60})
    assert status == 201
    assert body["expires_at"] == "2026-03-02T08:01:00.000Z"
    assert call(api, "PUT", "/kv/sessions/s-2", {"value": 2})[0] == 201

    clock.at = T0 + timedelta(seconds=59.5)
    assert call(api, "GET", "/kv/sessions/s-1")[0] == 200
    assert [item["key"] for item in call(api, "GET", "/kv/sessions")[1]["items"]] == ["s-1", "s-2"]

    clock.at = T0 + timedelta(seconds=60)
    assert call(api, "GET", "/kv/sessions/s-1")[0] == 404  # the item is still stored: TTL has not run
    assert [item["key"] for item in call(api, "GET", "/kv/sessions")[1]["items"]] == ["s-2"]
    assert call(api, "PUT", "/kv/sessions/s-1", {"value": 0}, {"If-Match": '"1"'})[0] == 412
    assert call(api, "DELETE", "/kv/sessions/s-1")[0] == 404
    status, body, _ = call(api, "PUT", "/kv/sessions/s-1", {"value": "again"}, {"If-None-Match": "*"})
    assert status == 201 and "expires_at" not in body  # created anew over the expired item, without a TTL
    clock.at = T0 + timedelta(days=400)
    assert call(api, "GET", "/kv/sessions/s-1")[1]["value"] == "again"


def test_a_short_ttl_expires_on_the_real_clock(api):
    assert call(api, "PUT", "/kv/tmp/k", {"value": 1, "ttl_seconds": 1})[0] == 201
    deadline = time.monotonic() + 10
    while call(api, "GET", "/kv/tmp/k")[0] == 200:
        assert time.monotonic() < deadline, "the entry did not expire"
        time.sleep(0.1)
    assert call(api, "GET", "/kv/tmp/k")[0] == 404


def test_keys_are_listed_by_prefix_a_page_at_a_time_with_sealed_cursors(api):
    for key in ("b-2", "a-1", "b-1", "b-3", "c-1"):
        assert call(api, "PUT", f"/kv/inventory/{key}", {"value": key})[0] == 201
    status, page, _ = call(api, "GET", "/kv/inventory?prefix=b-&limit=2")
    assert status == 200 and [i["key"] for i in page["items"]] == ["b-1", "b-2"] and page["limit"] == 2
    assert set(page["items"][0]) == {"key", "version", "updated_at"}  # values are read one by one
    cursor = page["next_cursor"]
    status, rest, _ = call(api, "GET", f"/kv/inventory?prefix=b-&limit=2&cursor={cursor}")
    assert [i["key"] for i in rest["items"]] == ["b-3"] and rest["next_cursor"] is None
    # The cursor holds the prefix it was issued for: another query refuses it.
    status, body, _ = call(api, "GET", f"/kv/inventory?prefix=a-&limit=2&cursor={cursor}")
    assert status == 400 and "different query" in body["detail"]
    status, body, _ = call(api, "GET", f"/kv/elsewhere?prefix=b-&limit=2&cursor={cursor}")
    assert status == 400
    assert call(api, "GET", "/kv/inventory?limit=2&cursor=" + cursor[:-4] + "AAAA")[0] == 400
    everything = call(api, "GET", "/kv/inventory")[1]
    assert [i["key"] for i in everything["items"]] == ["a-1", "b-1", "b-2", "b-3", "c-1"]
    assert everything["next_cursor"] is None
    assert call(api, "GET", "/kv/empty")[1] == {"items": [], "limit": 100, "next_cursor": None}


def test_bad_names_values_and_conditions_are_refused_and_change_nothing(api):
    big = "x" * (256 * 1024)
    cases = [
        ("PUT", "/kv/bad|ns/k", {"value": 1}, {}, 422, "namespace"),
        ("PUT", "/kv/" + "n" * 65 + "/k", {"value": 1}, {}, 422, "namespace"),
        ("PUT", "/kv/ns/" + "k" * 256, {"value": 1}, {}, 422, "key"),
        ("PUT", "/kv/ns/.hidden", {"value": 1}, {}, 422, "key"),
        ("GET", "/kv/ns/a%20b", None, {}, 422, "key"),
        ("PUT", "/kv/ns/k", {"value": 1, "ttl_seconds": 0}, {}, 422, "ttl_seconds"),
        ("PUT", "/kv/ns/k", {"value": 1, "ttl_seconds": "60"}, {}, 422, "ttl_seconds"),
        ("PUT", "/kv/ns/k", {"value": 1, "ttl_seconds": True}, {}, 422, "ttl_seconds"),
        ("PUT", "/kv/ns/k", {"value": 1, "owner": "x"}, {}, 422, "owner"),
        ("PUT", "/kv/ns/k", {"ttl_seconds": 5}, {}, 422, "value"),
        ("PUT", "/kv/ns/k", [1], {}, 422, "value"),
        ("PUT", "/kv/ns/k", "{not json", {}, 400, "JSON"),
        ("PUT", "/kv/ns/k", {"value": big}, {}, 413, "bytes"),
        ("PUT", "/kv/ns/k", {"value": 1}, {"If-Match": "W/\"1\""}, 400, "If-Match"),
        ("PUT", "/kv/ns/k", {"value": 1}, {"If-Match": "\"1\", \"2\""}, 400, "If-Match"),
        ("PUT", "/kv/ns/k", {"value": 1}, {"If-Match": "\"0\""}, 400, "If-Match"),
        ("PUT", "/kv/ns/k", {"value": 1}, {"If-None-Match": "\"1\""}, 400, "If-None-Match"),
        ("PUT", "/kv/ns/k", {"value": 1}, {"If-Match": "\"1\"", "If-None-Match": "*"}, 400, "not both"),
        ("DELETE", "/kv/ns/k", None, {"If-Match": "one"}, 400, "If-Match"),
        ("GET", "/kv/ns?limit=0", None, {}, 400, "limit"),
        ("GET", "/kv/ns?limit=1001", None, {}, 400, "limit"),
        ("GET", "/kv/ns?prefix=" + "p" * 256, None, {}, 400, "prefix"),
        ("GET", "/kv/ns?cursor=garbage", None, {}, 400, "cursor"),
    ]
    for method, path, body, headers, want, says in cases:
        status, answer, _ = call(api, method, path, body, headers)
        assert status == want, (method, path, headers, status, answer)
        assert says in json.dumps(answer["detail"]), (path, answer)
    assert call(api, "GET", "/kv/ns")[1]["items"] == []
    # A value just within the bound is stored (the body's wrapper included, under the body limit).
    status, body, _ = call(api, "PUT", "/kv/ns/large", {"value": "y" * (200 * 1024)})
    assert status == 201 and len(call(api, "GET", "/kv/ns/large")[1]["value"]) == 200 * 1024


def test_another_tenants_namespace_is_invisible_and_roles_apply(secured):
    own_writer, own_reader = token("executor"), token("viewer")
    other_writer = token("executor", FOREIGN)
    assert secured("PUT", "/kv/config/flag", {"value": "own"}, own_writer)[0] == 201
    # The same namespace and key in another tenant are another entry.
    assert secured("GET", "/kv/config/flag", bearer=token("admin", FOREIGN))[0] == 404
    assert secured("GET", "/kv/config", bearer=other_writer)[1]["items"] == []
    assert secured("DELETE", "/kv/config/flag", bearer=other_writer)[0] == 404
    assert secured("PUT", "/kv/config/flag", {"value": "theirs"}, other_writer)[0] == 201
    assert secured("GET", "/kv/config/flag", bearer=own_reader)[1]["value"] == "own"
    assert secured("GET", "/kv/config/flag", bearer=other_writer)[1]["value"] == "theirs"
    # Naming another tenant is refused; a viewer reads but does not write.
    status, body = secured("GET", f"/kv/config/flag?tenant_id={FOREIGN}", bearer=own_reader)
    assert status == 403 and "token" in body["detail"]
    assert secured("PUT", "/kv/config/flag", {"value": "x"}, own_reader)[0] == 403
    assert secured("DELETE", "/kv/config/flag", bearer=own_reader)[0] == 403
    # A cursor issued to one tenant is refused to another.
    for key in ("a", "b"):
        secured("PUT", f"/kv/many/{key}", {"value": key}, own_writer)
    cursor = secured("GET", "/kv/many?limit=1", bearer=own_reader)[1]["next_cursor"]
    status, body = secured("GET", f"/kv/many?limit=1&cursor={cursor}", bearer=other_writer)
    assert status == 400 and "another tenant" in body["detail"]
    assert "own" not in json.dumps(secured.seen[-1])


CART_FLOW = {"name": "kv_cart", "version": "1.0.0", "steps": [
    {"id": "save", "type": "machine", "task_type": "kv.put",
     "config": {"namespace": "carts", "key": "{{ cart_id }}", "value": "{{ cart }}", "ttl_seconds": 3600}},
    {"id": "load", "type": "machine", "task_type": "kv.get", "depends_on": ["save"],
     "config": {"namespace": "carts", "key": "{{ cart_id }}"}},
    # An optimistic update: the version kv.get read; a stale one fails with KvVersionConflict.
    {"id": "bump", "type": "machine", "task_type": "kv.put", "depends_on": ["load"],
     "config": {"namespace": "carts", "key": "{{ cart_id }}", "value": {"items": "{{ value.items }}", "paid": True},
                "if_version": "{{ version }}"}},
    {"id": "stale", "type": "machine", "task_type": "kv.put", "depends_on": ["bump"],
     "config": {"namespace": "carts", "key": "{{ cart_id }}", "value": "lost", "if_version": 1},
     "fallback": {"task_type": "data.set", "config": {"values": {"conflict": "{{ failure.error }}"}}}},
    {"id": "missing", "type": "machine", "task_type": "kv.get", "depends_on": ["stale"],
     "config": {"namespace": "carts", "key": "nobody", "default": {"items": []}}},
]}


def test_a_workflow_writes_and_reads_the_store_in_its_instances_tenant(api):
    assert api.post("/definitions", CART_FLOW)[0] == 201
    cart = {"items": ["apple", "pear"]}
    status, started = api.post("/instances", {"definition_name": "kv_cart", "tenant_id": "acme",
                                              "input_data": {"cart_id": "c-7", "cart": cart}})
    assert status == 201, started
    assert api.wait(started["id"], timeout=60)["status"] == "completed"
    status, result = api.get(f"/instances/{started['id']}/result")
    data = result["result"]
    assert data["conflict"] == "KvVersionConflict"
    assert (data["found"], data["value"], data["version"]) == (False, {"items": []}, None)  # the last kv.get
    # The entry is the instance's tenant's: the tenant-less space does not have it.
    assert call(api, "GET", "/kv/carts/c-7")[0] == 404
    status, entry, headers = call(api, "GET", "/kv/carts/c-7?tenant_id=acme")
    assert status == 200 and headers["ETag"] == '"2"'
    assert entry["value"] == {"items": ["apple", "pear"], "paid": True} and "expires_at" not in entry


def test_a_workflow_of_one_tenant_cannot_reach_another_tenants_entries(secured):
    editor, executor = token("editor"), token("executor")
    reader = {"id": "peek", "type": "machine", "task_type": "kv.get",
              "config": {"namespace": "vault", "key": "secret", "required": True}}
    assert secured("POST", "/definitions", {"name": "acme_peek", "version": "1", "steps": [reader]}, editor)[0] == 201
    assert secured("PUT", "/kv/vault/secret", {"value": "globex-only"}, token("executor", FOREIGN))[0] == 201
    seen_before = len(secured.seen)
    status, started = secured("POST", "/instances", {"definition_name": "acme_peek"}, executor)
    assert status == 201, started
    assert wait_status(secured, started["id"], ("completed", "failed"), executor)["status"] == "failed"
    status, result = secured("GET", f"/instances/{started['id']}/result", bearer=executor)
    assert result["error"]["error"] == "KvKeyNotFound"
    assert "globex-only" not in "".join(secured.seen[seen_before:])
