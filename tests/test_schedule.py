"""DatasetExportSchedule (issue 11): exports on a schedule, each run into a dated folder of its own,
the latest good one in an SSM parameter.

Runs go through the deploy harness: the stack deployed from its template, the stack's export
poller (its real definition) run by moto's Step Functions interpreter against the Personalize
stand-in, each run started as EventBridge Scheduler starts it (tests/harness/scheduler.py: the
schedule's Input with the scheduled time filled in, at that time on the virtual clock).
"""

from __future__ import annotations

import datetime
import fnmatch
import itertools
import json
import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aws_cdk as cdk
import boto3
import cdk_nag
import pytest
from aws_cdk import Duration
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as events_targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_sns as sns
from aws_cdk.assertions import Annotations, Match
from conftest import new_app
from constructs import Construct
from deploy_sim import REGION
from harness.cloudformation import HarnessDeployment
from harness.scheduler import Invocation, ScheduleDisabledError, Scheduler, scheduled_times
from harness.stepfunctions import moto_readable
from iam_reference import check_template
from personalize_standin import ACTIVE, FAILED, PersonalizeStandIn
from test_security import CFN_LINT_IGNORED, _cfn_lint, acknowledgments

import app as demo_app
from personalize_export import DatasetExportJob, DatasetExportSchedule, IngestionMode
from personalize_export.completion_event import DETAIL_TYPE, SOURCE
from personalize_export.dataset_export_schedule import run_name_prefix
from personalize_export.destination import LIFECYCLE_RULE_NOT_ADDED
from personalize_export.runtime.export_job.contract import JOB_NAME_MAX_LENGTH, JOB_NAME_PATTERN

DATASET = "arn:aws:personalize:us-east-1:123456789012:dataset/shop/INTERACTIONS"
NIGHTLY = scheduler.ScheduleExpression.cron(hour="2", minute="0")
# Every five minutes: overlapping runs come close together (the earlier one polls meanwhile).
FREQUENT = scheduler.ScheduleExpression.cron(minute="0/5")
CREATE = "CreateDatasetExportJob"
# A construct path far longer than a job name may be.
LONG_ID = "FrequentExportOfTheInteractionsDatasetForTheRecommendationsTeam"
Template = dict[str, Any]


# --- the apps ----------------------------------------------------------------------------------


def build_runs(app: cdk.App) -> None:
    """Nightly: a nightly schedule with its own bucket, kept 90 days, read by a role, paging on
    failure. Frequent: one every five minutes, two levels of long ids deep, into a shared
    bucket, tagged."""
    nightly = cdk.Stack(app, "Nightly")
    schedule = DatasetExportSchedule(
        nightly,
        "Interactions",
        dataset_arn=DATASET,
        schedule=NIGHTLY,
        ingestion_mode=IngestionMode.ALL,
        keep=Duration.days(90),
    )
    schedule.grant_read(iam.Role(nightly, "Analytics", assumed_by=iam.AccountRootPrincipal()))
    schedule.on_failure("Page", target=events_targets.SnsTopic(sns.Topic(nightly, "Pager")))
    schedule.on_success("Loaded")

    frequent = cdk.Stack(app, "Frequent")
    DatasetExportSchedule(
        Construct(frequent, LONG_ID),
        LONG_ID,
        dataset_arn=DATASET,
        schedule=FREQUENT,
        bucket=s3.Bucket(frequent, "Lake"),
        output_prefix="personalize/interactions",
        tags={"team": "recs"},
    )


@pytest.fixture(scope="module")
def runs_assembly(tmp_path_factory: pytest.TempPathFactory) -> Path:
    app = new_app(tmp_path_factory.mktemp("runs") / "cdk.out")
    build_runs(app)
    return Path(app.synth().directory)


# --- running schedules -------------------------------------------------------------------------


@dataclass
class Runs:
    """One deployed stack with one schedule, fired through the harness."""

    deployment: HarnessDeployment
    standin: PersonalizeStandIn
    scheduler: Scheduler
    schedule: str
    first_event: int

    @property
    def clock(self) -> Any:
        return self.deployment.harness.clock

    def now(self) -> datetime.datetime:
        return datetime.datetime.fromtimestamp(self.clock.time(), datetime.UTC)

    def next_times(self, count: int) -> list[datetime.datetime]:
        """The schedule's own next scheduled times, from its deployed expression."""
        return self.scheduler.occurrences(self.schedule, self.now(), count)

    def run(self, scheduled: datetime.datetime) -> dict[str, Any]:
        return self.scheduler.run(self.schedule, scheduled)

    def fire(self, scheduled: datetime.datetime, **kwargs: Any) -> Invocation:
        return self.scheduler.fire(self.schedule, scheduled, **kwargs)

    def logical_id(self, prefix: str) -> str:
        (found,) = [key for key in self.deployment.template["Resources"] if key.startswith(prefix)]
        return str(found)

    def latest(self) -> str:
        name = self.deployment.physical_ids[self.logical_id_of_type("AWS::SSM::Parameter")]
        ssm = boto3.client(
            "ssm", region_name=REGION, aws_access_key_id="test", aws_secret_access_key="test"
        )
        return str(ssm.get_parameter(Name=name)["Parameter"]["Value"])

    def logical_id_of_type(self, kind: str) -> str:
        resources = self.deployment.template["Resources"]
        (found,) = [key for key, resource in resources.items() if resource["Type"] == kind]
        return str(found)

    def base_path(self) -> str:
        """s3://bucket/prefix/ as the schedule's Input gives it."""
        target = self.scheduler.properties(self.schedule)["Target"]
        return str(json.loads(target["Input"])["Create"]["JobOutput"]["S3DataDestination"]["Path"])

    def name_prefix(self) -> str:
        target = self.scheduler.properties(self.schedule)["Target"]
        return str(json.loads(target["Input"])["Run"]["NamePrefix"])

    def jobs(self) -> dict[str, str]:
        """Job name -> output path, for every job the stand-in holds."""
        return {
            job.job_name: str(job.job_output["s3DataDestination"]["path"])
            for job in self.standin.jobs.values()
        }

    def events(self) -> list[dict[str, Any]]:
        """The completion events published since the stack was deployed (detail parsed)."""
        captured = self.deployment.harness.step_functions.events[self.first_event :]
        return [
            {**event, "Detail": json.loads(event["Detail"])}
            for event in captured
            if event.get("Source") == SOURCE
        ]

    def creates(self) -> list[str]:
        return [answer for answer in self.standin.answers() if answer.startswith(CREATE)]

    def states_entered(self, invocation: Invocation | str) -> list[str]:
        return [
            event["stateEnteredEventDetails"]["name"]
            for event in self.scheduler.history(invocation)
            if "stateEnteredEventDetails" in event
        ]


