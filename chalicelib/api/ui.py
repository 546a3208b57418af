"""The web UI: static files from chalicelib/ui (shipped inside the Lambda package), served at /ui.

Every asset is text (HTML, JS, CSS, SVG), so no binary_types are needed. The page learns where the
API is from values written into index.html when it is served: the path the browser used (API
Gateway's stage or a custom domain's base path included) and the API prefix (STEPFLOW_API_PREFIX).
"""

from __future__ import annotations

import hashlib
import html
from collections.abc import Callable
from pathlib import Path
from typing import Any

from chalice import Blueprint, Response

ROOT = Path(__file__).resolve().parents[1] / "ui"
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".json": "application/json",
    ".txt": "text/plain; charset=utf-8",
}
# The page runs only its own scripts; Mermaid writes <style> into the SVGs it draws, hence inline styles.
SECURITY_HEADERS: dict[str, str | list[str]] = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
       "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'")


_cache: dict[Path, tuple[float, str, str]] = {}


def read_asset(path: Path) -> tuple[str, str]:
    """(text, ETag) of a file, read again only when it changes (so `make run` serves edits at once)."""
    mtime = path.stat().st_mtime
    cached = _cache.get(path)
    if cached is None or cached[0] != mtime:
        text = path.read_text(encoding="utf-8")
        cached = _cache[path] = (mtime, text, '"' + hashlib.sha256(text.encode("utf-8")).hexdigest()[:32] + '"')
    return cached[1], cached[2]


def asset_path(name: str) -> Path | None:
    """The file for a URL path under /ui, if it is one the UI serves: a known type, inside chalicelib/ui."""
    path = (ROOT / name).resolve()
    if path.suffix not in CONTENT_TYPES or path.name == "index.html" or not path.is_relative_to(ROOT):
        return None
    return path if path.is_file() else None


def roots(request_path: str | None, api_prefix: str) -> tuple[str, str]:
    """(UI base, API base) as the browser sees them, from the path it asked for (/ui, /ui/, /dev/ui)."""
    path = (request_path or "/ui").split("?")[0].rstrip("/")
    root = path[: -len("/ui")] if path.endswith("/ui") else ""
    prefix = api_prefix.rstrip("/")
    return root + "/ui", root + prefix


def index_page(request_path: str | None, api_prefix: str) -> str:
    ui_base, api_base = roots(request_path, api_prefix)
    return (read_asset(ROOT / "index.html")[0]
            .replace("{{ui_base}}", html.escape(ui_base, quote=True))
            .replace("{{api_base}}", html.escape(api_base, quote=True)))


def create_blueprint(services: Callable[[], Any]) -> Blueprint:
    bp = Blueprint(__name__)

    def asset(name: str) -> Response:
        path = asset_path(name)
        if path is None:
            return Response(body="not found\n", status_code=404,
                            headers={"Content-Type": "text/plain; charset=utf-8", **SECURITY_HEADERS})
        text, etag = read_asset(path)
        headers: dict[str, str | list[str]] = {"Content-Type": CONTENT_TYPES[path.suffix],
                                               "Cache-Control": "no-cache", "ETag": etag, **SECURITY_HEADERS}
        if etag in (bp.current_request.headers.get("if-none-match") or ""):
            return Response(body="", status_code=304, headers=headers)
        return Response(body=text, status_code=200, headers=headers)

    @bp.route("/ui", methods=["GET"])
    def ui_index() -> Response:
        context: dict[str, Any] = bp.current_request.context or {}
        body = index_page(context.get("path"), services().settings.api_prefix)
        return Response(body=body, status_code=200, headers={
            "Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-cache",
            "Content-Security-Policy": CSP, **SECURITY_HEADERS})

    @bp.route("/ui/{name}", methods=["GET"])
    def ui_asset(name: str) -> Response:
        return asset(name)

    @bp.route("/ui/vendor/{name}", methods=["GET"])
    def ui_vendor_asset(name: str) -> Response:
        return asset(f"vendor/{name}")

    return bp
