"""DatasetExportSchedule: a Personalize dataset exported on a schedule, each run into a dated
folder of its own, the latest good one always named in an SSM parameter."""

from __future__ import annotations

import datetime
import hashlib
import math
import re
from collections.abc import Mapping
from typing import Any

import jsii
from aws_cdk import Aws, Duration, Fn, ITaggableV2, Stack, TagManager, Token
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_scheduler_targets as targets
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from personalize_export import schedule_rules, validation
from personalize_export.acknowledgments import acknowledge_export_objects
from personalize_export.completion_event import CompletionEvents
from personalize_export.dataset_export_job import IngestionMode, chosen_ingestion_mode
from personalize_export.destination import (
    LIFECYCLE_RULE_NOT_ADDED,
    DestinationProps,
    ExportDestination,
)
from personalize_export.poller import ExportPoller
from personalize_export.runtime.export_job.contract import (
    LONG_POLL_SECONDS,
    MAX_LONG_TIMEOUT_SECONDS,
    RUN_FOLDER_LENGTH,
    RUN_NAME_PREFIX_MAX_LENGTH,
    WATCH_AFTER_DEADLINE_SECONDS,
    Poll,
)
from personalize_export.table import ExportFiles, ExportTable, TableOptions, run_projection
from personalize_export.tagging import ExportTags
from personalize_export.types import optional, required, str_mapping, typed_options

__all__ = [
    "LATEST_READ_ACTIONS",
    "LIFECYCLE_RULE_NOT_ADDED",
    "WATCH",
    "DatasetExportSchedule",
    "run_name_prefix",
]

# How long a run's workflow watches its job: as long as a DatasetExportJob that doesn't wait.
WATCH = Duration.seconds(MAX_LONG_TIMEOUT_SECONDS + WATCH_AFTER_DEADLINE_SECONDS)
# What grant_read allows on the latest parameter (ssm:DescribeParameters takes no resource).
LATEST_READ_ACTIONS = ["ssm:GetParameter", "ssm:GetParameters", "ssm:GetParameterHistory"]
_NAME_ILLEGAL = re.compile(r"[^a-zA-Z0-9\-_]+")
_NAME_HASH_LENGTH = 8
# The scheduled time a run is named after, as Scheduler writes <aws.scheduler.scheduled-time>.
SCHEDULED_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")
SCHEDULED_TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
# The resource type the schedule's tag manager reports (Tags.of include/exclude filters).
TAGGED_RESOURCE_TYPE = "Custom::PersonalizeExportSchedule"
_SCHEDULE_OPTIONS = (
    required("dataset_arn", str),
    required("schedule", scheduler.ScheduleExpression),
    optional("ingestion_mode", IngestionMode, str),
    optional("bucket", s3.IBucket),
    optional("output_prefix", str),
    optional("role", iam.IRole),
    optional("encryption_key", kms.IKey),
    str_mapping("tags"),
    optional("keep", Duration),
    required("enabled", bool),
    optional("event_bus", events.IEventBus),
    optional("table", TableOptions),
)