def deployed(assembly: Path, stack: str, standin: PersonalizeStandIn) -> Runs:
    deployment = HarnessDeployment(assembly, stack, standin=standin)
    events_before = len(deployment.harness.step_functions.events)
    result = deployment.create_stack()
    assert result.ok, result.reason()
    runs = Scheduler(deployment)
    (schedule,) = runs.schedules()
    return Runs(deployment, standin, runs, schedule, events_before)


@pytest.fixture
def nightly(runs_assembly: Path, standin: PersonalizeStandIn) -> Runs:
    return deployed(runs_assembly, "Nightly", standin)


@pytest.fixture
def frequent(runs_assembly: Path, standin: PersonalizeStandIn) -> Runs:
    return deployed(runs_assembly, "Frequent", standin)


def stamp(moment: datetime.datetime) -> tuple[str, str]:
    """(job name suffix, run folder) of a scheduled time, as the README documents them."""
    return moment.strftime("-%Y%m%d-%H%M"), moment.strftime("%Y/%m/%d/%H%M/")


def wait_for(condition: Any, what: str) -> None:
    """Real time, while the virtual clock runs on."""
    deadline = time.monotonic() + 30
    while not condition():
        assert time.monotonic() < deadline, f"never: {what}"
        time.sleep(0.005)


# --- three nights --------------------------------------------------------------------------------


def test_three_nightly_runs_make_three_jobs_in_three_dated_folders_a_reader_reads(
    nightly: Runs,
) -> None:
    started_real = time.monotonic()
    nights = nightly.next_times(3)
    assert [night.hour for night in nights] == [2, 2, 2]
    assert {(b - a).days for a, b in itertools.pairwise(nights)} == {1}

    outcomes = [nightly.run(night) for night in nights]

    assert [outcome["status"] for outcome in outcomes] == ["SUCCEEDED"] * 3
    base, prefix = nightly.base_path(), nightly.name_prefix()
    assert base.endswith("/Nightly/Interactions/")
    expected = {prefix + stamp(night)[0]: base + stamp(night)[1] for night in nights}
    assert nightly.jobs() == expected
    assert all(job.status == ACTIVE for job in nightly.standin.jobs.values())
    assert {job.ingestion_mode for job in nightly.standin.jobs.values()} == {"ALL"}
    assert nightly.latest() == base + stamp(nights[2])[1]
    details = [event["Detail"] for event in nightly.events()]
    assert [(d["status"], d["outputPath"], d["scheduledTime"]) for d in details] == [
        (ACTIVE, base + stamp(night)[1], night.strftime("%Y-%m-%dT%H:%M:%SZ")) for night in nights
    ]
    assert {event["DetailType"] for event in nightly.events()} == {DETAIL_TYPE}
    # Two days of nightly runs and their polls pass in virtual time.
    assert nightly.now() > nights[2] == nights[0] + datetime.timedelta(days=2)
    assert time.monotonic() - started_real < 30
    assert_reads_every_run(nightly)


def assert_reads_every_run(nightly: Runs) -> None:
    """grant_read: every run's objects, the listing of its folders, the latest parameter."""
    statements = reader_statements(nightly.deployment, "Analytics")
    bucket, prefix = nightly.base_path().removeprefix("s3://").split("/", 1)
    for path in nightly.jobs().values():
        key = path.removeprefix(f"s3://{bucket}/") + "part-00000.csv"
        assert allowed(statements, "s3:GetObject", f"arn:aws:s3:::{bucket}/{key}")
        listed = [s for s in statements if "s3:ListBucket" in as_list(s["Action"])]
        (patterns,) = [s["Condition"]["StringLike"]["s3:prefix"] for s in listed]
        assert any(fnmatch.fnmatchcase(key, pattern) for pattern in as_list(patterns))
    assert not allowed(statements, "s3:GetObject", f"arn:aws:s3:::{bucket}/elsewhere/x.csv")
    latest = nightly.logical_id_of_type("AWS::SSM::Parameter")
    template_statements = nightly.deployment.template["Resources"][
        nightly.logical_id("AnalyticsDefaultPolicy")
    ]["Properties"]["PolicyDocument"]["Statement"]
    (parameter,) = [s for s in template_statements if "ssm:GetParameter" in as_list(s["Action"])]
    assert parameter["Resource"]["Fn::Sub"][1] == {"Name": {"Ref": latest}}
    assert "ssm:DescribeParameters" not in as_list(parameter["Action"])
    assert prefix == "Nightly/Interactions/"


def reader_statements(deployment: HarnessDeployment, role_prefix: str) -> list[dict[str, Any]]:
    resources = deployment.template["Resources"]
    (policy,) = [key for key in resources if key.startswith(f"{role_prefix}DefaultPolicy")]
    document = resources[policy]["Properties"]["PolicyDocument"]
    statements = [dict(statement) for statement in document["Statement"]]
    return [
        {**s, "Resource": deployment.resolve(s["Resource"])}
        for s in statements
        if not any(a.startswith("ssm:") for a in as_list(s["Action"]))
    ]


def allowed(statements: list[dict[str, Any]], action: str, arn: str) -> bool:
    return any(
        action in as_list(statement["Action"])
        and any(fnmatch.fnmatchcase(arn, pattern) for pattern in as_list(statement["Resource"]))
        for statement in statements
        if statement["Effect"] == "Allow"
    )


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def test_deleting_the_stack_leaves_every_job_and_exported_object(nightly: Runs) -> None:
    (night,) = nightly.next_times(1)
    assert nightly.run(night)["status"] == "SUCCEEDED"
    jobs_before = dict(nightly.standin.jobs)

    deleted = nightly.deployment.delete_stack()

    assert deleted.ok
    assert nightly.standin.jobs == jobs_before
    resources = nightly.deployment.template["Resources"]
    (bucket,) = [
        r
        for k, r in resources.items()
        if k.startswith("InteractionsBucket") and r["Type"] == "AWS::S3::Bucket"
    ]
    assert (bucket["DeletionPolicy"], bucket["UpdateReplacePolicy"]) == ("Retain", "Retain")
    # Nothing of the schedule runs on delete: no custom resource, no function of its own.
    assert not [r for r in resources.values() if r["Type"].startswith("Custom::")]
    (rule,) = bucket["Properties"]["LifecycleConfiguration"]["Rules"]
    assert rule["Prefix"] == "Nightly/Interactions/"


