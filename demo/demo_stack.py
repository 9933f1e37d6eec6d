"""The demo stack: export an existing dataset, or build a small one from a shipped CSV first."""

from __future__ import annotations

import json
from pathlib import Path

from aws_cdk import Acknowledgment, Duration, RemovalPolicy, Stack, Validations
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_personalize as personalize
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_deployment as s3_deployment
from aws_cdk import aws_scheduler as scheduler
from constructs import Construct

from personalize_export import DatasetExportJob, DatasetExportSchedule, IngestionMode
from personalize_export.access_logs import hardened_bucket
from personalize_export.dataset_export_job import PERSONALIZE, personalize_source_conditions
from personalize_export.table import TableOptions

SAMPLE_DATA = Path(__file__).parent / "data"
SAMPLE_KEY_PREFIX = "sample/"
SAMPLE_FILE = "interactions.csv"
# -c export_schedule=...: how long the demo keeps each scheduled run.
SCHEDULED_RUNS_KEPT_DAYS = 30
INTERACTIONS_SCHEMA = {
    "type": "record",
    "name": "Interactions",
    "namespace": "com.amazonaws.personalize.schema",
    "fields": [
        {"name": "USER_ID", "type": "string"},
        {"name": "ITEM_ID", "type": "string"},
        {"name": "TIMESTAMP", "type": "long"},
    ],
    "version": "1.0",
}
BUCKET_DEPLOYMENT = "aws-cdk-lib's BucketDeployment (demo only: it uploads the sample CSV) "
# Demo-only findings: BucketDeployment's grants (grantRead on the asset, grantReadWrite on the
# sample bucket) and its function's runtime are fixed by aws-cdk-lib.
DEMO_ACKNOWLEDGMENTS = {
    "AwsSolutions::AwsSolutions-IAM5[Action::s3:GetBucket*]": "grantRead on its source asset",
    "AwsSolutions::AwsSolutions-IAM5[Action::s3:GetObject*]": "grantRead on its source asset",
    "AwsSolutions::AwsSolutions-IAM5[Action::s3:List*]": "grantRead/grantReadWrite",
    "AwsSolutions::AwsSolutions-IAM5[Action::s3:Abort*]": "grantReadWrite on the sample bucket",
    "AwsSolutions::AwsSolutions-IAM5[Action::s3:DeleteObject*]": "grantReadWrite, sample bucket",
    "AwsSolutions::AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:s3:::"
    "cdk-hnb659fds-assets-<AWS::AccountId>-<AWS::Region>/*]": "grantRead on the bootstrap "
    "asset bucket that holds its source zip",
}