@jsii.implements(ITaggableV2)
class DatasetExportSchedule(Construct, CompletionEvents):
    """Exports a Personalize dataset on a schedule: each run starts one export job, named after
    its scheduled time, writing into a dated folder of its own under the prefix.

    EventBridge Scheduler starts the stack's export poller (a Step Functions workflow shared
    by every export of the stack; no function of ours runs) with the run's scheduled time. The
    workflow names the job and folder, creates the job (retrying while Personalize throttles,
    the dataset is busy or the job limit is reached), watches it to its end, publishes the
    completion event and, when the job is ACTIVE, records its folder in the latest parameter.

    Layout, in UTC (Scheduler's scheduled time): a run scheduled for 2026-11-29T02:00:00Z
    writes into ``<prefix>2026/11/29/0200/`` and its job is ``<name prefix>-20261129-0200``.
    A repeated invocation of one scheduled time finds that job and starts no other.

    :param dataset_arn: the dataset to export (a literal ARN or a token).
    :param schedule: when to run, e.g. ``ScheduleExpression.cron(hour="2", minute="0")``.
    :param ingestion_mode: BULK, PUT or ALL. Default: PUT, as the service, with the warning
        ``personalize-export:IngestionModeNotGiven``.
    :param bucket: the bucket to export into. Default: a new hardened bucket.
    :param output_prefix: the key prefix the dated run folders go under. Default: the
        construct path.
    :param role: the service role Personalize assumes. Default: a new role with exactly the
        rights the export needs.
    :param encryption_key: a KMS key: SSE-KMS on a new bucket and kmsKeyArn on every job.
        Default: none (SSE-S3 on a new bucket).
    :param tags: tags for every job, over those of ``Tags.of``. Default: none (only those of
        ``Tags.of``).
    :param keep: how long each run is kept: a lifecycle rule on the prefix expires its objects
        after this many days (whole days, at least one), and their noncurrent versions a day
        later. Only on a bucket of the app; for an imported one it warns
        ``personalize-export:LifecycleRuleNotAdded``. Default: runs are kept.
    :param enabled: False deploys the schedule disabled. Default: True.
    :param event_bus: where every run's completion event goes. Default: the account's default bus.
    :param table: a Glue table over the prefix, each run a partition ``run`` (``YYYY/MM/DD/HHMM``)
        found by projection, for Athena (``TableOptions``; see ``grant_query``). Default: none.
    """

    dataset_arn: str
    ingestion_mode: str
    keep: Duration | None
    job_name_prefix: str
    output_prefix: str
    encryption_key: kms.IKey | None
    bucket: s3.IBucket
    role: iam.IRole
    poller: ExportPoller
    latest_parameter: ssm.StringParameter
    schedule: scheduler.Schedule
    table: ExportTable | None

    @typed_options("DatasetExportSchedule", *_SCHEDULE_OPTIONS)
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        dataset_arn: str,
        schedule: scheduler.ScheduleExpression,
        ingestion_mode: IngestionMode | str | None = None,
        bucket: s3.IBucket | None = None,
        output_prefix: str | None = None,
        role: iam.IRole | None = None,
        encryption_key: kms.IKey | None = None,
        tags: Mapping[str, str] | None = None,
        keep: Duration | None = None,
        enabled: bool = True,
        event_bus: events.IEventBus | None = None,
        table: TableOptions | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        mode = chosen_ingestion_mode(self, ingestion_mode)
        self._tags = ExportTags(self, tags, TAGGED_RESOURCE_TYPE)
        self._completion_bus = event_bus
        destination_props = DestinationProps(
            bucket=bucket, output_prefix=output_prefix, role=role, encryption_key=encryption_key
        )
        # Everything is checked before any resource exists: a bad input synthesizes nothing.
        self._validate(
            dataset_arn=dataset_arn,
            mode=mode,
            schedule=schedule,
            destination_props=destination_props,
            tags=tags,
            keep=keep,
            table=table,
        )
        self.dataset_arn = dataset_arn
        self.ingestion_mode = mode
        self.keep = keep
        self.job_name_prefix = run_name_prefix(self)
        self._export_destination = ExportDestination(self, destination_props)
        self.output_prefix = self._export_destination.output_prefix
        self.encryption_key = self._export_destination.encryption_key
        self.bucket = self._export_destination.bucket
        self.role = self._export_destination.role
        if keep is not None:
            self._export_destination.expire_after(keep)
        acknowledge_export_objects(self.role, self._export_destination.object_arns)

        self.poller = ExportPoller.of(self)
        self.latest_parameter = self._latest_parameter()
        self._allow_poller(tagging=bool(tags))
        self.schedule = self._schedule(schedule, enabled=enabled)
        self._tags.when_tagged_by_aspects(self._allow_tagging, at=self.schedule)
        self.table = self._table(table, schedule) if table else None

    @property
    def cdk_tag_manager(self) -> TagManager:
        """Where ``Tags.of(...)`` sets the tags of this schedule's jobs."""
        return self._tags.manager

    def _latest_parameter(self) -> ssm.StringParameter:
        """The latest good run's folder; the prefix itself until a run ends ACTIVE.

        A new destination changes its value in the template, so CloudFormation resets it (runs'
        paths are compared within one prefix); nothing else of it changes between deploys.
        """
        return ssm.StringParameter(
            self,
            "Latest",
            string_value=self.destination,
            description=f"Latest ACTIVE export of {self.node.path}"[:1024],
        )

    def _schedule(
        self,
        expression: scheduler.ScheduleExpression,
        *,
        enabled: bool,
    ) -> scheduler.Schedule:
        """Scheduler starts the stack's poller with this schedule's run input (one Scheduler
        role per stack and state machine: aws-cdk-lib shares it between schedules)."""
        schedule = scheduler.Schedule(
            self,
            "Schedule",
            schedule=expression,
            target=targets.StepFunctionsStartExecution(
                self.poller.state_machine,
                input=scheduler.ScheduleTargetInput.from_object(self.run_input()),
            ),
            enabled=enabled,
            description=f"Personalize dataset export {self.node.path}"[:512],
        )
        # A run right after the deploy finds Personalize's rights to the bucket in place.
        schedule.node.add_dependency(*self._export_destination.write_permissions)
        return schedule

    @property
    def destination(self) -> str:
        """s3://bucket/prefix/: every run's dated folder is under it."""
        return self._export_destination.s3_uri

    def grant_read(self, grantee: iam.IGrantable) -> iam.Grant:
        """Every run's objects (list the prefix, get, decrypt) and the latest parameter."""
        latest = iam.Grant.add_to_principal(
            grantee=grantee,
            actions=LATEST_READ_ACTIONS,
            resource_arns=[self._latest_arn],
        )
        return self._export_destination.grant_read(grantee).combine(latest)

    def _table(self, options: TableOptions, schedule: scheduler.ScheduleExpression) -> ExportTable:
        time_zone = schedule.time_zone.timezone_name if schedule.time_zone else None
        runs = run_projection(schedule.expression_string, time_zone, options.first_run)
        return ExportTable(self, "Table", options, ExportFiles(self._export_destination, runs))

    def grant_query(self, grantee: iam.IGrantable) -> iam.Grant:
        """What querying the table with Athena needs: Glue reads on its database and table, S3
        reads on every run's objects, KMS decrypt when a key is used."""
        if self.table is None:
            raise ValueError(f"DatasetExportSchedule at '{self.node.path}' has no table= to query")
        return self.table.grant_query(grantee)

    def _validate(
        self,
        *,
        dataset_arn: str,
        mode: str,
        schedule: scheduler.ScheduleExpression,
        destination_props: DestinationProps,
        tags: Mapping[str, str] | None,
        keep: Duration | None,
        table: TableOptions | None,
    ) -> None:
        problems = [
            *validation.check_dataset_arn(dataset_arn, Stack.of(self).region),
            *validation.check_ingestion_mode(mode),
            *schedule_rules.check_schedule(schedule.expression_string),
            *ExportDestination.problems(
                self,
                destination_props,
                folder_length=RUN_FOLDER_LENGTH,
                keep=keep,
                dataset_arn=dataset_arn,
            ),
            *validation.check_tags(tags),
            *schedule_rules.check_keep(keep),
            *(table.problems(partitioned=True) if table else []),
        ]
        if problems:
            listing = "\n".join(f"  - {problem}" for problem in problems)
            raise ValueError(
                f"DatasetExportSchedule at '{self.node.path}' is misconfigured:\n{listing}"
            )

    def _allow_poller(self, *, tagging: bool) -> None:
        """The stack's poller may pass this schedule's role, record its latest parameter and
        publish on its bus; creating and describing jobs it may for the whole stack already."""
        state_machine = self.poller.state_machine
        self._export_destination.grant_pass_role(state_machine)
        self.poller.grant_latest(self._latest_arn)
        self.poller.grant_publish(self._completion_bus_arn)
        if tagging:
            self._allow_tagging()

    def _allow_tagging(self) -> None:
        # Identical statements are rendered once, however many schedules set tags; the poller
        # acknowledges Resource '*' on its role, TagResource included.
        self.poller.state_machine.add_to_role_policy(
            iam.PolicyStatement(actions=["personalize:TagResource"], resources=["*"])
        )

    @property
    def _latest_arn(self) -> str:
        """The latest parameter's ARN as one Fn::Sub: the poller's policy lists it for every
        schedule of the stack, twice (read and record)."""
        return Fn.sub(
            "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter/${Name}",
            {"Name": self.latest_parameter.parameter_name},
        )

    def run_input(self, scheduled_time: str | None = None) -> dict[str, Any]:
        """The export poller's input for one run of this schedule.

        :param scheduled_time: the run's time, for a run started by hand (an integ test, a
            backfill): a UTC time such as ``2026-11-29T02:00:00Z``; the job and folder are named
            after it. A token is checked only when the run starts. Default: Scheduler's
            placeholder, which Scheduler fills in at each run (the schedule's own input).

        The input holds tokens (ARNs, names, the tags): render it with
        ``sfn.TaskInput.from_object`` or ``Stack.of(schedule).to_json_string``, not
        ``json.dumps``. Start the run with ``states:StartExecution`` on
        ``self.poller.state_machine`` (docs/schedules.md, "Start a run by hand").
        """
        if scheduled_time is not None:
            self._check_scheduled_time(scheduled_time)
        destination: dict[str, str] = {"Path": self.destination}
        if self.encryption_key is not None:
            destination["KmsKeyArn"] = self.encryption_key.key_arn
        create: dict[str, Any] = {
            "DatasetArn": self.dataset_arn,
            "IngestionMode": self.ingestion_mode,
            "RoleArn": self.role.role_arn,
            "JobOutput": {"S3DataDestination": destination},
            # Tags.of and tags=, read at synth; omitted when there are none.
            "Tags": self._tags.rendered("TagKey", "TagValue"),
        }
        polls = math.ceil(WATCH.to_seconds() / LONG_POLL_SECONDS)
        return {
            Poll.CREATE: create,
            Poll.RUN: {"NamePrefix": self.job_name_prefix},
            Poll.EVENT: {
                "EventBusName": self._completion_bus.event_bus_name
                if self._completion_bus
                else "default",
                "StackId": Aws.STACK_ID,
                "ConstructPath": self.node.path,
                "ScheduledTime": scheduler.ContextAttribute.scheduled_time
                if scheduled_time is None
                else scheduled_time,
            },
            Poll.POLLS: {"Left": polls, "WatchLeft": polls},
            Poll.HANDLE: "",
            Poll.LATEST: self.latest_parameter.parameter_name,
            Poll.TIMEOUT_SECONDS: int(WATCH.to_seconds()),
        }

    def _check_scheduled_time(self, scheduled_time: str) -> None:
        if not isinstance(scheduled_time, str):
            raise TypeError(
                f"DatasetExportSchedule at '{self.node.path}': run_input(scheduled_time=...) "
                f"expects str, got {type(scheduled_time).__name__} {scheduled_time!r}"
            )
        if Token.is_unresolved(scheduled_time) or _is_utc_time(scheduled_time):
            return
        raise ValueError(
            f"DatasetExportSchedule at '{self.node.path}': run_input(scheduled_time="
            f"{validation.shown(scheduled_time)}) is not a UTC time such as "
            "2026-11-29T02:00:00Z (YYYY-MM-DDTHH:MM:SSZ): the run's job and folder are named "
            "after it"
        )


