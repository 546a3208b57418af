"""workflow.start: start a child workflow instance in the parent's tenant (fire and forget)."""

from __future__ import annotations

from typing import Any

from chalicelib.tasks.errors import StepError
from chalicelib.tasks.registry import ConfigIssue, TaskContext, TaskType

ID = "workflow.start"
CHILD_ERRORS = ("Workflow.NotFound", "Workflow.NotStartable", "Workflow.InvalidInput", "Workflow.TooDeep")

CONFIG_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "workflow": {"type": "string", "minLength": 1, "maxLength": 80, "pattern": r"^[A-Za-z0-9_.:-]+$",
                     "description": "The child workflow's name (yours, or a shared one)."},
        "input": {"type": "object", "description": "The child's input_data; templated. Default: {}."},
        "wait": {"type": "boolean", "default": False,
                 "description": "Only false: the step ends once the child has started (see docs/definitions.md)."},
    },
    "required": ["workflow"],
    "additionalProperties": False,
}
OUTPUT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"instance_id": {"type": "string"}, "workflow": {"type": "string"},
                   "status": {"type": "string"}},
    "required": ["instance_id", "workflow", "status"],
    "additionalProperties": False,
}


def _check(config: dict[str, Any]) -> list[ConfigIssue]:
    if config.get("wait") is True:
        return [ConfigIssue("config.wait", "waiting for a child's result is not supported yet; start it and use a "
                            "webhook or event step to hear back")]
    return []


def register(registry: Any, *, workflows: Any = None) -> None:
    def handle(ctx: TaskContext) -> dict[str, Any]:
        if workflows is None:
            raise StepError("Stepflow.NotConfigured", "this service cannot start child workflows")
        view = workflows.start(ctx.execution_id, ctx.step_id, ctx.config["workflow"], ctx.config.get("input") or {})
        return {"instance_id": str(view.get("id") or view.get("instance_id")), "workflow": ctx.config["workflow"],
                "status": str(view.get("status"))}

    registry.register(TaskType(
        id=ID, name="Start a child workflow", category="workflow", handler=handle,
        description="Starts another workflow of your tenant with `input`; outputs the child's instance id.",
        config_schema=CONFIG_SCHEMA, output_schema=OUTPUT_SCHEMA, errors=CHILD_ERRORS, check_config=_check,
        examples=({"title": "Fulfil each approved order in its own workflow",
                   "config": {"workflow": "order_fulfilment", "input": {"order_id": "{{ order_id }}"}},
                   "output": {"instance_id": "6f1c1f9e-2b7e-4c43-9a53-2f1f3b0f3f4a", "workflow": "order_fulfilment",
                              "status": "running"}},)))
