"""The key-value store on every store the service runs on: the LocalRuntime's in-memory DynamoDB and DynamoDB
Local (what `make run` keeps its data in). Racing conditional writes get one winner, expired items read as
absent and are left out of listings, and a kept store made before the store existed gains its table."""

from __future__ import annotations

import itertools
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest

from chalicelib.aws.kv_store import KvStore
from chalicelib.errors import NotFound, PreconditionFailed
from chalicelib.resources import KV, TABLES
from chalicelib.service.kv import KvService
from stepflow_local.dynamodb_local import ensure_tables
from tests.integration.test_task_atomicity import eager_thread_switches

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
_tables = itertools.count()


class Clock:
    def __init__(self) -> None:
        self.at = T0

    def __call__(self) -> datetime:
        return self.at


@pytest.fixture
def world(ddb):
    name = f"kv-{next(_tables)}"
    ddb.create_table(**KV.create_table_request(name))
    clock = Clock()
    yield KvService(KvStore(ddb, name), clock), clock
    ddb.delete_table(TableName=name)


def test_racing_writes_of_one_version_and_racing_creates_each_have_one_winner(world):
    service, _ = world
    service.put("acme", "counters", "c", 0)
    writers = 24
    barrier = threading.Barrier(writers)

    def attempt(n: int, **condition) -> str:
        barrier.wait(timeout=30)
        try:
            service.put("acme", "counters", "c" if "if_version" in condition else "new", n, **condition)
            return "ok"
        except PreconditionFailed:
            return "refused"

    with ThreadPoolExecutor(max_workers=writers) as pool, eager_thread_switches():
        updates = list(pool.map(lambda n: attempt(n, if_version=1), range(writers)))
        creates = list(pool.map(lambda n: attempt(n, create_only=True), range(writers)))
    assert (updates.count("ok"), updates.count("refused")) == (1, writers - 1)
    assert (creates.count("ok"), creates.count("refused")) == (1, writers - 1)
    assert service.get("acme", "counters", "c")["version"] == 2
    assert service.get("acme", "counters", "new")["version"] == 1


def test_a_step_repeating_its_own_conditional_write_succeeds_and_another_writer_still_conflicts(world):
    # The Lambda wrote and stopped before answering; Step Functions runs the step again with the same version.
    service, _ = world
    service.put("acme", "n", "k", "v1")
    first, created = service.put("acme", "n", "k", "v2", if_version=1, writer="exec-1#bump")
    again, created_again = service.put("acme", "n", "k", "v2", if_version=1, writer="exec-1#bump")
    assert (again["version"], again["value"], created_again) == (2, "v2", False) and first == again
    with pytest.raises(PreconditionFailed):
        service.put("acme", "n", "k", "v3", if_version=1, writer="exec-2#bump")
    assert service.put("acme", "n", "new", 1, create_only=True, writer="exec-1#make")[1] is True
    assert service.put("acme", "n", "new", 1, create_only=True, writer="exec-1#make")[0]["version"] == 1
    with pytest.raises(PreconditionFailed):
        service.put("acme", "n", "new", 1, create_only=True, writer="exec-3#make")
    # Once another write follows, the old writer's repeat conflicts: its write is no longer the latest.
    service.put("acme", "n", "k", "v4")
    with pytest.raises(PreconditionFailed):
        service.put("acme", "n", "k", "v2", if_version=1, writer="exec-1#bump")


def test_an_expired_item_is_absent_to_reads_conditions_and_listings(world):
    service, clock = world
    service.put(None, "s", "a", 1, ttl_seconds=30)
    service.put(None, "s", "b", 2)
    clock.at = T0 + timedelta(seconds=30)
    with pytest.raises(NotFound):
        service.get(None, "s", "a")
    with pytest.raises(PreconditionFailed):
        service.put(None, "s", "a", 3, if_version=1)
    with pytest.raises(NotFound):
        service.delete(None, "s", "a")
    assert [i["key"] for i in service.page(None, "s", "", 10, None)[0]] == ["b"]
    entry, created = service.put(None, "s", "a", 4, create_only=True)
    assert created and entry["version"] == 2  # the stored item's count goes on; to readers it is new


def test_tenants_and_the_tenant_less_space_never_share_an_entry(world):
    service, _ = world
    for tenant in (None, "acme", "-", "=", "acme|x"):
        service.put(tenant, "ns", "k", tenant)
    for tenant in (None, "acme", "-", "=", "acme|x"):
        assert service.get(tenant, "ns", "k")["value"] == tenant
        assert [i["key"] for i in service.page(tenant, "ns", "", 10, None)[0]] == ["k"]


def test_a_full_last_page_says_it_is_the_last(world):
    service, _ = world
    for key in ("a", "b", "c", "d"):
        service.put(None, "p", key, key)
    items, after = service.page(None, "p", "", 2, None)
    assert [i["key"] for i in items] == ["a", "b"] and after == "b"
    items, after = service.page(None, "p", "", 2, after)
    assert [i["key"] for i in items] == ["c", "d"] and after is None


def test_a_kept_store_made_before_the_key_value_table_gains_it(dynamodb):
    client = dynamodb.client()
    prefix = f"old{next(_tables)}-"
    older = [t.create_table_request(t.physical_name(prefix)) for t in TABLES if t is not KV]
    assert len(ensure_tables(client, older, {})) == len(TABLES) - 1
    every = [t.create_table_request(t.physical_name(prefix)) for t in TABLES]
    ttl = {t.physical_name(prefix): t.ttl_attribute for t in TABLES if t.ttl_attribute}
    assert ensure_tables(client, every, ttl) == [KV.physical_name(prefix)]
    described = client.describe_time_to_live(TableName=KV.physical_name(prefix))["TimeToLiveDescription"]
    assert described["AttributeName"] == "expires_at"
    service = KvService(KvStore(client, KV.physical_name(prefix)), Clock())
    assert service.put("acme", "ns", "k", {"kept": True})[1] is True
