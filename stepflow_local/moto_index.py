"""Sorted per-table indexes that let moto answer a DynamoDB Query in time that follows the page, not the table.

moto answers every Query by sorting the whole table (Table.all_items) and walking it, so a page of 50 costs
more with every item ever stored. Here each table keeps, for its base key and each GSI, the items grouped by
hash key value and sorted in the order moto's own query sorts them; writes keep it in step (Table.put_item,
Table.delete_item, and the backend's in-place update_item), and Table.query bisects a group for the range
condition and the ExclusiveStartKey, then runs moto's own page loop over just that slice.

Every DynamoDB request already runs under moto_patches.DYNAMODB_LOCK, so index and items change together.
Anything not handled exactly (LSIs, multi-attribute keys, legacy QueryFilter, key types other than S and N,
mismatched value types) falls through to moto's own query. A deepcopy of a table (moto takes one per
transaction to roll back, and for backups) carries no index: the copy rebuilds its index on first query.
"""

from __future__ import annotations

import bisect
import contextlib
import functools
import threading
from collections.abc import Iterator
from operator import itemgetter
from typing import Any

from stepflow_local import moto_attribute_values

INDEX_ATTRIBUTE = "_stepflow_query_index"
_SORTABLE_TYPES = {"S", "N"}
_RANGE_OPS = {"=", "EQ", "<", "LT", "<=", "LE", ">", "GT", ">=", "GE", "BETWEEN", "BEGINS_WITH"}
# moto's size check can only end a page past this much data: a stored item is at most ~405 KB.
_MAX_ITEM_BYTES = 410_000

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
        # Per hash value: sort keys, items, and each item's size (None until a query needs it; a write
        # re-adds the item it changed, so a size is never older than its item).
        self.groups: dict[Any, tuple[list[tuple[Any, ...]], list[Any], list[int | None]]] = {}
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
        keys, items, sizes = self.groups[group_key]
        at = bisect.bisect_left(keys, sort_key)
        del keys[at], items[at], sizes[at]
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
            self.groups[group_key] = ([e[0] for e in entries], [e[1] for e in entries], [None] * len(entries))

    def add(self, pk: Any, item: Any) -> None:
        entry = self._entry(item)
        if entry is None:
            return
        group_key, sort_key = entry
        keys, items, sizes = self.groups.setdefault(group_key, ([], [], []))
        at = bisect.bisect_left(keys, sort_key)
        keys.insert(at, sort_key)
        items.insert(at, item)
        sizes.insert(at, None)
        self.entries[pk] = entry


class _TableIndex:
    def __init__(self, signature: str, views: dict[str | None, _View]):
        self.signature = signature
        self.views = views

    def __deepcopy__(self, memo: dict[int, Any]) -> None:
        # Copies (transaction rollback, backups) rebuild on first query rather than copy every key.
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


def reindex(table: Any, hash_key: Any, range_key: Any) -> None:
    """Brings the index of one key in step with the item stored under it (for writes that bypass
    Table.put_item and Table.delete_item, such as a transaction's rollback)."""
    _keep_in_step(table, hash_key, range_key)


def _keep_in_step(table: Any, hash_key: Any, range_key: Any) -> None:
    index = table.__dict__.get(INDEX_ATTRIBUTE)
    if index is None:
        return  # built on first query
    if index.signature != _signature(table):
        setattr(table, INDEX_ATTRIBUTE, None)
        return
    index.reindex(table, hash_key, range_key if table.range_key_attr else None)


# -------------------------------------------------------------------------------------------- query


def _block(keys: list[tuple[Any, ...]], position: int, op: str | None, values: list[Any]) -> tuple[int, int]:
    """[lo, hi) of a group's keys whose range component satisfies the condition (keys sorted by it)."""
    n = len(keys)
    if op is None:
        return 0, n
    key = itemgetter(position)
    left = functools.partial(bisect.bisect_left, keys, key=key)
    right = functools.partial(bisect.bisect_right, keys, key=key)
    if op in ("=", "EQ"):
        return left(values[0]), right(values[0])
    if op in ("<", "LT"):
        return 0, left(values[0])
    if op in ("<=", "LE"):
        return 0, right(values[0])
    if op in (">", "GT"):
        return right(values[0]), n
    if op in (">=", "GE"):
        return left(values[0]), n
    if op == "BETWEEN":
        lo = left(values[0])
        return lo, max(lo, right(values[1]))
    prefix = values[0]  # BEGINS_WITH on strings: the prefixed strings follow the first one >= prefix
    lo = left(prefix)
    hi = bisect.bisect_left(keys, True, lo=lo, key=lambda k: not k[position].startswith(prefix))
    return lo, hi


