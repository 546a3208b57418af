"""Every item of a DynamoDB query, page after page (a query answers at most 1 MB at a time)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # a development dependency only: the Lambda package has no stubs
    from mypy_boto3_dynamodb import DynamoDBClient


def query_all(ddb: DynamoDBClient, **request: Any) -> Iterator[dict[str, Any]]:
    """Yields raw items of `ddb.query(**request)`, following LastEvaluatedKey to the end."""
    while True:
        page = ddb.query(**request)
        yield from page["Items"]
        if "LastEvaluatedKey" not in page:
            return
        request = {**request, "ExclusiveStartKey": page["LastEvaluatedKey"]}
