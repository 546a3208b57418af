"""Routes for a definition's aliases: list them, read one, set one's routes (a canary between two revisions)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from chalice import Blueprint

from chalicelib.api.auth import definition_key, principal
from chalicelib.api.http import handles_errors, json_response, query, read_body


def create_blueprint(services: Callable[[], Any]) -> Blueprint:
    bp = Blueprint(__name__)

    def key_of(name: str) -> str:
        """The key of the caller's definition of this name: another tenant's is not found, as none is."""
        return definition_key(services(), name, query(bp.current_request))

    @bp.route("/definitions/{name}/aliases", methods=["GET"])
    @handles_errors
    def list_aliases(name: str) -> Any:
        """The workflow's aliases, `live` first."""
        return json_response(services().aliases.list(key_of(name)))

    @bp.route("/definitions/{name}/aliases/{alias}", methods=["GET"])
    @handles_errors
    def get_alias(name: str, alias: str) -> Any:
        """One alias and the revisions it routes starts to."""
        return json_response(services().aliases.get(key_of(name), alias))

    @bp.route("/definitions/{name}/aliases/{alias}", methods=["PUT"])
    @handles_errors
    def put_alias(name: str, alias: str) -> Any:
        """Sets the alias's routes: one or two revisions whose weights add up to 100."""
        body = read_body(bp.current_request)
        found = services()
        key = definition_key(found, name, query(bp.current_request), change=True)
        who = principal()
        return json_response(found.aliases.put(key, alias, body, who.id if who.authenticated else None))

    return bp
