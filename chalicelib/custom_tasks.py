"""Your own task types: register Python handlers by name here; steps use them as task_type."""

from __future__ import annotations

from typing import Any

from chalicelib.tasks.registry import TaskContext, TaskRegistry


def register(registry: TaskRegistry) -> None:
    """Called once when the app builds its task registry."""

    @registry.task(
        "expense.process",
        name="Process expense",
        category="examples",
        description="Marks an approved expense as paid (the bundled expense-approval example).",
        input_schema={"type": "object", "properties": {"amount": {"type": "number"}}},
        output_schema={"type": "object", "properties": {"paid": {"type": "boolean"}, "paid_amount": {"type": "number"}},
                       "additionalProperties": False},
        examples=[{"title": "Pay an approved expense", "config": {}, "output": {"paid": True, "paid_amount": 120}}],
    )
    def process_expense(ctx: TaskContext) -> dict[str, Any]:
        amount = ctx.input.get("amount", 0)
        ctx.log("expense paid", amount=amount)
        return {"paid": True, "paid_amount": amount}
