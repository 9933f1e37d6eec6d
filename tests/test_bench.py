"""Smoke test of the benchmark: it runs in tiny mode and writes a well-formed table.

Timings are never asserted: they depend on the machine.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from conftest import REPO

MAIN_HEADER = "| Measure | Result | Target | Met |"
EXPECTED_ROWS = (
    "Synth time, (a) bare pattern",
    "Synth time, (b) 1 export at defaults",
    "Synth time, (c) 2 exports",
    "Synth time, (d) demo app",
    "Lambda functions, 1 / 2 exports",
    "State machines, 1 / 2 exports",
    "Template bytes per extra export, shared bucket",
    "Template bytes per extra export, own bucket",
    "Handler asset, zipped",
    "Handler cold import",
    "Worst delay, job ACTIVE -> deploy knows",
    "Job of 1 min",
    "Lambda functions, 1 / 2 long-wait exports",
    "State machines, 1 / 2 long-wait exports",
    "Lambda functions, 1 / 2 schedules",
    "State machines, 1 / 2 schedules",
    "Template bytes per extra export, long wait",
    "Template bytes per extra export, no wait",
    "Template bytes per extra schedule, schedules into one shared bucket",
    "Per hour waiting, timeout <= 55 min",
    "Per hour waiting, timeout > 55 min",
    "Per hour waiting, wait_for_completion=False",
    "Per hour waiting, schedule run",
    "Delay after ACTIVE, timeout <= 55 min",
    "Delay after ACTIVE, timeout > 55 min",
)
# Counts read from the templates, not timed: they do not depend on the machine.
PER_HOUR = {
    # Lambda calls / state transitions / Describe calls per hour of waiting, for one export.
    "Per hour waiting, timeout <= 55 min": "240 / 360 / 180",
    "Per hour waiting, timeout > 55 min": "0 / 240 / 60",
    "Per hour waiting, wait_for_completion=False": "0 / 240 / 60",
    "Per hour waiting, schedule run": "0 / 240 / 60",
}
NUMBER = re.compile(r"\d+(?:\.\d+)?")


def main_table(markdown: str) -> list[list[str]]:
    """The rows of the table under '## Results', header and separator left out."""
    section = markdown.split("## Results", 1)[1].split("\n## ", 1)[0]
    lines = [line for line in section.splitlines() if line.startswith("|")]
    assert lines[0] == MAIN_HEADER
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines[2:]]


def test_tiny_benchmark_writes_the_table(tmp_path: Path) -> None:
    output = tmp_path / "benchmarks.md"
    finished = subprocess.run(
        [sys.executable, str(REPO / "bench" / "run.py"), "--tiny", "--output", str(output)],
        capture_output=True,
        text=True,
        # 16 synths in a row: generous, as the other subprocess tests, for a machine under load.
        timeout=900,
        cwd=tmp_path,
    )
    assert finished.returncode == 0, finished.stderr[-3000:]
    markdown = output.read_text()
    assert MAIN_HEADER in finished.stdout
    rows = main_table(markdown)
    labels = [row[0] for row in rows]
    for expected in EXPECTED_ROWS:
        assert any(label.startswith(expected) for label in labels), expected
    for label, result, _target, met in rows:
        assert NUMBER.search(result), f"no number in the result of {label!r}: {result!r}"
        assert all(float(n) >= 0 for n in NUMBER.findall(result))
        assert met in {"yes", "**no**", "-"}, f"{label!r}: {met!r}"
    sections = (
        "## Synth wall time",
        "## Template size",
        "## Handler asset",
        "## Polling",
        "## Wait modes",
    )
    for section in sections:
        assert section in markdown
    results = {label: result for label, result, _target, _met in rows}
    for prefix, expected in PER_HOUR.items():
        (result,) = [value for label, value in results.items() if label.startswith(prefix)]
        assert result == expected, (prefix, result)
    for label, result in results.items():
        if label.startswith("Delay after ACTIVE, timeout <= 55 min"):
            assert result == "<= 30 s / <= 60 s", result
    for label, _result, _target, met in rows:
        if label.startswith(("Lambda functions", "State machines")):
            assert met == "yes", label
    assert "## Targets not met, or met narrowly" in markdown
