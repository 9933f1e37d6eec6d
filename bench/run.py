"""The benchmark: synth time, template size, the handler asset and polling; see docs/benchmarks.md.

Usage: python bench/run.py [--tiny] [--runs N] [--output PATH]   (`make bench` runs it in full)
--tiny measures little (one run, 1 and 2 exports, short jobs) so a test can run it quickly.
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import handler_bench
import polling_bench
import report
import synth_bench
from model import (
    LONG_WAIT,
    NO_WAIT,
    SCHEDULES,
    Results,
    Settings,
    WaitCosts,
    export_case,
    poller_mode_cost,
    resource_mode_cost,
)
from notes import render

from personalize_export.runtime.export_job.contract import WaitMode

REPO = Path(__file__).resolve().parent.parent
DEFAULT_OUTPUT = REPO / "docs" / "benchmarks.md"
# Layouts whose per-export growth is split by resource type in the report.
GROWTH_LAYOUTS = ("shared", "lean", LONG_WAIT, NO_WAIT, SCHEDULES)
FULL = Settings(
    tiny=False,
    runs=15,
    warmup=1,
    export_counts=(1, 10, 50),
    job_minutes=(5, 30, 54, 60),
    import_runs=7,
)
TINY = Settings(
    tiny=True, runs=1, warmup=0, export_counts=(1, 2), job_minutes=(1, 60), import_runs=1
)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tiny", action="store_true", help="measure little, for the smoke test")
    parser.add_argument("--runs", type=int, help="timed synth runs per case (default 15; tiny 1)")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="Markdown to write")
    return parser.parse_args()


def settings_from(args: argparse.Namespace) -> Settings:
    base = TINY if args.tiny else FULL
    if args.runs is None:
        return base
    return Settings(
        base.tiny, args.runs, base.warmup, base.export_counts, base.job_minutes, base.import_runs
    )


def machine() -> str:
    node = subprocess.run(
        ["node", "--version"], capture_output=True, text=True, env=synth_bench.synth_env()
    ).stdout.strip()
    return (
        f"Python {platform.python_version()}, Node {node or 'unknown'}, "
        f"{platform.machine()}, {platform.system()}"
    )


def measure(settings: Settings, workdir: Path) -> Results:
    log(f"synth: {len(settings.timed_cases)} cases x {settings.runs} runs (+{settings.warmup})")
    timings, last_runs = synth_bench.time_cases(
        settings.timed_cases, settings.runs, settings.warmup, workdir
    )
    untimed = [case for case in settings.template_cases if case not in last_runs]
    log(f"templates: {len(untimed)} more synths")
    runs = {**last_runs, **synth_bench.synth_untimed(untimed, workdir)}
    first, last = settings.export_counts[0], settings.export_counts[-1]
    growth = {
        layout: synth_bench.growth_by_type(
            runs[export_case(layout, first)], runs[export_case(layout, last)], last - first
        )
        for layout in GROWTH_LAYOUTS
    }
    one_export = runs[export_case("own", first)]
    log("handler asset and cold import")
    asset = handler_bench.asset_report(one_export.assembly, one_export.stack)
    cold = handler_bench.cold_import(asset.directory, settings.import_runs)
    log("polling simulation")
    polling = polling_bench.simulate(
        one_export.assembly, one_export.stack, list(settings.job_minutes), tiny=settings.tiny
    )
    waiter = polling_bench.waiter_of(one_export.assembly, one_export.stack)
    return Results(
        settings=settings,
        machine=machine(),
        timings=timings,
        templates={case: synth_bench.template_stats(run) for case, run in runs.items()},
        growth_by_type=growth,
        asset=asset,
        cold_import=cold,
        polling=polling,
        poll_interval_s=waiter.interval_seconds,
        waiter_max_attempts=waiter.max_attempts,
        handler_timeout_s=polling_bench.handler_timeout_of(one_export.assembly, one_export.stack),
        wait_costs=wait_costs(runs, first),
    )


def wait_costs(runs: dict[str, synth_bench.SynthRun], count: int) -> WaitCosts:
    """Each wait mode's cost per hour, from the template of its layout with one export."""

    def template(layout: str) -> dict[str, Any]:
        loaded: dict[str, Any] = json.loads(
            synth_bench.template_path(runs[export_case(layout, count)]).read_text()
        )
        return loaded

    def mode_of(layout: str, expected: str) -> str:
        modes = set(polling_bench.wait_modes(template(layout)))
        if modes != {expected}:
            raise RuntimeError(f"{layout}: wait modes {modes}, expected {expected}")
        return expected

    waiter = polling_bench.waiter_loop(template("shared"))
    poller = polling_bench.poller_loop(template("shared"))
    return WaitCosts(
        waiter=waiter,
        poller=poller,
        modes=[
            resource_mode_cost(waiter, poller, mode_of("shared", WaitMode.RESOURCE)),
            poller_mode_cost(
                "timeout > 55 min (a WaitCondition the poller signals)",
                polling_bench.poller_loop(template(LONG_WAIT)),
                mode_of(LONG_WAIT, WaitMode.CONDITION),
                waits=True,
            ),
            poller_mode_cost(
                "wait_for_completion=False (no wait)",
                polling_bench.poller_loop(template(NO_WAIT)),
                mode_of(NO_WAIT, WaitMode.NONE),
                waits=False,
            ),
            poller_mode_cost(
                "schedule run (the poller creates, then watches)",
                polling_bench.poller_loop(template(SCHEDULES)),
                "-",
                waits=False,
            ),
        ],
    )


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


HISTORY_TEST = (
    "tests/test_poller_faults.py::test_the_worst_watch_stays_far_below_the_history_event_limit"
)
HISTORY_LINE = re.compile(r"worst-case history events: (\d+)")


def worst_case_history_events() -> int:
    """The export poller's history events in its worst watch (a 12-hour wait, an hour of
    throttling, the day's watch after it), counted by the test that asserts the limit."""
    run = subprocess.run(
        [sys.executable, "-m", "pytest", HISTORY_TEST, "-q", "-s", "-p", "no:xdist"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    found = HISTORY_LINE.search(run.stdout)
    if found is None:
        raise RuntimeError(f"no history count in the test's output:\n{run.stdout[-2000:]}")
    return int(found.group(1))


def history_section(events: int) -> str:
    return (
        "\n## Step Functions history events, worst case\n\n"
        "A 12-hour wait for a job that never ends, an hour of throttled describes in it, and the "
        "day's watch after the deadline, run through the deploy harness "
        f"(`{HISTORY_TEST}`): **{events:,} events** in one execution (Step Functions fails an "
        "execution at 25,000; the target is under 20,000, asserted by that test).\n"
    )


def main() -> None:
    args = parse_args()
    settings = settings_from(args)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="personalize-export-bench-") as workdir:
        results = measure(settings, Path(workdir))
    results.elapsed_s = time.perf_counter() - started
    print(report.main_table(results))
    notes = render(results)
    if not settings.tiny:
        events = worst_case_history_events()
        print(f"Worst-case history events of one poller execution: {events:,} (limit 25,000)")
        notes += history_section(events)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(notes)
    log(f"wrote {args.output} in {results.elapsed_s:.0f} s")


if __name__ == "__main__":
    main()
