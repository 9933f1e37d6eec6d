"""The export poller under the errors AWS really sends (issue 15), through the deploy harness.

Every fault row runs under both error namings the harness knows: Step Functions' documented rule
(MODELLED: an error the API model does not declare for the operation arrives as
Personalize.PersonalizeException, its code only in the Cause) and naming by code (BY_CODE).
Neither is assumed: the product must survive both.
"""

from __future__ import annotations

import datetime
import itertools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import botocore.session
import pytest
from conftest import new_app
from harness.cloudformation import Harness, HarnessDeployment
from harness.stepfunctions import (
    BY_CODE,
    MODELLED,
    ParameterNameError,
    parameter_name_problems,
)
from personalize_standin import ACTIVE, FAILED, PersonalizeStandIn
from test_long_wait import DATASET, HOUR, deploy, events_of, timed, waits
from test_schedule import CREATE, Runs, build_runs, deployed, stamp

from personalize_export import DatasetExportJob
from personalize_export.poller import (
    CREATE_RETRY,
    DESCRIBE_RETRY,
    EVENT_NOT_PUBLISHED,
    POLLER_ID,
    PUBLISH_TRIES,
    SLOW_POLL_SECONDS,
)
from personalize_export.runtime.export_job.contract import LONG_POLL_SECONDS

DESCRIBE = "DescribeDatasetExportJob"
POLLER = "ak"  # moto's Step Functions tasks call with this key: faults hit the poller only
MINUTE = 60
# Throttling and 5xx as the stand-in answers them (code, HTTP status, message).
STORMS = {
    "throttle": ("ThrottlingException", 400, "Rate exceeded"),
    "5xx": ("ServiceUnavailable", 503, "Service Unavailable"),
}
ACCESS_DENIED = (
    "AccessDeniedException",
    400,
    "User is not authorized to perform: personalize:DescribeDatasetExportJob",
)


@pytest.fixture(params=[MODELLED, BY_CODE])
def naming(request: pytest.FixtureRequest) -> Iterator[str]:
    step_functions = Harness.get().step_functions
    step_functions.error_naming = str(request.param)
    yield str(request.param)
    step_functions.error_naming = MODELLED


def storm(standin: PersonalizeStandIn, kind: str, seconds: float, **where: Any) -> None:
    code, status, message = STORMS[kind]
    standin.fail_for(seconds, code, status=status, message=message, **where)


def executions(deployment: HarnessDeployment) -> list[dict[str, Any]]:
    """The executions of this deployment's export poller."""
    step_functions = deployment.harness.step_functions
    machines = {
        str(deployment.physical_ids[key])
        for key, resource in deployment.template["Resources"].items()
        if resource["Type"] == "AWS::StepFunctions::StateMachine" and key.startswith(POLLER_ID)
    }
    return [
        step_functions.describe_execution(execution["executionArn"])
        for machine in machines
        for execution in step_functions.executions(machine)
    ]


def history(deployment: HarnessDeployment, execution_arn: str) -> list[dict[str, Any]]:
    client = deployment.harness.step_functions.client
    pages = client.get_paginator("get_execution_history").paginate(executionArn=execution_arn)
    return [dict(event) for page in pages for event in page["events"]]


# --- the long wait ------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(STORMS))
def test_a_five_hour_wait_rides_out_fifteen_minutes_of_failed_describes_two_hours_in(
    tmp_path: Path, standin: PersonalizeStandIn, naming: str, kind: str
) -> None:
    standin.job_seconds = 5 * HOUR
    standin.progress_caller = POLLER
    deployment = deploy(tmp_path, standin, waits(6))
    storm(standin, kind, 15 * MINUTE, operation=DESCRIBE, starting_in=2 * HOUR)

    result, took = timed(deployment, deployment.create_stack)

    assert result.ok, result.reason()
    (job,) = standin.jobs.values()
    assert sorted(deployment.outputs().values()) == sorted(
        [job.dataset_export_job_arn, job.job_output["s3DataDestination"]["path"]]
    )
    code = STORMS[kind][0]
    assert standin.answers(POLLER).count(f"{DESCRIBE}:{code}") >= 5
    assert 5 * HOUR <= took < 5 * HOUR + 120


def test_access_denied_on_the_describe_fails_the_deploy_within_the_budget_naming_role_and_action(
    tmp_path: Path, standin: PersonalizeStandIn, naming: str
) -> None:
    standin.job_seconds = 5 * HOUR
    standin.progress_caller = POLLER
    deployment = deploy(tmp_path, standin, waits(6))
    code, status, message = ACCESS_DENIED
    standin.fail_for(24 * HOUR, code, status=status, message=message, operation=DESCRIBE)

    result, took = timed(deployment, deployment.create_stack)

    assert not result.ok
    reason = result.reason()
    assert "The export poller could not read export job" in reason
    assert "AccessDeniedException" in reason  # the name (by code) or the Cause's code
    assert "the export poller's role arn:aws:iam::123456789012:role/" in reason
    assert "may call personalize:DescribeDatasetExportJob" in reason
    # The poller starts once the custom resource hands the job over (its first poll).
    assert DESCRIBE_RETRY.total_seconds() <= took <= DESCRIBE_RETRY.total_seconds() + 600


