"""DatasetExportJob: an Amazon Personalize dataset export, run on deploy."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from enum import StrEnum

from aws_cdk import (
    CfnOutput,
    CfnResource,
    CfnWaitCondition,
    CfnWaitConditionHandle,
    CustomResource,
    Duration,
    Fn,
    Stack,
    Token,
)
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from personalize_export import validation
from personalize_export.acknowledgments import acknowledge_export_wildcards, acknowledge_tagging
from personalize_export.completion_event import CompletionEvents
from personalize_export.destination import (
    BUCKET_POLICY_NOT_ADDED,
    KEY_POLICY_ACTIONS,
    KEY_POLICY_NOT_ADDED,
    PERSONALIZE,
    ROLE_POLICY_NOT_ADDED,
    SERVICE_KMS_ACTIONS,
    SERVICE_ROLE_S3_ACTIONS,
    SHARED_ROLES_ID,
    DestinationProps,
    ExportClaims,
    ExportDestination,
    personalize_arn,
    personalize_source_conditions,
)
from personalize_export.poller import ExportPoller
from personalize_export.provider import (
    CLOUDFORMATION_MAX_WAIT,
    POLL_INTERVAL,
    ExportJobProvider,
)
from personalize_export.runtime.export_job.contract import (
    EXPORT_SETTINGS,
    MAX_LONG_TIMEOUT_SECONDS,
    MAX_TIMEOUT_SECONDS,
    RESOURCE_TYPE,
    RESULT_RESOURCE_TYPE,
    WAIT_CONDITION_MARGIN_SECONDS,
    Attr,
    Prop,
    WaitMode,
)
from personalize_export.runtime.export_job.request import job_name_prefix
from personalize_export.table import ExportFiles, ExportTable, TableOptions

# Re-exports the destination's names too: users import them from here, where they began.
__all__ = [
    "BUCKET_POLICY_NOT_ADDED",
    "KEY_POLICY_ACTIONS",
    "KEY_POLICY_NOT_ADDED",
    "MAX_LONG_TIMEOUT",
    "MAX_TIMEOUT",
    "PERSONALIZE",
    "REPORTING_MARGIN",
    "ROLE_POLICY_NOT_ADDED",
    "SERVICE_KMS_ACTIONS",
    "SERVICE_ROLE_S3_ACTIONS",
    "SHARED_ROLES_ID",
    "DatasetExportJob",
    "IngestionMode",
    "personalize_arn",
    "personalize_source_conditions",
]

MAX_TIMEOUT = Duration.seconds(MAX_TIMEOUT_SECONDS)
# Past CloudFormation's hour a WaitCondition waits, for at most 12 hours.
MAX_LONG_TIMEOUT = Duration.seconds(MAX_LONG_TIMEOUT_SECONDS)
# Room, inside CloudFormation's hour, to start the job and report its end.
REPORTING_MARGIN = Duration.seconds(CLOUDFORMATION_MAX_WAIT.to_seconds() - MAX_TIMEOUT_SECONDS)


class IngestionMode(StrEnum):
    """Which data to export. Data loaded by a dataset import job is exported only by BULK or ALL.

    BULK: data imported by dataset import jobs. PUT: data sent with PutEvents, PutUsers or
    PutItems (the service's default). ALL: both.
    """

    BULK = "BULK"
    PUT = "PUT"
    ALL = "ALL"


class DatasetExportJob(Construct, CompletionEvents):
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
    :param timeout: how long the deploy waits for ACTIVE. Up to 55 minutes the custom resource
        waits itself (CloudFormation gives it one hour); longer, up to 12 hours, a WaitCondition
        waits for the stack's export poller. Default: 55 minutes.
    :param wait_for_completion: False: the deploy starts the job and completes at once; its end
        is reported only by the completion event. Not with ``timeout``. Default: True.
    :param event_bus: where the completion event of every job goes. Default: the account's
        default bus.
    :param run_id: any string; changing it runs the export again with unchanged settings.
        Not with ``job_name``. Default: none.
    :param stack_outputs: add CfnOutputs for the job ARN and the output path. Default: True.
    :param table: a Glue table over the output path, for Athena (``TableOptions``; see
        ``grant_query``). Default: none.
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
        wait_for_completion: bool = True,
        event_bus: events.IEventBus | None = None,
        table: TableOptions | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        mode = ingestion_mode.value if isinstance(ingestion_mode, IngestionMode) else ingestion_mode
        self.timeout = timeout or MAX_TIMEOUT
        self.wait_for_completion = wait_for_completion
        self._completion_bus = event_bus
        destination_props = DestinationProps(
            bucket=bucket, output_prefix=output_prefix, role=role, encryption_key=encryption_key
        )
        # Everything is checked before any resource exists: a bad input synthesizes nothing.
        self._validate(
            dataset_arn=dataset_arn,
            mode=mode,
            job_name=job_name,
            run_id=run_id,
            destination_props=destination_props,
            tags=tags,
            timeout_given=timeout is not None,
            table=table,
        )
        self.dataset_arn = dataset_arn
        self.ingestion_mode = mode
        self._export_destination = ExportDestination(self, destination_props)
        self.output_prefix = self._export_destination.output_prefix
        self.encryption_key = self._export_destination.encryption_key
        self.bucket = self._export_destination.bucket
        self.role = self._export_destination.role

        provider = ExportJobProvider.of(self)
        self.poller = ExportPoller.of(self)
        provider.hand_jobs_to(self.poller.state_machine_arn)
        self._allow_handler(provider, job_name, tagging=bool(tags))
        properties = self._properties(job_name, tags, run_id)
        handle = self._wait_handle(properties) if self.wait_mode == WaitMode.CONDITION else None
        if handle is not None:
            properties[Prop.WAIT_HANDLE] = handle.ref
        self.resource = CustomResource(
            self,
            "Resource",
            service_token=provider.service_token,
            resource_type=RESOURCE_TYPE,
            service_timeout=self._service_timeout(),
            properties=properties,
        )
        self._omit_default_removal_policies(self.resource)
        self.resource.node.add_dependency(*self._export_destination.write_permissions)
        # A long wait's attributes come from a resource created once the job ended.
        result = self.resource if handle is None else self._wait_past_the_hour(provider, handle)
        self.job_arn = result.get_att_string(Attr.JOB_ARN)
        self.job_name = result.get_att_string(Attr.JOB_NAME)
        self.output_path = result.get_att_string(Attr.OUTPUT_PATH)
        if stack_outputs:
            self._add_outputs()
        self.table = (
            ExportTable(self, "Table", table, ExportFiles(self._export_destination))
            if table
            else None
        )

    @property
    def wait_mode(self) -> str:
        """RESOURCE (up to 55 minutes), CONDITION (up to 12 hours) or NONE (no wait)."""
        if not self.wait_for_completion:
            return WaitMode.NONE
        if self.timeout.is_unresolved() or self._timeout_seconds <= MAX_TIMEOUT_SECONDS:
            return WaitMode.RESOURCE
        return WaitMode.CONDITION

    def _wait_handle(self, properties: Mapping[str, object]) -> CfnWaitConditionHandle:
        """A WaitCondition never waits again on update: a changed export (or timeout) gets a
        handle and condition of new logical ids, derived from the settings, never the clock."""
        waited_for = [properties.get(key) for key in (*EXPORT_SETTINGS, Prop.TIMEOUT_SECONDS)]
        resolved = json.dumps(Stack.of(self).resolve(waited_for), sort_keys=True)
        self._wait_id = hashlib.sha256(resolved.encode()).hexdigest()[:8].upper()
        return CfnWaitConditionHandle(self, f"WaitHandle{self._wait_id}")

    def _wait_past_the_hour(
        self, provider: ExportJobProvider, handle: CfnWaitConditionHandle
    ) -> CustomResource:
        condition = CfnWaitCondition(
            self,
            f"Wait{self._wait_id}",
            handle=handle.ref,
            timeout=str(
                min(self._timeout_seconds + WAIT_CONDITION_MARGIN_SECONDS, MAX_LONG_TIMEOUT_SECONDS)
            ),
            count=1,
        )
        condition.node.add_dependency(self.resource)
        result = CustomResource(
            self,
            "Result",
            service_token=provider.service_token,
            resource_type=RESULT_RESOURCE_TYPE,
            properties={Attr.JOB_ARN: self.resource.get_att_string(Attr.JOB_ARN)},
        )
        self._omit_default_removal_policies(result)
        result.node.add_dependency(condition)
        return result

    def _omit_default_removal_policies(self, custom_resource: CustomResource) -> None:
        """Delete is CloudFormation's default: saying so costs bytes in every export's resource.

        (Deleting the resource only runs our Delete, which leaves the job and its files alone.)
        """
        resource = custom_resource.node.default_child
        assert isinstance(resource, CfnResource)
        resource.cfn_options.deletion_policy = None
        resource.cfn_options.update_replace_policy = None

    @property
    def destination(self) -> str:
        """s3://bucket/prefix/ as known at synth time (no dependency on the export finishing)."""
        return self._export_destination.s3_uri

    def grant_read(self, grantee: iam.IGrantable) -> iam.Grant:
        """Read access to exactly the exported objects: list the prefix, get, decrypt."""
        return self._export_destination.grant_read(grantee)

    def grant_query(self, grantee: iam.IGrantable) -> iam.Grant:
        """What querying the table with Athena needs: Glue reads on its database and table, S3
        reads on the exported objects, KMS decrypt when a key is used."""
        if self.table is None:
            raise ValueError(f"DatasetExportJob at '{self.node.path}' has no table= to query")
        return self.table.grant_query(grantee)

    def _validate(
        self,
        *,
        dataset_arn: str,
        mode: str,
        job_name: str | None,
        run_id: str | None,
        destination_props: DestinationProps,
        tags: Mapping[str, str] | None,
        timeout_given: bool,
        table: TableOptions | None,
    ) -> None:
        claims = ExportClaims.of(self)
        problems = [
            *validation.check_dataset_arn(dataset_arn, Stack.of(self).region),
            *validation.check_ingestion_mode(mode),
            *validation.check_job_name(job_name),
            *claims.job_name_clashes(job_name, self),
            *validation.check_run_id(run_id, job_name),
            *ExportDestination.problems(self, destination_props),
            *validation.check_tags(tags),
            *validation.check_timeout(
                self.timeout, minimum=POLL_INTERVAL, maximum=MAX_LONG_TIMEOUT
            ),
            *validation.check_no_wait(
                wait_for_completion=self.wait_for_completion, timeout_given=timeout_given
            ),
            *(table.problems(partitioned=False) if table else []),
        ]
        if problems:
            listing = "\n".join(f"  - {problem}" for problem in problems)
            raise ValueError(f"DatasetExportJob at '{self.node.path}' is misconfigured:\n{listing}")
        claims.claim_job_name(job_name, self)

    def _allow_handler(
        self, provider: ExportJobProvider, job_name: str | None, *, tagging: bool
    ) -> None:
        """Create and describe this export's jobs, pass its role, tag when asked; nothing wider.

        AWS's Service Authorization Reference lists only `dataset-export-job` as
        CreateDatasetExportJob's resource type: IAM can limit the job names, not the dataset.
        It lists no resource type for TagResource: only Resource "*" reaches it.
        """
        name_pattern = job_name or f"{self._job_name_prefix}-*"
        job_arns = self._compact_personalize_arn(f"dataset-export-job/{name_pattern}")
        role = provider.handler_role
        acknowledge_export_wildcards(
            handler_role=role,
            job_arns=job_arns,
            service_role=self.role,
            object_arns=self._export_destination.object_arns,
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
        if tagging:
            role.add_to_principal_policy(
                iam.PolicyStatement(actions=["personalize:TagResource"], resources=["*"])
            )
            acknowledge_tagging(role)
        self._export_destination.grant_pass_role(role)
        self.poller.grant_start(role)
        self.poller.grant_publish(self._completion_bus_arn)

    @property
    def _job_name_prefix(self) -> str:
        return job_name_prefix("-".join(scope.node.id for scope in self.node.scopes[1:]))

    def _compact_personalize_arn(self, resource: str) -> str:
        """The same ARN as one Fn::Sub string: a third of the Fn::Join's bytes, in every export's
        statement of the stack's shared handler policy."""
        if Token.is_unresolved(resource):
            return personalize_arn(resource)
        return Fn.sub(
            "arn:${AWS::Partition}:personalize:${AWS::Region}:${AWS::AccountId}:" + resource
        )

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
            Prop.CONSTRUCT_PATH: self.node.path,
        }
        optional: dict[str, object | None] = {
            Prop.WAIT_MODE: None if self.wait_mode == WaitMode.RESOURCE else self.wait_mode,
            Prop.EVENT_BUS_NAME: self._completion_bus.event_bus_name
            if self._completion_bus
            else None,
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


def _tag_list(tags: Mapping[str, str] | None) -> list[dict[str, str]] | None:
    if not tags:
        return None
    return [{"tagKey": key, "tagValue": value} for key, value in sorted(tags.items())]
