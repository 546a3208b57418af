"""Runs the benchmarks that need the local runtime (moto in-process): AWS calls per endpoint and the
sweep's reads with 10,000 waiting instances."""

from __future__ import annotations

from typing import Any

from bench import call_budget, sweep_reads


def run() -> dict[str, Any]:
    from chalice.test import Client

    from stepflow_local.runtime import LocalRuntime
    from tests.conftest import Api

    with LocalRuntime(time_scale=0.01) as runtime:
        import app as app_module
        from chalicelib.service.sweep import run_passes

        with Client(app_module.app) as client:
            calls = call_budget.measure(Api(client), runtime.region)
        runtime.reset()
        services = app_module.services

        def sweep() -> dict[str, int]:
            return run_passes({"tasks": services.tasks.sweep, "launches": services.instances.recover_launches,
                               "endings_finished": services.instances.finish_endings,
                               "notifications": services.instances.deliver_notifications,
                               "reconciled": services.instances.reconcile})

        reads = sweep_reads.run(services, runtime.region, sweep)
    return {"calls": calls, "sweep": reads}


def report_markdown(result: dict[str, Any]) -> str:
    lines = ["## AWS calls per request", "",
             "Counted with a botocore before-call hook on the app's DynamoDB, Step Functions and EventBridge "
             "clients (stepflow_local/call_count.py), in the request's own thread, on a warm process (the "
             "definition's revision already cached). \"Before\": the same requests counted on commit 0974595.",
             "", "| request | before | now | budget | met | calls now |", "|---|---:|---:|---:|---|---|"]
    for name, measured in result["calls"].items():
        budget = call_budget.BUDGETS.get(name)
        met = "—" if budget is None else ("yes" if measured["calls"] <= budget else "**no**")
        ops = ", ".join(f"{op} {n}" for op, n in measured["by_operation"].items())
        lines.append(f"| {name} | {call_budget.BASELINE.get(name, '—')} | {measured['calls']} | "
                     f"{budget if budget is not None else '—'} | {met} | {ops} |")
    lines += ["", "No request scanned a table.", ""]
    return "\n".join(lines) + "\n" + sweep_reads.report_markdown(result["sweep"])
