"""Lazily created boto3 clients: import time is Lambda cold start, so nothing is built until used."""

from __future__ import annotations

import threading
from functools import cache
from typing import Any

_lock = threading.Lock()


@cache
def _client(service: str, region: str) -> Any:
    import boto3  # imported here so the pure core and cold paths do not pay for it

    with _lock:  # boto3's session setup is not thread-safe
        return boto3.session.Session().client(service, region_name=region)


def client(service: str, region: str) -> Any:
    return _client(service, region)


def reset_clients() -> None:
    """Forget cached clients (tests that start a fresh emulator call this)."""
    _client.cache_clear()
