"""ListSecrets pages on moto that hold still while secrets come and go: a keyset token, not an offset.

moto 5.2.5 hands out the next page's start index as the token, so deleting a secret listed on an earlier
page shifts the rest and the next page skips one (a user paging credentials while another deletes one
missed an unrelated credential). Secrets Manager lists by creation date; here the token is the last listed
secret's (creation date, name), and the next page starts after it, whatever was deleted or added meanwhile.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from stepflow_local.moto_contract import ORIGINALS

_PREFIX = "k1."


def _key(secret: dict[str, Any]) -> tuple[float, str]:
    return float(secret.get("CreatedDate") or 0), str(secret.get("Name") or "")


def _token(key: tuple[float, str]) -> str:
    return _PREFIX + base64.urlsafe_b64encode(json.dumps(list(key)).encode()).decode()


def _after(token: str) -> tuple[float, str]:
    from moto.secretsmanager.exceptions import InvalidParameterException

    try:
        if not token.startswith(_PREFIX):  # an offset token from before the patch, or a forged one: never guessed
            raise ValueError(token)
        created, name = json.loads(base64.urlsafe_b64decode(token[len(_PREFIX):].encode()))
        return float(created), str(name)
    except (ValueError, TypeError):
        raise InvalidParameterException("Invalid NextToken.") from None


def _page(self: Any, secret_list: list[dict[str, Any]], max_results: int | None,
          next_token: str | None) -> tuple[list[dict[str, Any]], str | None]:
    from moto.secretsmanager.models import MAX_RESULTS_DEFAULT

    ordered = sorted(secret_list, key=_key)
    if next_token:
        after = _after(next_token)
        ordered = [secret for secret in ordered if _key(secret) > after]
    size = int(max_results or MAX_RESULTS_DEFAULT)
    page = ordered[:size]
    return page, (_token(_key(page[-1])) if len(ordered) > size else None)


def patch(check_signature: Any) -> None:
    from moto.secretsmanager.models import SecretsManagerBackend

    current = SecretsManagerBackend._get_secret_values_page_and_next_token
    if getattr(current, "__stepflow_patched__", False):
        return
    check_signature(current, ["self", "secret_list", "max_results", "next_token"],
                    "SecretsManagerBackend._get_secret_values_page_and_next_token")
    ORIGINALS["SecretsManagerBackend._get_secret_values_page_and_next_token"] = current
    _page.__stepflow_patched__ = True  # type: ignore[attr-defined]
    SecretsManagerBackend._get_secret_values_page_and_next_token = _page  # type: ignore[method-assign]
