"""Markdown tables of the results: the main table and the detail tables."""

from __future__ import annotations

from collections.abc import Sequence

from model import (
    BARE,
    DEMO,
    LAYOUTS,
    LONG_WAIT,
    SCHEDULE_LAYOUTS,
    SCHEDULES,
    TABLE_LAYOUTS,
    TARGET_ASSET_ZIPPED,
    TARGET_BYTES_PER_EXPORT,
    TARGET_BYTES_PER_LONG_WAIT_EXPORT,
    TARGET_BYTES_PER_SCHEDULE,
    TARGET_SYNTH_RATIO,
    ModeCost,
    Results,
    export_case,
)
from polling_bench import PollRun, PollSummary
from synth_bench import CLOUDFORMATION_MAX_RESOURCES, CLOUDFORMATION_MAX_TEMPLATE_BYTES

Row = tuple[str, ...]
MAIN_HEADER: Row = ("Measure", "Result", "Target", "Met")
# Poll intervals compared in the notes: the CDK Provider default, ours, and a slower one.
COMPARED_INTERVALS = (5, 30, 60)


def table(header: Row, rows: Sequence[Row]) -> str:
    lines = [header, tuple("---" for _ in header), *rows]
    return "\n".join("| " + " | ".join(cells) + " |" for cells in lines)


def verdict(met: bool) -> str:
    return "yes" if met else "**no**"


def slash(values: Sequence[object]) -> str:
    return " / ".join(str(value) for value in values)


# --- the main table -------------------------------------------------------------------------


def main_table(results: Results) -> str:
    return table(
        MAIN_HEADER,
        [
            *synth_rows(results),
            *shape_rows(results),
            *bytes_rows(results),
            *handler_rows(results),
            *polling_rows(results),
            *wait_mode_rows(results),
        ],
    )


def synth_rows(results: Results) -> list[Row]:
    counts = results.settings.export_counts
    bare = results.timings[BARE].median_s
    rows: list[Row] = [
        ("Synth time, (a) bare pattern", f"1.00 x ({bare:.2f} s here)", "baseline", "-")
    ]
    one = results.ratio(export_case("own", counts[0]))
    rows.append(
        (
            "Synth time, (b) 1 export at defaults",
            f"{one:.3f} x",
            f"<= {TARGET_SYNTH_RATIO:.2f} x",
            verdict(one <= TARGET_SYNTH_RATIO),
        )
    )
    for count in counts[1:]:
        ratio = results.ratio(export_case("own", count))
        rows.append((f"Synth time, (c) {count} exports", f"{ratio:.2f} x", "-", "-"))
    rows.append(("Synth time, (d) demo app", f"{results.ratio(DEMO):.2f} x", "-", "-"))
    return rows


def shape_rows(results: Results) -> list[Row]:
    counts = slash(results.settings.export_counts)
    rows: list[Row] = []
    for attribute, name in (
        ("functions", "Lambda functions"),
        ("state_machines", "State machines"),
    ):
        rows.append(
            (
                f"{name}, {counts} exports",
                slash(results.counts_of(attribute, "shared")),
                "constant",
                verdict(results.constant_in_exports(attribute)),
            )
        )
    resources = slash(results.counts_of("resources", "shared"))
    rows.append((f"Resources, {counts} exports (shared bucket)", resources, "-", "-"))
    for layout, what in ((LONG_WAIT, "long-wait exports"), (SCHEDULES, "schedules")):
        for attribute, name in (
            ("functions", "Lambda functions"),
            ("state_machines", "State machines"),
        ):
            rows.append(
                (
                    f"{name}, {counts} {what}",
                    slash(results.counts_of(attribute, layout)),
                    "constant",
                    verdict(results.constant_in(attribute, layout)),
                )
            )
    return rows


