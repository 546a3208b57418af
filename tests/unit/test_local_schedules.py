"""The local runtime delivers @app.schedule handlers itself (moto never fires EventBridge schedules)."""

from __future__ import annotations

from chalice import Chalice, Cron, Rate

from stepflow_local.schedules import deliver_schedules, rate_seconds


def test_rate_seconds():
    assert rate_seconds(Rate(5, unit=Rate.MINUTES)) == 300
    assert rate_seconds(Rate(1, unit=Rate.HOURS)) == 3600
    assert rate_seconds("rate(2 days)") == 172800
    assert rate_seconds(Cron(0, 10, "*", "*", "?", "*")) is None


class FakeRuntime:
    region = "us-east-1"

    def __init__(self):
        self.jobs = []

    def every(self, seconds, callback, *, name=None):
        self.jobs.append((seconds, callback, name))


def test_every_rate_schedule_of_the_app_is_registered_and_runs_its_handler(monkeypatch):
    import sys
    import types

    module = types.ModuleType("schedule_app_under_test")
    app = Chalice(app_name="t")
    seen = []

    @app.schedule(Rate(5, unit=Rate.MINUTES), name="sweep")
    def sweep(event):
        seen.append(event.to_dict()["detail-type"])

    module.app, module.sweep = app, sweep
    monkeypatch.setitem(sys.modules, "schedule_app_under_test", module)
    for source in app.event_sources:
        source.handler_string = "schedule_app_under_test.sweep"
    runtime = FakeRuntime()
    assert deliver_schedules(app, runtime) == ["sweep"]
    [(seconds, callback, name)] = runtime.jobs
    assert (seconds, name) == (300, "sweep")
    callback()
    assert seen == ["Scheduled Event"]
