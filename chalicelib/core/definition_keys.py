"""A definition's storage key: its tenant, its optional namespace and its name, in one string.

Names are unique per tenant and namespace, so the key, not the name, identifies a definition in the store,
names its state machine and travels in the compiled state machine's payloads. The API keeps addressing a
definition by its name; the caller's tenant and the `namespace` parameter choose the key.

    key(None, None, "invoice")       == "invoice"              (no tenant, no namespace: the bare name)
    key(None, "billing", "invoice")  == "billing/invoice"
    key("acme", None, "invoice")     == "invoice@acme"
    key("acme", "billing", "invoice") == "billing/invoice@acme"

A name or namespace holds neither "/" nor "@" (NAME_PATTERN), so the first "@" ends the name part and
the tenant, which may hold anything, follows it: every key splits back into exactly one scope.

The key of no tenant and no namespace is the bare name: a record stored before names were scoped (whose
key is its name) is the tenant-less definition of that name, or, when it carries a tenant_id, that
tenant's, found by `candidates` after the tenant's own key.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

# A name, and a namespace, as core/model.py's NAME_PATTERN spells it (not imported: this module is on
# the request path before pydantic is loaded, tests/unit/test_cold_imports.py).
NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,79}$")
MACHINE_NAME_LIMIT = 80  # Step Functions' limit on a state machine's name
HASH_LENGTH = 10  # hex digits of the key's hash in a scoped state machine's name


class Scope(NamedTuple):
    tenant_id: str | None
    namespace: str | None
    name: str


def key(tenant_id: str | None, namespace: str | None, name: str) -> str:
    return f"{namespace + '/' if namespace else ''}{name}{'@' + tenant_id if tenant_id is not None else ''}"


def split(stored: str) -> Scope:
    """The scope a key was built from (a bare name: no tenant, no namespace)."""
    head, at, tenant = stored.partition("@")
    namespace, slash, name = head.rpartition("/")
    return Scope(tenant if at else None, namespace if slash else None, name)


def name_of(stored: str) -> str:
    return split(stored).name


def candidates(tenant_id: str | None, namespace: str | None, name: str) -> list[str]:
    """The keys a tenant's lookup of a name tries, in order: its own, then the tenant-less one of the same
    namespace (a shared definition, or one stored before names were scoped, owned as its tenant_id says)."""
    keys = [key(tenant_id, namespace, name)]
    if tenant_id is not None:
        keys.append(key(None, namespace, name))
    return keys


def owned_by(record: Mapping[str, Any], stored: str, tenant_id: str | None) -> bool:
    """Whether a record found under `stored` belongs to the tenant: under its own key always; under the
    tenant-less key when the record names that tenant (stored before names were scoped)."""
    return split(stored).tenant_id == tenant_id or record.get("tenant_id") == tenant_id


def machine_name(prefix: str, stored: str) -> str:
    """The state machine's name: the prefix and the bare name for a tenant-less, namespace-less key (as
    before names were scoped); otherwise the name cut to fit and a hash of the whole key, unique per scope."""
    scope = split(stored)
    if scope.tenant_id is None and scope.namespace is None:
        return f"{prefix}{stored}"[:MACHINE_NAME_LIMIT]
    digest = hashlib.sha256(stored.encode("utf-8")).hexdigest()[:HASH_LENGTH]
    room = MACHINE_NAME_LIMIT - len(prefix) - HASH_LENGTH - 1
    return f"{prefix}{scope.name[:max(room, 0)]}-{digest}"[-MACHINE_NAME_LIMIT:]


def revision_key(stored: str, revision: str) -> str:
    """The key a revision's own state machine is named by (the local runtime runs a pinned revision on a
    state machine of its own): the definition's scope, with the content id before the name. Unscoped it
    is `r<content id>-<name>`, as before names were scoped; scoped, machine_name hashes the whole key, so
    each scope and revision gets its own state machine within Step Functions' 80 characters."""
    scope = split(stored)
    return key(scope.tenant_id, scope.namespace, f"r{revision}-{scope.name}")


def instance_key(record: Mapping[str, Any]) -> str:
    """The key of the definition an instance runs (an instance started before names were scoped has only
    the name, which is then its key)."""
    return str(record.get("definition_key") or record["definition_name"])


def task_key(record: Mapping[str, Any]) -> str:
    """The key of the definition a task's step belongs to (a task of an unscoped one has only the name)."""
    return str(record.get("workflow_key") or record["workflow"])


def listing(records: Iterable[Mapping[str, Any]], tenant_id: str | None, namespace: str | None,
            *, everything: bool = False) -> list[Mapping[str, Any]]:
    """The definitions a tenant sees in a list, `namespace` given: only that namespace's. Its own and the
    tenant-less ones (shared), except a shared one its own of the same name and namespace hides.
    `everything`: every tenant's (an administrator without authentication)."""
    chosen = [r for r in records if namespace is None or r.get("namespace") == namespace]
    if everything:
        return chosen
    own = [r for r in chosen if r.get("tenant_id") == tenant_id]
    taken = {(r.get("namespace"), r.get("name")) for r in own}
    shared = [r for r in chosen if r.get("tenant_id") is None and tenant_id is not None
              and (r.get("namespace"), r.get("name")) not in taken]
    return own + shared
