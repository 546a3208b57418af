"""Sorted per-table indexes that let moto answer a DynamoDB Query in time that follows the page, not the table.

moto answers every Query by sorting the whole table (Table.all_items) and walking it, so a page of 50 costs
more with every item ever stored. Here each table keeps, for its base key and each GSI, the items grouped by
hash key value and sorted in the order moto's own query sorts them; writes keep it in step (Table.put_item,
Table.delete_item, and the backend's in-place update_item), and Table.query bisects a group for the range
condition and the ExclusiveStartKey, then runs moto's own page loop over just that slice (moto_query.py).

Every DynamoDB request already runs under moto_patches.DYNAMODB_LOCK, so index and items change together.
Anything not handled exactly (LSIs, multi-attribute keys, legacy QueryFilter, key types other than S and N,
mismatched value types) falls through to moto's own query. A deepcopy of a table (moto takes one for a
backup) carries no index: the copy rebuilds its index on first query. A failed transaction puts its items
back itself (moto_transactions.py) and re-indexes each through keep_in_step.
"""

from __future__ import annotations

import bisect
import contextlib
import functools
import threading
from collections.abc import Iterator
from operator import itemgetter
from typing import Any

INDEX_ATTRIBUTE = "_stepflow_query_index"
_SORTABLE_TYPES = {"S", "N"}

ORIGINALS: dict[str, Any] = {}
_bypass = threading.local()  # set by unindexed(): queries go to moto's own implementation


@contextlib.contextmanager
def unindexed() -> Iterator[None]:
    """Within this block (on this thread) every query is answered by moto's own Table.query."""
    previous = getattr(_bypass, "on", False)
    _bypass.on = True
    try:
        yield
    finally:
        _bypass.on = previous


class _View:
    """One key order of a table (its base key or one GSI): groups of (sort keys, items) by hash value."""

    def __init__(self, hash_attr: str, sort_attrs: list[str], range_attr: str | None, required: list[str],
                 types: dict[str, str]):
        self.hash_attr = hash_attr
        self.sort_attrs = sort_attrs
        self.range_attr = range_attr  # the attribute a range condition compares (None: no range condition)
        self.range_position = sort_attrs.index(range_attr) if range_attr else -1
        self.required = required  # attributes an item needs to be in this view (a sparse GSI)
        self.types = types  # declared type of every key attribute
        self.groups: dict[Any, tuple[list[tuple[Any, ...]], list[Any]]] = {}
        self.entries: dict[Any, tuple[Any, tuple[Any, ...]]] = {}  # primary key -> (group, sort key)
        self.usable = True  # False once an item carries a key attribute of another type than declared

    def _entry(self, item: Any) -> tuple[Any, tuple[Any, ...]] | None:
        attrs = item.attrs
        for name in self.required:
            value = attrs.get(name)
            if value is None:
                return None  # sparse: an item without the index's key attributes is not in the index
            if value.type != self.types[name]:
                self.usable = False
                return None
        return attrs[self.hash_attr].cast_value, tuple(attrs[name].cast_value for name in self.sort_attrs)

    def remove(self, pk: Any) -> None:
        entry = self.entries.pop(pk, None)
        if entry is None:
            return
        group_key, sort_key = entry
        keys, items = self.groups[group_key]
        at = bisect.bisect_left(keys, sort_key)
        del keys[at], items[at]
        if not keys:
            del self.groups[group_key]

    def build(self, stored: list[tuple[Any, Any]]) -> None:
        """Fills the empty view from every stored (primary key, item): one sort, not an insert per item."""
        collected: dict[Any, list[tuple[tuple[Any, ...], Any]]] = {}
        for pk, item in stored:
            entry = self._entry(item)
            if entry is not None:
                collected.setdefault(entry[0], []).append((entry[1], item))
                self.entries[pk] = entry
        for group_key, entries in collected.items():
            entries.sort(key=itemgetter(0))  # sort keys are unique: they end with the table key
            self.groups[group_key] = ([e[0] for e in entries], [e[1] for e in entries])

    def add(self, pk: Any, item: Any) -> None:
        entry = self._entry(item)
        if entry is None:
            return
        group_key, sort_key = entry
        keys, items = self.groups.setdefault(group_key, ([], []))
        at = bisect.bisect_left(keys, sort_key)
        keys.insert(at, sort_key)
        items.insert(at, item)
        self.entries[pk] = entry


