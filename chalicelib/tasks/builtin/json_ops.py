"""json.transform (JMESPath) and json.validate (JSON Schema, with the bounded checker user schemas get)."""

from __future__ import annotations

import json
from typing import Any

from chalicelib.tasks.errors import StepError
from chalicelib.tasks.registry import ConfigIssue, TaskContext, TaskType

MAX_EXPRESSION_CHARS = 1_000
MAX_RESULT_BYTES = 256 * 1024  # what a Step Functions state carries
MAX_REPORTED = 20
TRANSFORM_FAILED = "Json.TransformFailed"
RESULT_TOO_LARGE = "Json.ResultTooLarge"
VALIDATION_FAILED = "Json.ValidationFailed"

TRANSFORM_CONFIG: dict[str, Any] = {
    "type": "object",
    "properties": {
        "expression": {"type": "string", "minLength": 1, "maxLength": MAX_EXPRESSION_CHARS,
                       "description": "A JMESPath expression (jmespath.org), applied to `data`. Not templated."},
        "data": {"description": "What the expression reads; templated. Default: the step input."},
    },
    "required": ["expression"],
    "additionalProperties": False,
}
TRANSFORM_OUTPUT: dict[str, Any] = {"type": "object", "properties": {"result": {"description": "The expression's value."}},
                                    "required": ["result"], "additionalProperties": False}
VALIDATE_CONFIG: dict[str, Any] = {
    "type": "object",
    "properties": {
        "schema": {"type": "object", "description": "A JSON Schema (draft 2020-12; patterns in RE2 syntax). Not templated."},
        "data": {"description": "What is checked; templated. Default: the step input."},
        "fail": {"type": "boolean", "default": True,
                 "description": f"true: fail with {VALIDATION_FAILED}; false: output valid: false and the errors."},
    },
    "required": ["schema"],
    "additionalProperties": False,
}
VALIDATE_OUTPUT: dict[str, Any] = {
    "type": "object",
    "properties": {"valid": {"type": "boolean"},
                   "errors": {"type": "array", "maxItems": MAX_REPORTED,
                              "items": {"type": "object", "properties": {"location": {"type": "string"},
                                                                         "message": {"type": "string"}}}}},
    "required": ["valid", "errors"],
    "additionalProperties": False,
}


def _compile(expression: str) -> Any:
    import jmespath  # ships with botocore; loaded by the first transform
    from jmespath.exceptions import JMESPathError

    try:
        return jmespath.compile(expression)
    except JMESPathError as exc:
        # The parser's own message names the token and its position; nothing of the server is in it.
        raise ValueError(str(getattr(exc, "msg", None) or type(exc).__name__).splitlines()[0][:200]) from None
    except RecursionError:
        raise ValueError("the expression is nested too deeply") from None


def _transform_issues(config: dict[str, Any]) -> list[ConfigIssue]:
    try:
        _compile(config["expression"])
    except ValueError as exc:
        return [ConfigIssue("config.expression", f"not a valid JMESPath expression: {exc}")]
    return []


def _bounded(result: Any) -> Any:
    size = len(json.dumps(result, ensure_ascii=False, default=str))
    if size > MAX_RESULT_BYTES:
        raise StepError(RESULT_TOO_LARGE, f"the result is {size:,} bytes; a step output holds at most {MAX_RESULT_BYTES:,}")
    return result


def transform(ctx: TaskContext) -> dict[str, Any]:
    from jmespath.exceptions import JMESPathError

    try:
        parsed = _compile(ctx.config["expression"])
    except ValueError as exc:
        raise StepError("Stepflow.InvalidConfig", f"config.expression: {exc}") from None
    data = ctx.config["data"] if "data" in ctx.config else ctx.input
    try:
        result = parsed.search(data)
    except JMESPathError as exc:  # a function given the wrong type at run time
        raise StepError(TRANSFORM_FAILED, str(getattr(exc, "msg", None) or type(exc).__name__)[:200]) from None
    except RecursionError:
        raise StepError(TRANSFORM_FAILED, "the data is nested too deeply") from None
    return {"result": _bounded(result)}


def _validate_issues(config: dict[str, Any]) -> list[ConfigIssue]:
    from chalicelib.core.schemas import schema_problems

    issues = []
    for problem in schema_problems(config["schema"]):
        where = f".{problem.where.replace('/', '.')}" if problem.where else ""
        issues.append(ConfigIssue(f"config.schema{where}", f"{problem.message} ({problem.hint})"))
    return issues


def validate(ctx: TaskContext) -> dict[str, Any]:
    from chalicelib.core.schemas import schema_errors

    data = ctx.config["data"] if "data" in ctx.config else ctx.input
    errors = []
    for error in schema_errors(ctx.config["schema"], data)[:MAX_REPORTED]:
        location = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
        message = error.message if len(error.message) <= 300 else error.message[:297] + "..."
        errors.append({"location": f"data{location}", "message": message})
    if errors and ctx.config.get("fail", True):
        summary = "; ".join(f"{e['location']}: {e['message']}" for e in errors[:5])
        raise StepError(VALIDATION_FAILED, f"{len(errors)} problem(s): {summary}"[:2000], details={"errors": errors})
    return {"valid": not errors, "errors": errors}


def register(registry: Any) -> None:
    registry.register(TaskType(
        id="json.transform", name="Transform JSON (JMESPath)", category="data", handler=transform,
        description="Applies a JMESPath expression to the step input (or `data`); outputs `result`.",
        config_schema=TRANSFORM_CONFIG, output_schema=TRANSFORM_OUTPUT, errors=(TRANSFORM_FAILED, RESULT_TOO_LARGE),
        raw_config_keys=("expression",), check_config=_transform_issues,
        examples=({"title": "Names of the paid orders", "config": {"expression": "orders[?paid].name"},
                   "output": {"result": ["o-1", "o-3"]}},
                  {"title": "Reshape", "config": {"expression": "{id: order.id, total: sum(order.lines[].price)}"},
                   "output": {"result": {"id": "o-1", "total": 30}}})))
    registry.register(TaskType(
        id="json.validate", name="Validate JSON (JSON Schema)", category="data", handler=validate,
        description="Checks the step input (or `data`) against a JSON Schema; fails, or outputs the errors.",
        config_schema=VALIDATE_CONFIG, output_schema=VALIDATE_OUTPUT, errors=(VALIDATION_FAILED,),
        raw_config_keys=("schema",), check_config=_validate_issues,
        examples=({"title": "An order needs an id and a positive total",
                   "config": {"schema": {"type": "object", "required": ["id", "total"],
                                         "properties": {"id": {"type": "string", "pattern": "^o-[0-9]+$"},
                                                        "total": {"type": "number", "exclusiveMinimum": 0}}},
                              "fail": False},
                   "output": {"valid": False, "errors": [{"location": "data.total",
                                                          "message": "0 is less than or equal to the minimum of 0"}]}},)))
