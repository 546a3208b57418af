"""Packages one stage for AWS: the infra template, `chalice package --merge-template`, checks, SIZE.md.

Run by `make package` under Python 3.12+ (build/venv-deploy): Chalice gives every Lambda function the runtime
of the Python that runs it, and downloads the dependencies' wheels for that runtime.

Before `chalice package`, installs requirements-lambda-extra.txt (the X-Ray SDK, without the botocore the
runtime provides) into build/lambda-vendor/ and links vendor/ to it: Chalice copies vendor/ into the zip.

Writes build/package/<stage>/: sam.json (the merged CloudFormation/SAM template), deployment.zip (the
code of every function) and SIZE.md (what the zip holds and how long packaging took).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chalicelib.config import PACKAGING_ENV
from infra import build as infra_build

ROOT = infra_build.ROOT
MIN_RUNTIME = (3, 12)
TEMPLATE = "sam.json"
ZIP = "deployment.zip"
# The lock Chalice installs the functions' dependencies from (`make lock`): every one pinned, with its hashes.
LOCK = ROOT / "requirements.txt"
# What the zip takes beside it without dependencies (the X-Ray SDK, whose botocore the runtime provides):
# installed for the functions' platform into vendor/, which `chalice package` copies to the root of the zip.
EXTRA_LOCK = ROOT / "requirements-lambda-extra.txt"
VENDOR = ROOT / "vendor"
VENDOR_BUILDS = ROOT / "build" / "lambda-vendor"
# Lambda's x86_64 Python runtimes run on Amazon Linux 2023 (glibc 2.34): wheels for these platforms or pure ones.
LAMBDA_PLATFORMS = ("manylinux2014_x86_64", "manylinux_2_28_x86_64", "manylinux_2_34_x86_64")
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)\s*(?:;\s*([^\\]+?))?\s*\\?$")
# Top-level names that must never be in the Lambda zip: test, dev and deploy tooling, and boto3/botocore
# (the Lambda runtime provides them; requirements.txt leaves them out on purpose).
FORBIDDEN_IN_ZIP = frozenset({
    "_pytest", "pytest", "moto", "mypy", "ruff", "statelint", "localstack_client", "cfnlint", "samtranslator",
    "boto3", "botocore", "s3transfer", "tests", "stepflow_local", "infra", "bench", "node_modules",
})


@dataclass(frozen=True)
class Package:
    stage: str
    folder: Path
    template: dict[str, Any]
    zip_bytes: int
    unzipped_bytes: int
    files: int
    top_level: list[tuple[str, int]]  # (name, uncompressed bytes), largest first
    seconds: float
    runtime: str
    dists: dict[str, str] = field(default_factory=dict)  # the distributions installed in the zip: name -> version

    @property
    def template_path(self) -> Path:
        return self.folder / TEMPLATE

    @property
    def zip_path(self) -> Path:
        return self.folder / ZIP


def runtime_of(version: tuple[int, int]) -> str:
    return f"python{version[0]}.{version[1]}"


def chalice_command() -> list[str]:
    """Chalice from this interpreter's environment (its console script sits beside the interpreter)."""
    script = Path(sys.executable).parent / "chalice"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "import sys; from chalice.cli import main; sys.exit(main())"]


def stage_env(stage: infra_build.Stage, base: dict[str, str] | None = None) -> dict[str, str]:
    """The packaging environment: app.py reads settings at import (API prefix, sweep rate), so it must see
    the stage's variables, as the deployed functions will. A region is all Chalice needs offline."""
    env = dict(os.environ if base is None else base)
    env.update(stage.environment)
    env.setdefault("AWS_DEFAULT_REGION", env.get("AWS_REGION") or "us-east-1")
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    # Every pip call Chalice makes checks hashes: a wheel it would fetch outside the lock (its second,
    # per-package download for Lambda's platform) fails the package instead of going in unverified.
    env["PIP_REQUIRE_HASHES"] = "1"
    env[PACKAGING_ENV] = "1"  # the stage's secrets are stack parameters, not on this machine
    return env


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def locked_pins(path: Path = LOCK, python_version: str | None = None) -> dict[str, str]:
    """name -> version of what the lock installs on Linux under this (or the given) Python version."""
    from packaging.markers import Marker

    environment = {"sys_platform": "linux", "platform_system": "Linux"}
    if python_version:
        environment.update(python_version=python_version, python_full_version=f"{python_version}.0")
    pins = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        found = _PIN.match(line.strip())
        if found and (not found.group(3) or Marker(found.group(3)).evaluate(environment)):
            pins[normalize(found.group(1))] = found.group(2)
    return pins


