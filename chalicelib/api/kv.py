"""Routes for the key-value store: read, write (conditionally, with ETags) and delete an entry; list keys.

The tenant is the token's; with authentication off (the local stage) the `tenant_id` query parameter
names it, as listings do, and without it the tenant-less space is used.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

from chalice import Blueprint

from chalicelib.api.auth import principal
from chalicelib.api.cursors import open_cursor, seal
from chalicelib.api.http import BadRequest, TooLarge, handles_errors, int_param, json_response, query, read_body
from chalicelib.core import kv
from chalicelib.errors import Forbidden, InvalidInput

HEADER_LOCATIONS = ("If-Match", "If-None-Match", "prefix", "cursor")
BODY_FIELDS = {"value", "ttl_seconds"}


def create_blueprint(services: Callable[[], Any]) -> Blueprint:
    bp = Blueprint(__name__)

    @bp.route("/kv/{namespace}", methods=["GET"])
    @handles_errors
    def list_kv_keys(namespace: str) -> Any:
        """A page of a namespace's keys (no values), in key order, optionally those with a prefix."""
        params = query(bp.current_request)
        tenant = _tenant(params)
        limit = int_param(params, "limit", kv.DEFAULT_PAGE, 1, kv.MAX_PAGE)
        with _translated():
            prefix = kv.check_prefix(params.get("prefix"))
            kv.check_namespace(namespace)
        found = services()
        # The cursor is bound to the caller's tenant (sealed) and to the namespace and prefix.
        selection = {"list": "kv", "namespace": namespace, "prefix": prefix, "tenant_id": tenant}
        after = open_cursor(found, params.get("cursor"), selection)
        if after is not None and not isinstance(after, str):
            raise BadRequest("cursor is not valid: use the next_cursor of a previous page, or start without it")
        with _translated():
            items, last = found.kv.page(tenant, namespace, prefix, limit, after)
        return json_response(seal(found, {"items": items, "limit": limit, "next_cursor": last}, selection))

    @bp.route("/kv/{namespace}/{key}", methods=["GET"])
    @handles_errors
    def get_kv_entry(namespace: str, key: str) -> Any:
        """The entry's value and version (also as the ETag header)."""
        tenant = _tenant(query(bp.current_request))
        with _translated():
            entry = services().kv.get(tenant, namespace, key)
        return json_response(entry, headers={"ETag": kv.etag(entry["version"])})

    @bp.route("/kv/{namespace}/{key}", methods=["PUT"])
    @handles_errors
    def put_kv_entry(namespace: str, key: str) -> Any:
        """Sets the entry ({value, ttl_seconds?}); If-Match: "<version>" or If-None-Match: * make it conditional."""
        request = bp.current_request
        tenant = _tenant(query(request))
        headers: Any = request.headers or {}
        with _translated():
            kv.check_namespace(namespace)
            kv.check_key(key)
            if_version = kv.parse_if_match(headers.get("if-match"))
            create_only = kv.parse_if_none_match(headers.get("if-none-match"))
        if if_version is not None and create_only:
            raise BadRequest("send If-Match or If-None-Match, not both")
        body = read_body(request)
        if not isinstance(body, dict) or "value" not in body:
            raise _invalid("value", "missing", "the body is {\"value\": <any JSON>, \"ttl_seconds\"?: <seconds>}")
        extra = sorted(set(body) - BODY_FIELDS)
        if extra:
            raise _invalid(extra[0], "not_allowed", f"unknown field; the body takes {', '.join(sorted(BODY_FIELDS))}")
        with _translated():
            entry, created = services().kv.put(tenant, namespace, key, body["value"],
                                               ttl_seconds=body.get("ttl_seconds"), if_version=if_version,
                                               create_only=create_only)
        return json_response(entry, 201 if created else 200, headers={"ETag": kv.etag(entry["version"])})

    @bp.route("/kv/{namespace}/{key}", methods=["DELETE"])
    @handles_errors
    def delete_kv_entry(namespace: str, key: str) -> Any:
        """Deletes the entry; with If-Match: "<version>" only if it is still at that version."""
        request = bp.current_request
        tenant = _tenant(query(request))
        with _translated():
            headers: Any = request.headers or {}
            if_version = kv.parse_if_match(headers.get("if-match"))
            removed = services().kv.delete(tenant, namespace, key, if_version=if_version)
        return json_response(removed)

    return bp


def _tenant(params: dict[str, str]) -> str | None:
    named = params.get("tenant_id") or None
    caller = principal()
    if not caller.authenticated:
        return named
    if named not in (None, caller.tenant_id):
        raise Forbidden("the tenant is taken from your token; leave tenant_id out or send your own tenant")
    return caller.tenant_id


def _invalid(location: str, code: str, message: str) -> InvalidInput:
    return InvalidInput({"message": "the request is not valid", "issues": [
        {"code": code, "location": location, "message": message}]})


@contextlib.contextmanager
def _translated() -> Iterator[None]:
    """Turns the store's refusals into the API's: 413 for a value too large, 400 for a header or query
    parameter, 422 for a name or a body field."""
    try:
        yield
    except kv.ValueTooLarge as exc:
        raise TooLarge(exc.message) from None
    except kv.KvError as exc:
        if exc.location in HEADER_LOCATIONS:
            raise BadRequest(f"{exc.location}: {exc.message}") from None
        raise _invalid(exc.location, exc.code, exc.message) from None
