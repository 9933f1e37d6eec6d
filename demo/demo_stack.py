"""The demo stack: export an existing dataset, or build a small one from a shipped CSV first."""

from __future__ import annotations

import json
from pathlib import Path

from aws_cdk import RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_personalize as personalize
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_deployment as s3_deployment
from constructs import Construct

from personalize_export import DatasetExportJob, IngestionMode

SAMPLE_DATA = Path(__file__).parent / "data"
SAMPLE_KEY_PREFIX = "sample/"
SAMPLE_FILE = "interactions.csv"
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


class DemoStack(Stack):
    """Exports ``dataset_arn`` if given; otherwise a demo Interactions dataset it creates."""

    def __init__(
        self, scope: Construct, construct_id: str, *, dataset_arn: str | None = None
    ) -> None:
        super().__init__(scope, construct_id, description="Personalize dataset export demo")
        self.export = DatasetExportJob(
            self,
            "Export",
            dataset_arn=dataset_arn or self._demo_dataset(),
            ingestion_mode=IngestionMode.ALL,
        )

    def _demo_dataset(self) -> str:
        source = s3.Bucket(
            self,
            "SampleData",
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            encryption=s3.BucketEncryption.S3_MANAGED,
            versioned=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            removal_policy=RemovalPolicy.RETAIN,
        )
        upload = s3_deployment.BucketDeployment(
            self,
            "UploadSample",
            sources=[s3_deployment.Source.asset(str(SAMPLE_DATA))],
            destination_bucket=source,
            destination_key_prefix=SAMPLE_KEY_PREFIX,
            prune=False,
            retain_on_delete=True,
        )
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

    def _import_role(self, source: s3.Bucket) -> iam.Role:
        """Personalize reads the sample through this role and the bucket's policy."""
        personalize_principal = iam.ServicePrincipal("personalize.amazonaws.com")
        role = iam.Role(self, "ImportRole", assumed_by=personalize_principal)
        read = iam.PolicyStatement(
            actions=["s3:GetObject", "s3:ListBucket"],
            resources=[source.bucket_arn, source.arn_for_objects(f"{SAMPLE_KEY_PREFIX}*")],
        )
        role.add_to_principal_policy(read)
        source.add_to_resource_policy(
            iam.PolicyStatement(
                principals=[personalize_principal],
                actions=read.actions,
                resources=read.resources,
                conditions={"StringEquals": {"aws:SourceAccount": self.account}},
            )
        )
        return role
