"""The sweep runs every pass even when one fails, and says how many failed."""

from chalicelib.service.sweep import run_passes


def test_a_failing_pass_leaves_the_others_to_run():
    ran = []

    def broken():
        ran.append("broken")
        raise ConnectionError("Step Functions did not answer")

    stats = run_passes({
        "tasks": lambda: ran.append("tasks") or {"escalated": 2, "read": 3},
        "launches": broken,
        "reconciled": lambda: ran.append("reconciled") or 4,
    })
    assert ran == ["tasks", "broken", "reconciled"]
    assert stats == {"failed_passes": 1, "escalated": 2, "read": 3, "reconciled": 4}
