"""Ad hoc runs: an inline definition becomes its tenant's anonymous definition, which the start then runs."""

from __future__ import annotations

import re
from typing import Any

from chalicelib.core import definition_keys
from chalicelib.core.adhoc import adhoc_name
from chalicelib.core.model import NAME_PATTERN, Definition
from chalicelib.errors import InvalidInput


def register_inline(definitions: Any, data: Any, *, tenant_id: str | None, created_by: str | None,
                    input_data: dict[str, Any], namespace: str | None = None) -> dict[str, Any]:
    """The anonymous definition of this body for this tenant: registered now, or the one the same body
    registered before (the same revision). Checked exactly as a registration is (same limits, same
    issues), then the input against its input_schema, before anything is stored.

    The body's own `name`, optional here, is kept as `adhoc_label`; the stored name is `adhoc-<hash>`,
    under the key of the tenant and namespace (core/definition_keys.py) as every definition's.
    """
    label = data.get("name") if isinstance(data, dict) else None
    if label is not None and not (isinstance(label, str) and re.fullmatch(NAME_PATTERN, label)):
        raise InvalidInput({"message": "the definition is not valid", "issues": [{
            "code": "string_pattern_mismatch", "location": "name", "hint": "use letters, digits, '_' or '-', "
            "starting with a letter", "message": "the name must be 1 to 80 letters, digits, '_' or '-'"}]})

    def input_fits(definition: Definition) -> None:
        from chalicelib.service.instances import input_issues

        issues = input_issues(definition.input_schema, input_data)
        if issues:
            raise InvalidInput({"message": "input_data does not match the workflow's input_schema", "issues": issues})

    name = adhoc_name(data, tenant_id)
    body = {**data, "name": name} if isinstance(data, dict) else data
    return definitions.register(body, created_by, tenant_id, marks={"adhoc": True, "adhoc_label": label},  # type: ignore[no-any-return]
                                vet=input_fits, key=definition_keys.key(tenant_id, namespace, name))