def _plan(table: Any, index_name: str | None, hash_key: Any, range_comparison: str | None, range_objs: list[Any],
          limit: Any, exclusive_start_key: Any, consistent_read: bool, hash_key_conditions: Any,
          range_key_conditions: Any, filter_kwargs: dict[str, Any]) -> tuple[_View, Any, Any] | None:
    """(view, group key, start key) when this query is one the index answers exactly, else None."""
    if filter_kwargs or (limit is not None and (not isinstance(limit, int) or limit < 1)):
        return None
    if index_name is not None and (consistent_read or index_name not in {i.name for i in table.global_indexes}):
        return None  # moto raises the validation error
    view = _index(table).views.get(index_name)
    if view is None or not view.usable:
        return None
    if index_name is None:
        conditions = [(view.hash_attr, hash_key)] if hash_key is not None else []
    else:
        conditions = list(hash_key_conditions or [])
    if len(conditions) != 1 or conditions[0][0] != view.hash_attr or conditions[0][1].type != view.types[view.hash_attr]:
        return None
    ranges = list(range_key_conditions or [])
    if len(ranges) > 1 or (ranges and (ranges[0][0] != view.range_attr or ranges[0][1] != range_comparison)):
        return None
    if range_comparison is not None:
        if view.range_attr is None or range_comparison not in _RANGE_OPS or not range_objs:
            return None
        wanted = view.types[view.range_attr]
        if any(obj.type != wanted for obj in range_objs) or (range_comparison == "BEGINS_WITH" and wanted != "S"):
            return None
    start = None
    if exclusive_start_key is not None:
        try:
            values = [exclusive_start_key[name] for name in view.sort_attrs]
        except (KeyError, TypeError):
            return None
        from moto.dynamodb.models.dynamo_type import DynamoType

        if any(not isinstance(v, dict) or len(v) != 1 or next(iter(v)) != view.types[name]
               for name, v in zip(view.sort_attrs, values, strict=True)):
            return None
        start = tuple(DynamoType(v).cast_value for v in values)
    return view, conditions[0][1].cast_value, start


def _indexed_query(original: Any) -> Any:
    @functools.wraps(original)
    def query(self: Any, hash_key: Any, range_comparison: Any, range_objs: Any, limit: Any, exclusive_start_key: Any,
              scan_index_forward: Any, projection_expressions: Any, index_name: Any = None,
              consistent_read: bool = False, filter_expression: Any = None, hash_key_conditions: Any = None,
              range_key_conditions: Any = None, **filter_kwargs: Any) -> Any:
        plan = None if getattr(_bypass, "on", False) else _plan(
            self, index_name, hash_key, range_comparison, range_objs, limit, exclusive_start_key, consistent_read,
            hash_key_conditions, range_key_conditions, filter_kwargs)
        if plan is None:
            return original(self, hash_key, range_comparison, range_objs, limit, exclusive_start_key,
                            scan_index_forward, projection_expressions, index_name, consistent_read,
                            filter_expression, hash_key_conditions=hash_key_conditions,
                            range_key_conditions=range_key_conditions, **filter_kwargs)
        view, group_key, start = plan
        return _answer(self, view, group_key, start, range_comparison, range_objs, limit, scan_index_forward is not False,
                       projection_expressions, index_name, filter_expression)

    query.__stepflow_indexed__ = True  # type: ignore[attr-defined]
    return query


