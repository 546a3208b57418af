"""The error contract, as a table: every class of refusal sent to every operation of the OpenAPI document.

Shared by tests/integration/test_error_contract.py (chalice.test.Client) and the local service test
(tests/e2e/test_local_error_contract.py): both send the same requests through a `Send` and check the same
answers, so the app, the local gateway and the local HTTP server answer alike. Operations come from the
document the service serves, so a new route is covered as soon as it exists.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

FORM_ENCODED = "application/x-www-form-urlencoded"  # what `curl -d` sends when told no Content-Type
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
SIGNED = ("/hooks/{key}",)  # the signature over the body is the credential: these cases are signed
UNKNOWN = "zz-no-such-thing"
# Answers that differ from the class's by design (docs/api.md says so), by (label prefix, method, path end).
EXCEPTIONS = {
    # Checking a definition is what it is for: its answer is the report, {"valid": false, "issues": [...]}.
    ("invalid body", "POST", "/definitions/validate"): 200,
    ("no content type", "POST", "/definitions/validate"): 200,
    # A hook takes whatever JSON its sender posts (it becomes the run's input, under the trigger's mapping).
    ("invalid body", "POST", "/hooks/{key}"): 201,
    # A namespace is a key prefix, not a thing: one with no keys lists as an empty page.
    ("not found (namespace)", "GET", "/kv/{namespace}"): 200,
    # A decision link's token is its own credential: one that does not verify is refused (403, a page),
    # whether or not a task of that id exists.
    ("not found (token)", "GET", "/decide/{token}"): 403,
}
QUERIES = {"/revisions/{rev}/diff": "?to=1"}  # required query parameters, so the path is what is checked


@dataclass
class Answer:
    status: int
    headers: dict[str, str]  # lower-case names
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


Send = Callable[[str, str, bytes | None, dict[str, str]], Answer]


def error_shape(answer: Answer) -> str:
    """'' when the answer is {"detail": ...} as JSON; otherwise what is wrong with it."""
    if not answer.headers.get("content-type", "").startswith("application/json"):
        return f"content-type {answer.headers.get('content-type')!r}"
    try:
        body = answer.json()
    except ValueError:
        return f"not JSON: {answer.body[:80]!r}"
    if not isinstance(body, dict) or set(body) != {"detail"}:
        return f"not {{'detail'}}: {str(body)[:120]}"
    detail = body["detail"]
    if isinstance(detail, dict):  # a body's problems: {message, issues: [{location, message, ...}]}
        if not isinstance(detail.get("message"), str) or not isinstance(detail.get("issues"), list):
            return f"detail is not {{message, issues}}: {str(detail)[:120]}"
    elif not isinstance(detail, str) or not detail:
        return f"detail is not a message: {str(detail)[:120]}"
    return ""


@dataclass(frozen=True)
class Operation:
    method: str
    path: str  # as served, with the API prefix
    role: str  # the guard's role, "public" for public operations
    body_schema: dict[str, Any] | None  # the JSON request body's schema (resolved), when it takes one

    @property
    def takes_body(self) -> bool:
        return self.body_schema is not None


def operations(spec: dict[str, Any]) -> list[Operation]:
    found = []
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            role = "public" if op.get("security") == [] else op.get("x-stepflow-role", "")
            content = op.get("requestBody", {}).get("content", {})
            schema = resolve(spec, content["application/json"]["schema"]) if "application/json" in content else None
            found.append(Operation(method.upper(), path, role, schema))
    return found


def resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def wrong_type_body(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any] | None:
    """An object whose first text field holds a number: well-formed JSON, not a valid body."""
    for name, prop in resolve(spec, schema).get("properties", {}).items():
        prop = resolve(spec, prop)
        types = [prop.get("type")] + [resolve(spec, p).get("type") for p in prop.get("anyOf", [])]
        if "string" in types and "integer" not in types and "number" not in types:
            return {name: 12345}
    return None


def fill(path: str, ids: dict[str, str]) -> str:
    query = next((q for end, q in QUERIES.items() if path.endswith(end)), "")
    return re.sub(r"{(\w+)}", lambda m: ids.get(m.group(1), UNKNOWN), path) + query


def expected(label: str, method: str, path: str, status: int) -> int:
    return next((code for (prefix, m, end), code in EXCEPTIONS.items()
                 if label.startswith(prefix) and m == method and path.endswith(end)), status)


def call(send: Send, method: str, path: str, body: Any = None) -> Answer:
    data = None if body is None else json.dumps(body).encode()
    return send(method, path, data, {"content-type": "application/json"} if data is not None else {})


# --- a world where every path parameter names something that exists ------------------------------------
WORLD = {"name": "error_contract", "version": "1.0.0",
         "steps": [{"id": "review", "type": "human", "title": "Review", "assignee": "alice",
                    "form_schema": {"type": "object", "required": ["ok"], "properties": {"ok": {"type": "boolean"}}}}]}


def build_world(send: Send, prefix: str) -> dict[str, str]:
    """Creates one of each resource a path names; its ids by path parameter name."""
    def ok(answer: Answer) -> Any:
        assert answer.status in (200, 201, 202), (answer.status, answer.body[:300])
        return answer.json()

    name = WORLD["name"]
    ok(call(send, "POST", f"{prefix}/definitions", WORLD))
    instance = ok(call(send, "POST", f"{prefix}/instances", {"definition_name": name, "input_data": {}}))
    deadline = time.monotonic() + 60
    while True:  # the human step's task is stored a moment after the instance starts
        tasks = ok(call(send, "GET", f"{prefix}/tasks?instance_id={instance['id']}"))["items"]
        if tasks or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert tasks, "the world's task never appeared"
    ok(call(send, "PUT", f"{prefix}/definitions/{name}/aliases/live", {"routes": [{"revision": 1, "weight": 100}]}))
    trigger = ok(call(send, "POST", f"{prefix}/definitions/{name}/triggers", {}))
    schedule = ok(call(send, "POST", f"{prefix}/definitions/{name}/schedules",
                       {"expression": "rate(1 day)"}))
    ok(call(send, "POST", f"{prefix}/credentials", {"name": "contract_secret", "value": "s3cret-value-0123456789"}))
    ok(call(send, "PUT", f"{prefix}/kv/contract/entry", {"value": 1}))
    plugins = ok(call(send, "GET", f"{prefix}/plugins"))
    plugin = (plugins[0] if isinstance(plugins, list) else plugins["items"][0])["id"]
    return {"name": name, "instance_id": instance["id"], "task_id": tasks[0]["id"], "alias": "live", "rev": "1",
            "trigger_id": trigger["id"], "key": trigger["key"], "hook_secret": trigger["secret"],
            "schedule_id": schedule["id"],
            "namespace": "contract", "plugin_id": plugin}


# --- the table -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Case:
    label: str  # the error class
    method: str
    path: str
    headers: tuple[tuple[str, str], ...]
    body: bytes | None
    expect: int
    allow: frozenset[str] | None = None  # the Allow header a 405 must carry
    json_error: bool = True  # the answer is {"detail": ...}
    template: str = ""  # the operation's path, for EXCEPTIONS
    signed: bool = False  # signed with the world's trigger secret (a hook's credential)


def route_cases(spec: dict[str, Any], prefix: str, ids: dict[str, str]) -> Iterator[Case]:
    """What any client can get wrong about a route: no credentials involved."""
    ops = operations(spec)
    by_path: dict[str, set[str]] = {}
    for op in ops:
        by_path.setdefault(op.path, set()).add(op.method)
    for path in ("/", prefix or "/nothing", f"{prefix}/{UNKNOWN}", "/workflow", "/openapi.json/x"):
        yield Case("unknown route", "GET", path, (), None, 404)
    for path, methods in sorted(by_path.items()):
        url = fill(path, ids)
        yield Case("unknown route", "GET", f"{url}/{UNKNOWN}/{UNKNOWN}", (), None, 404)
        wrong = next(m for m in METHODS if m not in methods)
        yield Case("wrong method", wrong, url, (), None, 405, allow=frozenset({*methods, "OPTIONS"}))
    for op in ops:
        url = fill(op.path, ids)
        yield Case("bad media type", op.method, url, (("content-type", "application/xml"),), b"<a/>", 415,
                   template=op.path)
        if not op.takes_body:
            continue
        signed = any(op.path.endswith(s) for s in SIGNED)
        if signed:
            yield Case("missing auth (unsigned)", op.method, url, (("content-type", "application/json"),), b"{}", 401,
                       template=op.path)
        yield Case("unreadable body", op.method, url, (("content-type", "application/json"),), b'{"broken": ',
                   400, template=op.path, signed=signed)
        yield Case("invalid body (not an object)", op.method, url, (("content-type", "application/json"),),
                   b"[1, 2]", 422, template=op.path, signed=signed)
        wrong = wrong_type_body(spec, op.body_schema or {})
        if wrong is not None:
            yield Case("invalid body (wrong type)", op.method, url, (("content-type", "application/json"),),
                       json.dumps(wrong).encode(), 422, template=op.path, signed=signed)
            # `curl -d` without a Content-Type: read as JSON, so the same answer as with one.
            yield Case("no content type: read as JSON", op.method, url, (("content-type", FORM_ENCODED),),
                       json.dumps(wrong).encode(), 422, template=op.path, signed=signed)
            yield Case("no content type: read as JSON", op.method, url, (), json.dumps(wrong).encode(),
                       422, template=op.path, signed=signed)


def not_found_cases(spec: dict[str, Any], ids: dict[str, str]) -> Iterator[Case]:
    """Every read of a resource that does not exist: 404, whichever parameter names nothing."""
    for op in operations(spec):
        params = re.findall(r"{(\w+)}", op.path)
        if op.method != "GET" or not params:
            continue
        for missing in params:
            url = fill(op.path, {k: v for k, v in ids.items() if k != missing})
            # The UI's own 404 for an asset is plain text, a decision link's refusal a page (documented so).
            yield Case(f"not found ({missing})", "GET", url, (), None, 404,
                       json_error="/ui/" not in op.path and "/decide/" not in op.path, template=op.path)


def auth_cases(spec: dict[str, Any], ids: dict[str, str], tokens: dict[str, str]) -> Iterator[Case]:
    """With authentication on: no token 401 everywhere but public routes; a viewer's token 403 where more
    is needed."""
    for op in operations(spec):
        if op.role in ("public", "by_key"):
            continue
        url = fill(op.path, ids)
        json_headers = (("content-type", "application/json"),)
        body = b"{}" if op.method in ("POST", "PUT", "PATCH") else None
        yield Case("missing auth", op.method, url, json_headers, body, 401)
        if op.role != "viewer":
            yield Case("forbidden role", op.method, url,
                       (*json_headers, ("authorization", f"Bearer {tokens['viewer']}")), body, 403)


def signature(secret: str, body: bytes) -> dict[str, str]:
    """The Stepflow scheme of a hook delivery: v1=<hex HMAC-SHA256("<timestamp>.<body>")>."""
    stamp = str(int(time.time()))
    key = base64.b64decode(secret.removeprefix("whsec_"))
    digest = hmac.new(key, stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return {"x-stepflow-timestamp": stamp, "x-stepflow-signature": f"v1={digest}"}


def check(send: Send, cases: Iterator[Case], ids: dict[str, str] | None = None) -> tuple[int, list[str]]:
    """How many cases ran, and each one whose answer breaks the contract."""
    problems, count = [], 0
    for case in cases:
        count += 1
        headers = dict(case.headers)
        if case.signed:
            headers.update(signature((ids or {})["hook_secret"], case.body or b""))
        answer = send(case.method, case.path, case.body, headers)
        wanted = expected(case.label, case.method, case.template, case.expect)
        where = f"{case.label}: {case.method} {case.path}"
        if answer.status != wanted:
            problems.append(f"{where} -> {answer.status}, not {wanted}: {answer.body[:200]!r}")
            continue
        if case.json_error and wanted >= 400:
            wrong = error_shape(answer)
            if wrong:
                problems.append(f"{where} -> {answer.status} {wrong}")
        if case.allow is not None:
            allow = {m.strip() for m in answer.headers.get("allow", "").split(",") if m.strip()}
            if allow != case.allow:
                problems.append(f"{where} -> Allow {sorted(allow)}, not {sorted(case.allow)}")
    return count, problems
