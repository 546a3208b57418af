"""GET /metrics (under the API prefix): the Prometheus text exposition of Stepflow's counters.

Two credentials: the scrape token (STEPFLOW_METRICS_TOKEN, a bearer that is not a JWT, checked by the auth
middleware: every tenant's series), or an admin's token (its own tenant's series and the service-wide
ones). With authentication off (the local stage) it is open, as every route is.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from chalice import Blueprint, Response

from chalicelib.api.auth import SCRAPER, principal
from chalicelib.api.http import handles_errors

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def create_blueprint(services: Callable[[], Any]) -> Blueprint:
    bp = Blueprint(__name__)

    @bp.route("/metrics", methods=["GET"])
    @handles_errors
    def metrics() -> Any:
        """Prometheus text: instances, steps, tasks, webhooks and the sweep (scrape token or admin)."""
        caller = principal()
        # The scrape token, or authentication off: every tenant's series; an admin: its own tenant's.
        tenants = None if caller is SCRAPER or not caller.authenticated else [caller.tenant_id]
        return Response(body=services().metrics.exposition(tenants), status_code=200,
                        headers={"Content-Type": CONTENT_TYPE, "Cache-Control": "no-store"})

    return bp
