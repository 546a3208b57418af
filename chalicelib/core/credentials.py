"""Which credentials a definition's steps name, and the issues for names the tenant does not have.

The caller (the definition service) asks its credential store which names exist and passes them in:
the check itself reads nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from chalicelib.core.model import Definition, MachineStep
from chalicelib.core.validation import Issue, _issue, _loc


class CredentialCatalog(Protocol):
    def __contains__(self, task_id: object) -> bool: ...
    def credential_references(self, task_id: str, config: Any) -> list[tuple[str, str]]: ...


@dataclass(frozen=True)
class Reference:
    step: str  # the step's id
    location: str  # steps[2].config.headers.Authorization, steps[2].fallback.config.auth.credential
    name: str  # "" when the reference is malformed


def references(definition: Definition, catalog: CredentialCatalog) -> list[Reference]:
    """Every credential reference in machine steps' (and their fallbacks') config, in step order."""
    found: list[Reference] = []
    for i, step in enumerate(definition.steps):
        if not isinstance(step, MachineStep):
            continue
        runs: list[tuple[list[Any], str, Any]] = [(["steps", i], step.task_type, step.config)]
        if step.fallback is not None:
            runs.append((["steps", i, "fallback"], step.fallback.task_type, step.fallback.config))
        for base, task_type, config in runs:
            if task_type not in catalog:
                continue  # validation reports the unknown task type
            for location, name in catalog.credential_references(task_type, config or {}):
                found.append(Reference(step.id, f"{_loc(base)}.{location}", name))
    return found


def credential_issues(found: Iterable[Reference], known: set[str]) -> list[Issue]:
    """A located issue for each malformed reference and each name not in `known`, sorted."""
    issues = []
    for ref in found:
        if not ref.name:
            issues.append(_issue("invalid_credential_reference", ref.location,
                                 f"step '{ref.step}': a credential is named as {{{{ secrets.NAME }}}}, NAME starting "
                                 "with a letter, then letters, digits or '_'", "GET /credentials lists the names"))
        elif ref.name not in known:
            # The same words whether the name is another tenant's or nobody's: nothing about others leaks.
            issues.append(_issue("unknown_credential", ref.location,
                                 f"step '{ref.step}': no credential named '{ref.name}'",
                                 "create it with POST /credentials, or check the name (GET /credentials)"))
    return sorted(issues)
