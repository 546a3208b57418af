"""Routes for workflow graphs: a definition's graph, and an instance's graph coloured by execution state."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from chalice import Blueprint

from chalicelib.api.auth import definition_scope, require_definition, require_instance
from chalicelib.api.http import BadRequest, handles_errors, json_response, query

# The formats chalicelib.core.graph_render renders; named here so that routing does not load the model.
FORMATS = ("mermaid", "json")


def graph_format(params: dict[str, str]) -> str:
    value = params.get("graph_format", "mermaid")
    if value not in FORMATS:
        raise BadRequest(f"'graph_format' must be one of {', '.join(FORMATS)}")
    return value


def create_blueprint(services: Callable[[], Any]) -> Blueprint:
    bp = Blueprint(__name__)

    @bp.route("/definitions/{name}/graph", methods=["GET"])
    @handles_errors
    def definition_graph(name: str) -> Any:
        params = query(bp.current_request)
        fmt = graph_format(params)
        record = require_definition(services(), name, params.get("version"), params.get("revision"),
                                    definition_scope(params))
        from chalicelib.core.graph_render import render
        from chalicelib.core.model import Definition

        graph = render(Definition.model_validate(record["body"]), graph_format=fmt)
        return json_response({"name": record["name"], "version": record.get("version"),
                              "revision": record.get("revision"), **graph})

    @bp.route("/instances/{instance_id}/graph", methods=["GET"])
    @handles_errors
    def instance_graph(instance_id: str) -> Any:
        fmt = graph_format(query(bp.current_request))
        found = services()
        from chalicelib.core.definition_keys import instance_key

        record = require_instance(found, instance_id)
        instance = found.instances.get(instance_id, with_outputs=False)
        # The revision the instance runs, not the newest one: its steps are the ones in its history.
        body = found.definitions.get_revision(instance_key(record), instance["revision"])["body"]
        statuses = {step["step_name"]: step["status"] for step in instance["step_history"]}
        from chalicelib.core.graph_render import render_instance
        from chalicelib.core.model import Definition

        graph = render_instance(Definition.model_validate(body), statuses, instance["status"], graph_format=fmt)
        return json_response({"instance_id": instance["id"], "definition_name": instance["definition_name"],
                              "status": instance["status"], "current_steps": instance["current_steps"], **graph})

    return bp
