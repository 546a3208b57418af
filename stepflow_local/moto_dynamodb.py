"""Patches to moto's DynamoDB: one request at a time, item responses written as plain JSON, and item
objects not kept once dropped (transactions: moto_transactions.py; update expressions: moto_expressions.py).

- One request at a time: moto evaluates a ConditionExpression and applies the update as separate Python
  steps on shared dicts, so two threads could both pass the check (two winners of one task), and a
  Query/Scan could iterate a table while a put resized it. DynamoDB itself is atomic per item;
  serialising the emulation is the simplest way to be at least as strict.
- Item responses: moto writes every response by walking the operation's output shape member by member
  (moto.core.serialize), which for a page of items costs milliseconds per request, held under the lock
  above. The body of GetItem, Query, Scan, PutItem, UpdateItem, DeleteItem and TransactGetItems is items
  of AttributeValues, whose JSON is the dicts themselves: these are written with json.dumps when every
  value is one the generic serializer would write unchanged (capacity figures are written as it writes
  them; binary values and anything unexpected go the generic way).
- Item objects forgotten when dropped: moto appends every model object it ever creates to its class's
  `instances_tracked` list (for moto server's dashboard, which the in-process runtime does not serve) and
  never removes it. For DynamoDB that is every Item: each write makes a new one, each UpdateItem two more
  copies, so every version of every item stayed in memory (about 2 per request, the soak's growth).
  DynamoDB's models are no longer tracked; other services' are, as before.
"""

from __future__ import annotations

import functools
import json
import threading
from typing import Any

from stepflow_local.moto_contract import ORIGINALS, check_signature

# Re-entrant: nothing inside a DynamoDB call calls back into DynamoDB today, but a deadlock would be far
# worse than a nested acquire.
DYNAMODB_LOCK = threading.RLock()

# Operation -> top-level members its fast path writes. ConsumedCapacity is written as the generic
# serializer writes it (moto adds one to every UpdateItem); anything else goes the generic way.
PLAIN_OUTPUTS = {
    "GetItem": ("Item", "ConsumedCapacity"),
    "Query": ("Items", "Count", "ScannedCount", "LastEvaluatedKey", "ConsumedCapacity"),
    "Scan": ("Items", "Count", "ScannedCount", "LastEvaluatedKey", "ConsumedCapacity"),
    "PutItem": ("Attributes", "ConsumedCapacity"),
    "UpdateItem": ("Attributes", "ConsumedCapacity"),
    "DeleteItem": ("Attributes", "ConsumedCapacity"),
    "TransactGetItems": ("Responses", "ConsumedCapacity"),
}
# Keys moto puts in a result that are no member of the output shape: the generic serializer leaves them out.
IGNORED_KEYS = frozenset({"ConsumedCapacityUnits"})
_COUNTS = ("Count", "ScannedCount")
_STRING_TYPES = ("S", "N")
_FLAG_TYPES = ("BOOL", "NULL")
_STRING_SET_TYPES = ("SS", "NS")
_CAPACITY_UNITS = ("CapacityUnits", "ReadCapacityUnits", "WriteCapacityUnits")  # doubles in the output shape
_INDEX_CAPACITIES = ("LocalSecondaryIndexes", "GlobalSecondaryIndexes", "VectorIndexes")


class _NotPlain(Exception):
    """A value the generic serializer would write differently from json.dumps (binary, None, odd types)."""


def _check_value(value: Any) -> None:
    """Raises _NotPlain unless `value` is an AttributeValue whose JSON is itself."""
    if type(value) is not dict or len(value) != 1:
        raise _NotPlain
    for kind, inner in value.items():
        if kind in _STRING_TYPES:
            if type(inner) is not str:
                raise _NotPlain
        elif kind == "M":
            _check_map(inner)
        elif kind == "L":
            if type(inner) is not list:
                raise _NotPlain
            for element in inner:
                _check_value(element)
        elif kind in _FLAG_TYPES:
            if type(inner) is not bool:
                raise _NotPlain
        elif kind in _STRING_SET_TYPES:
            if type(inner) is not list or any(type(s) is not str for s in inner):
                raise _NotPlain
        else:  # B and BS: bytes the generic serializer base64-encodes; or a type moto does not know
            raise _NotPlain


def _check_map(attributes: Any) -> None:
    if type(attributes) is not dict:
        raise _NotPlain
    for name, value in attributes.items():
        if type(name) is not str:
            raise _NotPlain
        _check_value(value)


def _units(capacity: Any, allowed: tuple[str, ...]) -> dict[str, Any]:
    """A Capacity (or the units of a ConsumedCapacity) as the generic serializer writes it: doubles as floats."""
    if type(capacity) is not dict:
        raise _NotPlain
    written: dict[str, Any] = {}
    for key, value in capacity.items():
        if key not in allowed or type(value) not in (int, float):
            raise _NotPlain
        written[key] = float(value)
    return written


def _capacity(consumed: Any) -> dict[str, Any]:
    """A ConsumedCapacity as the generic serializer writes it, in its shape's member order."""
    if type(consumed) is not dict or any(v is None for v in consumed.values()):
        raise _NotPlain
    written = _units({k: v for k, v in consumed.items() if k in _CAPACITY_UNITS}, _CAPACITY_UNITS)
    for key, value in consumed.items():
        if key == "TableName":
            if type(value) is not str:
                raise _NotPlain
        elif key == "Table":
            written[key] = _units(value, _CAPACITY_UNITS)
        elif key in _INDEX_CAPACITIES:
            if type(value) is not dict:
                raise _NotPlain
            written[key] = {name: _units(units, _CAPACITY_UNITS) for name, units in value.items()}
        elif key not in _CAPACITY_UNITS:
            raise _NotPlain
    order = ("TableName", *_CAPACITY_UNITS, "Table", *_INDEX_CAPACITIES)
    return {key: consumed[key] if key == "TableName" else written[key] for key in order if key in consumed}


