"""Requests no route takes: unknown path 404, method 405 with Allow, Content-Type 415, all as {"detail": ...}.

On AWS, API Gateway sends every request to the API function (infra/build.py gives each resource an ANY
method and adds a catch-all `/{proxy+}` and `/`); locally the gateway does the same (stepflow_local/gateway.py).
So these answers come from one place, before authentication: what a route accepts is public (/openapi.json).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from chalice import Response

from chalicelib.api.http import error_response

CATCH_ALL = "/{proxy+}"  # the resource that receives paths no route matches (API Gateway's greedy variable)
# What `curl -d` sends when no Content-Type is given: the body is taken as JSON (or YAML where YAML is taken).
FORM_ENCODED = "application/x-www-form-urlencoded"
MAX_SHOWN_CHARS = 120  # of a path or media type echoed back in a message
ROUTES_HINT = "the routes are listed in /openapi.json"


def accept_unlabelled_bodies(app: Any) -> None:
    """Every route also takes FORM_ENCODED, so a body sent without its own Content-Type is read, not refused."""
    for methods in app.routes.values():
        for entry in methods.values():
            if entry.content_types and FORM_ENCODED not in entry.content_types:
                entry.content_types.append(FORM_ENCODED)


def allowed(methods: Any) -> str:
    return ", ".join(sorted({*methods, "OPTIONS"}))


def media_type(headers: Any) -> str:
    """The request's media type without parameters; none sent counts as JSON (as Chalice counts it)."""
    raw = (headers or {}).get("content-type") or "application/json"
    return raw.split(";")[0].strip().lower()


def takes(content_types: list[str], media: str) -> bool:
    accepted = {t.lower() for t in content_types}
    return not accepted or "*/*" in accepted or media in accepted


def make_route_refusals(app: Callable[[], Any]) -> Callable[[Any, Callable[[Any], Any]], Any]:
    """The http middleware answering requests no route takes; OPTIONS on a route answers its Allow."""

    def route_refusals(event: Any, get_response: Callable[[Any], Any]) -> Any:
        routes = app().routes
        context = getattr(event, "context", None) or {}
        resource = context.get("resourcePath")
        if resource is None or resource == CATCH_ALL or not routes.get(resource):  # get: routes is a defaultdict
            path = str(context.get("path") or getattr(event, "path", "") or "/")[:MAX_SHOWN_CHARS]
            return error_response(404, f"no route matches {path}; {ROUTES_HINT}")
        methods = routes[resource]
        method = str(getattr(event, "method", "") or "").upper()
        if method == "OPTIONS" and "OPTIONS" not in methods:
            return Response(body="", status_code=204, headers={"Allow": allowed(methods)})
        if method not in methods:
            response = error_response(405, f"{method[:16]} is not allowed here; this route takes {allowed(methods)}")
            response.headers["Allow"] = allowed(methods)
            return response
        media = media_type(getattr(event, "headers", None))
        if not takes(methods[method].content_types, media):
            accepted = ", ".join(t for t in methods[method].content_types if t != FORM_ENCODED)
            return error_response(415, f"this route does not take {media[:MAX_SHOWN_CHARS]}; send {accepted}")
        return get_response(event)

    return route_refusals
