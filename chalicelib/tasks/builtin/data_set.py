"""data.set: output fixed or templated values."""

from __future__ import annotations

from typing import Any

from chalicelib.tasks.registry import TaskContext, TaskType

ID = "data.set"

CONFIG_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "values": {
            "type": "object",
            "description": (
                "The step output. String values may use {{ path }} placeholders; a value that is"
                " exactly one placeholder keeps the referenced value's type."
            ),
        },
    },
    "required": ["values"],
    "additionalProperties": False,
}
INPUT_SCHEMA: dict[str, Any] = {"type": "object"}
OUTPUT_SCHEMA: dict[str, Any] = {"type": "object", "description": "The rendered values."}


def handle(ctx: TaskContext) -> dict[str, Any]:
    return ctx.config["values"]


def register(registry: Any) -> None:
    registry.register(
        TaskType(
            id=ID,
            name="Set values",
            category="data",
            description="Outputs the configured values, with placeholders filled from the step input.",
            config_schema=CONFIG_SCHEMA,
            input_schema=INPUT_SCHEMA,
            output_schema=OUTPUT_SCHEMA,
            handler=handle,
            examples=({"title": "Derive a status", "config": {"values": {"status": "approved", "amount": "{{ amount }}"}},
                       "output": {"status": "approved", "amount": 120}},),
        )
    )