def plain_body(operation: str, result: Any, members: list[str]) -> str | None:
    """The JSON body of an item operation's result, or None when it must go through the generic serializer.

    `members` is the output shape's member order, which the generic serializer writes in.
    """
    allowed = PLAIN_OUTPUTS.get(operation)
    if allowed is None or type(result) is not dict or any(k not in allowed and k not in IGNORED_KEYS for k in result):
        return None
    written: dict[str, Any] = {}
    try:
        for key in members:
            if key not in result:
                continue
            value = result[key]
            if value is None:
                continue  # the generic serializer leaves None members out
            if key in _COUNTS:
                if type(value) is not int:
                    raise _NotPlain
            elif key in ("Item", "Attributes", "LastEvaluatedKey"):
                _check_map(value)
            elif key == "Items":
                if type(value) is not list:
                    raise _NotPlain
                for item in value:
                    _check_map(item)
            elif key == "ConsumedCapacity":
                value = [_capacity(c) for c in value] if operation == "TransactGetItems" else _capacity(value)
            else:  # TransactGetItems' Responses: [{"Item": {...}} or {}]
                if type(value) is not list:
                    raise _NotPlain
                for response in value:
                    if type(response) is not dict or any(k != "Item" for k in response):
                        raise _NotPlain
                    if response:
                        _check_map(response["Item"])
            written[key] = value
    except (_NotPlain, TypeError):
        return None
    return json.dumps(written)


def _plain_execute_result(original: Any) -> Any:
    @functools.wraps(original)
    def execute_result(self: Any, context: Any) -> Any:
        operation = context.operation_model
        body = None
        if operation.service_model.protocol == "json" and operation.output_shape is not None:
            body = plain_body(str(operation.name), self.result, list(operation.output_shape.members))
        if body is None:
            return original(self, context)
        # What the generic JSON serializer returns besides the body, for a result (not an error).
        content_type = "application/x-amz-json-" + operation.service_model.metadata.get("jsonVersion", "1.0")
        return operation.http.get("responseCode", 200), {"Content-Type": content_type}, body

    execute_result.__stepflow_patched__ = True  # type: ignore[attr-defined]
    return execute_result


def _serialised(original: Any) -> Any:
    @functools.wraps(original)
    def call_action(self: Any) -> Any:
        with DYNAMODB_LOCK:
            return original(self)

    call_action.__stepflow_serialised__ = True  # type: ignore[attr-defined]
    return call_action


def patch_lock() -> None:
    from moto.dynamodb.responses import DynamoHandler

    current = DynamoHandler.__dict__.get("call_action")
    if getattr(current, "__stepflow_serialised__", False):
        return
    # Every DynamoDB operation, from the app's boto3 clients or from a state machine's dynamodb:
    # integration, reaches the backend through this method (the response is serialised inside it too).
    check_signature(current, ["self"], "DynamoHandler.call_action")
    ORIGINALS["DynamoHandler.call_action"] = current
    setattr(DynamoHandler, "call_action", _serialised(current))  # noqa: B010


def serialised() -> bool:
    """True when moto's DynamoDB handles one request at a time."""
    from moto.dynamodb.responses import DynamoHandler

    return bool(getattr(DynamoHandler.__dict__.get("call_action"), "__stepflow_serialised__", False))


def patch_plain_results() -> None:
    from moto.core.responses import ActionResult
    from moto.dynamodb.responses import DynamoResult

    current = DynamoResult.__dict__.get("execute_result") or ActionResult.__dict__.get("execute_result")
    if getattr(current, "__stepflow_patched__", False):
        return
    check_signature(current, ["self", "context"], "DynamoResult.execute_result")
    ORIGINALS["DynamoResult.execute_result"] = current
    setattr(DynamoResult, "execute_result", _plain_execute_result(current))  # noqa: B010


def plain_results() -> bool:
    """True when moto's DynamoDB writes item responses with json.dumps."""
    from moto.dynamodb.responses import DynamoResult

    return bool(getattr(DynamoResult.__dict__.get("execute_result"), "__stepflow_patched__", False))


UNTRACKED_MODULES = ("moto.dynamodb.",)  # models of these modules are not added to instances_tracked


def _tracking_new(original: Any, base: type) -> Any:
    def __new__(cls: type, *args: Any, **kwargs: Any) -> Any:  # noqa: N807 - replaces BaseModel.__new__
        if cls.__module__.startswith(UNTRACKED_MODULES):
            return super(base, cls).__new__(cls)  # type: ignore[arg-type,misc]  # what the original makes, without keeping a reference
        return original(cls, *args, **kwargs)

    __new__.__stepflow_patched__ = True  # type: ignore[attr-defined]
    return __new__


def patch_tracking() -> None:
    from moto.core.common_models import BaseModel

    current = BaseModel.__dict__.get("__new__")
    function = getattr(current, "__func__", current)
    if getattr(function, "__stepflow_patched__", False):
        return
    check_signature(function, ["cls", "args", "kwargs"], "BaseModel.__new__")
    ORIGINALS["BaseModel.__new__"] = function
    setattr(BaseModel, "__new__", staticmethod(_tracking_new(function, BaseModel)))  # noqa: B010


def items_untracked() -> bool:
    """True when DynamoDB's model objects are not kept in moto's instances_tracked lists."""
    from moto.core.common_models import BaseModel

    function = getattr(BaseModel.__dict__.get("__new__"), "__func__", None)
    return bool(getattr(function, "__stepflow_patched__", False))
