"""util.log: write a (templated) message to the step log and, as a `log` event, to the instance's event log."""

from __future__ import annotations

from typing import Any

from chalicelib.tasks.registry import TaskContext, TaskType

ID = "util.log"
LEVELS = ("debug", "info", "warning", "error")

CONFIG_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "message": {
            "type": "string",
            "minLength": 1,
            "maxLength": 10000,
            "description": "Text to log; {{ path }} placeholders are filled from the step input.",
        },
        "level": {"enum": list(LEVELS), "default": "info", "description": "Log level."},
    },
    "required": ["message"],
    "additionalProperties": False,
}
INPUT_SCHEMA: dict[str, Any] = {"type": "object"}
OUTPUT_SCHEMA: dict[str, Any] = {"type": "object", "properties": {}, "additionalProperties": False}


EVENT_TYPE = "log"


def handle(ctx: TaskContext) -> dict[str, Any]:
    level = ctx.config.get("level", "info")
    ctx.log(ctx.config["message"], level=level)
    # The step runner writes emitted events to the instance's event log (GET /instances/{id}/events).
    ctx.emit(EVENT_TYPE, {"message": ctx.config["message"], "level": level})
    return {}


def register(registry: Any) -> None:
    registry.register(
        TaskType(
            id=ID,
            name="Log a message",
            category="utility",
            description="Writes a message to the step log and a `log` event to the instance's event log. Outputs nothing.",
            config_schema=CONFIG_SCHEMA,
            input_schema=INPUT_SCHEMA,
            output_schema=OUTPUT_SCHEMA,
            handler=handle,
            examples=({"title": "Note who approved", "config": {"message": "approved by {{ approver }}"},
                       "output": {}},),
        )
    )
