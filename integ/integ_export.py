"""Integ test: one export of the demo's dataset with IngestionMode.ALL, and the files it writes.

Asserts, after the stack is created: the job is ACTIVE and writes to the path the construct
gave it; ListObjectsV2 under that prefix finds at least one object; the first object's first line
is the schema's field names. Together these settle the export's file layout (names, header row)
on a real account.
"""

from __future__ import annotations

from aws_cdk import App, Stack
from aws_cdk.integ_tests_alpha import ExpectedResult, IntegTest, Match
from sample_dataset import HEADER_PATTERN, SampleDataset, disposable_bucket, leave_nothing_behind

from personalize_export import DatasetExportJob, IngestionMode

STACK = "PersonalizeExportIntegExport"
OUTPUT_PREFIX = "integ/export/"


class ExportStack(Stack):
    def __init__(self, scope: App) -> None:
        super().__init__(scope, STACK, description="personalize-export integ test: one export")
        leave_nothing_behind(self)
        dataset = SampleDataset(self, "Sample")
        self.bucket = disposable_bucket(self, "Exports")
        self.export = DatasetExportJob(
            self,
            "Export",
            dataset_arn=dataset.dataset_arn,
            ingestion_mode=IngestionMode.ALL,
            bucket=self.bucket,
            output_prefix=OUTPUT_PREFIX,
        )


def build(app: App) -> IntegTest:
    stack = ExportStack(app)
    integ = IntegTest(app, "Export", test_cases=[stack], diff_assets=False)
    describe = integ.assertions.aws_api_call(
        "Personalize",
        "describeDatasetExportJob",
        {"datasetExportJobArn": stack.export.job_arn},
    )
    written_to = f"s3://{stack.bucket.bucket_name}/{OUTPUT_PREFIX}"
    describe.expect(
        ExpectedResult.object_like(
            {
                "datasetExportJob": {
                    "status": "ACTIVE",
                    "jobOutput": {"s3DataDestination": {"path": written_to}},
                }
            }
        )
    )
    listing = integ.assertions.aws_api_call(
        "S3", "listObjectsV2", {"Bucket": stack.bucket.bucket_name, "Prefix": OUTPUT_PREFIX}
    )
    # The call's IAM action is s3:ListBucket (integ-tests would grant "s3:ListObjectsV2").
    listing.provider.add_to_role_policy(
        {"Effect": "Allow", "Action": ["s3:ListBucket"], "Resource": [stack.bucket.bucket_arn]}
    )
    # Reading a key of the answer (below) flattens it: the assertion reads that same path.
    listing.assert_at_path("Contents.0.Key", ExpectedResult.string_like_regexp(f"^{OUTPUT_PREFIX}"))
    first = integ.assertions.aws_api_call(
        "S3",
        "getObject",
        {"Bucket": stack.bucket.bucket_name, "Key": listing.get_att_string("Contents.0.Key")},
    )
    first.provider.add_to_role_policy(
        {
            "Effect": "Allow",
            "Action": ["s3:GetObject"],
            "Resource": [stack.bucket.arn_for_objects("*")],
        }
    )
    first.expect(ExpectedResult.object_like({"Body": Match.string_like_regexp(HEADER_PATTERN)}))
    listing.next(first)
    describe.next(listing)
    return integ


if __name__ == "__main__":
    app = App()
    build(app)
    app.synth()