def bytes_rows(results: Results) -> list[Row]:
    targets = {
        "shared": TARGET_BYTES_PER_EXPORT,
        LONG_WAIT: TARGET_BYTES_PER_LONG_WAIT_EXPORT,
        SCHEDULES: TARGET_BYTES_PER_SCHEDULE,
    }
    described = [
        *((layout, f"export, {description}") for layout, description in LAYOUTS.items()),
        *((layout, f"schedule, {text}") for layout, text in SCHEDULE_LAYOUTS.items()),
    ]
    rows: list[Row] = []
    for layout, description in described:
        growth = results.per_extra_export(layout)
        minified = results.per_extra_export(layout, minified=True)
        target = targets.get(layout)
        rows.append(
            (
                f"Template bytes per extra {description}",
                f"{growth:.0f} B ({minified:.0f} B minified)",
                f"<= {target} B" if target else "-",
                verdict(growth <= target) if target else "-",
            )
        )
    for layout, without in TABLE_LAYOUTS.items():
        added = results.per_extra_export(layout) - results.per_extra_export(without)
        added_minified = results.per_extra_export(layout, minified=True) - results.per_extra_export(
            without, minified=True
        )
        what = "schedule" if layout in SCHEDULE_LAYOUTS else "export"
        rows.append(
            (
                f"Template bytes a Glue table (table=) adds per {what}",
                f"{added:.0f} B ({added_minified:.0f} B minified)",
                "-",
                "-",
            )
        )
    return rows


def handler_rows(results: Results) -> list[Row]:
    asset, cold = results.asset, results.cold_import
    imports = ", ".join(asset.third_party_imports) or "none"
    return [
        (
            "Handler asset, zipped",
            f"{asset.zipped_bytes} B, {len(asset.files)} files, all ours; "
            f"imports beyond stdlib: {imports} (in the Lambda runtime)",
            f"<= {TARGET_ASSET_ZIPPED} B, no third-party code",
            verdict(asset.zipped_bytes <= TARGET_ASSET_ZIPPED and asset.only_our_code),
        ),
        (
            "Handler cold import (export_job.handler)",
            f"{cold.total_s * 1000:.0f} ms (boto3+botocore {cold.sdk_s * 1000:.0f} ms, "
            f"ours {cold.ours_s * 1000:.1f} ms)",
            "-",
            "-",
        ),
    ]


def polling_rows(results: Results) -> list[Row]:
    interval = results.poll_interval_s
    delays = [s.worst_delay_s for s in results.polling if s.worst_delay_s is not None]
    worst = max(delays) if delays else float("nan")
    rows: list[Row] = [
        (
            "Worst delay, job ACTIVE -> deploy knows",
            f"{worst:.3f} s",
            f"<= poll interval ({interval} s)",
            verdict(bool(delays) and worst <= interval),
        )
    ]
    for summary in results.polling:
        run = summary.worst
        rows.append(
            (
                f"Job of {summary.minutes} min: Personalize calls / Lambda invocations on AWS",
                f"{aws_personalize_calls(run)} / {aws_lambda_invocations(run)}"
                + ("" if summary.all_completed else " (times out at the deadline)"),
                "-",
                "-",
            )
        )
    return rows


def wait_mode_rows(results: Results) -> list[Row]:
    """Per hour of waiting, and the detection delay, in each wait mode (read from templates)."""
    rows: list[Row] = []
    for cost in results.wait_costs.modes:
        rows.append(
            (
                f"Per hour waiting, {cost.mode}: Lambda calls / state transitions / Describe",
                f"{cost.lambda_calls:.0f} / {cost.transitions:.0f} / {cost.describes:.0f}",
                "-",
                "-",
            )
        )
    for cost in results.wait_costs.modes:
        rows.append(
            (
                f"Delay after ACTIVE, {cost.mode}: deploy knows / event sent",
                f"{deploy_delay(cost)} / <= {cost.event_within_s} s",
                "-",
                "-",
            )
        )
    return rows


