"""One TransactWriteItems across our tables: all of it is written or none of it, a transaction canceled
by contention is tried again, and a refused condition is named by the item it belongs to."""

from __future__ import annotations

import random
import re
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from botocore.exceptions import ClientError

from chalicelib.aws.conditional_update import TransitionRefused

if TYPE_CHECKING:  # a development dependency only: the Lambda package has no stubs
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import TransactWriteItemTypeDef

# Two transactions on one item at once (a tenant's counter, an instance two completions watch): DynamoDB
# cancels one (TransactionConflict) with nothing written, so trying it again is safe; a few tries with
# jitter settle any realistic contention.
CONFLICT_RETRIES = 8


def transact(ddb: DynamoDBClient, items: list[dict[str, Any]], *, sleep: Callable[[float], None] = time.sleep) -> None:
    """Writes `items` in one transaction; TransitionRefused(part=i) when item i's condition failed."""
    for attempt in range(CONFLICT_RETRIES):
        try:
            # The stores build their items as plain dicts in the request's shape (conditions, keys and
            # counters composed at run time), which the stubs' nested TypedDicts cannot follow.
            ddb.transact_write_items(TransactItems=cast("list[TransactWriteItemTypeDef]", items))
            return
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "TransactionCanceledException":
                raise
            part = refused_part(exc)
            if part is not None:
                raise TransitionRefused(f"transaction item {part}", part=part) from exc
            if attempt == CONFLICT_RETRIES - 1:
                raise
            sleep(random.uniform(0, 0.01 * 2 ** attempt))  # noqa: S311 - jitter, not security


def refused_part(exc: ClientError) -> int | None:
    """The first item whose condition failed, from the cancellation reasons (or, where an emulator
    gives none, from the message's list of them); None when no condition failed."""
    reasons = [r.get("Code") for r in exc.response.get("CancellationReasons") or []]
    if not reasons:
        listed = re.search(r"\[([^\]]*)\]", str(exc.response.get("Error", {}).get("Message", "")))
        reasons = [r.strip() for r in listed.group(1).split(",")] if listed else []
        if not reasons and "ConditionalCheckFailed" in str(exc):
            return 0
    return reasons.index("ConditionalCheckFailed") if "ConditionalCheckFailed" in reasons else None
