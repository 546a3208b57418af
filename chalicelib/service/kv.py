"""The key-value store's decisions, shared by the /kv routes and the kv.* task types: each tenant's
namespaces apart, versions counted per write, conditional writes, and expiry judged by the clock."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from chalicelib.aws.kv_store import ConditionFailed, KvStore
from chalicelib.core import kv
from chalicelib.core.times import iso
from chalicelib.errors import NotFound, PreconditionFailed


class KvService:
    def __init__(self, store: KvStore, clock: Callable[[], datetime]):
        self._store = store
        self._clock = clock

    def get(self, tenant: str | None, namespace: str, key: str) -> dict[str, Any]:
        """The live entry; NotFound when there is none (an expired entry is none, whether or not TTL has
        deleted it yet)."""
        pk = kv.partition(tenant, kv.check_namespace(namespace))
        found = self._store.get(pk, kv.check_key(key))
        if found is None or not kv.is_live(found.get("expires_at"), self._now()):
            raise NotFound(f"no key '{key}' in namespace '{namespace}'")
        return _entry(namespace, found)

    def put(self, tenant: str | None, namespace: str, key: str, value: Any, *, ttl_seconds: int | None = None,
            if_version: int | str | None = None, create_only: bool = False, writer: str | None = None
            ) -> tuple[dict[str, Any], bool]:
        """Sets the entry whole (without ttl_seconds it does not expire). `if_version`: only over the live
        entry of that version ("*": over any live entry); `create_only`: only where there is none.
        PreconditionFailed when the condition does not hold. Returns (the entry, whether it was created).

        `writer` names who writes (a step of an execution): when its conditional write was applied but its
        answer lost (the Lambda stopped after the write and Step Functions runs it again), the repeat
        finds its own write and succeeds instead of conflicting with itself."""
        pk = kv.partition(tenant, kv.check_namespace(namespace))
        kv.check_key(key)
        text = kv.encode_value(value)
        ttl = kv.check_ttl(ttl_seconds)
        moment = self._clock()
        now = moment.timestamp()
        try:
            written, before = self._store.put(
                pk, key, text, iso(moment), kv.expires_at(now, ttl), now=now,
                version=if_version if isinstance(if_version, int) else None, exists=if_version == "*",
                absent=create_only, writer=writer)
        except ConditionFailed:
            mine = self._own_write(pk, key, writer, if_version, now)
            if mine is not None:
                return _entry(namespace, mine), create_only
            raise PreconditionFailed(_refusal(key, if_version, create_only)) from None
        created = before is None or not kv.is_live(before.get("expires_at"), now)
        return _entry(namespace, written), created

    def _own_write(self, pk: str, key: str, writer: str | None, if_version: int | str | None, now: float
                   ) -> dict[str, Any] | None:
        """The live entry when it is `writer`'s own conditional write (the one it now repeats), else None."""
        if writer is None:
            return None
        found = self._store.get(pk, key)
        if found is None or found.get("writer") != writer or not kv.is_live(found.get("expires_at"), now):
            return None
        if isinstance(if_version, int) and found["version"] != if_version + 1:
            return None
        return found

    def delete(self, tenant: str | None, namespace: str, key: str, *, if_version: int | str | None = None
               ) -> dict[str, Any]:
        """Deletes the live entry; NotFound without one, PreconditionFailed when `if_version` does not match."""
        pk = kv.partition(tenant, kv.check_namespace(namespace))
        kv.check_key(key)
        try:
            removed = self._store.delete(pk, key, now=self._now(),
                                         version=if_version if isinstance(if_version, int) else None)
        except ConditionFailed:
            if if_version is None:
                raise NotFound(f"no key '{key}' in namespace '{namespace}'") from None
            raise PreconditionFailed(_refusal(key, if_version, False)) from None
        return {"namespace": namespace, "key": key, "deleted": True, "version": removed["version"]}

    def page(self, tenant: str | None, namespace: str, prefix: str, limit: int, after: str | None
             ) -> tuple[list[dict[str, Any]], str | None]:
        """A page of the namespace's live keys (no values), in key order; and the key to go on after."""
        pk = kv.partition(tenant, kv.check_namespace(namespace))
        items, last = self._store.page(pk, kv.check_prefix(prefix), limit, after, now=self._now())
        return [_summary(item) for item in items], last

    def _now(self) -> float:
        return self._clock().timestamp()


def _refusal(key: str, if_version: int | str | None, create_only: bool) -> str:
    if create_only:
        return f"key '{key}' exists already (If-None-Match: *)"
    if if_version == "*":
        return f"key '{key}' does not exist (If-Match: *)"
    return (f"key '{key}' is not at version {if_version}: it changed or was deleted since it was read; "
            "read it again (GET) and retry with its ETag")


def _expiry(record: dict[str, Any]) -> dict[str, Any]:
    expires = record.get("expires_at")
    return {} if expires is None else {"expires_at": iso(datetime.fromtimestamp(expires, UTC))}


def _entry(namespace: str, record: dict[str, Any]) -> dict[str, Any]:
    return {"namespace": namespace, "key": record["key"], "value": json.loads(record["value"]),
            "version": record["version"], "updated_at": record["updated_at"], **_expiry(record)}


def _summary(record: dict[str, Any]) -> dict[str, Any]:
    return {"key": record["key"], "version": record["version"], "updated_at": record["updated_at"],
            **_expiry(record)}