# --- one scheduled time, one job ---------------------------------------------------------------


def test_a_retried_invocation_of_one_scheduled_time_makes_one_job(nightly: Runs) -> None:
    (night,) = nightly.next_times(1)

    first = nightly.fire(night, execution_id="d32c5kddcf5bb8c3")
    retried = nightly.fire(night, execution_id="d32c5kddcf5bb8c3", attempt=2)
    outcomes = [nightly.scheduler.wait(first), nightly.scheduler.wait(retried)]

    assert [outcome["status"] for outcome in outcomes] == ["SUCCEEDED", "SUCCEEDED"]
    assert first.execution_arn != retried.execution_arn  # Scheduler names no execution
    (name,) = nightly.jobs()
    assert name == nightly.name_prefix() + stamp(night)[0]
    assert sorted(nightly.creates()) == [CREATE, f"{CREATE}:ResourceAlreadyExistsException"]
    watched_twice = [nightly.states_entered(first), nightly.states_entered(retried)]
    assert sum("AlreadyStarted" in states for states in watched_twice) == 1
    # Both watch the one job to its end: its event may come twice (same job ARN).
    assert {event["Detail"]["jobName"] for event in nightly.events()} == {name}
    assert nightly.latest() == nightly.base_path() + stamp(night)[1]


def test_a_run_started_by_hand_with_a_time_of_its_own_gets_its_own_folder(nightly: Runs) -> None:
    target = nightly.scheduler.properties(nightly.schedule)["Target"]
    moment = nightly.now().replace(second=0, microsecond=0) + datetime.timedelta(minutes=90)
    text = target["Input"].replace("<aws.scheduler.scheduled-time>", f"{moment:%Y-%m-%dT%H:%M}:00Z")
    step_functions = nightly.deployment.harness.step_functions

    started = step_functions.call(
        "StartExecution", {"stateMachineArn": target["Arn"], "input": text}
    )

    assert nightly.scheduler.wait(str(started["executionArn"]))["status"] == "SUCCEEDED"
    assert list(nightly.jobs().values()) == [nightly.base_path() + stamp(moment)[1]]


def test_a_run_with_a_malformed_scheduled_time_fails_before_any_job(nightly: Runs) -> None:
    target = nightly.scheduler.properties(nightly.schedule)["Target"]
    text = target["Input"].replace("<aws.scheduler.scheduled-time>", "29/11/2026 02:00")
    step_functions = nightly.deployment.harness.step_functions

    started = step_functions.call(
        "StartExecution", {"stateMachineArn": target["Arn"], "input": text}
    )

    outcome = nightly.scheduler.wait(str(started["executionArn"]))
    assert (outcome["status"], outcome.get("error")) == ("FAILED", "ScheduledTimeInvalid")
    assert nightly.standin.calls == []


def test_a_create_without_a_run_uses_the_job_name_it_is_given(nightly: Runs) -> None:
    """The poller's Create contract for other callers: Create.JobName and Job as given."""
    target = nightly.scheduler.properties(nightly.schedule)["Target"]
    given = json.loads(target["Input"])
    del given["Run"]
    given["Event"]["ScheduledTime"] = ""
    path = given["Create"]["JobOutput"]["S3DataDestination"]["Path"] + "by-hand/"
    given["Create"]["JobName"] = "by-hand-export"
    given["Create"]["JobOutput"]["S3DataDestination"]["Path"] = path
    arn = nightly.standin.job_arn("by-hand-export")
    given["Job"] = {"JobArn": arn, "JobName": "by-hand-export", "OutputPath": path}
    given["Job"] |= {"DatasetArn": DATASET, "IngestionMode": "ALL"}
    step_functions = nightly.deployment.harness.step_functions

    started = step_functions.call(
        "StartExecution", {"stateMachineArn": target["Arn"], "input": json.dumps(given)}
    )

    assert nightly.scheduler.wait(str(started["executionArn"]))["status"] == "SUCCEEDED"
    assert nightly.jobs() == {"by-hand-export": path}


# --- failures ----------------------------------------------------------------------------------


def test_a_failed_run_sends_the_failure_event_keeps_latest_and_the_next_run_succeeds(
    nightly: Runs,
) -> None:
    first, failing, third = nightly.next_times(3)
    base = nightly.base_path()
    assert nightly.run(first)["status"] == "SUCCEEDED"
    reason = "Failed to create a dataset export job for INTERACTIONS dataset. Internal error."
    nightly.standin.fail_next_job(reason)

    assert nightly.run(failing)["status"] == "SUCCEEDED"  # the run reported its failed job

    assert nightly.latest() == base + stamp(first)[1]
    failure = nightly.events()[1]["Detail"]
    assert (failure["status"], failure["failureReason"]) == (FAILED, reason)
    assert failure["outputPath"] == base + stamp(failing)[1]
    assert failure["scheduledTime"] == failing.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert nightly.run(third)["status"] == "SUCCEEDED"
    assert nightly.latest() == base + stamp(third)[1]
    matched = [nightly.deployment.rules_matching(event) for event in published(nightly)]
    page, loaded = nightly.logical_id("InteractionsPage"), nightly.logical_id("InteractionsLoaded")
    assert matched == [[loaded], [page], [loaded]]


def published(runs: Runs) -> list[dict[str, Any]]:
    """The completion events as EventBridge delivers them to rules."""
    return [event for event in runs.deployment.published() if event["source"] == SOURCE]