class DemoStack(Stack):
    """Exports ``dataset_arn`` if given; otherwise a demo Interactions dataset it creates, with
    a Glue table over each export of it (its schema is at hand), for Athena."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        dataset_arn: str | None = None,
        export_schedule: str | None = None,
    ) -> None:
        """export_schedule: an EventBridge Scheduler expression (e.g. cron(0 2 * * ? *)): the
        dataset is also exported on that schedule, kept 30 days. Default: no schedule."""
        super().__init__(scope, construct_id, description="Personalize dataset export demo")
        dataset = dataset_arn or self._demo_dataset()
        # Only the demo dataset's schema is known here; a dataset given by ARN gets no table.
        table = None if dataset_arn else TableOptions(schema=INTERACTIONS_SCHEMA)
        self.export = DatasetExportJob(
            self, "Export", dataset_arn=dataset, ingestion_mode=IngestionMode.ALL, table=table
        )
        self.schedule = (
            DatasetExportSchedule(
                self,
                "Scheduled",
                dataset_arn=dataset,
                schedule=scheduler.ScheduleExpression.expression(export_schedule),
                ingestion_mode=IngestionMode.ALL,
                keep=Duration.days(SCHEDULED_RUNS_KEPT_DAYS),
                table=table,
            )
            if export_schedule
            else None
        )

    def _demo_dataset(self) -> str:
        source = hardened_bucket(self, "SampleData", logs_prefix="SampleData/")
        upload = self._upload_sample(source)
        import_role = self._import_role(source)
        group = personalize.CfnDatasetGroup(self, "DatasetGroup", name=f"{self.stack_name}-group")
        schema = personalize.CfnSchema(
            self,
            "InteractionsSchema",
            name=f"{self.stack_name}-interactions",
            schema=json.dumps(INTERACTIONS_SCHEMA),
        )
        dataset = personalize.CfnDataset(
            self,
            "Interactions",
            name=f"{self.stack_name}-interactions",
            dataset_group_arn=group.attr_dataset_group_arn,
            dataset_type="Interactions",
            schema_arn=schema.attr_schema_arn,
            dataset_import_job=personalize.CfnDataset.DatasetImportJobProperty(
                job_name=f"{self.stack_name}-sample-import",
                role_arn=import_role.role_arn,
                # DataSource is untyped JSON in the CloudFormation schema: CDK would not
                # convert a DataSourceProperty to PascalCase, so give the keys as CloudFormation
                # spells them.
                data_source={
                    "DataLocation": source.s3_url_for_object(SAMPLE_KEY_PREFIX + SAMPLE_FILE)
                },
            ),
        )
        dataset.node.add_dependency(upload, import_role, source)
        return dataset.attr_dataset_arn

    def _upload_sample(self, source: s3.Bucket) -> s3_deployment.BucketDeployment:
        """Our own role and log group: no AWS managed policy on the upload function."""
        role = iam.Role(
            self,
            "UploadSampleRole",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description="Uploads the demo's sample interactions CSV",
        )
        log_group = logs.LogGroup(
            self,
            "UploadSampleLogs",
            retention=logs.RetentionDays.ONE_MONTH,
            removal_policy=RemovalPolicy.DESTROY,
        )
        log_group.grant_write(role)
        upload = s3_deployment.BucketDeployment(
            self,
            "UploadSample",
            sources=[s3_deployment.Source.asset(str(SAMPLE_DATA))],
            destination_bucket=source,
            destination_key_prefix=SAMPLE_KEY_PREFIX,
            prune=False,
            retain_on_delete=True,
            role=role,
            log_group=log_group,
        )
        self._acknowledge_upload(role, source)
        return upload

    def _acknowledge_upload(self, role: iam.Role, source: s3.Bucket) -> None:
        findings = {
            **DEMO_ACKNOWLEDGMENTS,
            "AwsSolutions::AwsSolutions-IAM5[Resource::<"
            f"{self.get_logical_id(_cfn(source))}.Arn>/*]": "grantReadWrite on the sample bucket",
        }
        validations = Validations.of(role)
        for finding, what in findings.items():
            validations.acknowledge(
                Acknowledgment(id=finding, reason=f"{BUCKET_DEPLOYMENT}{what}; grant fixed by it")
            )
        (function,) = [
            child
            for child in self.node.children
            if child.node.id.startswith("Custom::CDKBucketDeployment")
        ]
        Validations.of(function).acknowledge(
            Acknowledgment(
                id="AwsSolutions::AwsSolutions-L1",
                reason=f"{BUCKET_DEPLOYMENT}picks its function's runtime; no option changes it",
            )
        )

    def _import_role(self, source: s3.Bucket) -> iam.Role:
        """Personalize reads exactly the sample file through this role and the bucket's policy."""
        conditions = personalize_source_conditions(self)
        principal = iam.ServicePrincipal(PERSONALIZE)
        role = iam.Role(self, "ImportRole", assumed_by=principal.with_conditions(conditions))
        sample = source.arn_for_objects(SAMPLE_KEY_PREFIX + SAMPLE_FILE)
        statements = [
            iam.PolicyStatement(actions=["s3:ListBucket"], resources=[source.bucket_arn]),
            iam.PolicyStatement(actions=["s3:GetObject"], resources=[sample]),
        ]
        for statement in statements:
            role.add_to_principal_policy(statement)
            source.add_to_resource_policy(
                iam.PolicyStatement(
                    principals=[principal],
                    actions=statement.actions,
                    resources=statement.resources,
                    conditions=conditions,
                )
            )
        return role


def _cfn(bucket: s3.Bucket) -> s3.CfnBucket:
    resource = bucket.node.default_child
    assert isinstance(resource, s3.CfnBucket)
    return resource