def _is_utc_time(text: str) -> bool:
    """A real date and time written as Scheduler writes it (ASCII digits only)."""
    if not SCHEDULED_TIME.fullmatch(text):
        return False
    try:
        datetime.datetime.strptime(text, SCHEDULED_TIME_FORMAT)
    except ValueError:
        return False
    return True


def run_name_prefix(schedule: Construct) -> str:
    """The job name prefix of a schedule's runs: readable, unique, short enough.

    The construct path's end (legal characters only) and a hash of the stack name and path:
    names are unique per account and region, and two stacks deployed there have two names. At
    most 49 characters, so that ``-YYYYMMDD-HHMM`` completes a name of at most 63.
    """
    stack = Stack.of(schedule)
    stack_name = stack.stack_name if not Token.is_unresolved(stack.stack_name) else ""
    seed = f"{stack_name}|{schedule.node.path}"
    digest = hashlib.sha256(seed.encode()).hexdigest()[:_NAME_HASH_LENGTH]
    ids = "-".join(scope.node.id for scope in schedule.node.scopes[1:])
    room = RUN_NAME_PREFIX_MAX_LENGTH - _NAME_HASH_LENGTH - 1
    readable = _NAME_ILLEGAL.sub("-", ids).strip("-_")[-room:].lstrip("-_")
    return f"{readable}-{digest}" if readable else digest
