"""A definition's key: built from its scope, split back into it, and the state machine name it gives."""

from __future__ import annotations

import random
import re

import pytest

from chalicelib.core import definition_keys as keys
from chalicelib.core.model import NAME_PATTERN

MACHINE_NAME = re.compile(r"^[A-Za-z0-9_-]{1,80}$")  # what Step Functions accepts of our names


def test_the_key_of_no_tenant_and_no_namespace_is_the_bare_name():
    # So every record stored before names were scoped is found under the key it always had.
    assert keys.key(None, None, "invoice") == "invoice"
    assert keys.split("invoice") == keys.Scope(None, None, "invoice")
    assert keys.machine_name("stepflow-dev-", "invoice") == "stepflow-dev-invoice"


@pytest.mark.parametrize("tenant", [None, "acme", "a@b/c", "@", "/", "x" * 100, "tenant with spaces"])
@pytest.mark.parametrize("namespace", [None, "billing", "B-2_x"])
def test_every_key_splits_back_into_its_scope(tenant, namespace):
    stored = keys.key(tenant, namespace, "in-voice_2")
    assert keys.split(stored) == (tenant, namespace, "in-voice_2")
    assert keys.name_of(stored) == "in-voice_2"


def test_scopes_give_different_keys_and_state_machine_names_within_the_limit():
    rng = random.Random(7)
    scopes = {(t, n) for t in (None, "acme", "globex", "acme@x") for n in (None, "billing", "sales")}
    prefix = "stepflow-a-rather-long-stage-prefix-"
    for name in ("invoice", "x" * 80, "a" + "".join(rng.choice("abcXYZ019_-") for _ in range(79))):
        made = {keys.key(t, n, name) for t, n in scopes}
        machines = {keys.machine_name(prefix, k) for k in made}
        assert len(made) == len(machines) == len(scopes)
        assert all(MACHINE_NAME.match(m) and m.startswith(prefix) for m in machines), machines
    assert MACHINE_NAME.match(keys.machine_name("p" * 78, keys.key("acme", None, "invoice")))


def test_a_tenants_lookup_tries_its_own_key_then_the_tenant_less_one():
    assert keys.candidates("acme", "billing", "invoice") == ["billing/invoice@acme", "billing/invoice"]
    assert keys.candidates(None, None, "invoice") == ["invoice"]
    assert keys.owned_by({"tenant_id": "acme"}, "invoice", "acme")  # stored before names were scoped
    assert not keys.owned_by({"tenant_id": "globex"}, "invoice", "acme")
    assert keys.owned_by({}, "invoice@acme", "acme")


def test_an_instance_runs_its_recorded_key_or_else_its_name():
    assert keys.instance_key({"definition_name": "invoice", "definition_key": "invoice@acme"}) == "invoice@acme"
    assert keys.instance_key({"definition_name": "invoice"}) == "invoice"


def test_the_list_shows_a_tenants_own_and_the_shared_ones_it_has_none_of():
    records = [{"name": "a", "tenant_id": "acme", "namespace": None}, {"name": "a", "tenant_id": None},
               {"name": "b", "tenant_id": None}, {"name": "a", "tenant_id": "globex"},
               {"name": "a", "tenant_id": "acme", "namespace": "n"}]
    assert keys.listing(records, "acme", None) == [records[0], records[4], records[2]]
    assert keys.listing(records, "acme", "n") == [records[4]]
    assert keys.listing(records, None, None) == [records[1], records[2]]


def test_a_namespace_is_spelled_as_a_name_is():
    assert keys.NAME.pattern == NAME_PATTERN


def test_a_revisions_own_state_machine_is_named_per_scope_and_fits():
    revision = "0123456789abcdef"
    # Unscoped: the name it had before names were scoped.
    assert keys.machine_name("stepflow-", keys.revision_key("invoice", revision)) == f"stepflow-r{revision}-invoice"
    long_name = "n" * 80
    scoped = [keys.key(t, ns, long_name) for t in ("acme", "globex", "t" * 100) for ns in (None, "billing")]
    names = {keys.machine_name("stepflow-local-", keys.revision_key(k, r)) for k in scoped
             for r in (revision, "fedcba9876543210")}
    assert len(names) == 2 * len(scoped) and all(len(n) <= keys.MACHINE_NAME_LIMIT for n in names)
    assert all(n.startswith("stepflow-local-r") for n in names)
    assert keys.split(keys.revision_key("billing/invoice@acme", revision)) == \
        keys.Scope("acme", "billing", f"r{revision}-invoice")
