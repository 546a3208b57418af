"""Seeded fractions of failing Step Functions, DynamoDB and Lambda calls while instances start, their
tasks are completed and some are canceled; then, faults off, the sweep brings everything to an end
with no instance stuck, no task left open, no completion lost or sent twice, and no 500."""

from __future__ import annotations

import pytest

N = 12


@pytest.mark.parametrize("rate", [0.1, 0.3], ids=["10pct", "30pct"])
def test_every_fault_converges(scenario, faults, rate):
    scenario.register()
    faults.fail(dynamodb=rate, stepfunctions=rate, lambda_=rate)
    for n in range(N):
        scenario.start(n)
    scenario.wait_until_settled()
    for i, record in enumerate(sorted(scenario.all_instances(), key=lambda r: r["input"]["n"])):
        scenario.act(record["id"], record["input"]["n"], cancel=i % 4 == 1)  # a quarter are canceled
    scenario.sweep()  # a sweep under faults too: its own failures must not stop it converging later
    faults.off()
    scenario.converge()
    scenario.finish()
    counts = scenario.check()
    assert faults.injected, "no fault was injected: the hooks are not on the services' clients"
    # Every instance ended (a 503 before the instance was written leaves none: the client retried).
    assert counts["instances"] >= N // 3
    assert counts["completed"] + counts["failed"] + counts["canceled"] == counts["instances"]
    assert counts["completed"] >= 2 and counts["canceled"] >= 1
    assert any(status == 503 for _, status, _ in scenario.responses)