class _TableIndex:
    def __init__(self, signature: str, views: dict[str | None, _View]):
        self.signature = signature
        self.views = views

    def __deepcopy__(self, memo: dict[int, Any]) -> None:
        # Copies (backups) rebuild on first query rather than copy every key.
        return None

    def reindex(self, table: Any, hash_key: Any, range_key: Any) -> None:
        pk = (hash_key, range_key)
        current = _stored(table, hash_key, range_key)
        for view in self.views.values():
            view.remove(pk)
            if current is not None:
                view.add(pk, current)


def _signature(table: Any) -> str:
    return repr((table.schema, table.attr, [(i.name, i.schema) for i in table.global_indexes],
                 [i.name for i in table.indexes]))


def _stored(table: Any, hash_key: Any, range_key: Any) -> Any:
    found = table.items.get(hash_key)  # .get: table.items is a defaultdict, indexing would add an entry
    if found is None or table.range_key_attr is None:
        return found
    return found.get(range_key)


def _views(table: Any) -> dict[str | None, _View]:
    from moto.dynamodb.models.table import GlobalSecondaryIndex

    types = {a["AttributeName"]: a["AttributeType"] for a in table.attr}
    table_keys = [table.hash_key_attr] + ([table.range_key_attr] if table.range_key_attr else [])
    if any(types.get(name) not in _SORTABLE_TYPES for name in table_keys):
        return {}
    # The same sort attributes moto's Table.query builds, so the order (and the paging) is moto's.
    views: dict[str | None, _View] = {None: _View(table.hash_key_attr, table._generate_attr_to_sort_by([table.hash_key_attr],
                                                                            [table.range_key_attr]),
                         table.range_key_attr, table_keys, types)}
    for index in table.global_indexes:
        if not isinstance(index, GlobalSecondaryIndex):
            continue
        hashes = [k["AttributeName"] for k in index.schema if k["KeyType"] == "HASH"]
        ranges = [k["AttributeName"] for k in index.schema if k["KeyType"] == "RANGE"]
        if len(hashes) != 1 or len(ranges) > 1 or any(types.get(n) not in _SORTABLE_TYPES for n in hashes + ranges):
            continue
        if ranges:
            range_attrs: list[str | None] = [ranges[0], table.range_key_attr]
        else:
            range_attrs = [table.range_key_attr or table.hash_key_attr, table.range_key_attr]
        sort_attrs = table._generate_attr_to_sort_by([hashes[0], table.hash_key_attr], range_attrs)
        views[index.name] = _View(hashes[0], sort_attrs, ranges[0] if ranges else None,
                                  hashes + ranges + table_keys, types)
    return views


def _index(table: Any) -> _TableIndex:
    """The table's index, (re)built from its items when missing or when its key schema changed."""
    signature = _signature(table)
    index = table.__dict__.get(INDEX_ATTRIBUTE)
    if index is not None and index.signature == signature:
        return index
    index = _TableIndex(signature, _views(table))
    stored = [((hash_key, item.range_key if table.range_key_attr else None), item)
              for hash_key, found in table.items.items()
              for item in (found.values() if table.range_key_attr else [found])]
    for view in index.views.values():
        view.build(stored)
    setattr(table, INDEX_ATTRIBUTE, index)
    return index


def keep_in_step(table: Any, hash_key: Any, range_key: Any) -> None:
    """Re-indexes one key of `table` after its stored item changed (a no-op before the first query)."""
    index = table.__dict__.get(INDEX_ATTRIBUTE)
    if index is None:
        return  # built on first query
    if index.signature != _signature(table):
        setattr(table, INDEX_ATTRIBUTE, None)
        return
    index.reindex(table, hash_key, range_key if table.range_key_attr else None)


# ------------------------------------------------------------------------------------------- writes


def _after_put(original: Any) -> Any:
    @functools.wraps(original)
    def put_item(self: Any, *args: Any, **kwargs: Any) -> Any:
        item = original(self, *args, **kwargs)
        keep_in_step(self, item.hash_key, item.range_key)
        return item

    put_item.__stepflow_indexed__ = True  # type: ignore[attr-defined]
    return put_item


def _after_delete(original: Any) -> Any:
    @functools.wraps(original)
    def delete_item(self: Any, hash_key: Any, range_key: Any) -> Any:
        try:
            return original(self, hash_key, range_key)
        finally:
            keep_in_step(self, hash_key, range_key)

    delete_item.__stepflow_indexed__ = True  # type: ignore[attr-defined]
    return delete_item


