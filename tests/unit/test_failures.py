"""What a failure shows: the Lambda error payload reduced to {error, message}, without traceback or path."""

from __future__ import annotations

import pytest

from chalicelib.core.failures import clean_message, public_error


def test_a_lambda_error_shows_its_name_and_message_only():
    cause = ('{"errorMessage": "no postings", "errorType": "Ledger.Closed", "requestId": "r", "stackTrace": '
             '["  File \\"/var/task/chalicelib/runtime/step_runner.py\\", line 66, in handle\\n"]}')
    assert public_error("Ledger.Closed", cause) == {"error": "Ledger.Closed", "message": "no postings"}
    assert public_error(None, cause)["error"] == "Ledger.Closed"
    assert public_error("States.Timeout", "not completed in time") == {"error": "States.Timeout",
                                                                     "message": "not completed in time"}
    assert public_error("X", "{not json") == {"error": "X", "message": "{not json"}


@pytest.mark.parametrize(("raw", "shown"), [
    ("bad value\nTraceback (most recent call last):\n  File \"/work/x.py\", line 1", "bad value"),
    ("cannot open /var/task/config/settings.json", "cannot open <path>"),
    ("see /home/app/src/module.py for details", "see <path> for details"),
    ("GET https://api.example.com/var/tmp/a.py returned 500", "GET https://api.example.com/var/tmp/a.py returned 500"),
    ("ratio 3/4 and and/or", "ratio 3/4 and and/or"),
])
def test_messages_lose_tracebacks_and_server_paths(raw, shown):
    assert clean_message(raw) == shown
