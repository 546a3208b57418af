"""Liveness (/healthz: the process answers, no I/O) and readiness (/readyz: its AWS dependencies answer)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from chalice import Blueprint

from chalicelib.api.http import json_response


def create_blueprint(services: Callable[[], Any]) -> Blueprint:
    bp = Blueprint(__name__)

    @bp.route("/healthz", methods=["GET"])
    def healthz() -> Any:
        """Liveness: the process answers (touches nothing else)."""
        return json_response({"status": "alive"})

    @bp.route("/readyz", methods=["GET"])
    def readyz() -> Any:
        """Readiness: DynamoDB tables and Step Functions answer within the deadline (503 names what does not)."""
        from chalicelib.service.health import readiness

        found = services()
        verdict = readiness(found.readiness_probes(), found.settings.ready_deadline_seconds)
        return json_response(verdict, 200 if verdict["status"] == "ready" else 503,
                             {"Cache-Control": "no-store"})

    return bp
