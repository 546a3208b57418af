"""Outbound HTTP for notifications: JSON POST with a timeout and a bounded read of the answer."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from chalicelib import egress

MAX_ANSWER_BYTES = 64 * 1024


def post_json(url: str, body: bytes, headers: dict[str, str], timeout: float = 5.0, *,
              allow_private: bool = True) -> int:
    """The receiver's status code; raises OSError for a connection failure, a timeout, or an address the
    egress policy refuses (chalicelib/egress.py: never link-local/metadata; private ranges per stage)."""
    request = urllib.request.Request(url, data=body, method="POST",
                                     headers={"Content-Type": "application/json", **headers})
    egress.check_url(url, allow_private=allow_private)
    opener = urllib.request.OpenerDirector()
    for handler in (urllib.request.ProxyHandler({}), urllib.request.UnknownHandler(),
                    egress.GuardedHTTPHandler(allow_private), egress.GuardedHTTPSHandler(allow_private),
                    urllib.request.HTTPDefaultErrorHandler(), urllib.request.HTTPErrorProcessor()):
        opener.add_handler(handler)  # no redirects followed: a webhook's answer is its status
    try:
        with opener.open(request, timeout=timeout) as answer:
            answer.read(MAX_ANSWER_BYTES)
            return answer.status
    except urllib.error.HTTPError as error:
        return error.code


def dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), sort_keys=True, default=str).encode()