def _answer(table: Any, view: _View, group_key: Any, start: Any, op: str | None, range_objs: list[Any], limit: Any,
            forward: bool, projection_expressions: Any, index_name: str | None, filter_expression: Any) -> Any:
    from moto.dynamodb.models.table import RESULT_SIZE_LIMIT

    keys, items, sizes = view.groups.get(group_key, ([], [], []))

    def size(at: int) -> int:
        known = sizes[at]
        if known is None:
            known = sizes[at] = items[at].size()
        return known

    # The items after the ExclusiveStartKey in the direction of the query (moto skips those at or before it).
    low, high = 0, len(keys)
    if start is not None:
        if forward:
            low = bisect.bisect_right(keys, start)
        else:
            high = bisect.bisect_left(keys, start)
    values = [obj.cast_value for obj in range_objs] if op is not None else []
    lo, hi = _block(keys, view.range_position, op, values)
    lo, hi = max(lo, low), max(min(hi, high), max(lo, low))
    # moto's page loop, over the items that can match; the items of the group beyond them matter only
    # for whether the page ends with a LastEvaluatedKey.
    results: list[Any] = []
    result_size = scanned = 0
    last_evaluated_key = None
    ended = False
    for at in (range(lo, hi) if forward else range(hi - 1, lo - 1, -1)):
        item = items[at]
        if len(results) == limit or result_size + size(at) > RESULT_SIZE_LIMIT:
            last_evaluated_key = table._get_last_evaluated_key(results[-1], index_name)
            ended = True
            break
        if op is None or item.attrs[view.range_attr].compare(op, range_objs):
            results.append(item)
            result_size += size(at)
            scanned += 1
    if not ended:
        rest = range(hi, high) if forward else range(lo - 1, low - 1, -1)
        if rest and len(results) == limit:
            last_evaluated_key = table._get_last_evaluated_key(results[-1], index_name)
        elif rest and result_size + _MAX_ITEM_BYTES > RESULT_SIZE_LIMIT:
            for at in rest:
                if result_size + size(at) > RESULT_SIZE_LIMIT:
                    last_evaluated_key = table._get_last_evaluated_key(results[-1], index_name)
                    break
    # moto's own query deep-copies the page here. Its one caller (DynamoHandler.query) only reads the
    # items, turning each into fresh {type: value} dicts (dynamo_to_dict) before the response is
    # serialised, all under moto_patches.DYNAMODB_LOCK: no write can change a stored item meanwhile and
    # nothing downstream holds on to it, so the copy (most of a page's cost) buys nothing.
    if index_name:
        index = table.get_index(index_name)
        if (index.projection or {}).get("ProjectionType") not in (None, "ALL"):  # ALL: project() keeps the item
            results = [index.project(r) for r in results]
    if filter_expression is not None:
        results = [item for item in results if filter_expression.expr(item)]
    if projection_expressions:
        results = _project(results, projection_expressions)
    return results, scanned, last_evaluated_key


def _project(items: list[Any], projection_expressions: list[list[str]]) -> list[Any]:
    """Item.project for top-level attribute names, without its JSON round trip (which deep-copies the
    whole item to keep a few attributes); nested paths go to moto's own."""
    if any(len(path) != 1 for path in projection_expressions):
        return [item.project(projection_expressions) for item in items]
    wanted = {path[0] for path in projection_expressions}
    projected = []
    for item in items:
        # object.__new__, not Item(...): moto's BaseModel.__new__ keeps every model it creates, for good.
        copy = object.__new__(type(item))
        copy.__dict__.update(item.__dict__)
        copy.attrs = {name: value for name, value in item.attrs.items() if name in wanted}
        projected.append(copy)
    return projected


# ------------------------------------------------------------------------------------------- writes


def _after_put(original: Any) -> Any:
    @functools.wraps(original)
    def put_item(self: Any, *args: Any, **kwargs: Any) -> Any:
        item = original(self, *args, **kwargs)
        _keep_in_step(self, item.hash_key, item.range_key)
        return item

    put_item.__stepflow_indexed__ = True  # type: ignore[attr-defined]
    return put_item


def _after_delete(original: Any) -> Any:
    @functools.wraps(original)
    def delete_item(self: Any, hash_key: Any, range_key: Any) -> Any:
        try:
            return original(self, hash_key, range_key)
        finally:
            _keep_in_step(self, hash_key, range_key)

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
    _keep_in_step(table, hash_key, range_key)


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
    setattr(table_class, "query", _indexed_query(ORIGINALS["Table.query"]))  # noqa: B010
    # A page's cost is then its items' serialisation: write attribute values from their wire form.
    moto_attribute_values.patch()


def indexed() -> bool:
    """True when moto's Table.query answers from the index."""
    from moto.dynamodb.models.table import Table

    return bool(getattr(Table.__dict__.get("query"), "__stepflow_indexed__", False))


def keep_in_step(table: Any, hash_key: Any, range_key: Any) -> None:
    """Re-indexes one key of `table` after its stored item changed (a no-op before the first query)."""
    _keep_in_step(table, hash_key, range_key)
