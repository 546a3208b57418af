"""Names of anonymous (ad hoc) definitions: derived from the tenant and the inline body, under a reserved prefix."""

from __future__ import annotations

import hashlib
import json
from typing import Any

# Registration refuses names with this prefix: only an inline start makes them, so such a name always
# means "the anonymous definition of this content for this tenant".
ADHOC_PREFIX = "adhoc-"
HASH_DIGITS = 16


def is_adhoc(name: Any) -> bool:
    return isinstance(name, str) and name.startswith(ADHOC_PREFIX)


def adhoc_name(data: Any, tenant_id: str | None) -> str:
    """The same inline body from the same tenant always gets the same name, another tenant another one.

    The body as sent (key order aside) is hashed, not the normalised definition: the name is known
    before the body is validated, and validation runs once, in the registration itself.
    """
    text = json.dumps({"tenant": tenant_id, "definition": data}, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False, default=str)
    return ADHOC_PREFIX + hashlib.sha256(text.encode()).hexdigest()[:HASH_DIGITS]
