"""(a) The pattern a user would hand-write instead of the library: the same job, done by hand.

One hardened bucket, one service role for Personalize, one Provider-framework custom resource
with a small Python onEvent/isComplete handler, and two outputs. It has the settings a working
export needs (bucket policy and role grants for Personalize, the handler's Personalize and
PassRole rights, the same polling settings) and none of the library's extras (validation,
a shared provider, a retained log group, scoped job ARNs).
"""

from __future__ import annotations

from pathlib import Path

from aws_cdk import CfnOutput, CustomResource, Duration, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from aws_cdk import custom_resources as cr
from constructs import Construct

HANDLER_DIR = Path(__file__).resolve().parent / "bare_handler"
PERSONALIZE = iam.ServicePrincipal("personalize.amazonaws.com")
S3_ACTIONS = ["s3:PutObject", "s3:ListBucket"]


class BareExportStack(Stack):
    """A dataset export job run by a hand-written custom resource."""

    def __init__(self, scope: Construct, construct_id: str, *, dataset_arn: str) -> None:
        super().__init__(scope, construct_id)
        bucket = s3.Bucket(
            self,
            "ExportBucket",
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            encryption=s3.BucketEncryption.S3_MANAGED,
            versioned=True,
            removal_policy=RemovalPolicy.RETAIN,
        )
        role = iam.Role(self, "PersonalizeRole", assumed_by=PERSONALIZE)
        grant = iam.PolicyStatement(
            actions=S3_ACTIONS, resources=[bucket.bucket_arn, bucket.arn_for_objects("*")]
        )
        role.add_to_policy(grant)
        bucket.add_to_resource_policy(
            iam.PolicyStatement(
                principals=[PERSONALIZE], actions=S3_ACTIONS, resources=grant.resources
            )
        )
        on_event = self._function("OnEvent", "index.on_event", dataset_arn, role)
        is_complete = self._function("IsComplete", "index.is_complete", dataset_arn, role)
        provider = cr.Provider(
            self,
            "Provider",
            on_event_handler=on_event,
            is_complete_handler=is_complete,
            query_interval=Duration.seconds(30),
            total_timeout=Duration.hours(1),
        )
        export = CustomResource(
            self,
            "Export",
            service_token=provider.service_token,
            properties={
                "JobName": "bare-export",
                "DatasetArn": dataset_arn,
                "IngestionMode": "PUT",
                "RoleArn": role.role_arn,
                "OutputPath": f"s3://{bucket.bucket_name}/export/",
            },
        )
        export.node.add_dependency(role, bucket)
        CfnOutput(self, "JobArn", value=export.get_att_string("JobArn"))
        CfnOutput(self, "OutputPath", value=f"s3://{bucket.bucket_name}/export/")

    def _function(
        self, construct_id: str, handler: str, dataset_arn: str, service_role: iam.IRole
    ) -> lambda_.Function:
        function = lambda_.Function(
            self,
            construct_id,
            runtime=lambda_.Runtime.PYTHON_3_14,
            handler=handler,
            code=lambda_.Code.from_asset(str(HANDLER_DIR), exclude=["__pycache__", "*.pyc"]),
            timeout=Duration.minutes(1),
        )
        function.add_to_role_policy(
            iam.PolicyStatement(
                actions=[
                    "personalize:CreateDatasetExportJob",
                    "personalize:DescribeDatasetExportJob",
                ],
                resources=[
                    dataset_arn,
                    self.format_arn(
                        service="personalize", resource="dataset-export-job", resource_name="*"
                    ),
                ],
            )
        )
        service_role.grant_pass_role(function.grant_principal)
        return function
