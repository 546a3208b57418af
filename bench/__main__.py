"""`python -m bench` (make bench): runs every benchmark and writes bench/results.md."""

from __future__ import annotations

import os
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from bench import aws_calls, compile_bench, dag_schedule, list_bench, local_load, register_bench

RESULTS = Path(__file__).with_name("results.md")


def main() -> int:
    header = [
        "# Stepflow benchmarks",
        "",
        f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on Python {platform.python_version()}, "
        f"{platform.machine()}; the baselines (the per-step ancestor walk registration replaced, the",
        "level-barrier plan) are measured in the same run.",
        "",
    ]
    sections = [register_bench.report_markdown(register_bench.run()),
                compile_bench.report_markdown(compile_bench.run()), dag_schedule.report_markdown(dag_schedule.run()),
                aws_calls.report_markdown(aws_calls.run())]
    # Listing at 100 / 10,000 / 100,000 stored (the largest takes most of the run: seeding 300,000 items
    # into moto); STEPFLOW_BENCH_LIST_SIZES=100,10000 gives a shorter run.
    sizes = tuple(int(s) for s in os.environ.get("STEPFLOW_BENCH_LIST_SIZES", "").split(",") if s) or list_bench.SIZES
    begun = time.perf_counter()
    listing = list_bench.report_markdown(list_bench.run(sizes))
    sections.append(listing + f"\nThis section took {time.perf_counter() - begun:.0f} s.\n")
    text = "\n".join(header) + "\n" + "\n".join(sections)
    if local_load.RESULTS.exists():  # the local service figures come from `make bench-load` (minutes, not seconds)
        text = text.rstrip("\n") + "\n\n" + local_load.RESULTS.read_text(encoding="utf-8")
    RESULTS.write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
