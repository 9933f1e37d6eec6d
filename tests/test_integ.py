"""The integ apps (integ/): snapshots checked offline, the apps through the deploy harness, and
`make integ`'s guard.

On a real account, `make integ` deploys them (docs/integration-tests.md). Here they are
synthesized as integ-runner would and compared with the committed snapshots, so a template
change without `make integ-snapshot` fails. They are also deployed through the deploy harness:
both stacks of each app, the assertion function (integ-tests-alpha's Node.js handler, AWS SDK v3)
and its waiter state machine for real, against the Personalize stand-in and moto.
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import HANDLER_ACCESS_KEY
from harness.integ_stacks import IntegRun, deploy_integ
from personalize_standin import PersonalizeStandIn

from integ import snapshot

# One worker synthesizes the four apps once for the module (see `--dist loadgroup`).
pytestmark = pytest.mark.xdist_group("integ")

REPO = Path(__file__).resolve().parent.parent
APPS = {app.name: app for app in snapshot.apps()}
# A small export takes minutes on AWS: the stand-in's jobs take ten, by the virtual clock.
JOB_SECONDS = 600
# The apps only a real account runs (`make integ`), each with why: their snapshots and their
# delete-everything check are tested here, their deploy is not.
ACCOUNT_ONLY = {
    "integ_athena.py": "Athena's query engine has no offline stand-in: its SELECT over the "
    "export's Glue table (SerDe, header skip, grant_query's rights) is what the app settles",
}
THROUGH_THE_HARNESS = sorted(set(APPS) - set(ACCOUNT_ONLY))


@pytest.fixture(scope="module")
def assemblies(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every integ app synthesized once (concurrently), as the snapshot check does."""
    found = snapshot.synthesize_all(tmp_path_factory.mktemp("integ"))
    return {app.name: assembly for app, assembly in found.items()}


def test_the_four_integ_apps_are_found_by_integ_runners_pattern() -> None:
    assert set(APPS) == {
        "integ_athena.py",
        "integ_export.py",
        "integ_long_wait.py",
        "integ_schedule.py",
    }


def test_every_app_runs_through_the_harness_or_is_account_only_with_a_reason() -> None:
    """No app is left out of the harness deploy test silently."""
    assert set(ACCOUNT_ONLY) <= set(APPS), "ACCOUNT_ONLY names an app that is gone"
    assert set(THROUGH_THE_HARNESS) | set(ACCOUNT_ONLY) == set(APPS)
    assert not set(THROUGH_THE_HARNESS) & set(ACCOUNT_ONLY)
    assert all(len(reason.split()) >= 5 for reason in ACCOUNT_ONLY.values())


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


# --- the integ apps through the deploy harness --------------------------------------------


@pytest.fixture(scope="module")
def personalize() -> Iterator[PersonalizeStandIn]:
    """One stand-in for the module: the assertion function stays warm with its endpoint."""
    with PersonalizeStandIn() as server, pytest.MonkeyPatch.context() as patch:
        for name, value in {
            "AWS_ENDPOINT_URL_PERSONALIZE": server.endpoint_url,
            "AWS_ACCESS_KEY_ID": HANDLER_ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_DEFAULT_REGION": server.region,
            "AWS_MAX_ATTEMPTS": "1",
            "AWS_CONFIG_FILE": "/dev/null",
            "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
        }.items():
            patch.setenv(name, value)
        patch.delenv("AWS_PROFILE", raising=False)
        server.job_seconds = JOB_SECONDS
        yield server


def through_the_harness(assembly: Path, standin: PersonalizeStandIn) -> IntegRun:
    return deploy_integ(
        assembly,
        standin,
        node_environment={"AWS_ENDPOINT_URL_PERSONALIZE": standin.endpoint_url},
    )


def failures(run: IntegRun) -> dict[str, Any]:
    return {key: result for key, result in run.results().items() if result != {"status": "success"}}


@pytest.mark.parametrize("name", THROUGH_THE_HARNESS)
def test_the_integ_app_deploys_and_every_assertion_holds(
    name: str, assemblies: dict[str, Path], personalize: PersonalizeStandIn
) -> None:
    run = through_the_harness(assemblies[name], personalize)

    assert (run.failed, run.reason) == ("", "")
    assert run.results(), "the assertion stack has no AssertionResults outputs"
    assert failures(run) == {}


