"""Load through the deploy harness: one stack of 25 exports, created concurrently as
CloudFormation creates them, against a stand-in that allows at most 5 export jobs in progress
(LimitExceededException beyond) and throttles one request in five. Then an Update that changes
all 25, and a Delete of the stack."""

from __future__ import annotations

import collections
from collections.abc import Iterator
from pathlib import Path

import aws_cdk as cdk
import pytest
from conftest import new_app
from deploy_sim import read_template
from harness.cloudformation import HarnessDeployment, StackResult
from personalize_standin import ACTIVE, PersonalizeStandIn

from personalize_export import DatasetExportJob, IngestionMode
from personalize_export.provider import POLL_INTERVAL

EXPORTS = 25
MAX_IN_PROGRESS = 5
THROTTLE_EVERY = 5
STACK = "Load"
DATASET = "arn:aws:personalize:us-east-1:123456789012:dataset/dg/INTERACTIONS"
DEFAULT_TIMEOUT_SECONDS = 55 * 60


def synthesized(folder: Path, mode: IngestionMode) -> Path:
    app = new_app(folder)
    stack = cdk.Stack(app, STACK)
    bucket = cdk.aws_s3.Bucket(stack, "Exports", enforce_ssl=True)
    for index in range(EXPORTS):
        DatasetExportJob(
            stack,
            f"Export{index:02d}",
            dataset_arn=DATASET,
            ingestion_mode=mode,
            bucket=bucket,
            output_prefix=f"exports/{index:02d}/",
        )
    return Path(app.synth().directory)


@pytest.fixture
def busy_standin(standin: PersonalizeStandIn) -> Iterator[PersonalizeStandIn]:
    standin.max_jobs_in_progress = MAX_IN_PROGRESS
    standin.throttle_every = THROTTLE_EVERY
    yield standin


def jobs_per_export(standin: PersonalizeStandIn) -> collections.Counter[str]:
    """How many jobs each export's folder got (its output path names the export)."""
    return collections.Counter(
        str(job.job_output["s3DataDestination"]["path"]) for job in standin.jobs.values()
    )


def test_25_exports_ride_out_the_job_limit_and_throttling(
    tmp_path: Path, busy_standin: PersonalizeStandIn
) -> None:
    deployment = HarnessDeployment(
        synthesized(tmp_path / "put", IngestionMode.PUT), STACK, standin=busy_standin
    )
    clock = deployment.harness.clock
    started = clock.time()

    created = deployment.create_stack()

    assert created.ok, created.reason()
    assert len(busy_standin.jobs) == EXPORTS
    assert set(jobs_per_export(busy_standin).values()) == {1}
    assert all(job.status == ACTIVE for job in busy_standin.jobs.values())
    answers = busy_standin.answers()
    assert any(answer.endswith(":LimitExceededException") for answer in answers)
    assert any(answer.endswith(":ThrottlingException") for answer in answers)
    assert busy_standin.most_jobs_in_progress == MAX_IN_PROGRESS
    # Five at a time, each ACTIVE one poll after it starts: well within the default timeout.
    took = clock.time() - started
    assert took <= DEFAULT_TIMEOUT_SECONDS
    assert took >= (EXPORTS // MAX_IN_PROGRESS) * POLL_INTERVAL.to_seconds()

    updated = update_all(deployment, tmp_path)

    assert updated.ok, updated.reason()
    assert len(busy_standin.jobs) == 2 * EXPORTS
    assert set(jobs_per_export(busy_standin).values()) == {2}
    modes = collections.Counter(job.ingestion_mode for job in busy_standin.jobs.values())
    assert modes == {"PUT": EXPORTS, "ALL": EXPORTS}
    assert all(job.status == ACTIVE for job in busy_standin.jobs.values())

    deleted = deployment.delete_stack()

    assert deleted.ok and len(deleted.outcomes) == EXPORTS
    assert len(busy_standin.jobs) == 2 * EXPORTS


def update_all(deployment: HarnessDeployment, tmp_path: Path) -> StackResult:
    new = synthesized(tmp_path / "all", IngestionMode.ALL)
    return deployment.update_stack(read_template(new, STACK))
