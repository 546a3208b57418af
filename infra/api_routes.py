"""The API Gateway side of the error contract: every request reaches the app, which answers 404/405/415.

Left alone, API Gateway answers a path no resource matches, and a method a resource lacks, itself:
403 {"message": "Missing Authentication Token"}. Merged into the Swagger document Chalice generates:
- every route's resource gets an ANY method (API Gateway prefers a resource's own methods), so a wrong
  method reaches the app, which answers 405 with Allow (chalicelib/api/routing.py);
- `/` and a greedy `/{proxy+}` take every path no resource matches, so the app answers 404;
- gateway responses give what API Gateway still answers itself the API's shape: MISSING_AUTHENTICATION_TOKEN
  (a path the catch-all cannot take) 404, UNSUPPORTED_MEDIA_TYPE 415, as {"detail": ...}.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

API_LOGICAL_ID = "APIHandler"
# As chalicelib/api/routing.py names them (not imported: this runs where Chalice is not installed; a test
# holds the two equal).
CATCH_ALL = "/{proxy+}"
ROUTES_HINT = "the routes are listed in /openapi.json"
# The gateway responses' bodies are fixed text: API Gateway's $context values are not JSON-escaped.
GATEWAY_RESPONSES = {
    "MISSING_AUTHENTICATION_TOKEN": (404, f"no route matches this path and method; {ROUTES_HINT}"),
    "UNSUPPORTED_MEDIA_TYPE": (415, "this route does not take this Content-Type; send application/json"),
}


def integration(logical_id: str = API_LOGICAL_ID) -> dict[str, Any]:
    """The Lambda proxy integration Chalice gives every route (the same function, the same settings)."""
    return {
        "type": "aws_proxy",
        "httpMethod": "POST",
        "uri": {"Fn::Sub": "arn:${AWS::Partition}:apigateway:${AWS::Region}:lambda:path/2015-03-31/functions/"
                           f"${{{logical_id}.Arn}}/invocations"},
        "passthroughBehavior": "when_no_match",
        "contentHandling": "CONVERT_TO_TEXT",
        "responses": {"default": {"statusCode": "200"}},
    }


def any_method(path: str) -> dict[str, Any]:
    names = [name.rstrip("+") for name in re.findall(r"{([\w+]+)}", path)]
    method: dict[str, Any] = {
        "responses": {"200": {"description": "The app's answer (404, 405 or 415 for what no route takes)"}},
        "x-amazon-apigateway-integration": integration(),
    }
    if names:
        method["parameters"] = [{"name": name, "in": "path", "required": True, "type": "string"} for name in names]
    return {"x-amazon-apigateway-any-method": method}


def definition_body(routes: Iterable[str]) -> dict[str, Any]:
    """What is merged into the RestAPI's DefinitionBody for the app's route paths."""
    paths = {path: any_method(path) for path in sorted({*routes, "/", CATCH_ALL})}
    responses = {kind: {"statusCode": status,
                        "responseTemplates": {"application/json": json.dumps({"detail": detail})}}
                 for kind, (status, detail) in GATEWAY_RESPONSES.items()}
    return {"paths": paths, "x-amazon-apigateway-gateway-responses": responses}