def test_the_export_app_reads_the_files_the_stand_in_wrote(
    assemblies: dict[str, Path], personalize: PersonalizeStandIn
) -> None:
    """The header assertion read a real object: one the stand-in put into moto's S3."""
    run = through_the_harness(assemblies["integ_export.py"], personalize)

    calls = {
        key: attributes
        for key, attributes in run.assertions.attributes.items()
        if key.startswith("AwsApiCallS3getObject")
    }
    ((_, answer),) = calls.items()
    assert answer["apiCallResponse"]["Body"].startswith("USER_ID,ITEM_ID,TIMESTAMP\n")


@pytest.fixture
def broken_export(assemblies: dict[str, Path], tmp_path: Path) -> Path:
    """integ_export with its first assertion expecting the files under a wrong path."""
    broken = shutil.copytree(assemblies["integ_export.py"], tmp_path / "broken")
    manifest = json.loads((broken / "integ.json").read_text())
    (case,) = manifest["testCases"].values()
    template_path = broken / f"{case['assertionStackName']}.template.json"
    template = json.loads(template_path.read_text())
    (describe,) = [
        resource["Properties"]
        for key, resource in template["Resources"].items()
        if key.startswith("AwsApiCallPersonalizedescribeDatasetExportJob")
    ]
    expected = json.dumps(describe["expected"])
    assert expected.count("integ/export/") == 1
    describe["expected"] = json.loads(expected.replace("integ/export/", "integ/elsewhere/"))
    template_path.write_text(json.dumps(template))
    return broken


def test_a_wrong_output_path_in_the_assertion_fails_with_the_assertions_message(
    broken_export: Path, personalize: PersonalizeStandIn
) -> None:
    run = through_the_harness(broken_export, personalize)

    failed = failures(run)
    assert list(failed) == [
        key for key in run.results() if key.startswith("AssertionResultsAwsApiCallPersonalize")
    ]
    (result,) = failed.values()
    assert result["status"] == "fail"
    # integ-tests-alpha's message: the expected value against the one Personalize returned.
    assert "integ/elsewhere/" in result["message"]
    assert "integ/export/" in result["message"]


@pytest.mark.parametrize("name", sorted(APPS))
def test_the_integ_stacks_delete_all_they_create(name: str, assemblies: dict[str, Path]) -> None:
    """Nothing retained, and every bucket emptied first (a stack can't delete a full bucket)."""
    for path in assemblies[name].glob("*.template.json"):
        resources = json.loads(path.read_text())["Resources"]
        retained = [
            key
            for key, resource in resources.items()
            if resource.get("DeletionPolicy", "Delete") != "Delete"
            or resource.get("UpdateReplacePolicy", "Delete") != "Delete"
        ]
        assert retained == [], f"{path.name} keeps {retained} after a delete"
        buckets = {key for key, res in resources.items() if res["Type"] == "AWS::S3::Bucket"}
        emptied = {
            res["Properties"]["BucketName"]["Ref"]
            for res in resources.values()
            if res["Type"] == "Custom::S3AutoDeleteObjects"
        }
        assert buckets == emptied


def test_make_integ_fails_an_app_on_a_failed_assertion_output_as_integ_runner_does() -> None:
    """integ/run.py reads `cdk deploy --outputs-file`: only AssertionResults* with status fail."""
    sys.path.insert(0, str(snapshot.INTEG_DIR))
    try:
        runner: Any = importlib.import_module("run")
    finally:
        sys.path.remove(str(snapshot.INTEG_DIR))
    outputs = {
        "ExportDefaultTestDeployAssert3D9684CE": {
            "AssertionResultsAwsApiCallOk": json.dumps({"status": "success"}),
            "AssertionResultsAwsApiCallBad": json.dumps(
                {
                    "status": "fail",
                    "message": "Expected integ/elsewhere/ but received integ/export/",
                }
            ),
        },
        "PersonalizeExportIntegExport": {"ExportJobArn": "arn:aws:personalize:...:fail"},
    }

    assert runner.failed_assertions(outputs) == [
        "ExportDefaultTestDeployAssert3D9684CE.AssertionResultsAwsApiCallBad: "
        "Expected integ/elsewhere/ but received integ/export/"
    ]
    assert runner.failed_assertions({"Stack": {"AssertionResultsX": '{"status":"success"}'}}) == []
