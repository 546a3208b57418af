"""`stepflow`: the command line client of Stepflow's REST API, and `stepflow server` to run the service locally."""

from __future__ import annotations

from importlib import metadata


def version() -> str:
    try:
        return metadata.version("stepflow")
    except metadata.PackageNotFoundError:  # run from a checkout that was never installed
        return "0.1.0+checkout"
