"""Routes for one-click decision links: minting them for a task, the confirmation page (GET changes
nothing, so a mail scanner that follows links decides nothing) and the decision (POST)."""

from __future__ import annotations

import html
import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

from chalice import Blueprint, Response

from chalicelib.api.auth import principal, require_task
from chalicelib.api.http import STATUS, BadRequest, handles_errors, json_response, read_body
from chalicelib.errors import InvalidInput, StepflowError

logger = logging.getLogger("stepflow.api")

FORM = "application/x-www-form-urlencoded"
MAX_COMMENT = 2000
PAGE_HEADERS = {"Content-Type": "text/html; charset=utf-8", "X-Content-Type-Options": "nosniff",
                "Cache-Control": "no-store", "Referrer-Policy": "no-referrer",
                "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'"}


def page(title: str, message: str, status: int = 200, *, form: str | None = None, facts: dict[str, Any] | None = None) -> Response:
    """A small self-contained page; everything shown is escaped text."""
    rows = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>"
                   for k, v in (facts or {}).items() if v not in (None, ""))
    body = ("<!doctype html><html lang=en><head><meta charset=utf-8><meta name=viewport content='width=device-width'>"
            f"<title>{html.escape(title)}</title><style>body{{font:16px system-ui,sans-serif;margin:2em auto;"
            "max-width:36em;padding:0 1em}th{text-align:left;padding-right:1em}textarea{width:100%}"
            "button{font-size:1.1em;padding:.4em 1.2em}</style></head><body>"
            f"<h1>{html.escape(title)}</h1><p id=message>{html.escape(message)}</p>"
            + (f"<table>{rows}</table>" if rows else "") + (form or "") + "</body></html>")
    return Response(body=body, status_code=status, headers=dict[str, str | list[str]](PAGE_HEADERS))


def create_blueprint(services: Callable[[], Any]) -> Blueprint:
    bp = Blueprint(__name__)

    @bp.route("/tasks/{task_id}/links", methods=["POST"])
    @handles_errors
    def mint_links(task_id: str) -> Any:
        from chalicelib.api import bodies
        from chalicelib.service.requests import parse_body

        raw = bp.current_request.raw_body
        request = parse_body(bodies.MintLinks, read_body(bp.current_request) if raw and raw.strip() else {})
        record = require_task(services(), task_id)
        caller = principal()
        minted = services().tasks.mint_links(record, request.decider, request.expires_in,
                                             caller.id if caller.authenticated else None)
        return json_response(minted, 201)

    @bp.route("/decide/{token}", methods=["GET"])
    def confirm(token: str) -> Any:
        """The confirmation page: what the link decides, and a button that POSTs it. Changes nothing."""
        try:
            link, record = services().tasks.open_link(token)
        except StepflowError as exc:
            return page("This link cannot decide", str(exc.detail), STATUS.get(type(exc), 400))
        except Exception:  # noqa: BLE001 - the edge of the API: logged, answered without internals
            return _failed("confirm")
        verb = "Approve" if link.approved else "Reject"
        form = (f"<form method=post><p><label>Comment (optional)<br><textarea name=comment maxlength={MAX_COMMENT} "
                f"rows=3></textarea></label></p><button type=submit id=decide>{verb}</button></form>")
        return page(f"{verb}: {record.get('title') or record['step_name']}",
                    f"You are about to {verb.lower()} this task as {link.decider}. Nothing happens until you press "
                    f"{verb}.", form=form, facts={"Workflow": record.get("workflow"), "Step": record["step_name"],
                                                 "Description": record.get("description"),
                                                 "Decided as": link.decider})

    @bp.route("/decide/{token}", methods=["POST"], content_types=["application/json", FORM])
    def decide(token: str) -> Any:
        request = bp.current_request
        as_page = _is_page_form(request)
        if not as_page:
            return handles_errors(lambda: json_response(services().tasks.decide_by_link(token, _comment(request))))()
        try:
            decided = services().tasks.decide_by_link(token, _comment(request))
        except (StepflowError, BadRequest) as exc:
            return page("Nothing was decided", str(exc.detail), 400 if isinstance(exc, BadRequest)
                        else STATUS.get(type(exc), 400))
        except Exception:  # noqa: BLE001 - the edge of the API: logged, answered without internals
            return _failed("decide")
        task = decided["task"]
        state = "The task is complete." if task["status"] == "completed" else \
            "Your decision is recorded; the task waits for more decisions."
        return page("Approved" if decided["decision"] == "approve" else "Rejected",
                    f"Thank you, {decided['decided_by']}. {state}")

    def _comment(request: Any) -> str | None:
        raw = request.raw_body or b""
        if not raw.strip():
            return None
        if _is_page_form(request):
            if len(raw) > MAX_COMMENT * 4:
                raise BadRequest(f"a comment has at most {MAX_COMMENT} characters")
            try:
                values = parse_qs(raw.decode("utf-8", "replace"), max_num_fields=4).get("comment") or [""]
            except ValueError:
                raise BadRequest("the form has more fields than a comment") from None
            comment = values[0].strip()
        else:
            body = read_body(request)
            if not isinstance(body, dict) or set(body) - {"comment"}:
                raise _invalid("body", "the body is a JSON object with at most a 'comment'")
            comment = body.get("comment")
            if comment is not None and not isinstance(comment, str):
                raise _invalid("comment", "'comment' is text")
            if comment and len(comment) > MAX_COMMENT:
                raise _invalid("comment", f"a comment has at most {MAX_COMMENT} characters")
        if comment and len(comment) > MAX_COMMENT:
            raise BadRequest(f"a comment has at most {MAX_COMMENT} characters")
        return comment or None

    return bp



def _is_page_form(request: Any) -> bool:
    """The confirmation page's own form post (comment=...); a form-labelled body that is JSON is what
    `curl -d` sends, read as JSON like on every route (the error contract, docs/api.md)."""
    if (request.headers.get("content-type") or "").split(";")[0].strip().lower() != FORM:
        return False
    return not (request.raw_body or b"").lstrip().startswith((b"{", b"["))


def _invalid(location: str, message: str) -> InvalidInput:
    return InvalidInput({"message": message, "issues": [{"code": "invalid", "location": location, "message": message}]})


def _failed(view: str) -> Response:
    logger.exception("unhandled error in %s", view)
    return page("Something went wrong", "internal error; the request was logged; nothing was decided", 500)
