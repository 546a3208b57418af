"""workflow.start: start a child workflow instance in the parent's tenant; with `wait`, the step ends with the child."""

from __future__ import annotations

from typing import Any

from chalicelib.tasks.errors import StepError
from chalicelib.tasks.registry import ConfigIssue, TaskContext, TaskType

ID = "workflow.start"
CHILD_ERRORS = ("Workflow.NotFound", "Workflow.NotStartable", "Workflow.InvalidInput", "Workflow.TooDeep",
                "Workflow.ChildFailed", "Workflow.ChildCanceled", "Workflow.ChildOutputTooLarge")

CONFIG_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "workflow": {"type": "string", "minLength": 1, "maxLength": 80, "pattern": r"^[A-Za-z0-9_.:-]+$",
                     "description": "The child workflow's name (yours, or a shared one)."},
        "input": {"type": "object", "description": "The child's input_data; templated. Default: {}."},
        "wait": {"type": "boolean", "default": False,
                 "description": "true: the step ends when the child ends, with its output (or fails with its "
                                "error); false: once the child has started. Literal (never a placeholder)."},
    },
    "required": ["workflow"],
    "additionalProperties": False,
}
OUTPUT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"instance_id": {"type": "string"}, "workflow": {"type": "string"},
                   "status": {"type": "string"},
                   "output": {"type": "object", "description": "With wait: the child's output."}},
    "required": ["instance_id", "workflow", "status"],
    "additionalProperties": False,
}


def _check(config: dict[str, Any]) -> list[ConfigIssue]:
    if "wait" in config and not isinstance(config["wait"], bool):
        # It decides what the step compiles to, before any input exists to fill a placeholder.
        return [ConfigIssue("config.wait", "'wait' is true or false, written as it is (not a placeholder)")]
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
        description="Starts another workflow of your tenant with `input`; outputs the child's instance id, and "
                    "with `wait: true` waits for it to end and outputs its output too.",
        config_schema=CONFIG_SCHEMA, output_schema=OUTPUT_SCHEMA, errors=CHILD_ERRORS, check_config=_check,
        examples=({"title": "Fulfil each approved order in its own workflow",
                   "config": {"workflow": "order_fulfilment", "input": {"order_id": "{{ order_id }}"}},
                   "output": {"instance_id": "6f1c1f9e-2b7e-4c43-9a53-2f1f3b0f3f4a", "workflow": "order_fulfilment",
                              "status": "running"}},
                  {"title": "Run a credit check as its own workflow and branch on its result",
                   "config": {"workflow": "credit_check", "input": {"customer": "{{ customer_id }}"}, "wait": True},
                   "output": {"instance_id": "0b7f5c2e-8d1a-4f9e-b3c6-5a2d9e4f1c7b", "workflow": "credit_check",
                              "status": "completed", "output": {"customer": "c-17", "approved": True}}})))
