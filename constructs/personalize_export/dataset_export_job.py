"""DatasetExportJob: an Amazon Personalize dataset export, run on deploy."""

from __future__ import annotations

import re
import weakref
from collections.abc import Mapping
from enum import Enum

from aws_cdk import (
    Aws,
    CfnOutput,
    CustomResource,
    Duration,
    RemovalPolicy,
    Stack,
    Token,
)
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct, IConstruct

from personalize_export import validation
from personalize_export.provider import (
    CLOUDFORMATION_MAX_WAIT,
    POLL_INTERVAL,
    ExportJobProvider,
)
from personalize_export.runtime.export_job.contract import RESOURCE_TYPE, Attr, Prop
from personalize_export.runtime.export_job.request import job_name_prefix

PERSONALIZE = "personalize.amazonaws.com"
# Room, inside CloudFormation's hour, to start the job and report its end.
REPORTING_MARGIN = Duration.minutes(5)
MAX_TIMEOUT = Duration.seconds(CLOUDFORMATION_MAX_WAIT.to_seconds() - REPORTING_MARGIN.to_seconds())
DEFAULT_TIMEOUT = MAX_TIMEOUT
SERVICE_ROLE_S3_ACTIONS = ["s3:PutObject", "s3:ListBucket"]
SERVICE_KMS_ACTIONS = ["kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey", "kms:ListGrants"]
_S3_KEY_UNSAFE = re.compile(r"[^a-zA-Z0-9!_.*'()/-]+")

# (bucket, prefix) pairs already written to, per app, to refuse two exports into one place.
_claimed_destinations: weakref.WeakKeyDictionary[IConstruct, dict[tuple[str, str], str]] = (
    weakref.WeakKeyDictionary()
)


class IngestionMode(str, Enum):
    """Which data to export. Data loaded by a dataset import job is exported only by BULK or ALL.

    BULK: data imported by dataset import jobs. PUT: data sent with PutEvents, PutUsers or
    PutItems (the service's default). ALL: both.
    """

    BULK = "BULK"
    PUT = "PUT"
    ALL = "ALL"


