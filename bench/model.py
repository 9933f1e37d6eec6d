"""What one benchmark run measured, gathered for the report."""

from __future__ import annotations

from dataclasses import dataclass, field

from handler_bench import AssetReport, ColdImport
from polling_bench import PollerLoop, PollSummary, WaiterLoop
from synth_bench import CaseTiming, TemplateStats

BARE = "bare"
DEMO = "demo"
LAYOUTS = {
    "shared": "shared bucket (one bucket passed as bucket=, a prefix per export)",
    "own": "own bucket (every export at its defaults)",
    "lean": "shared bucket and shared service role, stack_outputs=False",
    "longwait": "long wait, timeout=Duration.hours(6), shared bucket",
    "nowait": "no wait, wait_for_completion=False, shared bucket",
    "table": "with a Glue table (table=), shared bucket",
}
# DatasetExportSchedule layouts: counted per schedule.
SCHEDULE_LAYOUTS = {
    "schedshared": "schedules into one shared bucket (bucket=, a prefix each)",
    "schedown": "schedules at their defaults (own bucket and role each)",
    "schedtable": "schedules with a Glue table (table=), one shared bucket",
}
LONG_WAIT = "longwait"
NO_WAIT = "nowait"
SCHEDULES = "schedshared"
# table= layouts and the layouts they add a table to: the difference is the table's cost.
TABLE_LAYOUTS = {"table": "shared", "schedtable": SCHEDULES}
TARGET_SYNTH_RATIO = 1.15
TARGET_BYTES_PER_EXPORT = 2048
TARGET_ASSET_ZIPPED = 16 * 1024
TARGET_BYTES_PER_LONG_WAIT_EXPORT = 4096
TARGET_BYTES_PER_SCHEDULE = 4096
SECONDS_PER_HOUR = 3600


def export_case(layout: str, exports: int) -> str:
    return f"{layout}-{exports}"


@dataclass(frozen=True)
class Settings:
    """How much to measure: the full benchmark, or the tiny smoke-test mode."""

    tiny: bool
    runs: int
    warmup: int
    export_counts: tuple[int, ...]
    job_minutes: tuple[int, ...]
    import_runs: int

    @property
    def timed_cases(self) -> list[str]:
        """(a) bare, (b) one export at its defaults, (c) more exports, (d) the demo app."""
        return [BARE, *(export_case("own", n) for n in self.export_counts), DEMO]

    @property
    def template_cases(self) -> list[str]:
        layouts = [*LAYOUTS, *SCHEDULE_LAYOUTS]
        return [export_case(layout, n) for layout in layouts for n in self.export_counts]


@dataclass(frozen=True)
class ModeCost:
    """What one export (or schedule run) costs per hour of waiting for its job, in one mode."""

    mode: str
    wait_mode: str  # as the synthesized custom resource names it ("-" for a schedule)
    lambda_calls: float
    waiter_transitions: float
    poller_transitions: float
    describes: float
    deploy_knows_within_s: int | None  # None: the deploy does not wait
    event_within_s: int

    @property
    def transitions(self) -> float:
        return self.waiter_transitions + self.poller_transitions


@dataclass(frozen=True)
class WaitCosts:
    """The waiter and poller loops read from the templates, and each mode's cost per hour."""

    waiter: WaiterLoop
    poller: PollerLoop
    modes: list[ModeCost]


@dataclass
class Results:
    settings: Settings
    machine: str
    timings: dict[str, CaseTiming]
    templates: dict[str, TemplateStats]
    growth_by_type: dict[str, dict[str, float]]
    asset: AssetReport
    cold_import: ColdImport
    polling: list[PollSummary]
    poll_interval_s: int
    waiter_max_attempts: int
    handler_timeout_s: int
    wait_costs: WaitCosts
    elapsed_s: float = field(default=0.0)

    def ratio(self, case: str) -> float:
        return self.timings[case].median_s / self.timings[BARE].median_s

    def per_extra_export(self, layout: str, *, minified: bool = False) -> float:
        first_count, last_count = self.settings.export_counts[0], self.settings.export_counts[-1]
        first = self.templates[export_case(layout, first_count)]
        last = self.templates[export_case(layout, last_count)]
        if minified:
            return (last.minified_bytes - first.minified_bytes) / (last_count - first_count)
        return (last.bytes - first.bytes) / (last_count - first_count)

    def counts_of(self, attribute: str, layout: str) -> list[int]:
        """A template count (functions, state machines...) for each number of exports."""
        return [
            int(getattr(self.templates[export_case(layout, n)], attribute))
            for n in self.settings.export_counts
        ]

    def constant_in_exports(self, attribute: str) -> bool:
        return all(len(set(self.counts_of(attribute, layout))) == 1 for layout in LAYOUTS)

    def constant_in(self, attribute: str, layout: str) -> bool:
        return len(set(self.counts_of(attribute, layout))) == 1


def resource_mode_cost(waiter: WaiterLoop, poller: PollerLoop, wait_mode: str) -> ModeCost:
    """timeout <= 55 min: the custom resource polls, and the poller watches for the event."""
    polls = SECONDS_PER_HOUR / waiter.interval_s
    return ModeCost(
        mode="timeout <= 55 min (the custom resource waits)",
        wait_mode=wait_mode,
        lambda_calls=polls * waiter.lambda_calls_per_poll + poller_lambda_calls(poller),
        waiter_transitions=polls * waiter.states_per_poll,
        poller_transitions=poller_transitions(poller),
        describes=polls + poller.loops_per_hour * poller.describe_states,
        deploy_knows_within_s=waiter.interval_s,
        event_within_s=poller.wait_s,
    )


def poller_mode_cost(mode: str, poller: PollerLoop, wait_mode: str, *, waits: bool) -> ModeCost:
    """A mode where only the poller watches the job (and signals the WaitCondition if one waits)."""
    return ModeCost(
        mode=mode,
        wait_mode=wait_mode,
        lambda_calls=poller_lambda_calls(poller),
        waiter_transitions=0,
        poller_transitions=poller_transitions(poller),
        describes=poller.loops_per_hour * poller.describe_states,
        deploy_knows_within_s=poller.wait_s if waits else None,
        event_within_s=poller.wait_s,
    )


def poller_transitions(poller: PollerLoop) -> float:
    return poller.loops_per_hour * len(poller.states)


def poller_lambda_calls(poller: PollerLoop) -> float:
    return poller.loops_per_hour * poller.lambda_states
