"""Routes for a definition's aliases: list them, read one, set one's routes (a canary between two revisions)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from chalice import Blueprint

from chalicelib.api.auth import may_change, principal, require_definition
from chalicelib.api.http import handles_errors, json_response, read_body


def create_blueprint(services: Callable[[], Any]) -> Blueprint:
    bp = Blueprint(__name__)

    @bp.route("/definitions/{name}/aliases", methods=["GET"])
    @handles_errors
    def list_aliases(name: str) -> Any:
        """The workflow's aliases, `live` first."""
        require_definition(services(), name)
        return json_response(services().aliases.list(name))

    @bp.route("/definitions/{name}/aliases/{alias}", methods=["GET"])
    @handles_errors
    def get_alias(name: str, alias: str) -> Any:
        """One alias and the revisions it routes starts to."""
        require_definition(services(), name)
        return json_response(services().aliases.get(name, alias))

    @bp.route("/definitions/{name}/aliases/{alias}", methods=["PUT"])
    @handles_errors
    def put_alias(name: str, alias: str) -> Any:
        """Sets the alias's routes: one or two revisions whose weights add up to 100."""
        body = read_body(bp.current_request)
        found = services()
        may_change(found, name)
        who = principal()
        return json_response(found.aliases.put(name, alias, body, who.id if who.authenticated else None))

    return bp
