"""Fixtures of the store-level tests that run on each store (a test module may define its own instead)."""

from __future__ import annotations

import pytest

from tests.dynamodb_local import DynamoDBLocal


@pytest.fixture(scope="module")
def dynamodb():
    """One DynamoDB Local process per test module."""
    server = DynamoDBLocal()
    yield server
    server.stop()


@pytest.fixture(params=("default_store", "dynamodb_local"))
def ddb(request):
    """A DynamoDB client of each store: the LocalRuntime's in memory, and DynamoDB Local."""
    if request.param == "default_store":
        return request.getfixturevalue("local_aws").client("dynamodb")
    return request.getfixturevalue("dynamodb").client()
