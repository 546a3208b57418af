"""Lazily created boto3 clients: import time is Lambda cold start, so nothing is built until used."""

from __future__ import annotations

import threading
from functools import cache
from typing import TYPE_CHECKING, Literal, overload

if TYPE_CHECKING:  # the stubs are a development dependency: the Lambda package has none of them
    from botocore.client import BaseClient
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_stepfunctions import SFNClient

_lock = threading.Lock()
# botocore keeps 10 connections per client by default. The local service serves many requests at once on
# one process and its DynamoDB may be DynamoDB Local over HTTP: a smaller pool drops a connection whenever
# more than 10 threads call at once and opens a new one on the next call. A Lambda uses one or two.
MAX_POOL_CONNECTIONS = 64


@cache
def _client(service: str, region: str) -> BaseClient:
    import boto3  # imported here so the pure core and cold paths do not pay for it
    from botocore.config import Config

    with _lock:  # boto3's session setup is not thread-safe
        # The stubs type client() for literal service names only; client() below types each one it serves.
        return boto3.session.Session().client(  # type: ignore[call-overload]
            service, region_name=region, config=Config(max_pool_connections=MAX_POOL_CONNECTIONS))


@overload
def client(service: Literal["dynamodb"], region: str) -> DynamoDBClient: ...
@overload
def client(service: Literal["stepfunctions"], region: str) -> SFNClient: ...
@overload
def client(service: Literal["events"], region: str) -> EventBridgeClient: ...
@overload
def client(service: str, region: str) -> BaseClient: ...
def client(service: str, region: str) -> BaseClient:
    return _client(service, region)


def reset_clients() -> None:
    """Forget cached clients (tests that start a fresh emulator call this)."""
    _client.cache_clear()
