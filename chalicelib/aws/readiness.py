"""Readiness probes of the AWS services Stepflow depends on: one cheap, read-only call per resource."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any


def dynamodb_probe(ddb: Any, tables: Iterable[str]) -> Callable[[], None]:
    """Each table answers DescribeTable and is ACTIVE (a table being created or deleted is not ready)."""
    names = tuple(tables)

    def probe() -> None:
        for name in names:
            status = ddb.describe_table(TableName=name)["Table"].get("TableStatus", "ACTIVE")
            if status not in ("ACTIVE", "UPDATING"):
                raise RuntimeError(f"table {name} is {status}")

    return probe


def stepfunctions_probe(sfn: Any) -> Callable[[], None]:
    """Step Functions answers a one-item ListStateMachines (what the account's role may always call)."""

    def probe() -> None:
        sfn.list_state_machines(maxResults=1)

    return probe