def test_throttling_a_busy_dataset_and_the_job_limit_are_ridden_out(nightly: Runs) -> None:
    (night,) = nightly.next_times(1)
    standin = nightly.standin
    standin.throttle_next(2, operation=CREATE)
    standin.inject_error("ResourceInUseException", count=2, operation=CREATE)
    standin.inject_error("LimitExceededException", operation=CREATE)
    standin.throttle_next(2, operation="DescribeDatasetExportJob")

    outcome = nightly.run(night)

    assert outcome["status"] == "SUCCEEDED"
    assert nightly.creates() == [
        f"{CREATE}:ThrottlingException",
        f"{CREATE}:ThrottlingException",
        f"{CREATE}:ResourceInUseException",
        f"{CREATE}:ResourceInUseException",
        f"{CREATE}:LimitExceededException",
        CREATE,
    ]
    assert [job.status for job in standin.jobs.values()] == [ACTIVE]
    assert nightly.latest() == nightly.base_path() + stamp(night)[1]
    # Five retries, one minute apart and 1.5 times longer each: over 13 minutes.
    assert nightly.now() - night >= datetime.timedelta(seconds=60 + 90 + 135 + 202 + 303)


def test_a_create_refused_past_every_retry_is_reported_and_the_next_run_runs(
    nightly: Runs,
) -> None:
    first, refused, third = nightly.next_times(3)
    assert nightly.run(first)["status"] == "SUCCEEDED"
    nightly.standin.inject_error(
        "ResourceInUseException", count=13, operation=CREATE, message="Dataset is busy"
    )

    assert nightly.run(refused)["status"] == "SUCCEEDED"

    failure = nightly.events()[1]["Detail"]
    assert failure["status"] == FAILED
    assert failure["failureReason"].startswith(
        f"Could not start export job {failure['datasetExportJobArn']}: "
    )
    assert "Personalize.ResourceInUseException" in failure["failureReason"]
    assert len(nightly.jobs()) == 1
    assert nightly.latest() == nightly.base_path() + stamp(first)[1]
    assert nightly.run(third)["status"] == "SUCCEEDED"
    assert nightly.latest() == nightly.base_path() + stamp(third)[1]
    assert len(nightly.creates()) == 1 + 13 + 1


# --- overlapping runs --------------------------------------------------------------------------


def test_a_run_still_going_when_the_next_is_due_does_not_hold_it_back(frequent: Runs) -> None:
    """Overlap, as documented: the next run starts its own job at once; the latest parameter
    moves only forward, so the older run ending later leaves the newer run in it."""
    earlier, later = frequent.next_times(2)
    frequent.standin.never_finish_next_job()
    slow = frequent.fire(earlier)
    wait_for(lambda: len(frequent.standin.jobs) == 1, "the earlier run's job")

    assert frequent.run(later)["status"] == "SUCCEEDED"
    base = frequent.base_path()
    assert frequent.latest() == base + stamp(later)[1]
    (slow_job,) = [job for job in frequent.standin.jobs.values() if job.status != ACTIVE]
    slow_job.final_status = ACTIVE  # the earlier export ends after the later one

    assert frequent.scheduler.wait(slow)["status"] == "SUCCEEDED"
    assert frequent.latest() == base + stamp(later)[1]
    assert "NewerRunRecorded" in frequent.states_entered(slow)
    assert [event["Detail"]["outputPath"] for event in frequent.events()] == [
        base + stamp(later)[1],
        base + stamp(earlier)[1],
    ]
    assert {job.status for job in frequent.standin.jobs.values()} == {ACTIVE}


def test_overlapping_runs_wait_in_their_retries_while_the_job_limit_is_reached(
    frequent: Runs,
) -> None:
    earlier, later = frequent.next_times(2)
    standin = frequent.standin
    standin.max_jobs_in_progress = 1
    standin.never_finish_next_job()
    slow = frequent.fire(earlier)
    wait_for(lambda: len(standin.jobs) == 1, "the earlier run's job")

    with frequent.clock.actor():  # time stands still until the earlier job is let go
        waiting = frequent.fire(later)
        wait_for(lambda: frequent.creates()[-1:] == [f"{CREATE}:LimitExceededException"], "refused")
        (slow_job,) = standin.jobs.values()
        slow_job.final_status = ACTIVE

    outcomes = [frequent.scheduler.wait(slow), frequent.scheduler.wait(waiting)]

    assert [outcome["status"] for outcome in outcomes] == ["SUCCEEDED", "SUCCEEDED"]
    assert frequent.creates()[0] == CREATE and frequent.creates()[-1] == CREATE
    assert f"{CREATE}:LimitExceededException" in frequent.creates()
    assert sorted(frequent.jobs().values()) == [
        frequent.base_path() + stamp(earlier)[1],
        frequent.base_path() + stamp(later)[1],
    ]
    assert standin.most_jobs_in_progress == 1
    assert frequent.latest() == frequent.base_path() + stamp(later)[1]


# --- names -------------------------------------------------------------------------------------


def test_job_names_stay_valid_and_short_however_long_the_construct_path(frequent: Runs) -> None:
    (hour,) = frequent.next_times(1)

    assert frequent.run(hour)["status"] == "SUCCEEDED"

    (name,) = frequent.jobs()
    assert len(name) <= JOB_NAME_MAX_LENGTH
    assert re.fullmatch(JOB_NAME_PATTERN, name)
    assert name.endswith(stamp(hour)[0]) and "RecommendationsTeam" in name
    assert [job.tags for job in frequent.standin.jobs.values()] == [
        [{"tagKey": "team", "tagValue": "recs"}]
    ]
    assert frequent.jobs()[name].startswith("s3://") and frequent.jobs()[name].endswith(
        "/personalize/interactions/" + stamp(hour)[1]
    )


def test_name_prefixes_differ_for_paths_that_end_alike_and_for_stack_names() -> None:
    prefixes = []
    for stack_name in ("shop-prod", "shop-staging"):  # one app deployed twice in an account
        stack = cdk.Stack(new_app(), "Shop", stack_name=stack_name)
        for parent in ("A" * 80, "B" * 80):
            schedule = DatasetExportSchedule(
                Construct(stack, parent), LONG_ID, dataset_arn=DATASET, schedule=NIGHTLY
            )
            prefixes.append(run_name_prefix(schedule))

    assert len(set(prefixes)) == 4
    assert {len(prefix) for prefix in prefixes} == {JOB_NAME_MAX_LENGTH - len("-YYYYMMDD-HHMM")}
    assert all(re.fullmatch(JOB_NAME_PATTERN, prefix) for prefix in prefixes)


