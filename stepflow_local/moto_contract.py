"""What the moto patches replaced, and the check that moto still has the shape they were written against."""

from __future__ import annotations

import inspect
from typing import Any

# The moto release these patches were written against. The patched names are private: the contract
# tests (tests/integration/test_local_runtime.py and its neighbours) fail loudly when an upgrade changes them.
TESTED_MOTO_VERSION = "5.2.5"

# What each patch replaced, by "Class.method" (the contract tests check the originals' shape).
ORIGINALS: dict[str, Any] = {}


def check_signature(function: Any, expected: list[str], what: str) -> None:
    """Raises when moto no longer defines `function` with exactly these parameter names."""
    if function is None:
        raise RuntimeError(f"moto no longer defines {what}; re-check the patches in stepflow_local/")
    names = list(inspect.signature(function).parameters)
    if names != expected:
        raise RuntimeError(
            f"moto changed {what}{tuple(names)} (patched for moto {TESTED_MOTO_VERSION} with {tuple(expected)}); "
            "re-check the patches in stepflow_local/"
        )
