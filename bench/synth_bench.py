"""Synth wall time (one fresh process per run, cases alternated) and template metrics."""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from personalize_export.poller import POLLER_ID
from personalize_export.provider import PROVIDER_ID

SYNTH_CASE = Path(__file__).resolve().parent / "synth_case.py"
PHASES = ("import_s", "build_s", "synth_s")
IAM_POLICY_TYPES = ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy")
CLOUDFORMATION_MAX_RESOURCES = 500
# A template uploaded through S3 (as cdk deploy does) may be 1 MB; counted here as 10**6 bytes.
CLOUDFORMATION_MAX_TEMPLATE_BYTES = 1_000_000


@dataclass(frozen=True)
class SynthRun:
    """One synth: its wall time (timed runs: a fresh process each; untimed: 0), in-process
    phases and cloud assembly."""

    case: str
    wall_s: float
    phases: dict[str, float]
    stack: str
    assembly: Path


@dataclass(frozen=True)
class CaseTiming:
    """The timed runs of one case."""

    case: str
    walls: list[float]
    phase_medians: dict[str, float]

    @property
    def median_s(self) -> float:
        return statistics.median(self.walls)


@dataclass(frozen=True)
class TemplateStats:
    """What a synthesized stack template weighs."""

    bytes: int
    minified_bytes: int
    resources: int
    functions: int
    state_machines: int
    managed_policies: int


def synth_env() -> dict[str, str]:
    """The caller's environment, with this interpreter's bin/ (and its Node) first on PATH."""
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return env


def synth_once(case: str, outdir: Path) -> SynthRun:
    """Run synth_case.py for one case in a new process, timing it from spawn to exit."""
    shutil.rmtree(outdir, ignore_errors=True)
    start = time.perf_counter()
    (run,) = synth_in_one_process([(case, outdir)])
    return SynthRun(case, time.perf_counter() - start, run.phases, run.stack, outdir)


def synth_in_one_process(cases: Sequence[tuple[str, Path]]) -> list[SynthRun]:
    """Run synth_case.py once for (case, outdir) pairs, each outdir new or emptied by the
    caller; wall_s is left 0 (not measured)."""
    command = [sys.executable, str(SYNTH_CASE)]
    for case, outdir in cases:
        command += [case, "--outdir", str(outdir)]
    finished = subprocess.run(command, capture_output=True, text=True, env=synth_env())
    if finished.returncode != 0:
        names = ", ".join(case for case, _ in cases)
        raise RuntimeError(f"synth of {names} failed:\n{finished.stderr[-4000:]}")
    reports = [json.loads(line) for line in finished.stdout.strip().splitlines()[-len(cases) :]]
    return [
        SynthRun(
            case, 0.0, {name: float(report[name]) for name in PHASES}, str(report["stack"]), outdir
        )
        for (case, outdir), report in zip(cases, reports, strict=True)
    ]


def rotated(cases: Sequence[str], shift: int) -> list[str]:
    """The cases in round-robin order, starting one further each round (no fixed position)."""
    start = shift % len(cases)
    return [*cases[start:], *cases[:start]]


def time_cases(
    cases: Sequence[str], runs: int, warmup: int, workdir: Path
) -> tuple[dict[str, CaseTiming], dict[str, SynthRun]]:
    """Alternate the cases run by run; return the timings and each case's last run."""
    timed: dict[str, list[SynthRun]] = {case: [] for case in cases}
    for round_index in range(warmup + runs):
        for case in rotated(cases, round_index):
            run = synth_once(case, workdir / case)
            if round_index >= warmup:
                timed[case].append(run)
    timings = {case: summarize(case, case_runs) for case, case_runs in timed.items()}
    return timings, {case: case_runs[-1] for case, case_runs in timed.items()}


def summarize(case: str, runs: list[SynthRun]) -> CaseTiming:
    phase_medians = {name: statistics.median(run.phases[name] for run in runs) for name in PHASES}
    return CaseTiming(case, [run.wall_s for run in runs], phase_medians)


def synth_untimed(cases: Iterable[str], workdir: Path) -> dict[str, SynthRun]:
    """Synthesize cases only for their templates (their time is not measured): two processes,
    each synthesizing its half of the cases, so jsii's start is paid twice, not once a case."""
    pairs = [(case, workdir / case) for case in cases]
    for _case, outdir in pairs:
        shutil.rmtree(outdir, ignore_errors=True)
    halves = [pairs[0::2], pairs[1::2]]
    with ThreadPoolExecutor(max_workers=2) as pool:
        runs = [
            run for half in pool.map(synth_in_one_process, filter(None, halves)) for run in half
        ]
    return {run.case: run for run in runs}


def entry_kind(logical_id: str, resource: dict[str, Any]) -> str:
    """The resource type; the shared provider's and poller's IAM policies are told apart from
    the exports'."""
    kind = str(resource["Type"])
    if kind in IAM_POLICY_TYPES and logical_id.startswith(PROVIDER_ID):
        return f"{kind} (shared handler role)"
    if kind in IAM_POLICY_TYPES and logical_id.startswith(POLLER_ID):
        return f"{kind} (shared poller roles)"
    return kind


def template_path(run: SynthRun) -> Path:
    return run.assembly / f"{run.stack}.template.json"


def template_stats(run: SynthRun) -> TemplateStats:
    text = template_path(run).read_text()
    template = json.loads(text)
    kinds = [resource["Type"] for resource in template["Resources"].values()]
    return TemplateStats(
        bytes=len(text.encode()),
        minified_bytes=len(json.dumps(template, separators=(",", ":")).encode()),
        resources=len(kinds),
        functions=kinds.count("AWS::Lambda::Function"),
        state_machines=kinds.count("AWS::StepFunctions::StateMachine"),
        managed_policies=kinds.count("AWS::IAM::ManagedPolicy"),
    )


def growth_by_type(first: SynthRun, last: SynthRun, extra_exports: int) -> dict[str, float]:
    """Template growth per extra export, split by resource type (outputs counted as "Outputs").

    Each entry is measured as json.dumps(indent=1) of the entry alone, so the split is close to,
    not exactly, the file's growth.
    """
    totals: dict[str, float] = {}
    for sign, run in ((-1, first), (1, last)):
        for kind, size in entry_sizes(json.loads(template_path(run).read_text())):
            totals[kind] = totals.get(kind, 0.0) + sign * size
    return {kind: size / extra_exports for kind, size in totals.items() if size}


def entry_sizes(template: dict[str, Any]) -> Iterable[tuple[str, int]]:
    for logical_id, resource in template["Resources"].items():
        yield entry_kind(logical_id, resource), len(json.dumps(resource, indent=1))
    for output in template.get("Outputs", {}).values():
        yield "Outputs", len(json.dumps(output, indent=1))