# --- many schedules ----------------------------------------------------------------------------


def many_schedules(count: int) -> Template:
    app = new_app()
    stack = cdk.Stack(app, "Many")
    lake = s3.Bucket(stack, "Lake")
    for index in range(count):
        DatasetExportSchedule(
            stack,
            f"Export{index:02d}",
            dataset_arn=DATASET,
            schedule=NIGHTLY,
            bucket=lake,
            output_prefix=f"runs/{index:02d}",
        )
    return dict(app.synth().get_stack_by_name("Many").template)


def counts(template: Template) -> dict[str, int]:
    found: dict[str, int] = {}
    for resource in template["Resources"].values():
        found[resource["Type"]] = found.get(resource["Type"], 0) + 1
    return found


def test_ten_schedules_need_no_more_functions_or_state_machines_than_one() -> None:
    one, ten = counts(many_schedules(1)), counts(many_schedules(10))

    for kind in ("AWS::Lambda::Function", "AWS::StepFunctions::StateMachine", "AWS::IAM::Role"):
        assert ten[kind] == one[kind], kind
    assert (one["AWS::StepFunctions::StateMachine"], one["AWS::Lambda::Function"]) == (1, 1)
    assert ten["AWS::Scheduler::Schedule"] == 10


def test_ten_schedules_in_one_stack_each_run_through_the_one_poller(
    tmp_path: Path, standin: PersonalizeStandIn
) -> None:
    app = new_app(tmp_path / "cdk.out")
    stack = cdk.Stack(app, "Many")
    lake = s3.Bucket(stack, "Lake")
    for index in range(10):
        DatasetExportSchedule(
            stack,
            f"Export{index:02d}",
            dataset_arn=DATASET.replace("INTERACTIONS", f"D{index}"),
            schedule=NIGHTLY,
            bucket=lake,
            output_prefix=f"runs/{index:02d}",
        )
    deployment = HarnessDeployment(Path(app.synth().directory), "Many", standin=standin)
    assert deployment.create_stack().ok
    runs = Scheduler(deployment)
    now = datetime.datetime.fromtimestamp(deployment.harness.clock.time(), datetime.UTC)

    schedules = runs.schedules()
    first, last = schedules[0], schedules[-1]

    invocations = [runs.fire(key, runs.occurrences(key, now, 1)[0]) for key in (first, last)]

    assert {runs.wait(invocation)["status"] for invocation in invocations} == {"SUCCEEDED"}
    machines = {runs.properties(key)["Target"]["Arn"] for key in schedules}
    assert len(schedules) == 10 and len(machines) == 1
    paths = sorted(
        str(job.job_output["s3DataDestination"]["path"]) for job in standin.jobs.values()
    )
    assert [path.rsplit("/runs/", 1)[1][:3] for path in paths] == ["00/", "09/"]
    datasets = sorted(job.dataset_arn.rsplit("/", 1)[1] for job in standin.jobs.values())
    assert datasets == ["D0", "D9"]


# --- settings ----------------------------------------------------------------------------------


def test_keep_expires_the_runs_in_a_bucket_of_the_app_and_warns_for_an_imported_one() -> None:
    app = new_app()
    lake = cdk.Stack(app, "Lake")
    shared = s3.Bucket(lake, "Shared")
    stack = cdk.Stack(app, "Schedules")
    week = Duration.days(7)
    DatasetExportSchedule(stack, "Own", dataset_arn=DATASET, schedule=NIGHTLY, keep=week)
    DatasetExportSchedule(
        stack,
        "Given",
        dataset_arn=DATASET,
        schedule=NIGHTLY,
        bucket=shared,
        output_prefix="a/b",
        keep=Duration.days(30),
    )
    DatasetExportSchedule(
        stack,
        "Imported",
        dataset_arn=DATASET,
        schedule=NIGHTLY,
        bucket=s3.Bucket.from_bucket_name(stack, "Bucket", "shop-exports"),
        output_prefix="runs",
        keep=week,
    )
    DatasetExportSchedule(stack, "Forever", dataset_arn=DATASET, schedule=NIGHTLY)

    assembly = app.synth()

    rules = lifecycle_rules(assembly.get_stack_by_name("Schedules").template)
    assert rules == {
        "OwnBucket": [{"Prefix": "Schedules/Own/", "ExpirationInDays": 7, "NoncurrentDays": 1}],
        "ForeverBucket": [],
    }
    assert lifecycle_rules(assembly.get_stack_by_name("Lake").template) == {
        "Shared": [{"Prefix": "a/b/", "ExpirationInDays": 30, "NoncurrentDays": 1}]
    }
    Annotations.from_stack(stack).has_warning(
        "/Schedules/Imported",
        Match.string_like_regexp("lifecycle rule expiring the objects under 'runs/'.* 7 days"),
    )
    assert LIFECYCLE_RULE_NOT_ADDED == "personalize-export:LifecycleRuleNotAdded"


def lifecycle_rules(template: Template) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for key, resource in template["Resources"].items():
        if resource["Type"] != "AWS::S3::Bucket" or "AccessLogs" in key:
            continue
        rules = resource["Properties"].get("LifecycleConfiguration", {}).get("Rules", [])
        found[re.sub(r"[0-9A-F]{8}$", "", key)] = [
            {
                "Prefix": rule["Prefix"],
                "ExpirationInDays": rule["ExpirationInDays"],
                "NoncurrentDays": rule["NoncurrentVersionExpiration"]["NoncurrentDays"],
            }
            for rule in rules
        ]
    return found


def test_enabled_false_deploys_the_schedule_disabled(tmp_path: Path) -> None:
    app = new_app(tmp_path / "cdk.out")
    stack = cdk.Stack(app, "Paused")
    DatasetExportSchedule(stack, "Export", dataset_arn=DATASET, schedule=NIGHTLY, enabled=False)
    deployment = HarnessDeployment(Path(app.synth().directory), "Paused")
    assert deployment.create_stack().ok
    runs = Scheduler(deployment)
    (schedule,) = runs.schedules()

    assert runs.properties(schedule)["State"] == "DISABLED"
    with pytest.raises(ScheduleDisabledError):
        runs.fire(schedule, datetime.datetime(2027, 1, 1, 2, tzinfo=datetime.UTC))


