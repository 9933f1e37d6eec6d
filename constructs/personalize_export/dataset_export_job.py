"""DatasetExportJob: an Amazon Personalize dataset export, run on deploy."""

from __future__ import annotations

import re
import weakref
from collections.abc import Mapping
from enum import StrEnum

from aws_cdk import (
    Aws,
    CfnOutput,
    CfnResource,
    CustomResource,
    Duration,
    Fn,
    Stack,
    Token,
    Validations,
)
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct, IConstruct

from personalize_export import validation
from personalize_export.access_logs import hardened_bucket
from personalize_export.acknowledgments import acknowledge_export_wildcards
from personalize_export.provider import (
    CLOUDFORMATION_MAX_WAIT,
    POLL_INTERVAL,
    ExportJobProvider,
)
from personalize_export.runtime.export_job.contract import (
    MAX_TIMEOUT_SECONDS,
    RESOURCE_TYPE,
    Attr,
    Prop,
)
from personalize_export.runtime.export_job.request import job_name_prefix

PERSONALIZE = "personalize.amazonaws.com"
MAX_TIMEOUT = Duration.seconds(MAX_TIMEOUT_SECONDS)
# Room, inside CloudFormation's hour, to start the job and report its end.
REPORTING_MARGIN = Duration.seconds(CLOUDFORMATION_MAX_WAIT.to_seconds() - MAX_TIMEOUT_SECONDS)
SERVICE_ROLE_S3_ACTIONS = ["s3:PutObject", "s3:ListBucket"]
SERVICE_KMS_ACTIONS = ["kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey", "kms:ListGrants"]
KEY_POLICY_ACTIONS = [*SERVICE_KMS_ACTIONS, "kms:CreateGrant"]
_S3_KEY_UNSAFE = re.compile(r"[^a-zA-Z0-9!_.*'()/-]+")
# Where the service roles shared by exports into one given bucket live, in each stack.
SHARED_ROLES_ID = "ExportRoles"
# Warnings a user can acknowledge with Validations.of(export).acknowledge(...).
BUCKET_POLICY_NOT_ADDED = "personalize-export:BucketPolicyNotAdded"
ROLE_POLICY_NOT_ADDED = "personalize-export:RolePolicyNotAdded"
KEY_POLICY_NOT_ADDED = "personalize-export:KeyPolicyNotAdded"


class _Claims:
    """What the exports of one app already use: destinations and literal job names."""

    def __init__(self) -> None:
        self.destinations: dict[tuple[str, str], str] = {}
        self.job_names: dict[tuple[str, str, str], str] = {}


_claims_by_app: weakref.WeakKeyDictionary[IConstruct, _Claims] = weakref.WeakKeyDictionary()


class IngestionMode(StrEnum):
    """Which data to export. Data loaded by a dataset import job is exported only by BULK or ALL.

    BULK: data imported by dataset import jobs. PUT: data sent with PutEvents, PutUsers or
    PutItems (the service's default). ALL: both.
    """

    BULK = "BULK"
    PUT = "PUT"
    ALL = "ALL"


