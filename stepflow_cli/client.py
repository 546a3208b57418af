"""HTTP to the Stepflow API: JSON in and out, its `{"detail": ...}` errors raised as ApiError, nothing retried."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import requests

from stepflow_cli import version

CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 60.0  # above the longest server-side wait (25 s for /run, 20 s for the event log)
MAX_SNIPPET = 300


class ApiError(Exception):
    """The API answered with an error status; `message` and `issues` are its own words."""

    def __init__(self, status: int, message: str, issues: Iterable[Mapping[str, Any]] = (), body: Any = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.issues = [dict(i) for i in issues]
        self.body = body


class Unreachable(Exception):
    """Nothing answered at the endpoint (refused, unknown host, timed out)."""


@dataclass
class EventPage:
    events: list[dict[str, Any]]
    cursor: str | None
    more: bool
    ended: bool
    status: str | None
    extra: dict[str, str] = field(default_factory=dict)


def path_of(*parts: str) -> str:
    """Path segments quoted, so an id with a '/' or '?' cannot reach another route."""
    return "/" + "/".join(quote(str(p), safe="") for p in parts)


def error_of(response: requests.Response) -> ApiError:
    try:
        body = response.json()
    except ValueError:
        body = None
    detail = body.get("detail") if isinstance(body, dict) else None
    issues: list[Mapping[str, Any]] = []
    if isinstance(detail, str):
        message = detail
    elif isinstance(detail, dict):
        message = str(detail.get("message") or json.dumps(detail))
        if detail.get("instance_id"):  # e.g. a start Step Functions did not take: the instance exists
            message += f" (instance {detail['instance_id']})"
        issues = [i for i in detail.get("issues") or [] if isinstance(i, Mapping)]
    elif isinstance(body, dict) and isinstance(body.get("message"), str):  # API Gateway's own errors
        message = body["message"]
    else:
        text = " ".join((response.text or "").split())[:MAX_SNIPPET]
        message = f"HTTP {response.status_code} {response.reason or ''}".strip() + (f": {text}" if text else "")
    return ApiError(response.status_code, message, issues, body)


class Client:
    """One API endpoint (its base URL includes the API prefix) and the bearer token to send, if any."""

    def __init__(self, base_url: str, token: str | None = None, *, session: requests.Session | None = None):
        self.base_url = base_url.rstrip("/")
        self.session = session or requests.Session()
        self.session.headers["User-Agent"] = f"stepflow-cli/{version()}"
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"

    def request(self, method: str, path: str, *, params: Mapping[str, Any] | None = None, body: Any = None,
                text: str | None = None, content_type: str | None = None,
                headers: Mapping[str, str] | None = None, read_timeout: float = READ_TIMEOUT,
                stream: bool = False) -> requests.Response:
        sent = dict(headers or {})
        data: bytes | None = None
        if text is not None:
            data = text.encode("utf-8")
            sent["Content-Type"] = content_type or "application/json"
        elif body is not None:
            data = json.dumps(body).encode("utf-8")
            sent["Content-Type"] = "application/json"
        query = {k: v for k, v in (params or {}).items() if v is not None}
        url = self.base_url + path
        try:
            response = self.session.request(method, url, params=query, data=data, headers=sent,
                                            timeout=(CONNECT_TIMEOUT, read_timeout), stream=stream)
        except requests.exceptions.ConnectionError as exc:
            reason = "connection refused" if "refused" in str(exc).lower() else "no connection"
            raise Unreachable(f"cannot reach Stepflow at {self.base_url} ({reason})") from None
        except requests.exceptions.Timeout:
            raise Unreachable(f"Stepflow at {self.base_url} did not answer in time") from None
        except requests.exceptions.RequestException as exc:
            raise Unreachable(f"cannot call Stepflow at {self.base_url}: {type(exc).__name__}") from None
        if response.status_code >= 400:
            raise error_of(response)
        return response

    def call(self, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
        """(status, JSON body) of a successful call."""
        response = self.request(method, path, **kwargs)
        if response.status_code == 204 or not response.content:
            return response.status_code, None
        try:
            return response.status_code, response.json()
        except ValueError:
            raise ApiError(response.status_code, f"the answer from {self.base_url}{path} is not JSON; is the endpoint "
                                                 "a Stepflow API (check --endpoint and the API prefix)?") from None

    def get(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        return self.call("GET", path, params=params)[1]

    def post(self, path: str, body: Any = None, **kwargs: Any) -> Any:
        return self.call("POST", path, body=body, **kwargs)[1]

    def events(self, instance_id: str, after: str | None = None, wait: float = 0.0,
               limit: int | None = None) -> EventPage:
        """One page of the instance's event log (NDJSON), waiting up to `wait` seconds for something new."""
        response = self.request("GET", path_of("instances", instance_id, "events"),
                                params={"after": after, "wait": wait or None, "limit": limit},
                                read_timeout=READ_TIMEOUT + wait)
        events = []
        for line in response.text.splitlines():
            if line.strip():
                try:
                    events.append(json.loads(line))
                except ValueError:
                    raise ApiError(response.status_code, "the event log answered a line that is not JSON") from None
        flag = response.headers.get
        return EventPage(events, flag("Stepflow-Cursor") or after, flag("Stepflow-More") == "true",
                         flag("Stepflow-Ended") == "true", flag("Stepflow-Instance-Status"))

    def follow_events(self, instance_id: str, after: str | None = None, wait: float = 0.0,
                      read_timeout: float = READ_TIMEOUT) -> Followed:
        """A followed read of the log (`follow=true`, NDJSON): one connection whose lines are read as they
        arrive. The local server keeps it open until the instance ends; API Gateway ends it sooner."""
        response = self.request("GET", path_of("instances", instance_id, "events"),
                                params={"after": after, "follow": "true", "wait": wait or None},
                                read_timeout=read_timeout, stream=True)
        return Followed(response, after)


class Followed:
    """An open followed read: `events()` yields each event as its line arrives (heartbeats skipped);
    `cursor` is the last one's seq; `ended` says the answer was the end of the log."""

    def __init__(self, response: requests.Response, after: str | None):
        self.response = response
        self.cursor = after
        self.ended = response.headers.get("Stepflow-Ended") == "true"
        self.status = response.headers.get("Stepflow-Instance-Status")

    def events(self) -> Iterator[dict[str, Any]]:
        try:
            for line in self.response.iter_lines():
                if not line.strip():
                    continue
                try:
                    event = json.loads(line)
                except ValueError:
                    raise ApiError(self.response.status_code, "the event log answered a line that is not JSON") \
                        from None
                self.cursor = event.get("seq") or self.cursor
                yield event
        except requests.exceptions.RequestException:
            return  # the connection ended early (a timeout, a reset): the caller reads on from the cursor
        finally:
            self.response.close()
