"""Packaging: what `pip install .` ships, and the locks every install (make run/test, the Lambda package) uses."""

from __future__ import annotations

import fnmatch
import re
import subprocess
import tomllib
from pathlib import Path

import pytest
from setuptools import find_packages

from infra import package as infra_package

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
LOCKS = ("requirements.txt", "requirements-lambda-extra.txt", "requirements-dev.txt", "requirements-deploy.txt", "requirements-deploy-sam.txt",
         "requirements-uv.txt")
PACKAGES = {"chalicelib", "stepflow_local", "stepflow_cli"}
REQUIREMENT = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?==(\S+)$")


def pins_of(requirements: list[str]) -> dict[str, str]:
    found = {}
    for line in requirements:
        match = REQUIREMENT.match(line.strip())
        assert match, f"not pinned with ==: {line!r}"
        found[infra_package.normalize(match.group(1))] = match.group(3)
    return found


def direct(path: str) -> dict[str, str]:
    lines = [line for line in (ROOT / path).read_text().splitlines()
             if line.strip() and not line.startswith(("#", "-r", "-c"))]
    return pins_of(lines)


def tracked(folder: str) -> list[str]:
    listed = subprocess.run(["git", "ls-files", folder], cwd=ROOT, capture_output=True, text=True)
    if listed.returncode != 0:
        pytest.skip("not a git checkout")
    return listed.stdout.splitlines()


@pytest.mark.parametrize("lock", LOCKS)
def test_every_locked_requirement_is_pinned_with_hashes(lock):
    text = (ROOT / lock).read_text()
    entries = re.split(r"\n(?=[A-Za-z0-9])", text.split("\n", 2)[2])  # each entry starts at column 0
    assert len(entries) > 0
    for entry in entries:
        head = entry.split("\\")[0].strip()
        assert REQUIREMENT.match(head.split(";")[0].strip()), f"{lock}: not pinned: {head!r}"
        assert "--hash=sha256:" in entry, f"{lock}: {head} has no hash"
    assert "-e " not in text and "git+" not in text and "file:" not in text


def test_the_direct_dependencies_are_pinned_as_the_locks_pin_them():
    dev = infra_package.locked_pins(ROOT / "requirements-dev.txt", python_version="3.11")
    project = pins_of(PYPROJECT["project"]["dependencies"] + PYPROJECT["project"]["optional-dependencies"]["dev"])
    assert {name: dev.get(name) for name in project} == project
    runtime = direct("requirements.in")
    lambda_lock = infra_package.locked_pins(ROOT / "requirements.txt", python_version="3.12")
    assert {name: lambda_lock.get(name) for name in runtime} == runtime
    assert {name: project.get(name) for name in runtime} == runtime  # `pip install .` runs what the Lambda runs
    extra = infra_package.locked_pins(infra_package.EXTRA_LOCK, python_version="3.12")
    assert extra == direct("requirements-lambda-extra.in")  # locked without dependencies: exactly what it lists
    deploy = infra_package.locked_pins(ROOT / "requirements-deploy.txt", python_version="3.12")
    assert {name: deploy.get(name) for name in direct("requirements-deploy.in")} == direct("requirements-deploy.in")


@pytest.mark.parametrize("python", ["3.11", "3.12", "3.13"])
def test_a_package_the_lambda_ships_has_one_version_in_every_lock(python):
    lambda_lock = infra_package.locked_pins(ROOT / "requirements.txt", python_version=python)
    for lock in ("requirements-dev.txt", "requirements-deploy.txt"):
        other = infra_package.locked_pins(ROOT / lock, python_version=python)
        assert {name: other.get(name) for name in lambda_lock} == lambda_lock, lock
    assert not {name.replace("-", "_") for name in lambda_lock} & infra_package.FORBIDDEN_IN_ZIP
    # The X-Ray SDK the zip carries beside the lock is the one the tests trace with, and brings no botocore.
    extra = infra_package.locked_pins(infra_package.EXTRA_LOCK, python_version=python)
    dev = infra_package.locked_pins(ROOT / "requirements-dev.txt", python_version=python)
    assert {"aws-xray-sdk", "wrapt"} <= set(extra) and {name: dev.get(name) for name in extra} == extra
    assert not {name.replace("-", "_") for name in extra} & infra_package.FORBIDDEN_IN_ZIP
    assert infra_package.lambda_pins(python) == {**lambda_lock, **extra}


def test_every_install_checks_hashes():
    makefile = (ROOT / "Makefile").read_text().replace("\\\n", " ")  # continued lines read as one
    installs = [line.strip() for line in makefile.splitlines() if line.startswith("\t") and "pip install" in line]
    from_locks = [line for line in installs if " -r " in line]
    # .venv, build/venv-deploy, build/venv-sam, build/venv-uv, build/venv-localstack, the LocalStack functions'
    # runtime packages
    assert len(from_locks) == 6, from_locks
    assert all("--require-hashes" in line for line in from_locks), from_locks
    # Local code goes in without resolving anything (its dependencies came from a lock): the project
    # itself, last in .venv, and LocalStack's Lambda executor plugin in LocalStack's venv.
    local = [line for line in installs if " -r " not in line]
    assert all("--no-deps" in line and "--no-build-isolation" in line for line in local), local
    assert [line for line in local if line.endswith("-e .")] and len(local) == 2, local
    assert infra_package.stage_env(infra_package.infra_build.Stage("dev", "p-", {}, False), {})[
        "PIP_REQUIRE_HASHES"] == "1"  # and so does every pip call `chalice package` makes


def test_the_lambda_package_check_refuses_a_dependency_the_lock_does_not_pin():
    pins = {"pydantic": "2.14.3", "pyyaml": "6.0.3"}
    package = infra_package.Package("dev", ROOT, {"Resources": {}}, 0, 0, 0, [], 0.0, "python3.12",
                                    {"pydantic": "2.14.3", "pyyaml": "6.0.2", "requests": "2.0"})
    assert infra_package.check(package, pins) == [
        "deployment.zip holds pyyaml 6.0.2; requirements.txt and requirements-lambda-extra.txt pin 6.0.3",
        "deployment.zip holds requests 2.0; requirements.txt and requirements-lambda-extra.txt pin nothing of that name",
    ]


def test_pip_install_ships_exactly_the_three_packages_and_the_app_module():
    settings = PYPROJECT["tool"]["setuptools"]
    found = set(find_packages(str(ROOT), include=settings["packages"]["find"]["include"]))
    assert {name.split(".")[0] for name in found} == PACKAGES
    assert settings["py-modules"] == ["app"]
    # Every folder of Python code in them is a package (a folder without __init__.py would be left out).
    code_folders = {str(Path(p).parent).replace("/", ".") for p in tracked(".") if p.endswith(".py")
                    and p.split("/")[0] in PACKAGES}
    assert code_folders <= found, code_folders - found
    assert PYPROJECT["project"]["scripts"] == {"stepflow": "stepflow_cli.main:main"}


def test_every_data_file_of_the_service_is_in_the_package_data():
    patterns = PYPROJECT["tool"]["setuptools"]["package-data"]["chalicelib"]
    data = [path.removeprefix("chalicelib/") for path in tracked("chalicelib") if not path.endswith(".py")]
    assert data, "the UI and the examples are data files"
    missing = [path for path in data if not any(fnmatch.fnmatch(path, pattern) and
                                                path.count("/") == pattern.count("/") for pattern in patterns)]
    assert not missing, f"not shipped by `pip install .`: {missing}"
