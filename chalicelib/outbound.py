"""Outbound HTTP for notifications: JSON POST with a timeout and a bounded read of the answer."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

MAX_ANSWER_BYTES = 64 * 1024


def post_json(url: str, body: bytes, headers: dict[str, str], timeout: float = 5.0) -> int:
    """The receiver's status code; raises OSError for a connection failure or a timeout."""
    request = urllib.request.Request(url, data=body, method="POST",
                                     headers={"Content-Type": "application/json", **headers})
    opener = urllib.request.build_opener(urllib.request.HTTPHandler, urllib.request.HTTPSHandler)
    try:
        with opener.open(request, timeout=timeout) as answer:
            answer.read(MAX_ANSWER_BYTES)
            return answer.status
    except urllib.error.HTTPError as error:
        return error.code


def dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), sort_keys=True, default=str).encode()
