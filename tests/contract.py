"""Holds an answer to the OpenAPI document the service serves: the status is one the operation declares,
and a JSON body validates against the schema declared for that status (JSON Schema 2020-12, formats
checked)."""

from __future__ import annotations

import json
import re
from typing import Any

from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

SPEC_URI = "urn:stepflow:openapi"


class Contract:
    def __init__(self, spec: dict[str, Any]):
        self.spec = spec
        self._registry = Registry().with_resource(SPEC_URI, Resource.from_contents(
            spec, default_specification=DRAFT202012))
        self._routes = [(re.compile("^" + re.sub(r"\\{\w+\\}", "[^/]+", re.escape(path)) + "$"), path)
                        for path in spec["paths"]]
        self.seen: set[tuple[str, str, str]] = set()  # (method, path template, status) validated

    def template(self, method: str, path: str) -> str:
        path = path.split("?")[0]
        # A literal segment wins over a parameter (/tasks/metrics over /tasks/{task_id}).
        found = sorted((template.count("{"), template) for pattern, template in self._routes
                       if pattern.match(path) and method.lower() in self.spec["paths"][template])
        assert found, f"{method} {path} is in no operation of the document"
        return found[0][1]

    def check(self, method: str, path: str, status: int, body: bytes | str, content_type: str | None) -> Any:
        """The parsed body once it conforms; an AssertionError naming what does not."""
        template = self.template(method, path)
        responses = self.spec["paths"][template][method.lower()]["responses"]
        declared = responses.get(str(status))
        assert declared is not None, f"{method} {template} answered {status}, which it does not declare"
        media = (content_type or "").split(";")[0].strip()
        if "content" not in declared:
            return None
        assert media in declared["content"], f"{method} {template} {status}: {media} is not declared"
        if media != "application/json":
            return body
        data = json.loads(body)
        schema = declared["content"][media]["schema"]
        assert schema, f"{method} {template} {status} declares no schema"
        pointer = "/".join(part.replace("~", "~0").replace("/", "~1")
                           for part in ("paths", template, method.lower(), "responses", str(status), "content", media,
                                        "schema"))
        validator = Draft202012Validator({"$ref": f"{SPEC_URI}#/{pointer}"}, registry=self._registry,
                                         format_checker=Draft202012Validator.FORMAT_CHECKER)
        errors = sorted(validator.iter_errors(data), key=lambda e: list(map(str, e.absolute_path)))
        assert not errors, f"{method} {path} {status} breaks the contract:\n" + "\n".join(
            f"  at {'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message[:300]}" for e in errors[:10])
        self.seen.add((method.upper(), template, str(status)))
        return data
