"""Step Functions workflow variables read from JSONPath states ("key.$": "$name"), which moto cannot do.

moto keeps variables (Assign works) but reads every reference through its JSONata evaluator, which
needs a JVM bridge moto does not ship: a JSONPath state's "$name" fails with "'NoneType' object is not
callable". Step Functions reads such a reference as the variable's value, or a JSONPath into it
("$name.field"). Here a JSONPath state's reference is read that way from moto's own variable store
(which already scopes Parallel branches inside their state machine); JSONata states keep moto's code.
"""

from __future__ import annotations

import functools
import re
from typing import Any

ORIGINALS: dict[str, Any] = {}
# $name, then optionally a JSONPath into its value ($c, $order.items[0].id).
_REFERENCE = re.compile(r"\$(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?P<path>(\.|\[).*)?", re.DOTALL)


def _jsonpath_reads(original: Any) -> Any:
    @functools.wraps(original)
    def _eval_body(self: Any, env: Any) -> None:
        from moto.stepfunctions.parser.asl.component.common.query_language import QueryLanguageMode
        from moto.stepfunctions.parser.asl.utils.json_path import extract_json

        found = _REFERENCE.fullmatch(self.expression or "")
        if self.query_language_mode != QueryLanguageMode.JSONPath or found is None:
            original(self, env)
            return
        value = env.variable_store.get(found["name"])  # NoSuchVariable, as moto raises for a missing one
        if found["path"]:
            value = extract_json("$" + found["path"], value)
        env.stack.append(value)

    _eval_body.__stepflow_variables__ = True  # type: ignore[attr-defined]
    return _eval_body


def patch(check_signature: Any) -> None:
    """JSONPath states read variables (check_signature(function, parameter names, what) raises when moto changed)."""
    from moto.stepfunctions.parser.asl.component.common.string.string_expression import StringVariableSample

    current = StringVariableSample.__dict__.get("_eval_body")
    if getattr(current, "__stepflow_variables__", False):
        return
    check_signature(current, ["self", "env"], "StringVariableSample._eval_body")
    ORIGINALS["StringVariableSample._eval_body"] = current
    setattr(StringVariableSample, "_eval_body", _jsonpath_reads(current))  # noqa: B010


def patched() -> bool:
    from moto.stepfunctions.parser.asl.component.common.string.string_expression import StringVariableSample

    return bool(getattr(StringVariableSample.__dict__.get("_eval_body"), "__stepflow_variables__", False))
