"""util.sleep: wait inside the step runner (prefer a timer step for long waits)."""

from __future__ import annotations

from typing import Any

from chalicelib.tasks.registry import TaskContext, TaskType

ID = "util.sleep"
MAX_SECONDS = 900

CONFIG_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "seconds": {
            "type": "number",
            "minimum": 0,
            "maximum": MAX_SECONDS,
            "description": "How long to wait. The runner Lambda's own timeout still applies.",
        },
    },
    "required": ["seconds"],
    "additionalProperties": False,
}
INPUT_SCHEMA: dict[str, Any] = {"type": "object"}
OUTPUT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"slept_seconds": {"type": "number"}},
    "required": ["slept_seconds"],
    "additionalProperties": False,
}


def handle(ctx: TaskContext) -> dict[str, Any]:
    seconds = ctx.config["seconds"]
    if seconds > 0:
        ctx.sleep(seconds)
    return {"slept_seconds": seconds}


def register(registry: Any) -> None:
    registry.register(
        TaskType(
            id=ID,
            name="Sleep",
            category="utility",
            description=(
                f"Waits up to {MAX_SECONDS} seconds inside the step runner. For longer or cheaper waits use a timer step."
            ),
            config_schema=CONFIG_SCHEMA,
            input_schema=INPUT_SCHEMA,
            output_schema=OUTPUT_SCHEMA,
            handler=handle,
            examples=({"title": "Give a downstream system a moment", "config": {"seconds": 5},
                       "output": {"slept_seconds": 5}},),
        )
    )