def test_the_schedule_input_is_what_the_poller_reads(runs_assembly: Path) -> None:
    template = json.loads((runs_assembly / "Nightly.template.json").read_text())
    resources = template["Resources"]
    (schedule,) = [r for r in resources.values() if r["Type"] == "AWS::Scheduler::Schedule"]
    target = schedule["Properties"]["Target"]
    text = "".join(
        part if isinstance(part, str) else "X" for part in target["Input"]["Fn::Join"][1]
    )
    shown = json.loads(text)
    assert set(shown) == {"Create", "Run", "Event", "Polls", "Handle", "Latest", "TimeoutSeconds"}
    assert shown["Event"]["ScheduledTime"] == "<aws.scheduler.scheduled-time>"
    assert shown["Handle"] == ""
    assert "JobName" not in shown["Create"] and "Tags" not in shown["Create"]
    assert schedule["Properties"]["ScheduleExpression"] == "cron(0 2 * * ? *)"
    assert schedule["Properties"]["FlexibleTimeWindow"] == {"Mode": "OFF"}
    machine = target["Arn"]["Ref"]
    assert resources[machine]["Type"] == "AWS::StepFunctions::StateMachine"


def test_the_harness_reads_role_arn_bindings_as_step_functions_does() -> None:
    definition = json.dumps(
        {
            "StartAt": "Create",
            "States": {
                "Create": {
                    "Type": "Task",
                    "Resource": "arn:aws:states:::aws-sdk:personalize:createDatasetExportJob",
                    "Parameters": {"RoleArn.$": "$.Role", "JobName.$": "$.Name"},
                    "End": True,
                }
            },
        }
    )
    read = json.loads(moto_readable(definition))["States"]["Create"]["Parameters"]
    assert read == {"roleArn.$": "$.Role", "JobName.$": "$.Name"}


def test_the_harness_keeps_summer_time_as_scheduler_does() -> None:
    """A local time the clocks skip never runs; one they repeat runs once (Scheduler's docs)."""
    paris = ZoneInfo("Europe/Paris")
    spring = datetime.datetime(2026, 3, 28, 12, tzinfo=datetime.UTC)
    autumn = datetime.datetime(2026, 10, 24, 12, tzinfo=datetime.UTC)

    skipped = list(itertools.islice(scheduled_times("cron(30 2 * * ? *)", paris, spring), 2))
    repeated = list(itertools.islice(scheduled_times("cron(30 2 * * ? *)", paris, autumn), 2))

    assert [f"{t:%m-%d %H:%M}" for t in skipped] == ["03-30 00:30", "03-31 00:30"]
    assert [f"{t:%m-%d %H:%M}" for t in repeated] == ["10-25 00:30", "10-26 01:30"]


# --- refused at synth --------------------------------------------------------------------------


def misconfigured(build: Any) -> str:
    app = new_app()
    stack = cdk.Stack(app, "Refused")
    with pytest.raises(ValueError) as raised:
        build(stack)
    return str(raised.value)


@pytest.mark.parametrize(
    ("expression", "rule"),
    [
        ("every day", "is not a schedule expression"),
        ("cron(0 2 * * * *)", "exactly one of the two must be '?'"),
        ("cron(0 25 * * ? *)", "hours '25', where '25' is not 0-23"),
        ("cron(0 2 * *)", "has 4 fields where cron has 6"),
        ("rate(0 minutes)", "the rate must be a positive whole number"),
        ("rate(2 day)", "the unit is singular for 1 and plural otherwise"),
        ("at(2026-02-30T02:00:00)", "which is no date and time"),
    ],
)
def test_a_schedule_that_is_not_one_is_refused_naming_setting_and_rule(
    expression: str, rule: str
) -> None:
    message = misconfigured(
        lambda stack: DatasetExportSchedule(
            stack,
            "Nightly",
            dataset_arn=DATASET,
            schedule=scheduler.ScheduleExpression.expression(expression),
        )
    )
    assert message.startswith("DatasetExportSchedule at 'Refused/Nightly' is misconfigured:")
    assert f"schedule {expression!r}" in message and rule in message
    assert "EventBridge Scheduler takes rate(" in message


@pytest.mark.parametrize(
    ("keep", "rule"),
    [
        (Duration.hours(12), "keep 12 hours is under a day"),
        (Duration.hours(36), "keep 1 day 12 hours is not a whole number of days"),
    ],
)
def test_keep_under_a_day_or_in_part_days_is_refused(keep: Duration, rule: str) -> None:
    message = misconfigured(
        lambda stack: DatasetExportSchedule(
            stack, "Nightly", dataset_arn=DATASET, schedule=NIGHTLY, keep=keep
        )
    )
    assert rule in message
    assert "S3 lifecycle rules expire objects after a whole number of days, at least 1" in message


def test_a_prefix_two_schedules_share_is_refused() -> None:
    def build(stack: cdk.Stack) -> None:
        lake = s3.Bucket(stack, "Lake")
        DatasetExportSchedule(
            stack, "First", dataset_arn=DATASET, schedule=NIGHTLY, bucket=lake, output_prefix="runs"
        )
        DatasetExportSchedule(
            stack,
            "Second",
            dataset_arn=DATASET,
            schedule=NIGHTLY,
            bucket=lake,
            output_prefix="runs/",
        )

    message = misconfigured(build)
    assert message.startswith("DatasetExportSchedule at 'Refused/Second'")
    assert "output_prefix 'runs/' in bucket Refused/Lake is already the destination of " in message
    assert "Refused/First; two exports must not write to the same bucket and prefix" in message


@pytest.mark.parametrize("schedule_first", [True, False])
def test_a_prefix_a_schedule_and_an_export_share_is_refused(schedule_first: bool) -> None:
    def build(stack: cdk.Stack) -> None:
        lake = s3.Bucket.from_bucket_name(stack, "Lake", "shop-lake")

        def schedule() -> None:
            DatasetExportSchedule(
                stack,
                "Nightly",
                dataset_arn=DATASET,
                schedule=NIGHTLY,
                bucket=lake,
                output_prefix="exports",
            )

        def export() -> None:
            DatasetExportJob(
                stack, "Once", dataset_arn=DATASET, bucket=lake, output_prefix="exports/once"
            )

        for step in (schedule, export) if schedule_first else (export, schedule):
            step()

    message = misconfigured(build)
    second = "DatasetExportJob at 'Refused/Once'" if schedule_first else "DatasetExportSchedule"
    assert message.startswith(second)
    assert "in bucket shop-lake overlaps" in message
    assert "one export's files would be read as part of the other's" in message