def test_the_describe_budget_covers_an_hour_and_the_create_budget_about_eighty_minutes() -> None:
    assert DESCRIBE_RETRY.total_seconds() >= 60 * MINUTE
    assert 75 * MINUTE <= CREATE_RETRY.total_seconds() <= 90 * MINUTE


# --- the watch of an export that doesn't wait ---------------------------------------------------


def no_wait(stack: cdk.Stack) -> None:
    export = DatasetExportJob(stack, "Export", dataset_arn=DATASET, wait_for_completion=False)
    export.on_success("Done")


def test_a_watch_through_an_hour_of_throttling_still_sends_the_event_when_the_job_ends(
    tmp_path: Path, standin: PersonalizeStandIn, naming: str
) -> None:
    standin.job_seconds = 3 * HOUR
    standin.progress_caller = POLLER
    deployment = deploy(tmp_path, standin, no_wait)
    storm(standin, "throttle", HOUR, operation=DESCRIBE, starting_in=30 * MINUTE)

    assert deployment.create_stack().ok
    (event,) = events_of(deployment)

    (job,) = standin.jobs.values()
    assert event["detail"]["status"] == ACTIVE
    assert event["resources"] == [job.dataset_export_job_arn]
    assert deployment.rules_matching(event)
    assert standin.answers(POLLER).count(f"{DESCRIBE}:ThrottlingException") >= 10


# --- scheduled runs ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def runs_assembly(tmp_path_factory: pytest.TempPathFactory) -> Path:
    app = new_app(tmp_path_factory.mktemp("runs") / "cdk.out")
    build_runs(app)
    return Path(app.synth().directory)


@pytest.fixture
def nightly(runs_assembly: Path, standin: PersonalizeStandIn) -> Runs:
    return deployed(runs_assembly, "Nightly", standin)


def test_three_nights_with_the_second_create_throttled_twice_make_three_exports(
    nightly: Runs, naming: str
) -> None:
    first, second, third = nightly.next_times(3)
    assert nightly.run(first)["status"] == "SUCCEEDED"
    nightly.standin.throttle_next(2, operation=CREATE)
    assert nightly.run(second)["status"] == "SUCCEEDED"
    assert nightly.run(third)["status"] == "SUCCEEDED"

    base, prefix = nightly.base_path(), nightly.name_prefix()
    nights = (first, second, third)
    assert nightly.jobs() == {prefix + stamp(n)[0]: base + stamp(n)[1] for n in nights}
    assert [e["Detail"]["status"] for e in nightly.events()] == [ACTIVE] * 3
    assert [e["Resources"] for e in nightly.events()] == [
        [job.dataset_export_job_arn] for job in nightly.standin.jobs.values()
    ]
    assert nightly.latest() == base + stamp(third)[1]
    assert nightly.creates().count(f"{CREATE}:ThrottlingException") == 2


def test_a_5xx_storm_on_create_costs_a_night_only_delay(nightly: Runs, naming: str) -> None:
    (night,) = nightly.next_times(1)
    until_night = (night - nightly.now()).total_seconds()
    storm(nightly.standin, "5xx", 40 * MINUTE, operation=CREATE, starting_in=until_night)

    assert nightly.run(night)["status"] == "SUCCEEDED"

    (job,) = nightly.standin.jobs.values()
    assert job.status == ACTIVE
    assert nightly.latest() == nightly.base_path() + stamp(night)[1]
    assert nightly.now() - night >= datetime.timedelta(minutes=40)


def test_access_denied_on_create_reports_the_night_naming_role_and_action_within_the_budget(
    nightly: Runs, naming: str
) -> None:
    (night,) = nightly.next_times(1)
    nightly.standin.fail_for(
        12 * HOUR,
        "AccessDeniedException",
        message="User is not authorized to perform: personalize:CreateDatasetExportJob",
        operation=CREATE,
        starting_in=(night - nightly.now()).total_seconds(),
    )

    assert nightly.run(night)["status"] == "SUCCEEDED"

    (failure,) = [e["Detail"] for e in nightly.events()]
    assert failure["status"] == FAILED
    assert "AccessDeniedException" in failure["failureReason"]
    assert "export poller role arn:aws:iam::123456789012:role/" in failure["failureReason"]
    assert "personalize:CreateDatasetExportJob" in failure["failureReason"]
    assert not nightly.standin.jobs
    took = (nightly.now() - night).total_seconds()
    assert CREATE_RETRY.total_seconds() <= took <= CREATE_RETRY.total_seconds() + 3 * HOUR


# --- the completion event -----------------------------------------------------------------------


def test_a_rejected_event_is_sent_again_and_only_accepted_entries_count(
    tmp_path: Path, standin: PersonalizeStandIn
) -> None:
    standin.job_seconds = HOUR
    deployment = deploy(tmp_path, standin, waits(2))
    deployment.harness.step_functions.reject_events(PUBLISH_TRIES - 1)

    assert deployment.create_stack().ok
    (event,) = events_of(deployment)

    assert event["detail"]["status"] == ACTIVE
    statuses = {e["status"] for e in executions(deployment)}
    assert statuses == {"SUCCEEDED"}


