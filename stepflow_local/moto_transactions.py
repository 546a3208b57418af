"""moto's TransactWriteItems rolled back by item: a failed transaction puts back the items it wrote and
drops the stream records it added, instead of restoring deep copies of every table it names.

moto 5.2.5 deep-copies each table a transaction names before applying it, so every transaction costs
what those tables hold (about 0.4 s of CPU with 20,000 events stored), and a completion or a start
that writes to the event log in one transaction would grow slower with every event ever logged. Here
the checks, their order, the writes and the errors are moto's own (the loop is moto's, through the
backend's put_item, update_item and delete_item); only the backup differs: a copy of each item the
transaction targets (at most 100) and the length of each table's stream shard, taken before it writes.
Every DynamoDB request runs under moto_patches.DYNAMODB_LOCK, so nothing sees a transaction half-done.
"""

from __future__ import annotations

import copy
from typing import Any

ORIGINALS: dict[str, Any] = {}


def _transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
    """Replaces DynamoDBBackend.transact_write_items (moto's loop, item-level rollback)."""
    from moto.dynamodb.comparisons import get_filter_expression
    from moto.dynamodb.exceptions import (
        ConditionalCheckFailed,
        MockValidationException,
        MultipleTransactionsException,
        TooManyTransactionsException,
        TransactionCanceledException,
        TransactWriteSingleOpException,
    )

    if len(transact_items) > 100:
        raise TooManyTransactionsException()
    streams: dict[str, tuple[Any, int]] = {}
    for entry in transact_items:
        _, op = next(iter(entry.items()))
        table = self.tables.get(op.get("TableName")) if isinstance(op, dict) else None
        if table is not None and table.stream_shard is not None:
            streams.setdefault(table.name, (table.stream_shard, len(table.stream_shard.items)))
    backups: list[tuple[Any, Any, Any, Any]] = []  # (table, hash key, range key, the item before or None)
    target_items: set[tuple[str, str]] = set()

    def check_unicity(table_name: str, key: dict[str, Any]) -> None:
        item = (str(table_name), str(dict(sorted(key.items()))))
        if item in target_items:
            raise MultipleTransactionsException()
        target_items.add(item)

    errors: list[tuple[Any, Any, Any]] = []
    for entry in transact_items:
        original_item: dict[str, Any] | None = None
        if len(list(entry.keys())) > 1:
            raise TransactWriteSingleOpException
        try:
            op_type, op = next(iter(entry.items()))
            if op_type not in {"ConditionCheck", "Put", "Delete", "Update"}:
                raise ValueError("Unsupported transaction operation")
            table_name = op["TableName"]
            condition_expression = op.get("ConditionExpression")
            names = op.get("ExpressionAttributeNames")
            values = op.get("ExpressionAttributeValues")
            if op_type == "Put":
                attrs = op["Item"]
                table = self.get_table(table_name)
                key = {table.hash_key_attr: attrs[table.hash_key_attr]}
                if table.range_key_attr is not None:
                    key[table.range_key_attr] = attrs[table.range_key_attr]
            else:
                key = op["Key"]
            check_unicity(table_name, key)
            current = self.get_item(table_name, key)
            if condition_expression is not None:
                condition_op = get_filter_expression(condition_expression, names, values)
                if not condition_op.expr(current):
                    if op.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD" and current:
                        original_item = current.to_json()["Attributes"]
                    raise ConditionalCheckFailed(item=original_item)
            if op_type != "ConditionCheck":
                table = self.get_table(table_name)
                hash_key, range_key = self.get_keys_value(table, key)
                backups.append((table, hash_key, range_key, copy.deepcopy(current)))
            if op_type == "Put":
                self.put_item(table_name, op["Item"], condition_expression=condition_expression,
                              expression_attribute_names=names, expression_attribute_values=values)
            elif op_type == "Delete":
                self.delete_item(table_name, key, condition_expression=condition_expression,
                                 expression_attribute_names=names, expression_attribute_values=values)
            elif op_type == "Update":
                self.update_item(table_name, key, update_expression=op["UpdateExpression"],
                                 condition_expression=condition_expression, expression_attribute_names=names,
                                 expression_attribute_values=values)
            errors.append((None, None, None))
        except (MultipleTransactionsException, MockValidationException):
            _roll_back(backups, streams)
            raise
        except ConditionalCheckFailed as e:
            errors.append(("ConditionalCheckFailed", str(e.message), original_item))
        except Exception as e:  # noqa: BLE001 - moto's own handling: every other failure cancels the transaction
            errors.append((type(e).__name__, str(e), original_item))
    if any(code is not None for code, _, _ in errors):
        _roll_back(backups, streams)
        raise TransactionCanceledException(errors)


def _roll_back(backups: list[tuple[Any, Any, Any, Any]], streams: dict[str, tuple[Any, int]]) -> None:
    """Puts every written item back as it was (newest write first) and drops the stream records added."""
    from stepflow_local.moto_index import reindex

    for table, hash_key, range_key, before in reversed(backups):
        if range_key is not None:
            group = table.items.get(hash_key)
            if before is not None:
                table.items[hash_key][range_key] = before
            elif group is not None:
                group.pop(range_key, None)
        elif before is not None:
            table.items[hash_key] = before
        else:
            table.items.pop(hash_key, None)
        reindex(table, hash_key, range_key)
    for shard, length in streams.values():
        del shard.items[length:]


_transact_write_items.__stepflow_item_rollback__ = True  # type: ignore[attr-defined]


def patch(check_signature: Any) -> None:
    """Installs the item-level rollback (check_signature(function, parameter names, what) raises when
    moto changed what this relies on)."""
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.table import StreamShard

    current = DynamoDBBackend.__dict__.get("transact_write_items")
    if getattr(current, "__stepflow_item_rollback__", False):
        return
    check_signature(current, ["self", "transact_items"], "DynamoDBBackend.transact_write_items")
    check_signature(DynamoDBBackend.__dict__.get("get_keys_value"), ["self", "table", "keys"],
                    "DynamoDBBackend.get_keys_value")
    check_signature(StreamShard.__dict__.get("add"), ["self", "old", "new"], "StreamShard.add")
    ORIGINALS["DynamoDBBackend.transact_write_items"] = current
    setattr(DynamoDBBackend, "transact_write_items", _transact_write_items)  # noqa: B010


def item_rollback() -> bool:
    """True when moto's transactions roll back by item."""
    from moto.dynamodb.models import DynamoDBBackend

    return bool(getattr(DynamoDBBackend.__dict__.get("transact_write_items"), "__stepflow_item_rollback__", False))