def test_every_problem_comes_in_one_error_before_any_resource() -> None:
    app = new_app()
    stack = cdk.Stack(app, "Refused")
    lake = s3.Bucket.from_bucket_name(stack, "Lake", "shop-lake")
    with pytest.raises(ValueError) as raised:
        DatasetExportSchedule(
            stack,
            "Nightly",
            dataset_arn="arn:aws:personalize:us-east-1:123456789012:schema/x",
            schedule=scheduler.ScheduleExpression.expression("daily"),
            ingestion_mode="all",
            bucket=lake,
            output_prefix="",
            keep=Duration.hours(1),
            tags={"aws:team": "recs"},
        )
    problems = str(raised.value).splitlines()[1:]
    settings = [problem.split()[1] for problem in problems]
    assert settings == ["dataset_arn", "ingestion_mode", "schedule", "keep", "tags", "keep"]
    assert "would expire every object in bucket shop-lake" in problems[3]
    schedule = stack.node.find_child("Nightly")
    assert [child for child in schedule.node.find_all() if isinstance(child, cdk.CfnResource)] == []


def test_a_run_folder_too_long_for_the_output_path_is_refused() -> None:
    message = misconfigured(
        lambda stack: DatasetExportSchedule(
            stack,
            "Nightly",
            dataset_arn=DATASET,
            schedule=NIGHTLY,
            bucket=s3.Bucket.from_bucket_name(stack, "Lake", "shop-lake"),
            output_prefix="p" * 230,
        )
    )
    assert "makes an output path of 262 characters with bucket 'shop-lake'" in message
    assert "the path s3://bucket/prefix/YYYY/MM/DD/HHMM/ must have at most 256" in message


# --- security and the reference ----------------------------------------------------------------


def build_variations(app: cdk.App) -> None:
    """A key, tags, a custom bus and keep; a shared app bucket beside a DatasetExportJob; an
    imported bucket, disabled; a reader of two schedules."""
    stack = cdk.Stack(app, "Schedules")
    key = kms.Key(stack, "Key", enable_key_rotation=True)
    shared = s3.Bucket(stack, "Shared", enforce_ssl=True, server_access_logs_prefix="logs/")
    nightly = DatasetExportSchedule(
        stack,
        "Nightly",
        dataset_arn=DATASET,
        schedule=NIGHTLY,
        ingestion_mode=IngestionMode.ALL,
        keep=Duration.days(90),
        tags={"team": "recs"},
        encryption_key=key,
        event_bus=events.EventBus(stack, "Bus"),
    )
    frequent = DatasetExportSchedule(
        stack,
        "Hourly",
        dataset_arn=DATASET,
        schedule=scheduler.ScheduleExpression.rate(Duration.hours(1)),
        bucket=shared,
        output_prefix="runs/hourly",
        keep=Duration.days(7),
    )
    DatasetExportJob(stack, "Once", dataset_arn=DATASET, bucket=shared, output_prefix="once")
    imported = DatasetExportSchedule(
        stack,
        "IntoImported",
        dataset_arn=DATASET,
        schedule=NIGHTLY,
        bucket=s3.Bucket.from_bucket_name(stack, "Imported", "shop-exports"),
        output_prefix="runs",
        keep=Duration.days(30),
        enabled=False,
    )
    nightly.on_failure("Page")
    reader = iam.Role(stack, "Reader", assumed_by=iam.AccountRootPrincipal())
    nightly.grant_read(reader)
    frequent.grant_read(reader)
    # The user's own findings and warnings (README, Security: what it leaves to you).
    for objects in (
        "<NightlyBucketC63AB2E3.Arn>/Schedules/Nightly/*",
        "<SharedDACC02AA.Arn>/runs/hourly/*",
    ):
        cdk.Validations.of(reader).acknowledge(
            cdk.Acknowledgment(
                id=f"AwsSolutions::AwsSolutions-IAM5[Resource::{objects}]",
                reason="grant_read: every run's objects under the schedule's prefix",
            )
        )
    for warning in ("BucketPolicyNotAdded", "LifecycleRuleNotAdded"):
        cdk.Validations.of(imported).acknowledge(
            cdk.Acknowledgment(
                id=f"Annotation::personalize-export:{warning}",
                reason="the imported bucket's policy and lifecycle are managed elsewhere",
            )
        )


@dataclass(frozen=True)
class Variations:
    app: cdk.App
    assembly: Path

    def template(self) -> Template:
        return dict(json.loads((self.assembly / "Schedules.template.json").read_text()))


@pytest.fixture(scope="module")
def variations(tmp_path_factory: pytest.TempPathFactory) -> Variations:
    app = new_app(tmp_path_factory.mktemp("variations") / "cdk.out")
    cdk.Validations.of(app).add_plugins(cdk_nag.AwsSolutionsChecks(app))
    build_variations(app)
    return Variations(app, Path(app.synth().directory))  # raises on an unacknowledged error


def test_cdk_nag_finds_nothing_unacknowledged_and_every_acknowledgment_is_exact(
    variations: Variations,
) -> None:
    acknowledged = acknowledgments(variations.app)
    rules = {rule for rule, _ in acknowledged}
    assert (
        "AwsSolutions::AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:personalize:"
        "<AWS::Region>:<AWS::AccountId>:dataset-export-job/*]" in rules
    )
    for rule, reason in acknowledged:
        if rule.startswith("AwsSolutions::AwsSolutions-IAM"):
            assert "[" in rule, f"{rule} must name the exact finding"
        assert len(reason) >= 40, f"{rule} needs a reason"


