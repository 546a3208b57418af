"""One conditional DynamoDB UpdateItem: set and remove attributes only if the item is as expected.

Every state change of an instance or a task goes through here, so racing writers get exactly one
winner (DynamoDB evaluates the condition and the update atomically).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from chalicelib.aws.items import to_item

if TYPE_CHECKING:  # a development dependency only: the Lambda package has no stubs
    from mypy_boto3_dynamodb import DynamoDBClient


class TransitionRefused(Exception):
    """The item was not in the state the write required (someone else got there first).

    `part`: in a transaction, the position of the item whose condition failed (0: the first)."""

    def __init__(self, *args: object, part: int = 0):
        super().__init__(*args)
        self.part = part


def conditional_update(ddb: DynamoDBClient, table: str, key: dict[str, Any], *, set_: dict[str, Any] | None = None,
                       remove: Iterable[str] = (), expect: dict[str, Any] | None = None,
                       expect_not: dict[str, list[Any]] | None = None, require: Iterable[str] = (),
                       absent: Iterable[str] = ()) -> None:
    """`set_` values of None are removed; `expect` attributes must equal, `expect_not` ones must differ
    from each listed value, `require` ones exist and `absent` ones do not. The item must exist."""
    request = update_request(table, key, set_=set_, remove=remove, expect=expect, expect_not=expect_not,
                             require=require, absent=absent)
    try:
        ddb.update_item(**request)
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
            raise TransitionRefused(str(key)) from exc
        raise


def update_request(table: str, key: dict[str, Any], *, set_: dict[str, Any] | None = None,
                   remove: Iterable[str] = (), expect: dict[str, Any] | None = None,
                   expect_not: dict[str, list[Any]] | None = None, require: Iterable[str] = (),
                   absent: Iterable[str] = ()) -> dict[str, Any]:
    """The UpdateItem arguments of conditional_update (also an Update of a TransactWriteItems)."""
    names: dict[str, str] = {}
    values: dict[str, Any] = {}
    sets, removes, conditions = [], [], ["attribute_exists(#key)"]
    names["#key"] = next(iter(key))

    def name(prefix: str, i: int, attribute: str) -> str:
        names[f"#{prefix}{i}"] = attribute
        return f"#{prefix}{i}"

    def value(label: str, attribute: str, raw: Any) -> str:
        values[f":{label}"] = to_item({attribute: raw})[attribute]
        return f":{label}"

    for i, (attribute, raw) in enumerate((set_ or {}).items()):
        ref = name("s", i, attribute)
        if raw is None:
            removes.append(ref)
        else:
            sets.append(f"{ref} = {value(f's{i}', attribute, raw)}")
    for i, attribute in enumerate(remove):
        removes.append(name("r", i, attribute))
    for i, (attribute, raw) in enumerate((expect or {}).items()):
        conditions.append(f"{name('e', i, attribute)} = {value(f'e{i}', attribute, raw)}")
    for i, (attribute, banned) in enumerate((expect_not or {}).items()):
        ref = name("n", i, attribute)
        conditions += [f"{ref} <> {value(f'n{i}_{j}', attribute, raw)}" for j, raw in enumerate(banned)]
    for i, attribute in enumerate(require):
        conditions.append(f"attribute_exists({name('q', i, attribute)})")
    for i, attribute in enumerate(absent):
        conditions.append(f"attribute_not_exists({name('a', i, attribute)})")
    clauses = [("SET " + ", ".join(sets)) if sets else "", ("REMOVE " + ", ".join(removes)) if removes else ""]
    request: dict[str, Any] = {
        "TableName": table, "Key": key, "UpdateExpression": " ".join(c for c in clauses if c),
        "ConditionExpression": " AND ".join(conditions), "ExpressionAttributeNames": names,
    }
    if values:
        request["ExpressionAttributeValues"] = values
    return request


def holds(record: dict[str, Any], *, expect: dict[str, Any] | None = None,
          expect_not: dict[str, list[Any]] | None = None) -> bool:
    """Whether `record` meets the `expect`/`expect_not` conditions as DynamoDB evaluates them
    (`<>` on a missing attribute is false)."""
    if any(record.get(k) != v for k, v in (expect or {}).items()):
        return False
    return all(k in record and record[k] is not None and record[k] not in banned
               for k, banned in (expect_not or {}).items())
