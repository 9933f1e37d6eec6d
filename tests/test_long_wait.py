"""Exports past CloudFormation's hour, exports that don't hold the deploy, and the completion
event: through the deploy harness (the Provider framework's JavaScript, moto's Step Functions
interpreter running the stack's poller, WaitConditions), in virtual time."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from conftest import HANDLER_ACCESS_KEY, DeploymentFactory, new_app, template_of
from deploy_sim import read_template
from harness.cloudformation import Harness, HarnessDeployment, StackResult
from personalize_standin import ACTIVE, FAILED, PersonalizeStandIn

from personalize_export import DatasetExportJob
from personalize_export.completion_event import DETAIL_TYPE, SOURCE
from personalize_export.runtime.export_job.contract import RESOURCE_TYPE, Attr

STACK = "Long"
DATASET = "arn:aws:personalize:us-east-1:123456789012:dataset/dg/INTERACTIONS"
HOUR = 3600
Build = Callable[[cdk.Stack], None]


def synthesized(folder: Path, build: Build) -> Path:
    app = new_app(folder)
    build(cdk.Stack(app, STACK))
    return Path(app.synth().directory)


def waits(hours: float, **options: Any) -> Build:
    def build(stack: cdk.Stack) -> None:
        DatasetExportJob(
            stack,
            "Export",
            dataset_arn=options.pop("dataset_arn", DATASET),
            timeout=cdk.Duration.minutes(hours * 60),
            **options,
        )

    return build


@pytest.fixture
def long_jobs(standin: PersonalizeStandIn) -> Iterator[PersonalizeStandIn]:
    """Jobs that take five hours, by the (virtual) clock."""
    standin.job_seconds = 5 * HOUR
    yield standin


def deploy(tmp_path: Path, standin: PersonalizeStandIn, build: Build) -> HarnessDeployment:
    return HarnessDeployment(synthesized(tmp_path / "cdk.out", build), STACK, standin=standin)


def timed(
    deployment: HarnessDeployment, run: Callable[[], StackResult]
) -> tuple[StackResult, float]:
    started = deployment.harness.clock.time()
    result = run()
    return result, deployment.harness.clock.time() - started


def events_of(deployment: HarnessDeployment) -> list[dict[str, Any]]:
    deployment.settle()
    return [
        event
        for event in deployment.published()
        if (event["source"], event["detail-type"]) == (SOURCE, DETAIL_TYPE)
    ]


def test_a_five_hour_job_with_a_six_hour_timeout_deploys_with_its_outputs(
    tmp_path: Path, long_jobs: PersonalizeStandIn
) -> None:
    deployment = deploy(tmp_path, long_jobs, waits(6))

    result, took = timed(deployment, deployment.create_stack)

    assert result.ok, result.reason()
    (job,) = long_jobs.jobs.values()
    assert job.status == ACTIVE
    assert 5 * HOUR <= took < 5 * HOUR + 120  # the poller looks every 60 s
    assert sorted(deployment.outputs().values()) == sorted(
        [job.dataset_export_job_arn, job.job_output["s3DataDestination"]["path"]]
    )
    (event,) = events_of(deployment)
    assert event["detail"]["status"] == ACTIVE
    assert event["detail"]["datasetExportJobArn"] == job.dataset_export_job_arn


def test_the_same_job_fails_a_two_hour_timeout_at_two_hours_and_the_event_still_comes(
    tmp_path: Path, long_jobs: PersonalizeStandIn
) -> None:
    deployment = deploy(tmp_path, long_jobs, waits(2))

    result, took = timed(deployment, deployment.create_stack)

    assert not result.ok
    assert result.reason().startswith("WaitCondition received failed message: 'Export job ")
    assert "was not ACTIVE within the 7200 s timeout" in result.reason()
    assert "the completion event is still sent when it ends" in result.reason()
    assert 2 * HOUR <= took < 2 * HOUR + 120
    # The job goes on; the poller watches it to its end, publishes, and stops.
    (event,) = events_of(deployment)
    assert event["detail"]["status"] == ACTIVE
    assert deployment.harness.clock.time() - took >= 5 * HOUR - 2 * HOUR


def test_a_job_failing_after_three_hours_fails_the_deploy_with_its_reason(
    tmp_path: Path, standin: PersonalizeStandIn
) -> None:
    standin.job_seconds = 3 * HOUR
    standin.fail_next_job("Not enough data to export.")
    deployment = deploy(tmp_path, standin, waits(6))

    result, took = timed(deployment, deployment.create_stack)

    assert not result.ok
    assert "ended in CREATE FAILED: Not enough data to export." in result.reason()
    assert 3 * HOUR <= took < 3 * HOUR + 120
    (event,) = events_of(deployment)
    assert event["detail"]["status"] == FAILED
    assert event["detail"]["failureReason"] == "Not enough data to export."


def test_throttling_and_5xx_while_polling_are_ridden_out(
    tmp_path: Path, standin: PersonalizeStandIn
) -> None:
    standin.job_seconds = 2 * HOUR
    standin.progress_caller = "ak"  # moto's Step Functions tasks: faults hit the poller only
    standin.throttle_next(3, operation="DescribeDatasetExportJob")
    standin.server_error_next(3, operation="DescribeDatasetExportJob")
    deployment = deploy(tmp_path, standin, waits(3))

    result = deployment.create_stack()

    assert result.ok, result.reason()
    poller_calls = standin.answers("ak")
    assert poller_calls.count("DescribeDatasetExportJob:ThrottlingException") == 3
    assert poller_calls.count("DescribeDatasetExportJob:InternalFailure") == 3


def test_an_update_that_changes_the_export_waits_again_and_one_that_changes_nothing_does_not(
    tmp_path: Path, standin: PersonalizeStandIn
) -> None:
    standin.job_seconds = 2 * HOUR
    first = synthesized(tmp_path / "first", waits(3))
    deployment = HarnessDeployment(first, STACK, standin=standin)
    assert deployment.create_stack().ok
    (first_job,) = standin.jobs

    unchanged, took = timed(
        deployment, lambda: deployment.update_stack(read_template(first, STACK))
    )
    assert unchanged.ok and took == 0 and len(standin.jobs) == 1

    changed = synthesized(tmp_path / "changed", waits(3, ingestion_mode="ALL"))
    updated, took = timed(
        deployment, lambda: deployment.update_stack(read_template(changed, STACK))
    )

    assert updated.ok, updated.reason()
    assert len(standin.jobs) == 2 and 2 * HOUR <= took < 2 * HOUR + 120
    new_job = next(arn for arn in standin.jobs if arn != first_job)
    assert deployment.outputs()[output_key(deployment, "JobArn")] == new_job
    assert standin.jobs[first_job].status == ACTIVE  # the old job and its files stay


def test_a_rollback_after_a_failed_long_wait_exports_the_old_settings_again(
    tmp_path: Path, standin: PersonalizeStandIn
) -> None:
    standin.job_seconds = HOUR
    first = synthesized(tmp_path / "first", waits(3))
    deployment = HarnessDeployment(first, STACK, standin=standin)
    assert deployment.create_stack().ok
    (good_job,) = standin.jobs
    standin.fail_next_job("No data in the dataset for ingestion mode ALL.")

    changed = synthesized(tmp_path / "changed", waits(3, ingestion_mode="ALL"))
    updated = deployment.update_stack(read_template(changed, STACK))

    assert not updated.ok
    assert "No data in the dataset for ingestion mode ALL." in updated.reason()
    # README "Rollback": the resource carries the failed job's id (aws/aws-cdk#13527), so the
    # rollback exports the old settings afresh; the last good job and its files stay.
    assert updated.rollback and all(outcome.ok for outcome in updated.rollback.values())
    assert len(standin.jobs) == 3
    third = deployment.physical_ids[custom_resource(deployment)]
    assert third not in (good_job, *[arn for arn in standin.jobs if arn != third][1:])
    assert standin.jobs[third].ingestion_mode == standin.jobs[good_job].ingestion_mode == "PUT"
    assert standin.jobs[good_job].status == ACTIVE


def test_without_waiting_the_deploy_completes_first_and_the_event_matches_only_its_rules(
    tmp_path: Path, long_jobs: PersonalizeStandIn
) -> None:
    def build(stack: cdk.Stack) -> None:
        export = DatasetExportJob(stack, "Export", dataset_arn=DATASET, wait_for_completion=False)
        other = DatasetExportJob(
            stack, "Other", dataset_arn=DATASET.replace("INTERACTIONS", "ITEMS")
        )
        export.on_success("ExportDone")
        export.on_failure("ExportFailed")
        other.on_success("OtherDone")

    long_jobs.job_seconds = HOUR
    long_jobs.progress_caller = HANDLER_ACCESS_KEY
    deployment = deploy(tmp_path, long_jobs, build)
    (export_key,) = [key for key in deployment.custom_resources() if key.startswith("Export")]

    with deployment.handler():
        result = deployment.create_resource(export_key)
    assert result is not None and result.ok, result and result.reason
    assert result.data[Attr.STATUS] != ACTIVE  # completed while the job still runs
    assert (
        deployment.harness.clock.time() - long_jobs.jobs[result.physical_id].creation_date_time
        < HOUR
    )

    events = events_of(deployment)
    (event,) = [e for e in events if e["detail"]["datasetExportJobArn"] == result.physical_id]
    assert event["detail"]["constructPath"] == f"{STACK}/Export"
    (matched,) = deployment.rules_matching(event)
    assert "ExportDone" in matched  # not ExportFailed, not Other's OtherDone
    rules = [
        key
        for key, r in deployment.template["Resources"].items()
        if r["Type"] == "AWS::Events::Rule"
    ]
    assert len(rules) == 3


def test_twenty_long_waits_share_one_poller_and_all_finish_under_the_job_limit(
    tmp_path: Path, standin: PersonalizeStandIn
) -> None:
    def build(stack: cdk.Stack) -> None:
        bucket = cdk.aws_s3.Bucket(stack, "Exports", enforce_ssl=True)
        for index in range(20):
            DatasetExportJob(
                stack,
                f"Export{index:02d}",
                dataset_arn=DATASET,
                bucket=bucket,
                output_prefix=f"exports/{index:02d}/",
                timeout=cdk.Duration.hours(2),
                stack_outputs=False,
            )

    standin.job_seconds = 15 * 60
    standin.max_jobs_in_progress = 5
    deployment = deploy(tmp_path, standin, build)

    result = deployment.create_stack()

    assert result.ok, result.reason()
    assert len(standin.jobs) == 20
    assert all(job.status == ACTIVE for job in standin.jobs.values())
    assert standin.most_jobs_in_progress == 5
    assert any(a.endswith(":LimitExceededException") for a in standin.answers())
    counts = kinds(deployment.template)
    one = kinds(template_of_one(tmp_path))
    for kind in ("AWS::Lambda::Function", "AWS::StepFunctions::StateMachine"):
        assert counts[kind] == one[kind]


def kinds(template: dict[str, Any]) -> dict[str, int]:
    found: dict[str, int] = {}
    for resource in template["Resources"].values():
        found[resource["Type"]] = found.get(resource["Type"], 0) + 1
    return found


def template_of_one(tmp_path: Path) -> dict[str, Any]:
    app = new_app(tmp_path / "one.out")
    stack = cdk.Stack(app, "One")
    waits(2)(stack)
    return template_of(stack)


def custom_resource(deployment: HarnessDeployment) -> str:
    (key,) = [
        key
        for key, resource in deployment.template["Resources"].items()
        if resource["Type"] == RESOURCE_TYPE
    ]
    return str(key)


def output_key(deployment: HarnessDeployment, fragment: str) -> str:
    (key,) = [key for key in deployment.template["Outputs"] if fragment in key]
    return str(key)


def test_the_event_detail_uses_personalize_s_field_names(
    tmp_path: Path, standin: PersonalizeStandIn
) -> None:
    deployment = deploy(tmp_path, standin, waits(0.5))
    assert deployment.create_stack().ok
    (event,) = events_of(deployment)
    assert set(event["detail"]) == {
        "datasetExportJobArn",
        "jobName",
        "datasetArn",
        "ingestionMode",
        "status",
        "failureReason",
        "outputPath",
        "stackId",
        "constructPath",
        "scheduledTime",
    }
    assert json.dumps(event["detail"]["stackId"]).startswith('"arn:aws:cloudformation:')


def test_every_started_job_is_handed_to_the_poller_once_with_what_the_event_needs(
    tmp_path: Path, standin: PersonalizeStandIn, deployment_of: DeploymentFactory
) -> None:
    """In the deploy simulation the stand-in records StartExecution (no interpreter runs)."""
    app = new_app(tmp_path / "sim.out")
    waits(0.5)(cdk.Stack(app, STACK))
    deployment = deployment_of(app, STACK)
    with deployment.handler() as handler:
        deployment.deploy(handler)

    (job_arn,) = standin.jobs
    (execution,) = standin.executions
    poll = json.loads(execution["input"])
    assert execution["name"] == job_arn.rsplit("/", 1)[-1]
    assert poll["Job"]["JobArn"] == job_arn
    assert poll["Event"]["ConstructPath"] == f"{STACK}/Export"
    assert poll["Event"]["EventBusName"] == "default"
    assert poll["Handle"] == ""  # the custom resource waits itself: nothing to signal
    assert "personalizeexportpollerstatemachine" in str(execution["stateMachineArn"])


def test_a_signal_to_a_gone_wait_condition_is_logged_and_fails_nothing(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Stack deleted or deploy cancelled during a long wait: the handle's URL answers an error."""
    from personalize_export.runtime.export_job import signal

    responses = Harness.get().responses
    gone = f"https://{responses.host}/waitcondition/deleted-stack/0?X-Amz-Signature=x"
    state: dict[str, Any] = {
        "Job": {"JobArn": "arn:aws:personalize:us-east-1:1:dataset-export-job/j"},
        "Handle": gone,
        "Describe": {"Job": {"Status": ACTIVE}},
    }

    answer = signal.send({"Outcome": "Ended", "State": state})

    assert answer == {"Status": "SUCCESS", "Answered": 403}
    assert '"answered": 403' in capsys.readouterr().out
    unreachable = {**state, "Handle": "http://127.0.0.1:9/waitcondition/x"}
    assert signal.send({"Outcome": "Ended", "State": unreachable})["Answered"] == 0
