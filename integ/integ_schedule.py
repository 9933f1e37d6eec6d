"""Integ test: a DatasetExportSchedule, one run started by hand as docs/schedules.md documents.

The run is the schedule's `run_input` for a scheduled time, started on the stack's export
poller. Asserts: the latest parameter names that run's
dated folder, and the folder holds objects. (Scheduler's own firing is not waited for: its
schedule here is yearly; the scheduled-time format it fills in is what the hand-started run
copies from docs/schedules.md.)
"""

from __future__ import annotations

import json

from aws_cdk import App, Aws, Duration, Fn, Stack
from aws_cdk import aws_scheduler as scheduler
from aws_cdk.integ_tests_alpha import ExpectedResult, IntegTest
from sample_dataset import SampleDataset, disposable_bucket, leave_nothing_behind

from personalize_export import DatasetExportSchedule, IngestionMode
from personalize_export.runtime.export_job.contract import Poll

STACK = "PersonalizeExportIntegSchedule"
OUTPUT_PREFIX = "integ/scheduled/"
# The hand-started run's scheduled time, and the folder docs/schedules.md says it gets.
SCHEDULED_TIME = "2026-01-01T00:00:00Z"
RUN_FOLDER = "2026/01/01/0000/"
RUN_WAIT = Duration.minutes(60)
RUN_POLL = Duration.minutes(1)


class ScheduleStack(Stack):
    def __init__(self, scope: App) -> None:
        super().__init__(scope, STACK, description="personalize-export integ test: a schedule")
        leave_nothing_behind(self)
        dataset = SampleDataset(self, "Sample")
        self.bucket = disposable_bucket(self, "Exports")
        self.scheduled = DatasetExportSchedule(
            self,
            "Scheduled",
            dataset_arn=dataset.dataset_arn,
            # Never due while the test runs: the run is started by hand.
            schedule=scheduler.ScheduleExpression.expression("cron(0 0 1 1 ? 2099)"),
            ingestion_mode=IngestionMode.ALL,
            bucket=self.bucket,
            output_prefix=OUTPUT_PREFIX,
        )


def run_input(schedule: DatasetExportSchedule, scheduled_time: str) -> str:
    """The schedule's run input for a run started by hand (docs/schedules.md, "by hand").

    Built at synth from the schedule's own run input, its references left as tokens: the
    assertion's parameters are JSON-encoded by integ-tests-alpha, which can escape literal text
    but not the result of CloudFormation functions run at deploy time (Fn::Split/Fn::Join over
    the input would reach StartExecution as broken JSON; the deploy harness showed it).

    Job names are unique per account and region and never freed, while the run's job is named
    after its scheduled time: the job name prefix becomes ``integ-`` and 8 characters of this
    deployment's stack id, so that a repeated integ run starts a new job.
    """
    run = schedule.run_input(scheduled_time)
    # The schedule's tags (none here) are a lazy value resolved when the template is written.
    run[Poll.CREATE].pop("Tags", None)
    unique = Fn.select(0, Fn.split("-", Fn.select(2, Fn.split("/", Aws.STACK_ID))))
    run[Poll.RUN]["NamePrefix"] = f"integ-{unique}"
    return json.dumps(run, separators=(",", ":"))


def build(app: App) -> IntegTest:
    stack = ScheduleStack(app)
    scheduled = stack.scheduled
    integ = IntegTest(app, "Schedule", test_cases=[stack], diff_assets=False)
    start = integ.assertions.aws_api_call(
        "SFN",
        "startExecution",
        {
            "stateMachineArn": scheduled.poller.state_machine_arn,
            "input": run_input(scheduled, SCHEDULED_TIME),
        },
    )
    start.provider.add_to_role_policy(
        {
            "Effect": "Allow",
            "Action": ["states:StartExecution"],
            "Resource": [scheduled.poller.state_machine_arn],
        }
    )
    latest = integ.assertions.aws_api_call(
        "SSM", "getParameter", {"Name": scheduled.latest_parameter.parameter_name}
    )
    latest.expect(
        ExpectedResult.object_like({"Parameter": {"Value": scheduled.destination + RUN_FOLDER}})
    )
    latest.wait_for_assertions(total_timeout=RUN_WAIT, interval=RUN_POLL)
    listing = integ.assertions.aws_api_call(
        "S3",
        "listObjectsV2",
        {"Bucket": stack.bucket.bucket_name, "Prefix": OUTPUT_PREFIX + RUN_FOLDER},
    )
    listing.provider.add_to_role_policy(
        {"Effect": "Allow", "Action": ["s3:ListBucket"], "Resource": [stack.bucket.bucket_arn]}
    )
    # One key of the answer, not the whole listing: a custom resource's response (its Data
    # included) must stay under 4 KB, and a run may write many files.
    listing.assert_at_path(
        "Contents.0.Key", ExpectedResult.string_like_regexp(f"^{OUTPUT_PREFIX}{RUN_FOLDER}")
    )
    start.next(latest).next(listing)
    return integ


if __name__ == "__main__":
    app = App()
    build(app)
    app.synth()
