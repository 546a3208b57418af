"""The bundled example workflows, shipped as YAML beside the code that registers them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from chalicelib.core.loading import load_definition_text

FOLDER = Path(__file__).parent


def bundled() -> dict[str, dict[str, Any]]:
    """Each example's definition data by workflow name, in file-name order."""
    found = {}
    for path in sorted(FOLDER.glob("*.yaml")):
        data = load_definition_text(path.read_text(encoding="utf-8"))
        found[data["name"]] = data
    return found