def lambda_pins(python_version: str | None = None) -> dict[str, str]:
    """name -> version of every distribution the zip must hold: requirements.txt's and the extra lock's."""
    return {**locked_pins(LOCK, python_version), **locked_pins(EXTRA_LOCK, python_version)}


def vendor_extras(env: dict[str, str]) -> Path:
    """Install EXTRA_LOCK for the functions' runtime (this Python's version) and point vendor/ at it.

    One folder per lock content and runtime, built aside and renamed into place, and vendor/ a symlink swapped
    in one step: two packagings at once (make check-package beside the tests) each see a complete folder."""
    import hashlib

    version = f"{sys.version_info[0]}.{sys.version_info[1]}"
    key = hashlib.sha256(EXTRA_LOCK.read_bytes() + version.encode()).hexdigest()[:16]
    target = VENDOR_BUILDS / f"py{version}-{key}"
    if not target.is_dir():
        VENDOR_BUILDS.mkdir(parents=True, exist_ok=True)
        staging = VENDOR_BUILDS / f".{target.name}-{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        command = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-deps",
                   "--require-hashes", "--no-compile", "--only-binary=:all:", "--implementation", "cp",
                   "--python-version", version, *(f"--platform={p}" for p in LAMBDA_PLATFORMS),
                   "--target", str(staging), "-r", str(EXTRA_LOCK)]
        completed = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
        if completed.returncode != 0:
            shutil.rmtree(staging, ignore_errors=True)
            raise SystemExit(f"infra.package: installing {EXTRA_LOCK.name} failed ({completed.returncode}):\n"
                             f"{completed.stdout}{completed.stderr}")
        shutil.rmtree(staging / "bin", ignore_errors=True)  # console scripts: nothing a function runs
        try:
            staging.rename(target)
        except OSError:  # another packaging got there first with the same content
            shutil.rmtree(staging, ignore_errors=True)
    if VENDOR.exists() and not VENDOR.is_symlink():
        raise SystemExit(f"infra.package: {VENDOR} is a folder of its own; infra.package makes vendor/ a link to "
                         f"what {EXTRA_LOCK.name} installs: move it away")
    link = ROOT / f".vendor-{os.getpid()}"
    link.unlink(missing_ok=True)
    link.symlink_to(target.relative_to(ROOT), target_is_directory=True)
    os.replace(link, VENDOR)
    return target


def packaged_dists(path: Path) -> dict[str, str]:
    """name -> version of every distribution installed in the zip (from its *.dist-info folder names)."""
    with zipfile.ZipFile(path) as archive:
        folders = {name.split("/", 1)[0] for name in archive.namelist() if ".dist-info/" in name}
    return {normalize(folder.removesuffix(".dist-info").rsplit("-", 1)[0]): folder.removesuffix(".dist-info")
            .rsplit("-", 1)[1] for folder in folders}


def inspect_zip(path: Path) -> tuple[int, int, list[tuple[str, int]]]:
    sizes: Counter[str] = Counter()
    files = 0
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            if info.is_dir():
                continue
            files += 1
            sizes[info.filename.split("/", 1)[0]] += info.file_size
    return files, sum(sizes.values()), sizes.most_common()


def check(package: Package, pins: dict[str, str] | None = None) -> list[str]:
    """Problems with a package: a runtime below 3.12, a dev dependency in the zip, a function without a name
    or its own role, a dependency other than the lock's (`pins`, name -> version)."""
    problems = []
    if pins is not None:
        for name in sorted(set(pins) | set(package.dists)):
            if package.dists.get(name) != pins.get(name):
                problems.append(f"{ZIP} holds {name} {package.dists.get(name) or '(missing)'}; "
                                f"{LOCK.name} and {EXTRA_LOCK.name} pin {pins.get(name) or 'nothing of that name'}")
    names = {name for name, _ in package.top_level}
    for name in sorted(names):
        base = name.split("-", 1)[0].removesuffix(".py").lower()
        if base in FORBIDDEN_IN_ZIP:
            problems.append(f"{ZIP} holds {name}: test/dev/deploy tooling must stay out of the Lambda package")
    for logical_id, resource in package.template["Resources"].items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        properties = resource["Properties"]
        runtime = properties.get("Runtime", "")
        version = tuple(int(part) for part in runtime.removeprefix("python").split(".")) if runtime else (0, 0)
        if version < MIN_RUNTIME:
            problems.append(f"{logical_id} has runtime {runtime!r}; package under Python 3.12+ (make package)")
        if not properties.get("FunctionName"):
            problems.append(f"{logical_id} has no FunctionName: infra/build.py did not know this function")
        if properties.get("Role") != {"Fn::GetAtt": [f"{logical_id}Role", "Arn"]}:
            problems.append(f"{logical_id} does not run as its own role {logical_id}Role (infra/roles.py)")
    return problems


