"""The instance page's "Send an event" form in a real browser (POST /instances/{id}/events to a receive step)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.e2e


@pytest.mark.scenario("send_event")
def test_an_event_sent_from_the_instance_page_completes_its_receive_step(scenario_result):
    assert scenario_result["output"] == {"amount": 9}
