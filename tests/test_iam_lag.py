"""Issue 12: first deploys (and updates of the role, path or key) survive IAM's propagation delay.

Everything runs through the deploy simulation, which tells the stand-in when it creates or changes
each role, policy, bucket policy and key (Deployment.watch_iam), and the stand-in refuses calls
and fails jobs that use them within its lag (PersonalizeStandIn.iam_lag_seconds).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_kms as kms
from conftest import Synth, cached_synth
from deploy_sim import DeployFailedError, Deployment, FakeClock, Handler, Outcome, read_template
from personalize_standin import ACTIVE, FAILED, PersonalizeStandIn

from personalize_export.dataset_export_job import DatasetExportJob
from personalize_export.runtime.export_job.contract import (
    IAM_SETTLING_SECONDS,
    MAX_JOB_ATTEMPTS,
    Attr,
)

DEMO = "PersonalizeExportDemo"
STACK = "Lag"
DATASET = "arn:aws:personalize:us-east-1:123456789012:dataset/dg/INTERACTIONS"
C = "CreateDatasetExportJob"
D = "DescribeDatasetExportJob"
DENIED = "AccessDeniedException"
PRIVILEGES = "Insufficient privileges"
HOUR = 3600.0


@pytest.fixture
def lag(standin: PersonalizeStandIn) -> Callable[..., PersonalizeStandIn]:
    """Set the stand-in's IAM lag: `seconds` for Personalize, `caller` for the handler's role."""

    def set_lag(
        seconds: float, *, caller: float | None = None, at_create: bool = False
    ) -> PersonalizeStandIn:
        standin.iam_lag_seconds = seconds
        standin.caller_lag_seconds = caller
        standin.access_checked_at_create = at_create
        return standin

    return set_lag


def watched(deployment: Deployment, standin: PersonalizeStandIn) -> Deployment:
    deployment.watch_iam(standin)
    return deployment


def demo(demo_assembly: Path, standin: PersonalizeStandIn) -> Deployment:
    return watched(Deployment(demo_assembly, DEMO, FakeClock()), standin)


def deploy(deployment: Deployment) -> tuple[dict[str, Any], Outcome]:
    with deployment.handler() as handler:
        outputs = deployment.deploy(handler)
    ((_, _, outcome),) = deployment.outcomes
    return outputs, outcome


def failed_deploy(deployment: Deployment) -> Outcome:
    with deployment.handler() as handler, pytest.raises(DeployFailedError) as excinfo:
        deployment.deploy(handler)
    return excinfo.value.outcome


def service_role(deployment: Deployment) -> str:
    (custom,) = deployment.custom_resources()
    return str(deployment.resolved_properties(custom)["RoleArn"])


def creates(standin: PersonalizeStandIn) -> list[str]:
    return [answer for answer in standin.answers() if answer.startswith(C)]


# --- what the deploy simulation tells the stand-in -----------------------------------------------


def test_a_first_deploy_announces_every_role_policy_bucket_policy_and_key(
    demo_assembly: Path, standin: PersonalizeStandIn
) -> None:
    deployment = demo(demo_assembly, standin)
    assert standin.now() == deployment.clock.time()
    _, outcome = deploy(deployment)  # no lag: announcing changes nothing
    assert outcome.ok and standin.answers() == [C, D, D]
    template = deployment.template["Resources"]
    roles = [key for key, res in template.items() if res["Type"] == "AWS::IAM::Role"]
    buckets = [
        deployment.physical_ids[res["Properties"]["Bucket"]["Ref"]]
        for res in template.values()
        if res["Type"] == "AWS::S3::BucketPolicy"
    ]
    expected = {f"arn:aws:iam::123456789012:role/{deployment.physical_ids[key]}" for key in roles}
    expected |= {f"arn:aws:s3:::{bucket}" for bucket in buckets}
    assert set(standin.iam_changes) == expected
    assert set(standin.iam_changes.values()) == {1_800_000_000.0}
    assert service_role(deployment) in standin.iam_changes
    assert standin.caller_role_arn == deployment.handler_role_arn()
    caller = str(standin.caller_role_arn).rpartition("/")[2]
    (logical_id,) = [key for key, name in deployment.physical_ids.items() if name == caller]
    assert logical_id.startswith("PersonalizeExportProviderHandlerRole")


# --- a first deploy of the demo app ---------------------------------------------------------------

# Who sees IAM's change late: everyone alike, or Personalize only (the handler's role already
# works), and whether Personalize refuses at create or fails the job.
VIEWS = [
    pytest.param({}, id="everyone"),
    pytest.param({"at_create": True}, id="everyone-refused-at-create"),
    pytest.param({"caller": 0.0}, id="personalize-only"),
    pytest.param({"caller": 0.0, "at_create": True}, id="personalize-only-refused-at-create"),
]


@pytest.mark.parametrize("view", VIEWS)
def test_demo_first_deploy_with_a_30_s_lag_succeeds_with_at_most_one_extra_job(
    demo_assembly: Path,
    lag: Callable[..., PersonalizeStandIn],
    view: dict[str, Any],
) -> None:
    standin = lag(30, **view)
    deployment = demo(demo_assembly, standin)
    outputs, outcome = deploy(deployment)

    assert outcome.ok
    assert len(standin.jobs) <= 2
    job = standin.jobs[outcome.physical_id]
    assert job.status == ACTIVE
    assert outcome.data[Attr.JOB_ARN] == outcome.physical_id in outputs.values()
    assert creates(standin)[-1] == C
    failed = [arn for arn, job in standin.jobs.items() if job.status == FAILED]
    if failed:  # the lag was felt: the first job failed for access and a second one ran...
        (failed_arn,) = failed
        assert PRIVILEGES in str(standin.jobs[failed_arn].failure_reason)
        assert failed_arn != outcome.physical_id
    else:  # ...or the first tries were refused
        assert creates(standin)[0] != C


def test_demo_first_deploy_where_personalize_sees_iam_late_starts_one_extra_job(
    demo_assembly: Path, lag: Callable[..., PersonalizeStandIn]
) -> None:
    standin = lag(30, caller=0.0)
    deployment = demo(demo_assembly, standin)
    _, outcome = deploy(deployment)
    first, second = standin.jobs
    assert outcome.ok and outcome.physical_id == second
    assert standin.jobs[first].status == FAILED
    assert standin.answers() == [C, D, D, f"{D}:ResourceNotFoundException", C, D, D, D, D]
    assert outcome.polls == 4  # 90 s


def test_demo_first_deploy_with_a_10_minute_lag_fails_naming_both_roles_and_no_job(
    demo_assembly: Path, lag: Callable[..., PersonalizeStandIn]
) -> None:
    standin = lag(600)
    deployment = demo(demo_assembly, standin)
    outcome = failed_deploy(deployment)

    message = outcome.message
    job_arn = outcome.physical_id
    assert message.startswith(f"Could not start export job {job_arn}: An error occurred ({DENIED})")
    handler_role = str(standin.caller_role_arn).rsplit("/", 1)[1]
    assert f"assumed-role/{handler_role}/" in message
    assert "is not authorized to perform: personalize:CreateDatasetExportJob" in message
    assert f"Still refused {IAM_SETTLING_SECONDS} s after this deploy" in message
    assert f"The export passes role {service_role(deployment)}." in message
    assert message.endswith("No export job was started.")
    assert standin.jobs == {}
    assert outcome.polls == IAM_SETTLING_SECONDS // 30 + 1
    assert outcome.reason.startswith(f"Error: {message}\n")


def test_demo_first_deploy_with_a_10_minute_lag_in_personalize_lists_every_job_tried(
    demo_assembly: Path,
    lag: Callable[..., PersonalizeStandIn],
    capsys: pytest.CaptureFixture[str],
) -> None:
    standin = lag(600, caller=0.0)
    deployment = demo(demo_assembly, standin)
    outcome = failed_deploy(deployment)

    assert len(standin.jobs) == MAX_JOB_ATTEMPTS
    first, second, third = standin.jobs
    reasons = {arn: str(job.failure_reason) for arn, job in standin.jobs.items()}
    assert all(PRIVILEGES in reason for reason in reasons.values())
    message = outcome.message
    assert message.startswith(f"Export job {third} ended in CREATE FAILED: {reasons[third]}")
    assert f"Jobs tried before it: 1) {first}: {reasons[first]}; 2) {second}: " in message
    assert f"Personalize could not use role {service_role(deployment)}" in message
    assert "any of the 3 job(s)" in message
    assert outcome.physical_id == first  # CloudFormation's rollback Deletes that id: a no-op
    assert outcome.polls < IAM_SETTLING_SECONDS // 30  # fails once three jobs failed
    # The log: the failed poll lists every job tried with its reason.
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert lines[-1]["status"] == "FAILED"
    assert lines[-1]["jobsTried"] == [
        {"jobArn": arn, "failureReason": reasons[arn]} for arn in (first, second, third)
    ]


def test_demo_first_deploy_refused_at_create_for_10_minutes_fails_with_personalize_s_words(
    demo_assembly: Path, lag: Callable[..., PersonalizeStandIn]
) -> None:
    standin = lag(600, caller=0.0, at_create=True)
    deployment = demo(demo_assembly, standin)
    outcome = failed_deploy(deployment)
    message = outcome.message
    assert message.startswith(
        f"Could not start export job {outcome.physical_id}: An error occurred "
        "(InvalidInputException) when calling the CreateDatasetExportJob operation"
    )
    assert (
        "Insufficient privileges: Amazon Personalize could not assume role "
        f"{service_role(deployment)}."
    ) in message
    assert "; check the DatasetExportJob settings" in message  # the same hint as today
    assert f"CreateDatasetExportJob rules. Still refused {IAM_SETTLING_SECONDS} s" in message
    assert message.endswith("No export job was started.")
    assert standin.jobs == {}


def test_a_job_failing_for_another_reason_in_the_first_minute_fails_the_deploy_at_once(
    demo_assembly: Path, lag: Callable[..., PersonalizeStandIn]
) -> None:
    standin = lag(30)
    standin.fail_next_job("No data to export for ingestion mode ALL.")
    deployment = demo(demo_assembly, standin)
    outcome = failed_deploy(deployment)
    (job_arn,) = standin.jobs
    assert outcome.message == (
        f"Export job {job_arn} ended in CREATE FAILED: No data to export for ingestion mode ALL."
    )
    # The refusals were retried (onEvent's, then the first poll's), the failed job was not.
    assert creates(standin) == [f"{C}:{DENIED}", f"{C}:{DENIED}", C]
    # At once: on the poll that saw the job fail, 60 s after it was created, 90 s into the deploy.
    job = standin.jobs[job_arn]
    assert standin.answers()[-1] == D
    assert job.last_updated_date_time == deployment.clock.time()
    assert job.last_updated_date_time - job.creation_date_time == 60
    assert deployment.clock.time() - 1_800_000_000.0 == 90 < IAM_SETTLING_SECONDS


# --- an export stack of our own (fixed job_name, updates) ----------------------------------------


def build(app: cdk.App, options: dict[str, Any]) -> None:
    stack = cdk.Stack(app, STACK)
    DatasetExportJob(
        stack,
        "Export",
        dataset_arn=DATASET,
        job_name=options.get("job_name"),
        output_prefix=options.get("prefix"),
        encryption_key=kms.Key(stack, "Key") if options.get("kms") else None,
        ingestion_mode=options.get("mode", "PUT"),
    )


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    return cached_synth(tmp_path_factory, build)


class Stack:
    """The export stack, deployed in the simulation with IAM watched by the stand-in."""

    def __init__(self, synth: Synth, standin: PersonalizeStandIn, exits: ExitStack) -> None:
        self.synth = synth
        self.standin = standin
        self.exits = exits
        self.deployment: Deployment
        self.handler: Handler

    def deploy(self, **options: Any) -> Outcome:
        self.deployment = watched(
            Deployment(self.synth(**options), STACK, FakeClock()), self.standin
        )
        self.handler = self.exits.enter_context(self.deployment.handler())
        (custom,) = self.deployment.custom_resources()
        try:
            self.deployment.deploy(self.handler)
        except DeployFailedError as failed:
            return failed.outcome
        ((_, _, outcome),) = self.deployment.outcomes
        assert self.deployment.physical_ids[custom] == outcome.physical_id
        return outcome

    def update(self, **options: Any) -> Outcome:
        (custom,) = self.deployment.custom_resources()
        template = read_template(self.synth(**options), STACK)
        return self.deployment.update(self.handler, template, custom)


@pytest.fixture
def stack(standin: PersonalizeStandIn, synth: Synth) -> Iterator[Stack]:
    with ExitStack() as exits:
        yield Stack(synth, standin, exits)


def test_a_fixed_job_name_never_gets_a_second_job(
    stack: Stack, lag: Callable[..., PersonalizeStandIn]
) -> None:
    standin = lag(30, caller=0.0)
    outcome = stack.deploy(job_name="nightly")
    assert not outcome.ok
    assert list(standin.jobs) == [standin.job_arn("nightly")]
    assert creates(standin) == [C]
    message = outcome.message
    assert message.startswith(f"Export job {standin.job_arn('nightly')} ended in CREATE FAILED: ")
    assert PRIVILEGES in message
    assert f"The job used role {service_role(stack.deployment)}." in message
    assert "job_name 'nightly' is fixed, so it can't be started again" in message
    assert "deploy again with a new job_name, or leave job_name unset" in message


def test_a_fixed_job_name_still_waits_out_refusals_for_access(
    stack: Stack, lag: Callable[..., PersonalizeStandIn]
) -> None:
    standin = lag(30)
    outcome = stack.deploy(job_name="nightly")
    assert outcome.ok and outcome.physical_id == standin.job_arn("nightly")
    assert creates(standin) == [f"{C}:{DENIED}", f"{C}:{DENIED}", C]


UPDATES = [
    pytest.param({"prefix": "elsewhere/"}, "arn:aws:s3:::", id="new-prefix"),
    pytest.param({"kms": True}, "arn:aws:kms:", id="new-key"),
]


@pytest.mark.parametrize(("options", "changed"), UPDATES)
def test_an_update_of_the_bucket_policy_or_key_gets_the_same_protection(
    stack: Stack, lag: Callable[..., PersonalizeStandIn], options: dict[str, Any], changed: str
) -> None:
    standin = lag(30)
    first = stack.deploy()
    assert first.ok
    stack.deployment.clock.advance(HOUR)
    standin.calls.clear()
    now = stack.deployment.clock.time()
    outcome = stack.update(**options)

    young = [arn for arn, at in standin.iam_changes.items() if at == now]
    assert service_role(stack.deployment) in young
    assert any(arn.startswith(changed) for arn in young)
    assert standin.caller_role_arn not in young  # the handler's role did not change
    assert outcome.ok
    failed, replacement = [arn for arn in standin.jobs if arn != first.physical_id]
    assert outcome.physical_id == replacement
    assert standin.jobs[failed].status == FAILED
    assert PRIVILEGES in str(standin.jobs[failed].failure_reason)
    assert standin.jobs[replacement].status == ACTIVE
    assert creates(standin) == [C, C]
    assert stack.deployment.physical_ids[stack.deployment.custom_resources()[0]] == replacement


@pytest.mark.parametrize(("options", "changed"), UPDATES)
def test_an_update_past_a_10_minute_lag_fails_listing_every_job(
    stack: Stack, lag: Callable[..., PersonalizeStandIn], options: dict[str, Any], changed: str
) -> None:
    standin = lag(30)
    assert stack.deploy().ok
    stack.deployment.clock.advance(HOUR)
    standin.iam_lag_seconds = 600
    outcome = stack.update(**options)
    assert not outcome.ok
    new_jobs = list(standin.jobs)[1:]
    assert len(new_jobs) == MAX_JOB_ATTEMPTS
    for number, arn in enumerate(new_jobs[:-1], start=1):
        assert f"{number}) {arn}: " in outcome.message
    assert outcome.message.startswith(f"Export job {new_jobs[-1]} ended in CREATE FAILED: ")
    assert f"Personalize could not use role {service_role(stack.deployment)}" in outcome.message


def test_an_update_that_changes_no_access_is_not_retried(
    stack: Stack, lag: Callable[..., PersonalizeStandIn]
) -> None:
    standin = lag(30)
    assert stack.deploy().ok
    stack.deployment.clock.advance(HOUR)
    # Someone changed the role outside this deploy: an Update of the mode only gets no retries.
    standin.iam_changed(service_role(stack.deployment))
    outcome = stack.update(mode="ALL")
    assert not outcome.ok
    assert len(standin.jobs) == 2
    assert outcome.message == (
        f"Export job {outcome.physical_id} ended in CREATE FAILED: "
        f"{standin.jobs[outcome.physical_id].failure_reason}"
    )
