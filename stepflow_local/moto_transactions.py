"""TransactWriteItems on moto that rolls back only the items it names, instead of whole tables.

moto makes a transaction all-or-nothing by deep-copying every table the transaction names before it
starts, and putting the copies back when an action fails. That copy costs time and memory in
proportion to the whole table, for every transaction: each human step the app registers (a task and
its tenant's counters, in one transaction) copied the entire task table, so registering the n-th
waiting task cost O(n), and the copies' garbage grew the process by megabytes per waiting instance.

Here moto's own transact_write_items still runs every check and every write, in the same order, with
the same errors. What changes is the snapshot: before it runs, each item the transaction names (at most
100) is copied, with the length of its table's stream; moto's copy of the table is skipped (while this
runs, its deepcopy of a table returns the table itself, so its rollback puts back the same object);
and when the transaction fails, each named item is put back as it was, its table's query index kept
in step, and the stream records the failed transaction appended are dropped. Every DynamoDB request
runs under the DynamoDB lock (moto_dynamodb.py), so nothing else sees the items in between.
"""

from __future__ import annotations

import copy
import functools
import threading
from typing import Any

from stepflow_local.moto_contract import ORIGINALS, check_signature

_state = threading.local()  # .snapshotting: inside transact_write_items on this thread


class _SkipTableCopies:
    """Stands in for the `copy` module inside moto's DynamoDB backend module only: while a transaction runs
    on this thread, deepcopy of a Table is the table itself; everything else is `copy`'s."""

    def __init__(self, table_type: type):
        self._table_type = table_type

    def deepcopy(self, value: Any, memo: Any = None) -> Any:
        if getattr(_state, "snapshotting", False) and type(value) is self._table_type:
            return value
        return copy.deepcopy(value, memo)

    def __getattr__(self, name: str) -> Any:
        return getattr(copy, name)


class _Snapshot:
    """The items a transaction names, as they were before it ran, and its tables' stream lengths."""

    def __init__(self, backend: Any, transact_items: Any):
        self.items: dict[tuple[int, Any, Any], tuple[Any, Any, Any, Any, bool]] = {}
        self.streams: dict[int, tuple[Any, int]] = {}
        for action in transact_items if isinstance(transact_items, list) else []:
            found = _named_key(backend, action)
            if found is None:
                continue  # moto refuses this action before it writes anything
            table, hash_key, range_key = found
            slot = (id(table), hash_key, range_key)
            if slot in self.items:
                continue  # the same key twice: moto refuses the transaction, the first copy stands
            had_group = hash_key in table.items
            self.items[slot] = (table, hash_key, range_key, copy.deepcopy(_stored(table, hash_key, range_key)),
                                had_group)
            shard = table.stream_shard
            if shard is not None and id(table) not in self.streams:
                self.streams[id(table)] = (shard.items, len(shard.items))

    def restore(self) -> None:
        from stepflow_local import moto_index

        for table, hash_key, range_key, item, had_group in self.items.values():
            if table.range_key_attr is None:
                if item is None:
                    table.items.pop(hash_key, None)
                else:
                    table.items[hash_key] = item
            else:
                group = table.items.get(hash_key)
                if item is not None:
                    if group is None:
                        group = table.items[hash_key] = {}
                    group[range_key] = item
                elif group is not None:
                    group.pop(range_key, None)
                    if not group and not had_group:
                        del table.items[hash_key]
            moto_index.keep_in_step(table, hash_key, range_key)
        for records, length in self.streams.values():
            # The records the failed transaction added, unless moto already handed them to a Lambda
            # event source mapping (it then starts a new list): those it had sent before its own rollback too.
            del records[length:]


def _named_key(backend: Any, action: Any) -> tuple[Any, Any, Any] | None:
    """(table, hash key, range key) of the item an action writes or checks, read as moto reads it."""
    from moto.dynamodb.models.dynamo_type import DynamoType

    try:
        (kind, request), = action.items()
        table = backend.tables.get(request["TableName"])
        if table is None:
            return None
        key = request["Item"] if kind == "Put" else request["Key"]
        hash_key = DynamoType(key[table.hash_key_attr])
        range_key = DynamoType(key[table.range_key_attr]) if table.range_key_attr else None
    except (AttributeError, KeyError, TypeError, ValueError):
        return None
    return table, hash_key, range_key


def _stored(table: Any, hash_key: Any, range_key: Any) -> Any:
    found = table.items.get(hash_key)  # .get: table.items is a defaultdict, indexing would add an entry
    if found is None or table.range_key_attr is None:
        return found
    return found.get(range_key)


def _item_level(original: Any) -> Any:
    @functools.wraps(original)
    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        snapshot = _Snapshot(self, transact_items)
        _state.snapshotting = True
        try:
            original(self, transact_items)
        except BaseException:
            snapshot.restore()
            raise
        finally:
            _state.snapshotting = False

    transact_write_items.__stepflow_patched__ = True  # type: ignore[attr-defined]
    return transact_write_items


def patch() -> None:
    from moto.dynamodb import models as backend_module
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.table import Table

    current = DynamoDBBackend.__dict__.get("transact_write_items")
    if getattr(current, "__stepflow_patched__", False):
        return
    check_signature(current, ["self", "transact_items"], "DynamoDBBackend.transact_write_items")
    if getattr(backend_module, "copy", None) is not copy:
        raise RuntimeError("moto's DynamoDB backend no longer uses the copy module; "
                           "re-check stepflow_local/moto_transactions.py")
    ORIGINALS["DynamoDBBackend.transact_write_items"] = current
    setattr(backend_module, "copy", _SkipTableCopies(Table))  # noqa: B010
    setattr(DynamoDBBackend, "transact_write_items", _item_level(current))  # noqa: B010


def patched() -> bool:
    """True when transactions snapshot the items they name rather than their tables."""
    from moto.dynamodb.models import DynamoDBBackend

    return bool(getattr(DynamoDBBackend.__dict__.get("transact_write_items"), "__stepflow_patched__", False))
