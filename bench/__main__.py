"""`python -m bench` (make bench): runs every benchmark and writes bench/results.md."""

from __future__ import annotations

import platform
import sys
from datetime import UTC, datetime
from pathlib import Path

from bench import aws_calls, compile_bench, dag_schedule, local_load, register_bench

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
    text = "\n".join(header) + "\n" + "\n".join(sections)
    if local_load.RESULTS.exists():  # the local service figures come from `make bench-load` (minutes, not seconds)
        text = text.rstrip("\n") + "\n\n" + local_load.RESULTS.read_text(encoding="utf-8")
    RESULTS.write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