def deploy_delay(cost: ModeCost) -> str:
    if cost.deploy_knows_within_s is None:
        return "no wait (0 s)"
    return f"<= {cost.deploy_knows_within_s} s"


def wait_mode_table(results: Results) -> str:
    rows: list[Row] = []
    for cost in results.wait_costs.modes:
        rows.append(
            (
                cost.mode,
                f"`{cost.wait_mode}`",
                f"{cost.lambda_calls:.0f}",
                f"{cost.waiter_transitions:.0f}",
                f"{cost.poller_transitions:.0f}",
                f"{cost.transitions:.0f}",
                f"{cost.describes:.0f}",
                deploy_delay(cost),
                f"<= {cost.event_within_s} s",
            )
        )
    header = (
        "mode",
        "WaitMode in the template",
        "Lambda calls / h",
        "waiter transitions / h",
        "poller transitions / h",
        "state transitions / h",
        "Describe calls / h",
        "deploy knows",
        "event sent",
    )
    return table(header, rows)


# --- what the Provider framework adds on AWS --------------------------------------------------


def missed_first_polls(run: PollRun) -> int:
    """The waiter calls isComplete as soon as onEvent returns, then every interval.

    A simulation whose first poll comes one interval later makes one call fewer than AWS.
    """
    return 0 if run.first_poll_after_s == 0 else 1


def aws_polls(run: PollRun) -> int:
    return run.is_complete_calls + missed_first_polls(run)


def aws_personalize_calls(run: PollRun) -> int:
    return run.creates + run.describes + missed_first_polls(run)


def aws_lambda_invocations(run: PollRun) -> int:
    """Every handler call goes through a framework function: two invocations each."""
    return 2 * (run.on_event_calls + aws_polls(run))


# --- details ----------------------------------------------------------------------------------


def synth_table(results: Results) -> str:
    rows: list[Row] = []
    for case in results.settings.timed_cases:
        timing = results.timings[case]
        phases = timing.phase_medians
        rows.append(
            (
                case,
                f"{timing.median_s:.2f}",
                f"{min(timing.walls):.2f}",
                f"{max(timing.walls):.2f}",
                f"{results.ratio(case):.2f}",
                f"{phases['import_s']:.2f}",
                f"{phases['build_s']:.2f}",
                f"{phases['synth_s']:.2f}",
            )
        )
    header = (
        "case",
        "median s",
        "min s",
        "max s",
        "ratio to bare",
        "import s",
        "build s",
        "synth s",
    )
    return table(header, rows)


def template_table(results: Results) -> str:
    rows: list[Row] = []
    for layout in [*LAYOUTS, *SCHEDULE_LAYOUTS]:
        for count in results.settings.export_counts:
            stats = results.templates[export_case(layout, count)]
            rows.append(
                (
                    layout,
                    str(count),
                    str(stats.bytes),
                    str(stats.minified_bytes),
                    str(stats.resources),
                    str(stats.functions),
                    str(stats.state_machines),
                    str(stats.managed_policies),
                )
            )
    header = (
        "layout",
        "exports / schedules",
        "bytes",
        "minified",
        "resources",
        "functions",
        "state machines",
        "managed policies",
    )
    return table(header, rows)


def resource_limit_rows(results: Results) -> list[Row]:
    """How many exports fit under CloudFormation's limits, extrapolated linearly."""
    first, last = results.settings.export_counts[0], results.settings.export_counts[-1]
    rows: list[Row] = []
    for layout in [*LAYOUTS, *SCHEDULE_LAYOUTS]:
        low = results.templates[export_case(layout, first)]
        high = results.templates[export_case(layout, last)]
        resources = (high.resources - low.resources) / (last - first)
        size = results.per_extra_export(layout)
        by_resources = first + int((CLOUDFORMATION_MAX_RESOURCES - low.resources) / resources)
        by_size = first + int((CLOUDFORMATION_MAX_TEMPLATE_BYTES - low.bytes) / size)
        rows.append((layout, f"{resources:.2f}", str(by_resources), str(by_size)))
    return rows


