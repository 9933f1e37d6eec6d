"""What one benchmark run measured, gathered for the report."""

from __future__ import annotations

from dataclasses import dataclass, field

from handler_bench import AssetReport, ColdImport
from polling_bench import PollSummary
from synth_bench import CaseTiming, TemplateStats

BARE = "bare"
DEMO = "demo"
LAYOUTS = {
    "shared": "shared bucket (one bucket passed as bucket=, a prefix per export)",
    "own": "own bucket (every export at its defaults)",
    "lean": "shared bucket and shared service role, stack_outputs=False",
}
TARGET_SYNTH_RATIO = 1.15
TARGET_BYTES_PER_EXPORT = 2048
TARGET_ASSET_ZIPPED = 16 * 1024


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
        return [export_case(layout, n) for layout in LAYOUTS for n in self.export_counts]


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
