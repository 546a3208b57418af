"""The task inbox in a real browser: expense approval from the start form to an approved, all-green instance."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.e2e


@pytest.mark.scenario("inbox")
def test_expense_approval_through_the_inbox(scenario_result):
    # Start it as bob's expense; find the task under "Mine" (and by searching); see amount, requester
    # and description beside the form and the instance so far; submit without a decision and see the field
    # error; approve; a second tab that still shows the form is told it is already completed; the
    # instance completes with the steps it ran green and the finance branch not reached.
    assert scenario_result["counts"] == {"completed": 5, "not_reached": 3}
    # The task page showed what the expense step declares its decider sees, beside the form; the
    # approval (sent with Ctrl+Enter) is then in bob's "My decisions".
    assert scenario_result["context"] == {"Amount": "250", "Requester": "alice",
                                          "Description": "Conference train tickets"}
    assert scenario_result["decided"]
