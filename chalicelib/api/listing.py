"""What every listing route shares: whose items it lists, and the 400 for filters no index serves."""

from __future__ import annotations

from collections.abc import Mapping

from chalicelib.api.auth import principal
from chalicelib.core.listing import Unindexed


def listing_tenant(params: Mapping[str, str]) -> tuple[str | None, bool]:
    """(the tenant whose items are listed, whether the request named another one).

    Every listing is of one tenant, since the tenant is part of every index key: the token's when
    authentication is on (a `tenant_id` naming another tenant lists nothing), else the `tenant_id`
    parameter's, and without it the items that have no tenant.
    """
    named = params.get("tenant_id") or None
    caller = principal()
    if caller.authenticated:
        return caller.tenant_id, named not in (None, caller.tenant_id)
    return named, False


def unindexed_message(exc: Unindexed, labels: Mapping[str, str], extra: str = "") -> str:
    """Names the filters given and the combinations that do work (in the API's parameter names)."""
    def spell(fields: tuple[str, ...]) -> str:
        return " + ".join(labels.get(f, f) for f in fields) or "no filter"

    given = spell(exc.given) + (f" with {extra}" if extra else "")
    works = "; ".join(spell(fields) for fields in exc.supported)
    return (f"these filters cannot be combined ({given}): every listing is one index query, and no index "
            f"serves them together. Combinations that work{(' with ' + extra) if extra else ''}: {works}")
