"""The compiled state machine's size as Step Functions receives it: placeholders bound, against the 1 MiB limit."""

from __future__ import annotations

import json
from typing import Any

from chalicelib.core.compiler import STEP_RUNNER, TASK_REGISTRAR

MAX_DEFINITION_BYTES = 1_048_576

# The longest function ARN a stage can have (partition, region, a 64-character function name): what a
# placeholder is measured as when the ARN it stands for is not known, so that what fits here fits anywhere.
LONGEST_FUNCTION_ARN = "arn:aws-iso-f:lambda:us-isof-south-1:123456789012:function:" + "f" * 64
# The placeholders the compiler writes, by name ("${Name}" in the text).
PLACEHOLDERS = tuple(p[2:-1] for p in (STEP_RUNNER, TASK_REGISTRAR))


def compiled_size(asl: dict[str, Any]) -> int:
    """Bytes of the definition as it is sent (compact JSON, as StateMachines.ensure writes it)."""
    return len(_text(asl).encode())


def bind_placeholders(asl: dict[str, Any], values: dict[str, str]) -> dict[str, Any]:
    """What CloudFormation's DefinitionSubstitutions does: fill ${Name} placeholders."""
    return json.loads(_bind(_text(asl), values))


def deployed_size(asl: dict[str, Any], bindings: dict[str, str] | None) -> int:
    """Bytes of the definition once its placeholders are bound to `bindings`.

    A placeholder without a binding (or bound to "") is measured as LONGEST_FUNCTION_ARN: the check must
    never pass a definition that a real ARN would push over the limit.
    """
    values = dict.fromkeys(PLACEHOLDERS, LONGEST_FUNCTION_ARN)
    values.update({name: arn for name, arn in (bindings or {}).items() if arn})
    return len(_bind(_text(asl), values).encode())


def _text(asl: dict[str, Any]) -> str:
    return json.dumps(asl, separators=(",", ":"))


def _bind(text: str, values: dict[str, str]) -> str:
    for name, value in values.items():
        # Escaped as a JSON string body, so the bound text stays valid JSON whatever the value.
        text = text.replace("${" + name + "}", json.dumps(value)[1:-1])
    return text
