"""A two-route Chalice app for the local server's tests (app_module="stepflow_local.testing_app")."""

from __future__ import annotations

import os
from typing import Any

from chalice import Chalice

app = Chalice(app_name="stepflow-testing")
started: list[str] = []


@app.route("/health")
def health() -> dict[str, Any]:
    return {"status": "healthy", "stage": os.environ.get("STEPFLOW_STAGE")}


@app.route("/tables")
def tables() -> dict[str, Any]:
    import boto3

    return {"tables": boto3.client("dynamodb").list_tables()["TableNames"]}


def register_bundled_examples() -> None:
    started.append("registered")
