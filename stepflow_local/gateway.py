"""Chalice's local API Gateway, routed as the deployed API is: every request reaches the app.

Chalice's LocalGateway answers a path no route matches itself, with API Gateway's default 403 "Missing
Authentication Token", and answers OPTIONS itself. The deployed API sends both to the app instead (a
catch-all `/{proxy+}` resource and an ANY method on every resource, infra/build.py), where
chalicelib/api/routing.py answers 404, 405 or 415 as {"detail": ...}; this gateway does the same, for
the local server and for tests through chalice.test.Client (routed_test_client).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlparse

from chalice.local import LambdaEventConverter, LocalGateway, LocalGatewayAuthorizer, MatchResult, RouteMatcher

from chalicelib.api.routing import CATCH_ALL


class CatchAllRouteMatcher(RouteMatcher):
    """A path no route matches goes to `/` (the root) or CATCH_ALL, as API Gateway sends it."""

    def match_route(self, url: str) -> MatchResult:
        try:
            return super().match_route(url)
        except ValueError:
            parsed = urlparse(url)
            query = parse_qs(parsed.query, keep_blank_values=True)
            proxy = parsed.path.strip("/")
            return MatchResult(CATCH_ALL if proxy else "/", {"proxy": proxy} if proxy else {}, query)


class _Authorizer(LocalGatewayAuthorizer):
    def _route_for_event(self, lambda_event: Any) -> Any:
        # Chalice indexes app.routes, a defaultdict: a catch-all path would become an (empty) route.
        context = lambda_event.get("requestContext", {})
        return self._app_object.routes.get(context.get("resourcePath"), {}).get(context.get("httpMethod"))


class StepflowGateway(LocalGateway):
    def __init__(self, app_object: Any, config: Any) -> None:
        super().__init__(app_object, config)
        self.event_converter = LambdaEventConverter(CatchAllRouteMatcher(list(app_object.routes)),
                                                    app_object.api.binary_types)
        self._authorizer = _Authorizer(app_object)

    def _has_user_defined_options_method(self, lambda_event: Any) -> bool:
        return True  # OPTIONS goes to the app, which answers it with the route's Allow (api/routing.py)


def routed_test_client(app: Any) -> Any:
    """chalice.test.Client whose HTTP requests go through StepflowGateway (the tests' `api` fixture)."""
    from chalice.test import Client

    client = Client(app)
    client.http._local_gateway = StepflowGateway(app, client._chalice_config)
    return client
