"""A workflow's aliases: names that route starts to one or two of its revisions by weight (a canary),
with `live` following the latest revision; and the routes a start pinned to a revision or alias takes."""

from __future__ import annotations

import builtins
import re
from collections.abc import Callable
from typing import Any

from chalicelib.core.definition_keys import name_of
from chalicelib.errors import InvalidInput, NotFound
from chalicelib.service.routing import TOTAL_WEIGHT, Route

ALIAS_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,79}$")  # never all digits: Step Functions' rule for aliases
LIVE = "live"
MAX_ROUTES = 2  # Step Functions routes an alias to at most two versions


def _invalid(location: str, message: str) -> InvalidInput:
    return InvalidInput({"message": "the alias is not valid", "issues": [
        {"code": "invalid_alias", "location": location, "message": message}]})


def latest_route(latest: dict[str, Any]) -> Route:
    """The latest revision as a route taking every start."""
    return Route(int(latest.get("revision_number") or 1), latest["revision"], latest.get("version"),
                 latest.get("state_machine_version_arn"))


class AliasService:
    """Every `name` here is the definition's key (core/definition_keys.py): an alias belongs to one
    tenant's (and namespace's) definition. What it answers and says speaks of the bare name."""

    def __init__(self, definitions: Any, store: Any, routing: Any, now: Callable[[], str],
                 history: Callable[[str], builtins.list[dict[str, Any]]]):
        self._definitions = definitions
        self._history = history  # a workflow's history entries, newest first
        self._store = store
        self._routing = routing
        self._now = now

    # -- reading -------------------------------------------------------------------------------
    def list(self, name: str) -> builtins.list[dict[str, Any]]:
        """`live` first, then the others by name."""
        latest = self._definitions.get(name)
        stored = {record["alias"]: record for record in self._store.list(name)}
        views = [self._view(name, LIVE, latest, stored.pop(LIVE, None))]
        return views + [self._view(name, alias, latest, record) for alias, record in sorted(stored.items())]

    def get(self, name: str, alias: str) -> dict[str, Any]:
        latest = self._definitions.get(name)
        return self._view(name, alias, latest, self._stored(name, alias))

    def routes(self, name: str, alias: str, latest: dict[str, Any]) -> builtins.list[Route]:
        """The routes of an alias as a start takes them; NotFound for an alias the workflow does not have."""
        return self._effective(name, alias, latest, self._stored(name, alias))[0]

    def revision_route(self, name: str, revision: str, latest: dict[str, Any]) -> Route:
        """One revision (by number or content id) as a route; NotFound for one the workflow does not have."""
        if revision in (str(latest.get("revision_number")), latest["revision"]):
            return latest_route(latest)  # the guard read it already
        entry = self._definitions.entry(name, revision)
        return Route(int(entry["number"]), entry["revision"], entry.get("version"),
                     entry.get("state_machine_version_arn"))

    def route_of_version(self, name: str, version_arn: str | None) -> Route | None:
        """The revision published as this Step Functions version (None: no revision of the workflow was)."""
        for entry in self._history(name):
            if version_arn and entry.get("state_machine_version_arn") == version_arn:
                return Route(int(entry["number"]), entry["revision"], entry.get("version"), version_arn)
        return None

    def _stored(self, name: str, alias: str) -> dict[str, Any] | None:
        if not ALIAS_NAME.match(alias):
            raise NotFound(f"definition '{name_of(name)}' has no alias '{alias[:80]}'")
        record = self._store.get(name, alias)
        if record is None and alias != LIVE:
            raise NotFound(f"definition '{name_of(name)}' has no alias '{alias}'")
        return record

    @staticmethod
    def _effective(name: str, alias: str, latest: dict[str, Any],
                   record: dict[str, Any] | None) -> tuple[builtins.list[Route], bool]:
        """(routes, whether they follow the latest revision). `live` follows it unless routes were set on
        it since the latest revision was registered (a registration makes its revision live)."""
        if alias == LIVE and (record is None or record.get("based_on") != latest.get("revision_number")):
            return [latest_route(latest)], True
        assert record is not None  # _stored refused any other alias without a record
        return [Route.from_dict(r) for r in record["routes"]], False

    def _view(self, name: str, alias: str, latest: dict[str, Any], record: dict[str, Any] | None) -> dict[str, Any]:
        routes, follows = self._effective(name, alias, latest, record)
        return {"name": name_of(name), "alias": alias, "follows_latest": follows,
                "routes": [{"revision": r.number, "revision_id": r.revision, "version": r.version, "weight": r.weight}
                           for r in routes],
                "updated_at": None if follows else (record or {}).get("updated_at"),
                "updated_by": None if follows else (record or {}).get("updated_by")}

    # -- writing -------------------------------------------------------------------------------
    def put(self, name: str, alias: str, body: Any, by: str | None) -> dict[str, Any]:
        """Sets the alias's routes (creating it); Step Functions' alias first, then ours, so a failure in
        between leaves Step Functions ahead and the client's retry sets both."""
        if not ALIAS_NAME.match(alias):
            raise _invalid("alias", "an alias name starts with a letter and has at most 80 letters, digits, "
                                    "'-' or '_'")
        latest = self._definitions.get(name)
        routes = self._parse(name, body, latest)
        self._routing.check(name, routes)
        self._routing.sync_alias(latest["state_machine_arn"], alias, routes)
        record = {"name": name, "alias": alias, "routes": [r.as_dict() for r in routes],
                  "based_on": latest.get("revision_number"), "updated_at": self._now(), "updated_by": by}
        self._store.put(record)
        return self._view(name, alias, latest, record)

    def _parse(self, name: str, body: Any, latest: dict[str, Any]) -> builtins.list[Route]:
        if not isinstance(body, dict) or set(body) - {"routes"}:
            raise _invalid("body", "the body is {\"routes\": [{\"revision\": ..., \"weight\": ...}, ...]}")
        given = body.get("routes")
        if not isinstance(given, list) or not 1 <= len(given) <= MAX_ROUTES:
            raise _invalid("routes", f"'routes' lists 1 or {MAX_ROUTES} revisions")
        routes = []
        for i, item in enumerate(given):
            where = f"routes.{i}"
            if not isinstance(item, dict) or set(item) - {"revision", "weight"} or "revision" not in item:
                raise _invalid(where, "a route is {\"revision\": <number or content id>, \"weight\": <0-100>}")
            revision, weight = item["revision"], item.get("weight", TOTAL_WEIGHT if len(given) == 1 else None)
            if isinstance(revision, bool) or not isinstance(revision, int | str) or not str(revision):
                raise _invalid(f"{where}.revision", "a revision is its number or its content id")
            if isinstance(weight, bool) or not isinstance(weight, int) or not 0 <= weight <= TOTAL_WEIGHT:
                raise _invalid(f"{where}.weight", "a weight is a whole number from 0 to 100")
            route = self.revision_route(name, str(revision)[:64], latest)
            routes.append(Route(route.number, route.revision, route.version, route.version_arn, weight))
        if sum(r.weight for r in routes) != TOTAL_WEIGHT:
            raise _invalid("routes", f"the weights add up to {sum(r.weight for r in routes)}, not {TOTAL_WEIGHT}")
        if len({r.revision for r in routes}) != len(routes):
            raise _invalid("routes", "each revision may appear once")
        return routes

    def follow_latest(self, pointer: dict[str, Any]) -> None:
        """After a registration (a repeated one included): Step Functions' `live` alias routes as ours does."""
        if self._routing.emulated or not pointer.get("state_machine_version_arn"):
            return  # locally starts never go through an alias; an unpublished revision has no version
        key = pointer.get("key") or pointer["name"]
        stored = self._store.get(key, LIVE)
        if stored is None:
            # Never given routes: `live` is the latest revision, started by its version ARN, and Step Functions
            # needs no alias for it (one is made when routes are first set on it).
            return
        routes, _ = self._effective(key, LIVE, pointer, stored)
        self._routing.sync_alias(pointer["state_machine_arn"], LIVE, routes)
