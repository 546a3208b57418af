"""`import app` (the Lambda cold start) loads no module a route imports for itself, and no module needs the
development-only type stubs: pinned in a fresh interpreter."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Each is loaded by the first request that needs it: a token verified, a schema checked, YAML read, a body parsed.
LAZY = ("jwt", "cryptography", "jsonschema", "yaml", "re2", "pydantic", "chalicelib.core.model",
        "chalicelib.core.compiler", "chalicelib.service.definitions", "chalicelib.service.instances",
        "chalicelib.service.tasks", "chalicelib.core.responses", "urllib.request",
        "aws_xray_sdk")  # the tracer's SDK: at a deployed function's first invocation only (observability.py)

PROBE = """
import json, sys
import app
print(json.dumps({"loaded": sorted(m for m in sys.modules), "routes": sorted(app.app.routes)}))
"""


def _probe() -> dict:
    done = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_import_app_leaves_heavy_modules_to_the_routes_that_need_them():
    found = _probe()
    loaded = set(found["loaded"])
    assert [name for name in LAZY if name in loaded] == []
    # Blueprint registration still happens at import: Chalice needs every route before the first request.
    assert "/health" in found["routes"] and "/workflows/instances/{instance_id}" in found["routes"]


def test_the_graph_formats_the_router_checks_are_the_ones_the_renderer_knows():
    from chalicelib.api.graphs import FORMATS as ROUTED
    from chalicelib.core.graph_render import FORMATS

    assert tuple(ROUTED) == tuple(FORMATS)


# The boto3 type stubs are a development dependency: no module of the Lambda package may need them to load.
STUBLESS = """
import importlib, pkgutil, sys

class NoStubs:
    def find_spec(self, name, path=None, target=None):
        if name.startswith("mypy_boto3"):
            raise ImportError(f"{name} is not installed in the Lambda package")
        return None

sys.meta_path.insert(0, NoStubs())
import app, chalicelib
names = [m.name for m in pkgutil.walk_packages(chalicelib.__path__, "chalicelib.")]
for name in names:
    importlib.import_module(name)
print(len(names))
"""


def test_every_module_of_the_lambda_package_loads_without_the_type_stubs():
    done = subprocess.run([sys.executable, "-c", STUBLESS], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert int(done.stdout.strip().splitlines()[-1]) > 50  # the walk found the package's modules
