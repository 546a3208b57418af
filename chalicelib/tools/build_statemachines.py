"""Compiles the bundled example workflows into statemachines/*.asl.json (run: make statemachines)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from chalicelib.core.compiler import compile_definition
from chalicelib.core.loading import revision_of
from chalicelib.core.model import Definition
from chalicelib.examples import bundled

OUT = Path(__file__).resolve().parents[2] / "statemachines"


def render_all() -> dict[str, str]:
    """File name -> file text for every bundled example; the text ends with a newline."""
    files = {}
    for name, data in bundled().items():
        definition = Definition.model_validate(data)
        asl = compile_definition(definition, revision_of(definition))
        files[f"{name}.asl.json"] = json.dumps(asl, indent=2) + "\n"
    return files


def main() -> int:
    OUT.mkdir(exist_ok=True)
    for file_name, text in render_all().items():
        (OUT / file_name).write_text(text, encoding="utf-8")
        print(f"wrote statemachines/{file_name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
