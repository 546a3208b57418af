"""Answers a DynamoDB Query from a table's sorted index (moto_index.py): the page moto's own query would
return, found by bisecting the hash key's group rather than by sorting the table."""

from __future__ import annotations

import bisect
import functools
from operator import itemgetter
from typing import Any

from stepflow_local.moto_index import _bypass, _index, _View

_RANGE_OPS = {"=", "EQ", "<", "LT", "<=", "LE", ">", "GT", ">=", "GE", "BETWEEN", "BEGINS_WITH"}
# moto's size check can only end a page past this much data: a stored item is at most ~405 KB.
_MAX_ITEM_BYTES = 410_000


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


def indexed_query(original: Any) -> Any:
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

    keys, items = view.groups.get(group_key, ([], []))
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
        if len(results) == limit or result_size + item.size() > RESULT_SIZE_LIMIT:
            last_evaluated_key = table._get_last_evaluated_key(results[-1], index_name)
            ended = True
            break
        if op is None or item.attrs[view.range_attr].compare(op, range_objs):
            results.append(item)
            result_size += item.size()
            scanned += 1
    if not ended:
        rest = range(hi, high) if forward else range(lo - 1, low - 1, -1)
        if rest and len(results) == limit:
            last_evaluated_key = table._get_last_evaluated_key(results[-1], index_name)
        elif rest and result_size + _MAX_ITEM_BYTES > RESULT_SIZE_LIMIT:
            for at in rest:
                if result_size + items[at].size() > RESULT_SIZE_LIMIT:
                    last_evaluated_key = table._get_last_evaluated_key(results[-1], index_name)
                    break
    # moto's query deep-copies the page here; its callers only read it (DynamoHandler.query turns each
    # item into fresh dicts under the DynamoDB lock, as GetItem does with the stored item it is handed),
    # and the projections below build new items. Copying would cost a third of a Query's time.
    if index_name:
        index = table.get_index(index_name)
        results = [index.project(r) for r in results]
    if filter_expression is not None:
        results = [item for item in results if filter_expression.expr(item)]
    if projection_expressions:
        results = [r.project(projection_expressions) for r in results]
    return results, scanned, last_evaluated_key
