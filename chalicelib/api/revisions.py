"""Routes for a definition's history: revisions, one revision as submitted, diffs, restore, export, import."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from chalice import Blueprint, Response

from chalicelib.api.auth import definition_scope, may_change, principal, refuse_reserved, require_definition
from chalicelib.api.http import BODY_TYPES, BadRequest, bool_param, handles_errors, json_response, query, read_body

FORMATS = ("json", "yaml")


def create_blueprint(services: Callable[[], Any]) -> Blueprint:
    bp = Blueprint(__name__)

    def caller() -> tuple[str | None, str | None]:
        who = principal()
        return (who.id if who.authenticated else None), definition_scope(query(bp.current_request))[0]

    def key_of(name: str) -> str:
        """The key of the caller's definition of this name (404 when it has none it may see)."""
        return str(require_definition(services(), name, scope=definition_scope(query(bp.current_request)))["key"])

    @bp.route("/definitions/{name}/revisions", methods=["GET"])
    @handles_errors
    def list_revisions(name: str) -> Any:
        """The revisions of a workflow, newest first, each with a one-line summary of its change."""
        return json_response(services().revisions.list(key_of(name)))

    @bp.route("/definitions/{name}/revisions/{rev}", methods=["GET"])
    @handles_errors
    def get_revision(name: str, rev: str) -> Any:
        """One revision: the source as submitted, the normalised definition and the compiled ASL."""
        return json_response(services().revisions.detail(key_of(name), rev))

    @bp.route("/definitions/{name}/revisions/{rev}/diff", methods=["GET"])
    @handles_errors
    def diff_revisions(name: str, rev: str) -> Any:
        """From this revision to `to`: a unified diff of the sources and a structural diff."""
        to = query(bp.current_request).get("to")
        if not to:
            raise BadRequest("'to' names the revision to compare with")
        return json_response(services().revisions.diff(key_of(name), rev, to))

    @bp.route("/definitions/{name}/revisions/{rev}/restore", methods=["POST"])
    @handles_errors
    def restore_revision(name: str, rev: str) -> Any:
        """A new revision equal to this one."""
        from chalicelib.api.definitions import _full

        found = services()
        refuse_reserved(name)  # an anonymous definition is one revision, made by an inline start only
        key = may_change(found, name, definition_scope(query(bp.current_request)))["key"]
        by, tenant = caller()
        record = found.revisions.restore(key, rev, by, tenant)
        created = record.pop("created")
        return json_response(_full(record), 201 if created else 200)

    @bp.route("/definitions/{name}/export", methods=["GET"])
    @handles_errors
    def export_definition(name: str) -> Any:
        """A document POST /definitions/import accepts (history=true: with every revision; revision: of
        that revision rather than the latest)."""
        params = query(bp.current_request)
        fmt = params.get("format", "json")
        if fmt not in FORMATS:
            raise BadRequest(f"'format' must be one of {', '.join(FORMATS)}")
        document = services().revisions.export(key_of(name), bool_param(params, "history"), params.get("revision"))
        if fmt == "json":
            return json_response(document)
        import yaml

        return Response(body=yaml.safe_dump(document, sort_keys=False, allow_unicode=True), status_code=200,
                        headers={"Content-Type": "application/x-yaml"})

    @bp.route("/definitions/import", methods=["POST"], content_types=BODY_TYPES)
    @handles_errors
    def import_definition() -> Any:
        """Registers an exported document (with its revisions, oldest first, when it carries them)."""
        document = read_body(bp.current_request, allow_yaml=True)
        found = services()
        by, tenant = caller()
        namespace = definition_scope(query(bp.current_request))[1]

        def resolve(name: str) -> str | None:
            refuse_reserved(name)
            return found.definitions.resolve(name, tenant, namespace)  # type: ignore[no-any-return]

        result = found.revisions.import_(document, by, tenant, resolve)
        return json_response(result, 201 if result["revisions_created"] else 200)

    return bp
