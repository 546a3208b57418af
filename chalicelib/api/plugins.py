"""Routes for the task-type catalog (plugin manifests with their JSON Schemas)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from chalice import Blueprint

from chalicelib.api.http import handles_errors, json_response
from chalicelib.errors import NotFound


def create_blueprint(services: Callable[[], Any]) -> Blueprint:
    bp = Blueprint(__name__)

    @bp.route("/plugins", methods=["GET"])
    @handles_errors
    def list_plugins() -> Any:
        return json_response(services().registry.manifests())

    @bp.route("/plugins/{plugin_id}", methods=["GET"])
    @handles_errors
    def get_plugin(plugin_id: str) -> Any:
        registry = services().registry
        if plugin_id not in registry:
            raise NotFound(f"no task type '{plugin_id}'; GET /plugins lists them")
        return json_response(registry.manifest(plugin_id))

    return bp