class DatasetExportJob(Construct):
    """Exports a Personalize dataset to S3 on deploy and waits until the job is ACTIVE.

    Creates, unless given: a private, TLS-only, encrypted, versioned, retained bucket and the
    service role Personalize assumes to write into it. Personalize has no API to update or
    delete an export job: a change to what is exported, or to ``run_id``, starts a new job under
    a new name; deleting the stack leaves every job and every exported object in place.

    :param dataset_arn: the dataset to export (a literal ARN or a token).
    :param ingestion_mode: BULK, PUT or ALL. Default: PUT, as the service. Data loaded by a
        dataset import job is exported only by BULK or ALL.
    :param job_name: the export job's name, used as given. Default: derived from the construct
        path plus a hash, unique for each job this resource starts.
    :param bucket: the bucket to export into. Default: a new hardened bucket.
    :param output_prefix: the key prefix inside the bucket. Default: the construct path.
    :param role: the service role Personalize assumes. Default: a new role with exactly the
        rights the export needs.
    :param encryption_key: a KMS key: SSE-KMS on a new bucket and kmsKeyArn on the job.
        Default: none (SSE-S3 on a new bucket).
    :param tags: tags for the export job, applied when a job is created. Default: none.
    :param timeout: how long the deploy waits for ACTIVE. Default and maximum: 55 minutes
        (CloudFormation waits at most one hour for a custom resource).
    :param run_id: any string; changing it runs the export again with unchanged settings.
        Default: none.
    :param stack_outputs: add CfnOutputs for the job ARN and the output path. Default: True.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        dataset_arn: str,
        ingestion_mode: IngestionMode | str = IngestionMode.PUT,
        job_name: str | None = None,
        bucket: s3.IBucket | None = None,
        output_prefix: str | None = None,
        role: iam.IRole | None = None,
        encryption_key: kms.IKey | None = None,
        tags: Mapping[str, str] | None = None,
        timeout: Duration | None = None,
        run_id: str | None = None,
        stack_outputs: bool = True,
    ) -> None:
        super().__init__(scope, construct_id)
        mode = ingestion_mode.value if isinstance(ingestion_mode, IngestionMode) else ingestion_mode
        self.timeout = timeout or DEFAULT_TIMEOUT
        self.output_prefix = self._prefix_with_slash(output_prefix)
        self._validate(
            dataset_arn=dataset_arn,
            mode=mode,
            job_name=job_name,
            bucket=bucket,
            encryption_key=encryption_key,
            tags=tags,
        )
        self.dataset_arn = dataset_arn
        self.ingestion_mode = mode
        self.encryption_key = encryption_key
        self.bucket = bucket or self._new_bucket()
        self.role = role or self._new_service_role()
        self._grant_personalize_access()

        provider = ExportJobProvider.of(self)
        self._allow_handler(provider, job_name, tagging=bool(tags))
        self.resource = CustomResource(
            self,
            "Resource",
            service_token=provider.service_token,
            resource_type=RESOURCE_TYPE,
            service_timeout=self._service_timeout(),
            properties=self._properties(job_name, tags, run_id),
        )
        # Personalize checks the role and the bucket policy when the job starts.
        self.resource.node.add_dependency(self.role, self.bucket)
        self.job_arn = self.resource.get_att_string(Attr.JOB_ARN)
        self.job_name = self.resource.get_att_string(Attr.JOB_NAME)
        self.output_path = self.resource.get_att_string(Attr.OUTPUT_PATH)
        if stack_outputs:
            self._add_outputs()

    @property
    def destination(self) -> str:
        """s3://bucket/prefix/ as known at synth time (no dependency on the export finishing)."""
        return f"s3://{self.bucket.bucket_name}/{self.output_prefix}"

    def grant_read(self, grantee: iam.IGrantable) -> iam.Grant:
        """Read access to exactly the exported objects: list the prefix, get, decrypt."""
        objects = iam.Grant.add_to_principal_or_resource(
            grantee=grantee,
            actions=["s3:GetObject"],
            resource_arns=[self.bucket.arn_for_objects(f"{self.output_prefix}*")],
            resource=self.bucket,
        )
        iam.Grant.add_to_principal(
            grantee=grantee,
            actions=["s3:ListBucket"],
            resource_arns=[self.bucket.bucket_arn],
            conditions={"StringLike": {"s3:prefix": [f"{self.output_prefix}*"]}},
        )
        if self.encryption_key is not None:
            self.encryption_key.grant_decrypt(grantee)
        return objects

    def _prefix_with_slash(self, output_prefix: str | None) -> str:
        if output_prefix is None:
            return _S3_KEY_UNSAFE.sub("-", self.node.path) + "/"
        if Token.is_unresolved(output_prefix) or output_prefix.endswith("/"):
            return output_prefix
        return output_prefix + "/"

    def _validate(
        self,
        *,
        dataset_arn: str,
        mode: str,
        job_name: str | None,
        bucket: s3.IBucket | None,
        encryption_key: kms.IKey | None,
        tags: Mapping[str, str] | None,
    ) -> None:
        bucket_name = bucket.bucket_name if bucket is not None else None
        problems = [
            *validation.check_dataset_arn(dataset_arn),
            *validation.check_ingestion_mode(mode),
            *validation.check_job_name(job_name),
            *validation.check_output_prefix(self.output_prefix, bucket_name),
            *validation.check_kms_key_arn(encryption_key.key_arn if encryption_key else None),
            *validation.check_tags(tags),
            *validation.check_timeout(self.timeout, minimum=POLL_INTERVAL, maximum=MAX_TIMEOUT),
            *self._check_destination_unclaimed(bucket),
        ]
        if problems:
            listing = "\n".join(f"  - {problem}" for problem in problems)
            raise ValueError(f"DatasetExportJob at '{self.node.path}' is misconfigured:\n{listing}")

    def _check_destination_unclaimed(self, bucket: s3.IBucket | None) -> list[str]:
        if bucket is None or Token.is_unresolved(self.output_prefix):
            return []
        name = bucket.bucket_name
        bucket_key = bucket.node.path if Token.is_unresolved(name) else name
        claims = _claimed_destinations.setdefault(self.node.root, {})
        holder = claims.setdefault((bucket_key, self.output_prefix), self.node.path)
        if holder == self.node.path:
            return []
        return [
            f"output_prefix {self.output_prefix!r} in bucket {bucket_key} is already the "
            f"destination of {holder}; two exports must not write to the same bucket and prefix"
        ]

    def _new_bucket(self) -> s3.Bucket:
        return s3.Bucket(
            self,
            "Bucket",
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            encryption=(
                s3.BucketEncryption.KMS if self.encryption_key else s3.BucketEncryption.S3_MANAGED
            ),
            encryption_key=self.encryption_key,
            bucket_key_enabled=True if self.encryption_key else None,
            versioned=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            removal_policy=RemovalPolicy.RETAIN,
        )

    def _new_service_role(self) -> iam.Role:
        stack = Stack.of(self)
        return iam.Role(
            self,
            "ServiceRole",
            description=f"Assumed by Amazon Personalize to write the export of {self.node.path}",
            assumed_by=iam.ServicePrincipal(PERSONALIZE).with_conditions(
                {
                    "StringEquals": {"aws:SourceAccount": stack.account},
                    "ArnLike": {"aws:SourceArn": self._personalize_arn("*")},
                }
            ),
        )

    def _grant_personalize_access(self) -> None:
        """The bucket, prefix and key rights Personalize documents, for its role and itself."""
        resources = [self.bucket.bucket_arn, self.bucket.arn_for_objects(f"{self.output_prefix}*")]
        self.role.add_to_principal_policy(
            iam.PolicyStatement(actions=SERVICE_ROLE_S3_ACTIONS, resources=resources)
        )
        stack = Stack.of(self)
        self.bucket.add_to_resource_policy(
            iam.PolicyStatement(
                principals=[iam.ServicePrincipal(PERSONALIZE)],
                actions=SERVICE_ROLE_S3_ACTIONS,
                resources=resources,
                conditions={
                    "StringEquals": {"aws:SourceAccount": stack.account},
                    "ArnLike": {"aws:SourceArn": self._personalize_arn("*")},
                },
            )
        )
        if self.encryption_key is not None:
            self._grant_key_access(self.encryption_key)

    def _grant_key_access(self, key: kms.IKey) -> None:
        key.grant(self.role, *SERVICE_KMS_ACTIONS)
        key.add_to_resource_policy(
            iam.PolicyStatement(
                principals=[iam.ServicePrincipal(PERSONALIZE)],
                actions=[*SERVICE_KMS_ACTIONS, "kms:CreateGrant"],
                resources=["*"],
                conditions={"StringEquals": {"aws:SourceAccount": Stack.of(self).account}},
            )
        )

    def _allow_handler(
        self, provider: ExportJobProvider, job_name: str | None, *, tagging: bool
    ) -> None:
        """CreateDatasetExportJob on the dataset and this export's job ARNs, and nothing wider."""
        name_pattern = job_name or f"{self._job_name_prefix}-*"
        job_arns = self._personalize_arn(f"dataset-export-job/{name_pattern}")
        role = provider.handler_role
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["personalize:CreateDatasetExportJob"],
                resources=[self.dataset_arn, job_arns],
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["personalize:DescribeDatasetExportJob"], resources=[job_arns]
            )
        )
        if tagging:
            role.add_to_principal_policy(
                iam.PolicyStatement(actions=["personalize:TagResource"], resources=[job_arns])
            )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["iam:PassRole"],
                resources=[self.role.role_arn],
                conditions={"StringEquals": {"iam:PassedToService": PERSONALIZE}},
            )
        )

    @property
    def _job_name_prefix(self) -> str:
        return job_name_prefix("-".join(scope.node.id for scope in self.node.scopes[1:]))

    def _personalize_arn(self, resource: str) -> str:
        return f"arn:{Aws.PARTITION}:personalize:{Aws.REGION}:{Aws.ACCOUNT_ID}:{resource}"

    def _service_timeout(self) -> Duration:
        seconds = self.timeout.to_seconds() + REPORTING_MARGIN.to_seconds()
        return Duration.seconds(min(seconds, CLOUDFORMATION_MAX_WAIT.to_seconds()))

    def _properties(
        self, job_name: str | None, tags: Mapping[str, str] | None, run_id: str | None
    ) -> dict[str, object]:
        properties: dict[str, object] = {
            Prop.DATASET_ARN: self.dataset_arn,
            Prop.INGESTION_MODE: self.ingestion_mode,
            Prop.ROLE_ARN: self.role.role_arn,
            Prop.OUTPUT_PATH: self.destination,
            Prop.JOB_NAME_PREFIX: self._job_name_prefix,
            Prop.TIMEOUT_SECONDS: str(int(self.timeout.to_seconds())),
        }
        optional: dict[str, object | None] = {
            Prop.KMS_KEY_ARN: self.encryption_key.key_arn if self.encryption_key else None,
            Prop.JOB_NAME: job_name,
            Prop.RUN_ID: run_id,
            Prop.TAGS: _tag_list(tags),
        }
        properties.update({key: value for key, value in optional.items() if value is not None})
        return properties

    def _add_outputs(self) -> None:
        CfnOutput(
            self,
            "JobArn",
            value=self.job_arn,
            description=f"ARN of the Personalize dataset export job of {self.node.path}",
        )
        CfnOutput(
            self,
            "OutputPath",
            value=self.output_path,
            description=f"S3 path holding the export of {self.node.path}",
        )


def _tag_list(tags: Mapping[str, str] | None) -> list[dict[str, str]] | None:
    if not tags:
        return None
    return [{"tagKey": key, "tagValue": value} for key, value in sorted(tags.items())]