def resource_limit_table(results: Results) -> str:
    header = (
        "layout",
        "resources per extra export / schedule",
        "exports / schedules at 500 resources",
        "exports / schedules at 1 MB of template",
    )
    return table(header, resource_limit_rows(results))


def growth_table(results: Results) -> str:
    """Bytes per extra export by template entry, one column per layout split."""
    layouts = list(results.growth_by_type)
    kinds = {kind for growth in results.growth_by_type.values() for kind in growth}
    total = results.growth_by_type[layouts[0]]
    rows: list[Row] = []
    for kind in sorted(kinds, key=lambda kind: (-total.get(kind, 0.0), kind)):
        sizes = [results.growth_by_type[layout].get(kind, 0.0) for layout in layouts]
        rows.append((kind, *(f"{size:.0f}" for size in sizes)))
    return table(("entry", *(f"{layout} B" for layout in layouts)), rows)


def asset_section(results: Results) -> str:
    asset = results.asset
    files = ", ".join(f"`{name}`" for name in asset.files)
    unexpected = ", ".join(asset.unexpected_files) or "none"
    return "\n".join(
        [
            f"- Files: {files} ({asset.unzipped_bytes} B unzipped, {asset.zipped_bytes} B as a "
            "deflate zip).",
            f"- Files that are not the repository's `lambda/` sources: {unexpected}.",
            f"- Imported packages beyond the standard library and the asset itself: "
            f"{', '.join(asset.third_party_imports) or 'none'} (both ship in the Lambda Python "
            "runtime; `mypy_boto3_personalize` is imported only under `TYPE_CHECKING`).",
            f"- Cold import: median of {results.cold_import.runs} fresh `python -I -B` processes "
            "importing `export_job.handler` from the synthesized asset folder, no `.pyc` written "
            "(as in Lambda's read-only `/var/task`). Interpreter start-up is not included; "
            "the client is created on first use, not at import.",
        ]
    )


def polling_table(results: Results) -> str:
    rows: list[Row] = []
    for summary in results.polling:
        rows.append(polling_row(summary))
    header = (
        "job takes",
        "outcome",
        "Create + Describe (sim)",
        "onEvent + isComplete (sim)",
        "deploy waits (sim)",
        "Personalize calls on AWS",
        "Lambda invocations on AWS",
        "worst delay",
    )
    return table(header, rows)


def polling_row(summary: PollSummary) -> Row:
    run = summary.worst
    delay = summary.worst_delay_s
    outcome = "ACTIVE, deploy succeeds" if summary.all_completed else "deploy fails at deadline"
    return (
        f"{summary.minutes} min",
        outcome,
        f"{run.creates} + {run.describes}",
        f"{run.on_event_calls} + {run.is_complete_calls}",
        f"{run.deploy_seconds / 60:.1f} min",
        str(aws_personalize_calls(run)),
        str(aws_lambda_invocations(run)),
        f"{delay:.3f} s" if delay is not None else "-",
    )


def interval_table(results: Results) -> str:
    """The same model for other intervals: calls for a job that ends just after a poll."""
    rows: list[Row] = []
    for interval in COMPARED_INTERVALS:
        cells = [f"{interval} s" + (" (ours)" if interval == results.poll_interval_s else "")]
        for summary in results.polling:
            if summary.all_completed:
                polls = summary.minutes * 60 // interval + 2  # at once, then until past T
                cells.append(f"{polls} / {2 * (1 + polls)}")
        cells.append(f"{interval} s")
        rows.append(tuple(cells))
    done = [s.minutes for s in results.polling if s.all_completed]
    header = ("interval", *(f"{m} min job: Describe / Lambda" for m in done), "worst delay")
    return table(header, rows)