class DatasetExportJob(Construct):
    """Exports a Personalize dataset to S3 on deploy and waits until the job is ACTIVE.

    Creates, unless given: a private, TLS-only, encrypted, versioned, retained bucket that logs
    to the stack's access log bucket, and the service role Personalize assumes to write into it.
    Personalize has no API to update or delete an export job: a change to what is exported, or
    to ``run_id``, starts a new job under a new name; deleting the stack leaves every job and
    every exported object in place.

    :param dataset_arn: the dataset to export (a literal ARN or a token).
    :param ingestion_mode: BULK, PUT or ALL. Default: PUT, as the service. Data loaded by a
        dataset import job is exported only by BULK or ALL.
    :param job_name: the export job's name, used as given. Names are unique per account and
        region and jobs can't be deleted, so a job of a fixed name runs once: changing the
        export settings under the same name fails the update. Default: derived from the
        construct path plus a hash, unique for each job this resource starts.
    :param bucket: the bucket to export into. Exports into one given bucket in a stack share
        one service role. Default: a new hardened bucket (and a role of its own).
    :param output_prefix: the key prefix inside the bucket. Default: the construct path.
    :param role: the service role Personalize assumes. Default: a new role with exactly the
        rights the export needs.
    :param encryption_key: a KMS key: SSE-KMS on a new bucket and kmsKeyArn on the job.
        Default: none (SSE-S3 on a new bucket).
    :param tags: tags for the export job, applied when a job is created. Default: none.
    :param timeout: how long the deploy waits for ACTIVE. Default and maximum: 55 minutes
        (CloudFormation waits at most one hour for a custom resource).
    :param run_id: any string; changing it runs the export again with unchanged settings.
        Not with ``job_name``. Default: none.
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
        self.timeout = timeout or MAX_TIMEOUT
        self.output_prefix = self._prefix_with_slash(output_prefix)
        # Everything is checked before any resource exists: a bad input synthesizes nothing.
        self._validate(
            dataset_arn=dataset_arn,
            mode=mode,
            job_name=job_name,
            given_prefix=output_prefix,
            run_id=run_id,
            bucket=bucket,
            role=role,
            encryption_key=encryption_key,
            tags=tags,
        )
        self.dataset_arn = dataset_arn
        self.ingestion_mode = mode
        self.encryption_key = encryption_key
        self.bucket = bucket or self._new_bucket()
        self.role = role or (self._shared_service_role() if bucket else self._new_service_role())
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
        self._omit_default_removal_policies()
        # Personalize checks the role's policies and the bucket policy when the job starts (the
        # role itself and the bucket are referenced already).
        self.resource.node.add_dependency(self.role, *self._bucket_policy)
        self.job_arn = self.resource.get_att_string(Attr.JOB_ARN)
        self.job_name = self.resource.get_att_string(Attr.JOB_NAME)
        self.output_path = self.resource.get_att_string(Attr.OUTPUT_PATH)
        if stack_outputs:
            self._add_outputs()

    def _omit_default_removal_policies(self) -> None:
        """Delete is CloudFormation's default: saying so costs bytes in every export's resource.

        (Deleting the resource only runs our Delete, which leaves the job and its files alone.)
        """
        resource = self.resource.node.default_child
        assert isinstance(resource, CfnResource)
        resource.cfn_options.deletion_policy = None
        resource.cfn_options.update_replace_policy = None

    @property
    def _bucket_policy(self) -> list[s3.BucketPolicy]:
        policy = self.bucket.policy
        return [policy] if policy is not None else []

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
        listing = iam.Grant.add_to_principal(
            grantee=grantee,
            actions=["s3:ListBucket"],
            resource_arns=[self.bucket.bucket_arn],
            conditions={"StringLike": {"s3:prefix": [f"{self.output_prefix}*"]}},
        )
        grant = objects.combine(listing)
        if self.encryption_key is not None:
            grant = grant.combine(self.encryption_key.grant_decrypt(grantee))
        return grant

    def _prefix_with_slash(self, output_prefix: str | None) -> str:
        if output_prefix is None:
            return _key_safe(self.node.path) + "/"
        if Token.is_unresolved(output_prefix) or output_prefix == "" or output_prefix.endswith("/"):
            return output_prefix
        return output_prefix + "/"

    def _validate(
        self,
        *,
        dataset_arn: str,
        mode: str,
        job_name: str | None,
        given_prefix: str | None,
        run_id: str | None,
        bucket: s3.IBucket | None,
        role: iam.IRole | None,
        encryption_key: kms.IKey | None,
        tags: Mapping[str, str] | None,
    ) -> None:
        stack = Stack.of(self)
        claims = _claims_by_app.setdefault(self.node.root, _Claims())
        problems = [
            *validation.check_dataset_arn(dataset_arn, stack.region),
            *validation.check_ingestion_mode(mode),
            *validation.check_job_name(job_name),
            *validation.check_job_name_unique(job_name, self._place, claims.job_names),
            *validation.check_run_id(run_id, job_name),
            *validation.check_output_prefix(
                given_prefix, self.output_prefix, bucket.bucket_name if bucket else None
            ),
            *self._check_destination(bucket, claims),
            *validation.check_role_arn(role.role_arn if role else None),
            *self._check_key(encryption_key, stack.region),
            *validation.check_tags(tags),
            *validation.check_timeout(self.timeout, minimum=POLL_INTERVAL, maximum=MAX_TIMEOUT),
        ]
        if problems:
            listing = "\n".join(f"  - {problem}" for problem in problems)
            raise ValueError(f"DatasetExportJob at '{self.node.path}' is misconfigured:\n{listing}")
        self._claim(job_name, bucket, claims)

    @property
    def _place(self) -> tuple[str, str]:
        stack = Stack.of(self)
        return (stack.account, stack.region)

    def _destination_key(self, bucket: s3.IBucket | None) -> tuple[str, str] | None:
        """A new bucket is this export's alone; a prefix from a token can't be compared."""
        if bucket is None or Token.is_unresolved(self.output_prefix):
            return None
        # A token name is the same string wherever the same bucket object is used.
        return (bucket.bucket_name, self.output_prefix)

    def _check_destination(self, bucket: s3.IBucket | None, claims: _Claims) -> list[str]:
        key = self._destination_key(bucket)
        if key is None or bucket is None:
            return []
        bucket_name, prefix = key
        prefixes_taken = {
            other_prefix: holder
            for (other_bucket, other_prefix), holder in claims.destinations.items()
            if other_bucket == bucket_name
        }
        label = bucket.node.path if Token.is_unresolved(bucket_name) else bucket_name
        return validation.check_destination(prefix, label, prefixes_taken)

    def _check_key(self, key: kms.IKey | None, region: str) -> list[str]:
        if key is None:
            return []
        alias_name = getattr(key, "alias_name", None)
        return validation.check_kms_key(key.key_arn, alias_name, region)

    def _claim(self, job_name: str | None, bucket: s3.IBucket | None, claims: _Claims) -> None:
        key = self._destination_key(bucket)
        if key is not None:
            claims.destinations[key] = self.node.path
        if job_name is not None and validation.is_literal(job_name):
            claims.job_names[(*self._place, job_name)] = self.node.path

    def _new_bucket(self) -> s3.Bucket:
        return hardened_bucket(
            self,
            "Bucket",
            logs_prefix=_key_safe(self.node.path) + "/",
            encryption_key=self.encryption_key,
        )

    def _new_service_role(self) -> iam.Role:
        return self._service_role(
            self,
            "ServiceRole",
            f"Assumed by Amazon Personalize to write the export of {self.node.path}",
        )

    def _shared_service_role(self) -> iam.Role:
        """Exports into one given bucket share one role: each adds only its own prefix to it."""
        stack = Stack.of(self)
        holder = stack.node.try_find_child(SHARED_ROLES_ID)
        if not isinstance(holder, Construct):
            holder = Construct(stack, SHARED_ROLES_ID)
        # Short: the role's logical id is repeated in every export that uses it.
        role_id = f"Bucket{self.bucket.node.addr[:8]}"
        existing = holder.node.try_find_child(role_id)
        if isinstance(existing, iam.Role):
            return existing
        description = f"Assumed by Amazon Personalize to write exports into {self.bucket.node.path}"
        return self._service_role(holder, role_id, description)

    def _service_role(self, scope: Construct, role_id: str, description: str) -> iam.Role:
        return iam.Role(
            scope,
            role_id,
            description=description[:1000],
            assumed_by=iam.ServicePrincipal(PERSONALIZE).with_conditions(
                self._confused_deputy_conditions()
            ),
        )

    def _grant_personalize_access(self) -> None:
        """The bucket, prefix and key rights Personalize documents, for its role and itself."""
        resources = [self.bucket.bucket_arn, self._object_arns]
        self.role.add_to_principal_policy(
            iam.PolicyStatement(actions=SERVICE_ROLE_S3_ACTIONS, resources=resources)
        )
        if not self._role_takes_policies():
            self._warn(
                ROLE_POLICY_NOT_ADDED,
                f"role {self.role.role_arn} can't be changed from here: it must allow "
                f"{' and '.join(SERVICE_ROLE_S3_ACTIONS)} on the bucket and on the objects under "
                f"'{self.output_prefix}' (and the key's {', '.join(SERVICE_KMS_ACTIONS)} with "
                "encryption_key)",
            )
        added = self.bucket.add_to_resource_policy(
            iam.PolicyStatement(
                principals=[iam.ServicePrincipal(PERSONALIZE)],
                actions=SERVICE_ROLE_S3_ACTIONS,
                resources=resources,
                conditions=self._confused_deputy_conditions(),
            )
        )
        if not added.statement_added:
            self._warn(
                BUCKET_POLICY_NOT_ADDED,
                f"the policy of bucket {self.bucket.bucket_name} can't be changed from here: it "
                f"must allow {PERSONALIZE} {' and '.join(SERVICE_ROLE_S3_ACTIONS)} on the bucket "
                f"and on the objects under '{self.output_prefix}'",
            )
        if self.encryption_key is not None:
            self._grant_key_access(self.encryption_key)

    def _role_takes_policies(self) -> bool:
        """An immutable imported role reports every statement as added, yet keeps no policy."""
        if isinstance(self.role, iam.Role):
            return True
        return any(isinstance(child, iam.Policy) for child in self.role.node.children)

    @property
    def _object_arns(self) -> str:
        return self.bucket.arn_for_objects(f"{self.output_prefix}*")

    def _confused_deputy_conditions(self) -> dict[str, object]:
        return personalize_source_conditions(self)

    def _grant_key_access(self, key: kms.IKey) -> None:
        key.grant(self.role, *SERVICE_KMS_ACTIONS)
        statements = [
            iam.PolicyStatement(
                principals=[iam.ServicePrincipal(PERSONALIZE)],
                actions=KEY_POLICY_ACTIONS,
                resources=["*"],
                conditions={"StringEquals": {"aws:SourceAccount": Stack.of(self).account}},
            )
        ]
        # Naming a role of another stack in the key policy would make the stacks depend on each
        # other; there the role's own policy (key.grant above) carries its rights.
        if Stack.of(key) is Stack.of(self.role):
            statements.append(
                iam.PolicyStatement(
                    principals=[self.role], actions=KEY_POLICY_ACTIONS, resources=["*"]
                )
            )
        added = [key.add_to_resource_policy(statement).statement_added for statement in statements]
        if not all(added):
            self._warn(
                KEY_POLICY_NOT_ADDED,
                f"the policy of key {key.key_arn} can't be changed from here: it must allow "
                f"{', '.join(KEY_POLICY_ACTIONS)} to the service role and to {PERSONALIZE}",
            )

    def _warn(self, warning_id: str, message: str) -> None:
        Validations.of(self).add_warning(warning_id, message)

    def _allow_handler(
        self, provider: ExportJobProvider, job_name: str | None, *, tagging: bool
    ) -> None:
        """CreateDatasetExportJob on the dataset and this export's job ARNs, and nothing wider."""
        name_pattern = job_name or f"{self._job_name_prefix}-*"
        job_arns = self._compact_personalize_arn(f"dataset-export-job/{name_pattern}")
        role = provider.handler_role
        acknowledge_export_wildcards(
            handler_role=role,
            job_arns=job_arns,
            service_role=self.role,
            object_arns=self._object_arns,
        )
        # Two statements, each merged across the stack's exports, keep the shared policy small.
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=[
                    "personalize:CreateDatasetExportJob",
                    "personalize:DescribeDatasetExportJob",
                ],
                resources=[job_arns],
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["personalize:CreateDatasetExportJob"], resources=[self.dataset_arn]
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

    def _compact_personalize_arn(self, resource: str) -> str:
        """The same ARN as one Fn::Sub string: a third of the Fn::Join's bytes, in every export's
        statement of the stack's shared handler policy."""
        if Token.is_unresolved(resource):
            return self._personalize_arn(resource)
        return Fn.sub(
            "arn:${AWS::Partition}:personalize:${AWS::Region}:${AWS::AccountId}:" + resource
        )

    def _personalize_arn(self, resource: str) -> str:
        return personalize_arn(resource)

    def _service_timeout(self) -> Duration:
        if self.timeout.is_unresolved():
            return CLOUDFORMATION_MAX_WAIT
        seconds = self._timeout_seconds + REPORTING_MARGIN.to_seconds()
        return Duration.seconds(min(seconds, CLOUDFORMATION_MAX_WAIT.to_seconds()))

    @property
    def _timeout_seconds(self) -> int:
        return int(self.timeout.to_seconds(integral=False))

    def _timeout_property(self) -> str:
        if self.timeout.is_unresolved():
            return Token.as_string(self.timeout.to_seconds())
        return str(self._timeout_seconds)

    def _properties(
        self, job_name: str | None, tags: Mapping[str, str] | None, run_id: str | None
    ) -> dict[str, object]:
        properties: dict[str, object] = {
            Prop.DATASET_ARN: self.dataset_arn,
            Prop.INGESTION_MODE: self.ingestion_mode,
            Prop.ROLE_ARN: self.role.role_arn,
            Prop.OUTPUT_PATH: self.destination,
            Prop.JOB_NAME_PREFIX: self._job_name_prefix,
            Prop.TIMEOUT_SECONDS: self._timeout_property(),
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
            description="Export job ARN",
        )
        CfnOutput(
            self,
            "OutputPath",
            value=self.output_path,
            description="Export output path",
        )


def personalize_arn(resource: str) -> str:
    return f"arn:{Aws.PARTITION}:personalize:{Aws.REGION}:{Aws.ACCOUNT_ID}:{resource}"


def personalize_source_conditions(scope: Construct) -> dict[str, object]:
    """What Personalize may act for: this account's Personalize resources in this region only
    (the confused-deputy conditions Personalize documents for trust and resource policies)."""
    return {
        "StringEquals": {"aws:SourceAccount": Stack.of(scope).account},
        "ArnLike": {"aws:SourceArn": personalize_arn("*")},
    }


def _key_safe(path: str) -> str:
    return _S3_KEY_UNSAFE.sub("-", path)


def _tag_list(tags: Mapping[str, str] | None) -> list[dict[str, str]] | None:
    if not tags:
        return None
    return [{"tagKey": key, "tagValue": value} for key, value in sorted(tags.items())]
