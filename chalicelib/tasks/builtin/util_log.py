"""util.log: write a (templated) message to the step log."""

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


def handle(ctx: TaskContext) -> dict[str, Any]:
    ctx.log(ctx.config["message"], level=ctx.config.get("level", "info"))
    return {}


def register(registry: Any) -> None:
    registry.register(
        TaskType(
            id=ID,
            name="Log a message",
            category="utility",
            description="Writes a message to the step log. Outputs nothing.",
            config_schema=CONFIG_SCHEMA,
            input_schema=INPUT_SCHEMA,
            output_schema=OUTPUT_SCHEMA,
            handler=handle,
        )
    )
