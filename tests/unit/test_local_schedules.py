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


def test_a_one_shot_job_runs_once_and_not_before_its_deadline():
    import threading
    import time

    from stepflow_local.scheduler import Scheduler

    scheduler = Scheduler(thread_name="test-one-shot")
    ran: list[float] = []
    done = threading.Event()

    def record() -> None:
        ran.append(time.monotonic())
        done.set()

    deadline = time.monotonic() + 0.05
    job = scheduler.at(deadline, record, name="once")
    scheduler.start()
    try:
        assert done.wait(30)
        assert ran[0] >= deadline
        wait_until = time.monotonic() + 30
        while not job.cancelled and time.monotonic() < wait_until:
            time.sleep(0.01)  # polls the condition: the job leaves the list once it has run
        assert job.cancelled and job.runs == 1 and job not in scheduler.jobs
    finally:
        scheduler.stop()
    assert len(ran) == 1