def _after_update(original: Any) -> Any:
    # update_item changes the stored Item in place (its attrs), which the table never sees: re-index that
    # key afterwards, also when the update failed part-way (it may have created the item first).
    @functools.wraps(original)
    def update_item(self: Any, table_name: str, key: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return original(self, table_name, key, *args, **kwargs)
        finally:
            _reindex_key(self, table_name, key)

    update_item.__stepflow_indexed__ = True  # type: ignore[attr-defined]
    return update_item


def _reindex_key(backend: Any, table_name: str, key: dict[str, Any]) -> None:
    from moto.dynamodb.models.dynamo_type import DynamoType

    table = backend.tables.get(table_name)
    if table is None or table.__dict__.get(INDEX_ATTRIBUTE) is None or not isinstance(key, dict):
        return
    try:
        hash_key = DynamoType(key[table.hash_key_attr])
        range_key = DynamoType(key[table.range_key_attr]) if table.range_key_attr else None
    except (KeyError, IndexError, TypeError, AttributeError):
        setattr(table, INDEX_ATTRIBUTE, None)  # a key we cannot read: rebuild rather than guess
        return
    keep_in_step(table, hash_key, range_key)


# -------------------------------------------------------------------------------------------- apply

_QUERY_PARAMS = ["self", "hash_key", "range_comparison", "range_objs", "limit", "exclusive_start_key",
                 "scan_index_forward", "projection_expressions", "index_name", "consistent_read",
                 "filter_expression", "hash_key_conditions", "range_key_conditions", "filter_kwargs"]
_PUT_PARAMS = ["self", "item_attrs", "expected", "condition_expression", "expression_attribute_names",
               "expression_attribute_values", "overwrite", "return_values_on_condition_check_failure"]
_UPDATE_PARAMS = ["self", "table_name", "key", "update_expression", "expression_attribute_names",
                  "expression_attribute_values", "attribute_updates", "expected", "condition_expression",
                  "return_values_on_condition_check_failure"]


def patch(check_signature: Any) -> None:
    """Installs the index (check_signature(function, parameter names, what) raises when moto changed)."""
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models import table as table_module

    from stepflow_local.moto_query import indexed_query

    table_class = table_module.Table
    if getattr(table_class.__dict__.get("query"), "__stepflow_indexed__", False):
        return
    check_signature(table_class.__dict__.get("query"), _QUERY_PARAMS, "Table.query")
    check_signature(table_class.__dict__.get("put_item"), _PUT_PARAMS, "Table.put_item")
    check_signature(table_class.__dict__.get("delete_item"), ["self", "hash_key", "range_key"], "Table.delete_item")
    check_signature(DynamoDBBackend.__dict__.get("update_item"), _UPDATE_PARAMS, "DynamoDBBackend.update_item")
    check_signature(table_class.__dict__.get("_generate_attr_to_sort_by"),
                    ["self", "hash_key_attrs", "range_key_attrs"], "Table._generate_attr_to_sort_by")
    check_signature(table_class.__dict__.get("_get_last_evaluated_key"), ["self", "last_result", "index_name"],
                    "Table._get_last_evaluated_key")
    if not isinstance(getattr(table_module, "RESULT_SIZE_LIMIT", None), int):
        raise RuntimeError("moto no longer defines RESULT_SIZE_LIMIT; re-check stepflow_local/moto_index.py")
    ORIGINALS.update({"Table.query": table_class.__dict__["query"], "Table.put_item": table_class.__dict__["put_item"],
                      "Table.delete_item": table_class.__dict__["delete_item"],
                      "DynamoDBBackend.update_item": DynamoDBBackend.__dict__["update_item"]})
    setattr(table_class, "put_item", _after_put(ORIGINALS["Table.put_item"]))  # noqa: B010
    setattr(table_class, "delete_item", _after_delete(ORIGINALS["Table.delete_item"]))  # noqa: B010
    setattr(DynamoDBBackend, "update_item", _after_update(ORIGINALS["DynamoDBBackend.update_item"]))  # noqa: B010
    setattr(table_class, "query", indexed_query(ORIGINALS["Table.query"]))  # noqa: B010


def indexed() -> bool:
    """True when moto's Table.query answers from the index."""
    from moto.dynamodb.models.table import Table

    return bool(getattr(Table.__dict__.get("query"), "__stepflow_indexed__", False))
