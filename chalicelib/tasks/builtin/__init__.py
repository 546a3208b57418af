"""The built-in task catalog; ``default_registry()`` registers all of it."""

from __future__ import annotations

from typing import Any

from chalicelib.tasks.builtin import data_assert, data_set, http_request, util_log, util_sleep

BUILTIN_MODULES = (util_log, util_sleep, data_set, data_assert, http_request)


def register_builtins(registry: Any, *, http_client: Any = None, conditions: Any = None) -> None:
    util_log.register(registry)
    util_sleep.register(registry)
    data_set.register(registry)
    data_assert.register(registry, conditions=conditions)
    http_request.register(registry, client=http_client)