def test_an_event_rejected_every_time_fails_the_execution_naming_the_rejection(
    tmp_path: Path, standin: PersonalizeStandIn
) -> None:
    standin.job_seconds = HOUR
    deployment = deploy(tmp_path, standin, waits(2))
    step_functions = deployment.harness.step_functions
    rejected_before = len(step_functions.rejected_events)
    step_functions.reject_events(PUBLISH_TRIES)

    result = deployment.create_stack()
    deployment.settle()

    assert result.ok, result.reason()  # the deploy waited for the job, not for the event
    assert events_of(deployment) == []
    assert len(step_functions.rejected_events) - rejected_before == PUBLISH_TRIES
    (failed,) = [e for e in executions(deployment) if e["status"] == "FAILED"]
    assert failed["error"] == EVENT_NOT_PUBLISHED
    assert "EventBridge.FailedEntry" in failed["cause"]


# --- parameter names, as Step Functions checks them -----------------------------------------------


def create_shape() -> Any:
    model = botocore.session.get_session().get_service_model("personalize")
    return model.operation_model("CreateDatasetExportJob").input_shape


def test_a_parameter_named_in_camel_case_is_refused_at_any_depth() -> None:
    shape = create_shape()
    good = {
        "JobName": "j",
        "JobOutput": {"S3DataDestination": {"Path": "s3://b/p/"}},
        "Tags": [{"TagKey": "team", "TagValue": "recs"}],
    }
    assert parameter_name_problems(good, shape) == []
    bad = {**good, "Tags": [{"tagKey": "team", "TagValue": "recs"}]}
    assert parameter_name_problems(bad, shape) == [
        "The field 'Tags[0].tagKey' is not supported by Step Functions"
    ]
    deep = {**good, "JobOutput": {"S3DataDestination": {"path": "s3://b/p/"}}}
    assert parameter_name_problems(deep, shape) == [
        "The field 'JobOutput.S3DataDestination.path' is not supported by Step Functions"
    ]


def test_a_state_machine_with_a_camel_case_parameter_is_refused_when_created() -> None:
    definition = {
        "StartAt": "Create",
        "States": {
            "Create": {
                "Type": "Task",
                "Resource": "arn:aws:states:::aws-sdk:personalize:createDatasetExportJob",
                "Parameters": {"JobName": "j", "Tags": [{"tagKey": "k", "TagValue": "v"}]},
                "End": True,
            }
        },
    }
    step_functions = Harness.get().step_functions
    with pytest.raises(ParameterNameError, match=r"'Tags\[0\]\.tagKey'.*/States/Create/"):
        step_functions.create_state_machine(
            "camel", json.dumps(definition), "arn:aws:iam::123456789012:role/r"
        )


# --- history events and detection delay -----------------------------------------------------------

HISTORY_LIMIT = 25_000
HISTORY_TARGET = 20_000


def worst_case_history(tmp_path: Path, standin: PersonalizeStandIn) -> int:
    """A 12-hour wait for a job that never ends, an hour of throttled describes in it, and the
    day's watch after the deadline: the history events of that one execution."""
    standin.progress_caller = POLLER
    standin.never_finish_next_job()
    deployment = deploy(tmp_path, standin, waits(12))
    storm(standin, "throttle", HOUR, operation=DESCRIBE, starting_in=3 * HOUR)

    assert not deployment.create_stack().ok
    deployment.settle()

    (execution,) = executions(deployment)
    assert execution["status"] == "SUCCEEDED"  # StoppedWatching: the job outlived the watch
    return len(history(deployment, execution["executionArn"]))


def test_the_worst_watch_stays_far_below_the_history_event_limit(
    tmp_path: Path, standin: PersonalizeStandIn
) -> None:
    events = worst_case_history(tmp_path, standin)

    print(f"worst-case history events: {events}")
    assert 5_000 < events < HISTORY_TARGET < HISTORY_LIMIT


@pytest.mark.parametrize(
    ("job_minutes", "most_late"), [(30, LONG_POLL_SECONDS), (3 * 60, SLOW_POLL_SECONDS)]
)
def test_a_job_s_end_is_seen_within_a_minute_in_the_first_hour_and_five_after(
    tmp_path: Path, standin: PersonalizeStandIn, job_minutes: int, most_late: int
) -> None:
    standin.job_seconds = job_minutes * MINUTE
    standin.progress_caller = POLLER
    deployment = deploy(tmp_path, standin, no_wait)

    assert deployment.create_stack().ok
    (event,) = events_of(deployment)

    (job,) = standin.jobs.values()
    ended = job.creation_date_time + job_minutes * MINUTE
    describes = [c.at for c in standin.calls if c.operation == DESCRIBE and c.caller == POLLER]
    seen = min(at for at in describes if at >= ended)
    assert event["detail"]["status"] == ACTIVE
    assert seen - ended <= most_late
    gaps = {round(b - a) for a, b in itertools.pairwise(describes)}
    assert max(gaps) == most_late
