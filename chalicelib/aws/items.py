"""Plain dict <-> DynamoDB item conversion (nested JSON is stored as text to keep floats exact), and the
projection a read names when it needs only some attributes."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

# Attributes holding JSON documents: DynamoDB maps would turn floats into Decimals.
JSON_ATTRIBUTES = frozenset({"input", "output", "error", "body", "context", "form_schema", "output_data", "snapshot",
                             "summary", "escalation", "detail", "runs", "notifications", "data",
                             "approvals", "decisions", "distinct_from", "assignments"})


def to_item(record: dict[str, Any]) -> dict[str, Any]:
    item: dict[str, Any] = {}
    for key, value in record.items():
        if value is None:
            continue  # absent rather than NULL, so sparse indexes stay sparse
        if key in JSON_ATTRIBUTES:
            item[key] = {"S": json.dumps(value, separators=(",", ":"))}
        elif isinstance(value, bool):
            item[key] = {"BOOL": value}
        elif isinstance(value, int | float):
            item[key] = {"N": repr(value)}
        elif isinstance(value, list):
            item[key] = {"SS": [str(v) for v in value]} if value else {"NULL": True}
        else:
            item[key] = {"S": str(value)}
    return item


def from_item(item: dict[str, Any]) -> dict[str, Any]:
    record: dict[str, Any] = {}
    for key, typed in item.items():
        (kind, value), = typed.items()
        if key in JSON_ATTRIBUTES and kind == "S":
            record[key] = json.loads(value)
        elif kind == "N":
            number = float(value)
            record[key] = int(number) if number.is_integer() and "." not in value and "e" not in value.lower() else number
        elif kind == "SS":
            record[key] = sorted(value)
        elif kind == "NULL":
            record[key] = []
        else:
            record[key] = value
    return record


def projection(attributes: Iterable[str]) -> dict[str, Any]:
    """The ProjectionExpression and its ExpressionAttributeNames (#p0, #p1, ...) reading only `attributes`
    (names are always aliased: many, like status, are DynamoDB reserved words)."""
    names = {f"#p{i}": name for i, name in enumerate(dict.fromkeys(attributes))}
    return {"ProjectionExpression": ", ".join(names), "ExpressionAttributeNames": names}
