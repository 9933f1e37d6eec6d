"""Integ test: an export that waits past CloudFormation's hour, and one that doesn't wait at all.

- ``LongWait`` has a timeout of two hours: the WaitCondition and export poller path. Its job is
  ACTIVE once the stack is created.
- ``NoWait`` (``wait_for_completion=False``) sends its completion event to an SQS queue through
  ``on_success``: the queue receives it (polled with waitForAssertions).
"""

from __future__ import annotations

from aws_cdk import App, Duration, RemovalPolicy, Stack
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_sqs as sqs
from aws_cdk.integ_tests_alpha import ExpectedResult, IntegTest, Match
from sample_dataset import SampleDataset, disposable_bucket, leave_nothing_behind

from personalize_export import DatasetExportJob, IngestionMode
from personalize_export.completion_event import SUCCEEDED, Detail

STACK = "PersonalizeExportIntegLongWait"
# How long the queue is polled for the no-wait export's event (a small export takes minutes).
QUEUE_WAIT = Duration.minutes(30)
QUEUE_POLL = Duration.seconds(30)


class LongWaitStack(Stack):
    def __init__(self, scope: App) -> None:
        super().__init__(
            scope, STACK, description="personalize-export integ test: long and no waits"
        )
        leave_nothing_behind(self)
        dataset = SampleDataset(self, "Sample")
        self.bucket = disposable_bucket(self, "Exports")
        self.long_wait = DatasetExportJob(
            self,
            "LongWait",
            dataset_arn=dataset.dataset_arn,
            ingestion_mode=IngestionMode.ALL,
            bucket=self.bucket,
            output_prefix="integ/long-wait/",
            timeout=Duration.hours(2),
        )
        self.no_wait = DatasetExportJob(
            self,
            "NoWait",
            dataset_arn=dataset.dataset_arn,
            ingestion_mode=IngestionMode.ALL,
            bucket=self.bucket,
            output_prefix="integ/no-wait/",
            wait_for_completion=False,
        )
        self.queue = sqs.Queue(
            self, "Completions", removal_policy=RemovalPolicy.DESTROY, enforce_ssl=True
        )
        self.no_wait.on_success("ToQueue", target=targets.SqsQueue(self.queue))


def build(app: App) -> IntegTest:
    stack = LongWaitStack(app)
    integ = IntegTest(app, "LongWait", test_cases=[stack], diff_assets=False)
    integ.assertions.aws_api_call(
        "Personalize",
        "describeDatasetExportJob",
        {"datasetExportJobArn": stack.long_wait.job_arn},
    ).expect(ExpectedResult.object_like({"datasetExportJob": {"status": "ACTIVE"}}))
    received = integ.assertions.aws_api_call(
        "SQS",
        "receiveMessage",
        {"QueueUrl": stack.queue.queue_url, "WaitTimeSeconds": 20, "MaxNumberOfMessages": 1},
    )
    # The completion event, as EventBridge delivers it to SQS: the whole event in the Body.
    received.expect(
        ExpectedResult.object_like(
            {
                "Messages": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Body": Match.serialized_json(
                                    Match.object_like(
                                        {
                                            "detail": Match.object_like(
                                                {
                                                    Detail.STATUS: SUCCEEDED,
                                                    Detail.JOB_ARN: stack.no_wait.job_arn,
                                                }
                                            )
                                        }
                                    )
                                )
                            }
                        )
                    ]
                )
            }
        )
    )
    received.wait_for_assertions(total_timeout=QUEUE_WAIT, interval=QUEUE_POLL)
    return integ


if __name__ == "__main__":
    app = App()
    build(app)
    app.synth()