def test_cfn_lint_finds_nothing_in_the_schedules(variations: Variations) -> None:
    result = subprocess.run(
        [
            _cfn_lint(),
            "--format",
            "parseable",
            "--ignore-checks",
            *CFN_LINT_IGNORED,
            "--",
            str(variations.assembly / "Schedules.template.json"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def test_every_statement_matches_the_reference(variations: Variations) -> None:
    template = variations.template()
    report = check_template(template, {"Schedules": template})
    assert report.statements > 40
    assert not report.findings, "\n".join(str(finding) for finding in report.findings)


def test_the_poller_may_pass_each_schedule_s_role_and_record_only_its_parameters(
    variations: Variations,
) -> None:
    resources = variations.template()["Resources"]
    (policy,) = [
        resource
        for key, resource in resources.items()
        if key.startswith("PersonalizeExportPollerStateMachineRoleDefaultPolicy")
    ]
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    (passing,) = [s for s in statements if s["Action"] == "iam:PassRole"]
    assert passing["Condition"] == {
        "StringEquals": {"iam:PassedToService": "personalize.amazonaws.com"}
    }
    passed = {json.dumps(resource) for resource in as_list(passing["Resource"])}
    schedules = [r for r in resources.values() if r["Type"] == "AWS::Scheduler::Schedule"]
    given = {
        json.dumps(part)
        for schedule in schedules
        for part in schedule["Properties"]["Target"]["Input"]["Fn::Join"][1]
        if isinstance(part, dict) and part.get("Fn::GetAtt", [""])[0] in roles(resources)
    }
    assert passed == given and len(given) == 3
    parameters = {key for key, r in resources.items() if r["Type"] == "AWS::SSM::Parameter"}
    assert len(parameters) == 3
    for action in ("ssm:PutParameter", "ssm:GetParameter"):
        (statement,) = [s for s in statements if s["Action"] == action]
        named = {r["Fn::Sub"][1]["Name"]["Ref"] for r in as_list(statement["Resource"])}
        assert named == parameters


def roles(resources: dict[str, Any]) -> set[str]:
    return {key for key, r in resources.items() if r["Type"] == "AWS::IAM::Role"}


# --- the demo ----------------------------------------------------------------------------------


def test_the_demo_adds_a_schedule_only_when_asked(tmp_path: Path) -> None:
    default = new_app(tmp_path / "default")
    demo_app.build(default)
    asked = new_app(tmp_path / "asked", export_schedule="cron(0 2 * * ? *)")
    demo_app.build(asked)

    plain = default.synth().get_stack_by_name("PersonalizeExportDemo").template
    scheduled = asked.synth().get_stack_by_name("PersonalizeExportDemo").template

    assert counts(plain).get("AWS::Scheduler::Schedule") is None
    (schedule,) = [
        r for r in scheduled["Resources"].values() if r["Type"] == "AWS::Scheduler::Schedule"
    ]
    assert schedule["Properties"]["ScheduleExpression"] == "cron(0 2 * * ? *)"
    assert set(plain["Resources"]) < set(scheduled["Resources"])
    refused = new_app(tmp_path / "refused", export_schedule="nightly")
    with pytest.raises(ValueError, match="schedule 'nightly' is not a schedule expression"):
        demo_app.build(refused)


# --- run_input: a run's input, for a run started by hand --------------------------------------


def hand_run_schedule(tmp_path: Path) -> tuple[cdk.Stack, DatasetExportSchedule]:
    stack = cdk.Stack(new_app(tmp_path / "cdk.out"), "ByHand")
    schedule = DatasetExportSchedule(
        stack, "Nightly", dataset_arn=DATASET, schedule=NIGHTLY, ingestion_mode=IngestionMode.ALL
    )
    return stack, schedule


def test_run_input_is_the_input_scheduler_starts_the_poller_with(tmp_path: Path) -> None:
    stack, schedule = hand_run_schedule(tmp_path)
    resources = cdk.assertions.Template.from_stack(stack).to_json()["Resources"]
    (target,) = [
        resource["Properties"]["Target"]
        for resource in resources.values()
        if resource["Type"] == "AWS::Scheduler::Schedule"
    ]

    assert target["Input"] == stack.resolve(stack.to_json_string(schedule.run_input()))
    assert "<aws.scheduler.scheduled-time>" in json.dumps(target["Input"])


def test_run_input_with_a_time_is_the_same_run_at_that_time(tmp_path: Path) -> None:
    stack, schedule = hand_run_schedule(tmp_path)

    by_hand = stack.resolve(schedule.run_input("2026-01-01T00:00:00Z"))
    scheduled = stack.resolve(schedule.run_input())

    assert by_hand["Event"].pop("ScheduledTime") == "2026-01-01T00:00:00Z"
    assert scheduled["Event"].pop("ScheduledTime") == "<aws.scheduler.scheduled-time>"
    assert by_hand == scheduled


@pytest.mark.parametrize(
    "given",
    [
        "29/11/2026 02:00",
        "2026-11-29T02:00:00",
        "2026-11-29",
        "",
        "2026-13-45T25:61:61Z",
        "\u0662\u0660\u0662\u0666-11-29T02:00:00Z",
    ],
)
def test_run_input_refuses_a_time_a_run_can_t_be_named_after(tmp_path: Path, given: str) -> None:
    _stack, schedule = hand_run_schedule(tmp_path)

    with pytest.raises(ValueError) as refused:
        schedule.run_input(given)

    message = str(refused.value)
    assert "ByHand/Nightly" in message
    assert f"run_input(scheduled_time={given!r})" in message
    assert "2026-11-29T02:00:00Z" in message


def test_run_input_refuses_a_time_that_is_not_a_string(tmp_path: Path) -> None:
    _stack, schedule = hand_run_schedule(tmp_path)
    moment = datetime.datetime(2026, 11, 29, 2, tzinfo=datetime.UTC)

    with pytest.raises(
        TypeError, match=r"ByHand/Nightly.*scheduled_time.*expects str, got datetime"
    ):
        schedule.run_input(moment)  # type: ignore[arg-type]


def test_run_input_takes_a_token_time_as_given_for_the_workflow_to_check(tmp_path: Path) -> None:
    stack, schedule = hand_run_schedule(tmp_path)
    time_parameter = cdk.CfnParameter(stack, "RunTime")

    given = stack.resolve(schedule.run_input(time_parameter.value_as_string))

    assert given["Event"]["ScheduledTime"] == {"Ref": "RunTime"}
