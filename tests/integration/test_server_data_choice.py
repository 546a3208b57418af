"""Where `stepflow server` / `python -m stepflow_local.server` keeps its data: the default data directory when
DynamoDB Local can run, in memory (and said so) when it cannot, and an error when a directory was asked for."""

from __future__ import annotations

import pytest

from stepflow_local import server


@pytest.fixture
def served(monkeypatch):
    calls: list[object] = []

    def fake_serve(host, port, *, verbose=None, data_dir=None, tune_gc=False):
        calls.append(data_dir)
        return 0

    monkeypatch.setattr(server, "serve", fake_serve)
    monkeypatch.delenv("STEPFLOW_DATA_DIR", raising=False)
    return calls


def test_the_default_keeps_data_where_dynamodb_local_can_run(served, monkeypatch):
    monkeypatch.setattr(server, "kept_store_available", lambda: True)
    assert server.main([]) == 0
    assert served == [server.default_data_dir()]


def test_without_dynamodb_local_the_default_serves_in_memory_and_says_so(served, monkeypatch, capsys):
    monkeypatch.setattr(server, "kept_store_available", lambda: False)
    assert server.main([]) == 0
    assert served == [None]
    assert "nothing is kept: serving in memory" in capsys.readouterr().err


def test_a_data_directory_asked_for_is_not_replaced_by_memory(served, monkeypatch, tmp_path):
    monkeypatch.setattr(server, "kept_store_available", lambda: False)
    assert server.main(["--data-dir", str(tmp_path)]) == 0
    assert served == [str(tmp_path)]  # serve itself then fails with DynamoDB Local's own message
