"""What each API operation answers, as pydantic models: the 2xx schemas of the OpenAPI contract.

Only the contract is built from these (api/openapi.py); views stay plain dicts, so no request pays
for pydantic. Tests hold the running service to them (schemathesis, a generated client, and a tour of
every operation validated against /openapi.json).

Conventions: a field that is always present has no default (required), `| None` where it can be
null; `| Absent = None` marks a field that may be left out but is never null. Objects the service
builds whole forbid unknown fields, so a field added to a view without a word here fails the tests;
list items and task views (which carry what the stored record holds) allow more, and user-shaped
data (instance data, step outputs, form schemas, ASL) is a free object.
"""

from __future__ import annotations

from typing import Any

from chalicelib.core.responses import audit, common, credentials, definitions, instances, kv, schedules, tasks, triggers

MODULES = (common, definitions, instances, tasks, triggers, credentials, kv, schedules, audit)


def model(name: str) -> Any:
    """The response model called `name` (api/openapi.py names one per operation and status)."""
    for module in MODULES:
        found = getattr(module, name, None)
        if found is not None:
            return found
    raise KeyError(name)
