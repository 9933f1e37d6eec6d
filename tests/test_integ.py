"""The integ apps (integ/): snapshots checked offline, and `make integ`'s guard.

The apps are deployed for real only by `make integ` on a user's account (docs/integration-
tests.md); here they are synthesized as integ-runner would and compared with the committed
snapshots, so a template change without `make integ-snapshot` fails.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from integ import snapshot

REPO = Path(__file__).resolve().parent.parent
APPS = {app.name: app for app in snapshot.apps()}


@pytest.fixture(scope="module")
def assemblies(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every integ app synthesized once (concurrently), as the snapshot check does."""
    found = snapshot.synthesize_all(tmp_path_factory.mktemp("integ"))
    return {app.name: assembly for app, assembly in found.items()}


def test_the_three_integ_apps_are_found_by_integ_runners_pattern() -> None:
    assert set(APPS) == {"integ_export.py", "integ_long_wait.py", "integ_schedule.py"}


def test_integ_runner_lists_the_apps() -> None:
    listing = subprocess.run(
        ["npx", "integ-runner", "--list", "--language", "python", "--directory", "integ"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    assert sorted(line for line in listing.stdout.split() if line.endswith(".py")) == sorted(APPS)


@pytest.mark.parametrize("name", sorted(APPS))
def test_committed_snapshot_matches_the_app(name: str, assemblies: dict[str, Path]) -> None:
    differences = snapshot.differences(snapshot.snapshot_dir(APPS[name]), assemblies[name])
    assert differences == [], "\n".join(differences) + "\nIf meant: make integ-snapshot"


def _stack_template(assembly: Path) -> Path:
    manifest = json.loads((assembly / "integ.json").read_text())
    (case,) = manifest["testCases"].values()
    (stack,) = case["stacks"]
    return assembly / f"{stack}.template.json"


def test_a_template_change_without_a_new_snapshot_fails(
    assemblies: dict[str, Path], tmp_path: Path
) -> None:
    changed = shutil.copytree(assemblies["integ_export.py"], tmp_path / "changed")
    template_path = _stack_template(changed)
    template = json.loads(template_path.read_text())
    bucket = next(
        resource
        for resource in template["Resources"].values()
        if resource["Type"] == "AWS::S3::Bucket"
    )
    bucket["Properties"]["VersioningConfiguration"] = {"Status": "Enabled"}
    template_path.write_text(json.dumps(template))

    differences = snapshot.differences(snapshot.snapshot_dir(APPS["integ_export.py"]), changed)

    assert len(differences) == 1
    assert differences[0].startswith(f"{template_path.name} changed:")
    assert '"Status": "Enabled"' in differences[0]


def test_asset_hashes_and_assertion_salts_are_not_changes(
    assemblies: dict[str, Path], tmp_path: Path
) -> None:
    """As integ-runner: an asset's bytes and the synth time are not the test's template."""
    changed = shutil.copytree(assemblies["integ_export.py"], tmp_path / "changed")
    for path in changed.glob("*.template.json"):
        text = snapshot.ASSET_HASH.sub("f" * 64, path.read_text())
        path.write_text(snapshot.SALT.sub('"salt": "1"', text))

    assert snapshot.differences(snapshot.snapshot_dir(APPS["integ_export.py"]), changed) == []


def test_make_integ_without_credentials_stops_at_once_with_a_clear_message() -> None:
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("AWS_") and not key.startswith("MAKE")
    }
    environment.update(
        AWS_CONFIG_FILE="/dev/null",
        AWS_SHARED_CREDENTIALS_FILE="/dev/null",
        AWS_EC2_METADATA_DISABLED="true",
    )
    started = time.monotonic()
    # The command the docs give: `make integ`.
    answer = subprocess.run(
        ["make", "-s", "integ"], cwd=REPO, env=environment, capture_output=True, text=True
    )
    took = time.monotonic() - started

    assert answer.returncode != 0
    assert "no AWS credentials found" in answer.stderr
    assert "Nothing was deployed." in answer.stderr
    assert "npx cdk" not in answer.stdout  # nothing was started
    assert took < 30
