"""What every integ app stands on: a small Interactions dataset, and buckets that go with the stack.

Not an integ test itself (integ-runner runs only files named ``integ_*.py``). Each integ stack
deletes all it creates: the dataset group, schema and dataset are deleted with the stack
(CloudFormation's default for them), and every bucket here is emptied and deleted with it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import jsii
from aws_cdk import Aspects, CfnDeletionPolicy, CfnResource, IAspect, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_personalize as personalize
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_deployment as s3_deployment
from constructs import Construct, IConstruct

# integ-runner runs each app from this folder: the demo's sample data is one level up.
REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from demo.demo_stack import INTERACTIONS_SCHEMA, SAMPLE_DATA, SAMPLE_FILE  # noqa: E402
from personalize_export.dataset_export_job import (  # noqa: E402
    PERSONALIZE,
    personalize_source_conditions,
)

SAMPLE_KEY = "sample/" + SAMPLE_FILE
# The header row an export's CSV files start with: the schema's field names, in order.
HEADER_FIELDS = [str(field["name"]) for field in INTERACTIONS_SCHEMA["fields"]]  # type: ignore[index]
# A header row as CSV writes it: the names, each perhaps quoted, then the line's end.
HEADER_PATTERN = "^" + ",".join(f'"?{name}"?' for name in HEADER_FIELDS) + "\r?\n"


@jsii.implements(IAspect)
class _DeleteRetained:
    def visit(self, node: IConstruct) -> None:
        if isinstance(node, CfnResource) and node.cfn_options.deletion_policy in (
            CfnDeletionPolicy.RETAIN,
            CfnDeletionPolicy.RETAIN_EXCEPT_ON_CREATE,
        ):
            node.apply_removal_policy(RemovalPolicy.DESTROY)


def leave_nothing_behind(stack: Stack) -> None:
    """Everything the stack retains by design (the library's log groups, BucketDeployment's)
    is deleted with an integ stack instead: a repeated run leaves nothing behind."""
    Aspects.of(stack).add(_DeleteRetained())


def disposable_bucket(scope: Construct, construct_id: str) -> s3.Bucket:
    """A bucket deleted with the stack, its objects first (integ stacks leave nothing behind)."""
    return s3.Bucket(
        scope,
        construct_id,
        removal_policy=RemovalPolicy.DESTROY,
        auto_delete_objects=True,
        enforce_ssl=True,
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        encryption=s3.BucketEncryption.S3_MANAGED,
    )


class SampleDataset(Construct):
    """The demo's dataset group, Interactions schema and dataset, loaded by an import job."""

    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        stack_name = Stack.of(self).stack_name
        source = disposable_bucket(self, "Source")
        upload = s3_deployment.BucketDeployment(
            self,
            "Upload",
            sources=[s3_deployment.Source.asset(str(SAMPLE_DATA))],
            destination_bucket=source,
            destination_key_prefix="sample/",
        )
        import_role = self._import_role(source)
        group = personalize.CfnDatasetGroup(self, "Group", name=f"{stack_name}-group")
        schema = personalize.CfnSchema(
            self,
            "Schema",
            name=f"{stack_name}-interactions",
            schema=json.dumps(INTERACTIONS_SCHEMA),
        )
        dataset = personalize.CfnDataset(
            self,
            "Interactions",
            name=f"{stack_name}-interactions",
            dataset_group_arn=group.attr_dataset_group_arn,
            dataset_type="Interactions",
            schema_arn=schema.attr_schema_arn,
            dataset_import_job=personalize.CfnDataset.DatasetImportJobProperty(
                job_name=f"{stack_name}-import",
                role_arn=import_role.role_arn,
                data_source={"DataLocation": source.s3_url_for_object(SAMPLE_KEY)},
            ),
        )
        dataset.node.add_dependency(upload, import_role, source)
        self.dataset_arn = dataset.attr_dataset_arn

    def _import_role(self, source: s3.Bucket) -> iam.Role:
        """Personalize reads the sample file through this role and the bucket's policy."""
        principal = iam.ServicePrincipal(PERSONALIZE).with_conditions(
            personalize_source_conditions(self)
        )
        role = iam.Role(self, "ImportRole", assumed_by=principal)
        statements = [
            iam.PolicyStatement(actions=["s3:ListBucket"], resources=[source.bucket_arn]),
            iam.PolicyStatement(
                actions=["s3:GetObject"], resources=[source.arn_for_objects(SAMPLE_KEY)]
            ),
        ]
        for statement in statements:
            role.add_to_principal_policy(statement)
            source.add_to_resource_policy(
                iam.PolicyStatement(
                    principals=[iam.ServicePrincipal(PERSONALIZE)],
                    actions=statement.actions,
                    resources=statement.resources,
                    conditions=personalize_source_conditions(self),
                )
            )
        return role