def size_report(package: Package) -> str:
    mib = 1024 * 1024
    rows = "\n".join(f"| `{name}` | {size / mib:.2f} |" for name, size in package.top_level[:15])
    functions = [
        f"`{r['Properties'].get('FunctionName')}` ({r['Properties']['Handler']})"
        for r in package.template["Resources"].values() if r.get("Type") == "AWS::Serverless::Function"
    ]
    return (
        f"# Package size: stage `{package.stage}`\n\n"
        f"- `{ZIP}`: **{package.zip_bytes / mib:.2f} MiB** ({package.zip_bytes:,} bytes) compressed, "
        f"{package.unzipped_bytes / mib:.2f} MiB unzipped, {package.files} files "
        f"(Lambda's limits: 50 MiB zipped upload, 250 MiB unzipped)\n"
        f"- runtime: `{package.runtime}`; every function shares this zip: {', '.join(functions)}\n"
        f"- packaging took {package.seconds:.1f} s (Python {sys.version.split()[0]}, "
        f"{os.cpu_count()} cores)\n\n"
        "Largest top-level entries (uncompressed):\n\n| entry | MiB |\n|---|---|\n"
        f"{rows}\n"
    )


def package(stage_name: str, out: Path | None = None, *, quiet: bool = False) -> Package:
    if sys.version_info[:2] < MIN_RUNTIME:
        raise SystemExit(
            f"infra.package: this is Python {sys.version.split()[0]}; Chalice makes the Lambda runtime the "
            f"packaging Python's, and Stepflow needs {runtime_of(MIN_RUNTIME)}+. Run `make package` (it builds "
            "build/venv-deploy with Python 3.12+) or run this module with such a Python.")
    started = time.monotonic()
    stage = infra_build.resolve_stage(stage_name)
    env = stage_env(stage)
    # The app import below sees the stage's variables, as `chalice package` will.
    os.environ.update({k: v for k, v in env.items() if k in stage.environment or k == PACKAGING_ENV})
    result = infra_build.build(stage_name)
    infra_path = ROOT / "build" / "infra" / f"{stage_name}.json"
    infra_build.write(result, infra_path)
    for note in result.notes:
        print(f"infra.package: note: {note}", file=sys.stderr)

    folder = out or ROOT / "build" / "package" / stage_name
    if folder.exists():
        shutil.rmtree(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    vendor_extras(env)
    command = [*chalice_command(), "package", "--stage", stage_name, "--merge-template", str(infra_path),
               str(folder)]
    completed = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    if completed.returncode != 0:
        raise SystemExit(f"infra.package: chalice package failed ({completed.returncode}):\n"
                         f"{completed.stdout}{completed.stderr}")
    template = json.loads((folder / TEMPLATE).read_text(encoding="utf-8"))
    files, unzipped, top = inspect_zip(folder / ZIP)
    runtimes = {r["Properties"].get("Runtime") for r in template["Resources"].values()
                if r.get("Type") == "AWS::Serverless::Function"}
    result_package = Package(stage_name, folder, template, (folder / ZIP).stat().st_size, unzipped, files, top,
                             time.monotonic() - started, ", ".join(sorted(r for r in runtimes if r)),
                             packaged_dists(folder / ZIP))
    problems = check(result_package, lambda_pins())
    if problems:
        raise SystemExit("infra.package: the package is not deployable:\n  " + "\n  ".join(problems))
    (folder / "SIZE.md").write_text(size_report(result_package), encoding="utf-8")
    if not quiet:
        print(f"infra.package: {folder.relative_to(ROOT) if folder.is_relative_to(ROOT) else folder}: "
              f"{TEMPLATE} ({len(template['Resources'])} resources) and {ZIP} "
              f"({result_package.zip_bytes / 1024 / 1024:.2f} MiB, {files} files, runtime {result_package.runtime}) "
              f"in {result_package.seconds:.1f} s; see SIZE.md")
    return result_package


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.package", description=__doc__.splitlines()[0])
    parser.add_argument("--stage", default="dev")
    parser.add_argument("--out", type=Path, default=None, help="default: build/package/<stage>")
    args = parser.parse_args(argv)
    package(args.stage, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
