"""Routes for the task-type catalog (plugin manifests with their JSON Schemas, examples and categories)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from chalice import Blueprint

from chalicelib.api.http import BadRequest, handles_errors, json_response, query
from chalicelib.errors import NotFound

MAX_SHOWN_CHARS = 60


def create_blueprint(services: Callable[[], Any]) -> Blueprint:
    bp = Blueprint(__name__)

    @bp.route("/plugins", methods=["GET"])
    @handles_errors
    def list_plugins() -> Any:
        registry = services().registry
        params = query(bp.current_request)
        unknown = sorted(set(params) - {"category"})
        if unknown:
            # A misspelt filter must not pass as "everything".
            raise BadRequest(f"unknown query parameter '{unknown[0][:MAX_SHOWN_CHARS]}'; /plugins takes 'category'")
        category = params.get("category")
        if category is not None and category not in registry.categories():
            known = ", ".join(registry.categories())
            raise BadRequest(f"no category '{category[:MAX_SHOWN_CHARS]}'; the categories are: {known}")
        return json_response(registry.manifests(category))

    @bp.route("/plugins/categories", methods=["GET"])
    @handles_errors
    def list_categories() -> Any:
        counts = services().registry.categories()
        return json_response([{"name": name, "count": count} for name, count in counts.items()])

    @bp.route("/plugins/{plugin_id}", methods=["GET"])
    @handles_errors
    def get_plugin(plugin_id: str) -> Any:
        registry = services().registry
        if plugin_id not in registry:
            raise NotFound(f"no task type '{plugin_id[:MAX_SHOWN_CHARS]}'; GET /plugins lists them")
        return json_response(registry.manifest(plugin_id))

    return bp
