"""data.assert: fail the step with a named error unless a condition holds on the step input.

The condition is the Stepflow condition language (``amount > 1000 and status == "paid"``),
from ``chalicelib.core.conditions``, imported lazily. ``condition`` is never templated: it is
code, and filling data into it would let instance data change its meaning. ``message`` is
templated.
"""

from __future__ import annotations

import importlib
from typing import Any

from chalicelib.tasks.errors import ASSERTION_FAILED, INVALID_CONFIG, StepError
from chalicelib.tasks.registry import ConfigIssue, TaskContext, TaskType

ID = "data.assert"
CONDITIONS_MODULE = "chalicelib.core.conditions"
# Same rules as StepError names: letters/digits/_/., <= 64 chars, not States.* or Lambda.*.
ERROR_NAME_SCHEMA: dict[str, Any] = {
    "type": "string",
    "pattern": r"^(?!States\.|Lambda\.)[A-Za-z][A-Za-z0-9_.]*$",
    "maxLength": 64,
}

CONFIG_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "condition": {
            "type": "string",
            "minLength": 1,
            "maxLength": 1000,
            "description": 'A Stepflow condition over the step input, e.g. amount > 0 and currency == "EUR". Not templated.',
        },
        "error": {
            **ERROR_NAME_SCHEMA,
            "default": ASSERTION_FAILED,
            "description": "Error name to fail with (what Retry/Catch match on).",
        },
        "message": {
            "type": "string",
            "maxLength": 2000,
            "description": "Failure message (the error cause); {{ path }} placeholders are filled from the step input.",
        },
    },
    "required": ["condition"],
    "additionalProperties": False,
}
INPUT_SCHEMA: dict[str, Any] = {"type": "object"}
OUTPUT_SCHEMA: dict[str, Any] = {"type": "object", "properties": {}, "additionalProperties": False}


def _load_conditions(conditions: Any) -> Any:
    return conditions if conditions is not None else importlib.import_module(CONDITIONS_MODULE)


def make_handler(conditions: Any = None):
    """The handler; ``conditions`` (parse_condition/evaluate) defaults to the lazily imported module."""

    def handle(ctx: TaskContext) -> dict[str, Any]:
        lang = _load_conditions(conditions)
        condition = ctx.config["condition"]
        try:
            expr = lang.parse_condition(condition)
        except ValueError as exc:  # conditions.ConditionError is a ValueError
            raise StepError(INVALID_CONFIG, f"config.condition: {exc}") from None
        if not lang.evaluate(expr, ctx.input):
            error = ctx.config.get("error") or ASSERTION_FAILED
            message = ctx.config.get("message") or f"assertion failed: {condition}"
            raise StepError(error, message)
        return {}

    return handle


def make_config_check(conditions: Any = None):
    """validate_config hook: reports a condition that does not parse (skipped if the language is unavailable)."""

    def check(config: dict[str, Any]) -> list[ConfigIssue]:
        condition = config.get("condition")
        if not isinstance(condition, str):
            return []
        try:
            lang = _load_conditions(conditions)
        except ImportError:
            return []
        try:
            lang.parse_condition(condition)
        except ValueError as exc:
            return [ConfigIssue("config.condition", str(exc))]
        return []

    return check


def register(registry: Any, *, conditions: Any = None) -> None:
    registry.register(
        TaskType(
            id=ID,
            name="Assert",
            category="data",
            description=(
                "Fails the step with a named error (default Stepflow.AssertionFailed) unless the condition"
                " holds on the step input. Outputs nothing."
            ),
            config_schema=CONFIG_SCHEMA,
            input_schema=INPUT_SCHEMA,
            output_schema=OUTPUT_SCHEMA,
            handler=make_handler(conditions),
            errors=(ASSERTION_FAILED,),
            raw_config_keys=("condition",),
            check_config=make_config_check(conditions),
            examples=({"title": "Go on only with an approval (a bare field means field == true)",
                       "config": {"condition": "approved", "error": "Expense.NotApproved",
                                  "message": "expense {{ expense_id }} was not approved"},
                       "output": {}},),
        )
    )
