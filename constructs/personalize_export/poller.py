"""The one export poller per stack: a Step Functions Standard workflow that watches an export
job until it ends, however long that takes, then publishes the completion event, records the
latest good export if asked, and signals a WaitCondition if one waits.

It calls Personalize through the `aws-sdk:personalize` service integration (no Lambda polls);
only the WaitCondition signal is a small function (a presigned-URL PUT). The handler starts one
execution per job (named after it); a schedule run starts it with a `Create` step first.
Input fields (contract.Poll):

    Job         JobArn, JobName, DatasetArn, IngestionMode, OutputPath
    Event       EventBusName, StackId, ConstructPath, ScheduledTime
    Polls       Left (polls until the deadline), WatchLeft (polls until it stops watching)
    Handle      the WaitConditionHandle URL, or ""
    Latest      the SSM parameter that holds the latest good output path, or ""
    Create      (optional) CreateDatasetExportJob's parameters, in Step Functions' PascalCase;
                Tags only when there are some
    Run         (optional, a schedule's run) NamePrefix: with Create, the workflow names Job,
                its ARN (Event.StackId's partition, region, account) and its dated folder
                from Event.ScheduledTime itself
"""

from __future__ import annotations

from dataclasses import dataclass

import jsii
from aws_cdk import Duration, IStableListProducer, Lazy, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from personalize_export.acknowledgments import acknowledge_poller
from personalize_export.completion_event import DETAIL_TYPE, FAILED, SOURCE, SUCCEEDED, Detail
from personalize_export.provider import HANDLER_RUNTIME, handler_code
from personalize_export.runtime.export_job.contract import (
    LONG_POLL_SECONDS,
    SIGNAL_ENTRY,
    Poll,
    Signal,
)

POLLER_ID = "PersonalizeExportPoller"
DISCARD = sfn.JsonPath.DISCARD
# A job of this name exists: a scheduled run's job was started by an earlier invocation.
ALREADY_EXISTS = "Personalize.ResourceAlreadyExistsException"
# Errors time can't mend: the operation's own modelled errors for a bad request or a missing
# resource. Step Functions names an error <Service>.<Name> only when the API model declares it
# for the operation; every other one (throttling, 5xx, AccessDenied) arrives as
# Personalize.PersonalizeException with the code only in the Cause, or, should AWS ever name it by
# its code, as that: so everything else is retried until the budget is spent.
DESCRIBE_FATAL_ERRORS = [
    "Personalize.InvalidInputException",
    "Personalize.ResourceNotFoundException",
]
CREATE_FATAL_ERRORS = [
    ALREADY_EXISTS,
    "Personalize.InvalidInputException",
    "Personalize.ResourceNotFoundException",
    "Personalize.TooManyTagsException",
]
# The role the execution runs as (the context object), named in failure reasons.
EXECUTION_ROLE_PATH = "$$.Execution.RoleArn"
JOB_ARNS = "arn:{partition}:personalize:{region}:{account}:dataset-export-job/*"
# The first hour, and all the while a deploy waits, the poller looks every LONG_POLL_SECONDS;
# after that it looks every SLOW_POLL_SECONDS, so that a 12-hour wait plus a day's watch stays
# far below Step Functions' 25,000 history events per execution.
FAST_POLLS = 3600 // LONG_POLL_SECONDS
SLOW_POLL_SECONDS = 300
SLOW_POLL_STEP = SLOW_POLL_SECONDS // LONG_POLL_SECONDS
# A completion event EventBridge rejects (FailedEntryCount > 0) is sent again this many times in
# all, PUBLISH_RETRY_SECONDS apart; then the execution ends failed, naming the rejection.
PUBLISH_TRIES = 4
PUBLISH_RETRY_SECONDS = 30
EVENT_NOT_PUBLISHED = "CompletionEventNotPublished"
REJECTED_ENTRY = "EventBridge.FailedEntry"


@dataclass(frozen=True)
class RetryBudget:
    """A task's Retry for every error but the fatal ones: interval, back-off and attempts."""

    interval_seconds: int
    backoff_rate: float
    max_attempts: int
    max_delay_seconds: int

    def total_seconds(self) -> float:
        """How long consecutive failures are retried before the task gives up."""
        return sum(
            min(self.interval_seconds * self.backoff_rate**attempt, self.max_delay_seconds)
            for attempt in range(self.max_attempts)
        )

    def apply(self, task: sfn.TaskStateBase, fatal: list[str]) -> None:
        task.add_retry(errors=fatal, max_attempts=0)
        task.add_retry(
            errors=[sfn.Errors.ALL],
            interval=Duration.seconds(self.interval_seconds),
            backoff_rate=self.backoff_rate,
            max_attempts=self.max_attempts,
            max_delay=Duration.seconds(self.max_delay_seconds),
        )


# A Describe rides out about 75 minutes of consecutive failures (an hour's storm included);
# a Create about 80 (a busy dataset, the job limit, throttling).
DESCRIBE_RETRY = RetryBudget(
    interval_seconds=5, backoff_rate=2, max_attempts=20, max_delay_seconds=300
)
CREATE_RETRY = RetryBudget(
    interval_seconds=60, backoff_rate=1.5, max_attempts=12, max_delay_seconds=600
)


class ExportPoller(Construct):
    """The stack's poller state machine and its signal function, shared by every export."""

    @classmethod
    def of(cls, scope: Construct) -> ExportPoller:
        stack = Stack.of(scope)
        existing = stack.node.try_find_child(POLLER_ID)
        if isinstance(existing, ExportPoller):
            return existing
        return cls(stack, POLLER_ID)

    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        self._buses: list[str] = []
        self._start_granted = False
        self._parameters: list[str] = []
        self.signal_function = self._signal_function()
        self.state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            definition_body=sfn.DefinitionBody.from_chainable(self._definition()),
            state_machine_type=sfn.StateMachineType.STANDARD,
            tracing_enabled=True,
            logs=sfn.LogOptions(
                destination=self._log_group("Logs"),
                level=sfn.LogLevel.ALL,
                include_execution_data=False,
            ),
        )

        acknowledge_poller(self)

    @property
    def state_machine_arn(self) -> str:
        return self.state_machine.state_machine_arn

    def grant_start(self, role: iam.IRole) -> None:
        """Let the handler start executions (once per stack)."""
        if self._start_granted:
            return
        self._start_granted = True
        self.state_machine.grant_start_execution(role)

    def grant_publish(self, bus_arn: str) -> None:
        """Let the poller put completion events on this bus."""
        if bus_arn not in self._buses:
            self._buses.append(bus_arn)

    def grant_latest(self, parameter_arn: str) -> None:
        """Let the poller record the latest good output path in this SSM parameter."""
        if parameter_arn not in self._parameters:
            self._parameters.append(parameter_arn)

    def _granted(self, granted: list[str], unused: str) -> list[str]:
        """The resources granted so far, resolved at synth; a name of the poller's own that
        nothing uses when none were (an IAM statement needs at least one resource)."""
        stack = Stack.of(self)
        placeholder = f"arn:{stack.partition}:{unused}"
        return Lazy.list(_GrantedSoFar(granted, placeholder))

    # --- the workflow ------------------------------------------------------------------------

    def _definition(self) -> sfn.IChainable:
        describe = self._describe()
        fast = self._next_poll("", step=1, fast=True).next(describe)
        slow = self._next_poll("Slow", step=SLOW_POLL_STEP, fast=False).next(describe)
        ended = self._ended()
        describe.next(
            sfn.Choice(self, "Ended?")
            .when(self._status_is(SUCCEEDED, FAILED), ended)
            .when(sfn.Condition.number_less_than_equals(Poll.WATCH_LEFT_PATH, 0), self._give_up())
            .when(self._deadline_passed(), self._deadline(fast))
            .when(self._slow_down(), slow)
            .otherwise(fast)
        )
        unreadable = self._signal_if_waited("Unreadable").next(
            sfn.Fail(
                self,
                "CouldNotReadJob",
                error="ExportJobUnreadable",
                cause_path=f"States.JsonToString({Poll.ERROR_PATH})",
            )
        )
        describe.add_catch(unreadable, errors=[sfn.Errors.ALL], result_path=Poll.ERROR_PATH)
        budget = sfn.Pass(
            self,
            "PollBudget",
            parameters={
                "Left.$": Poll.POLLS_LEFT_PATH,
                "WatchLeft.$": Poll.WATCH_LEFT_PATH,
                "Fast": FAST_POLLS,
            },
            result_path=Poll.POLLS_PATH,
        )
        return budget.next(self._create_if_asked(describe, ended))

    def _next_poll(self, kind: str, *, step: int, fast: bool) -> sfn.Chain:
        """Count the poll (`step` minutes off both budgets; a fast one off the first hour's),
        then wait for it."""
        count = sfn.Pass(
            self,
            f"Count{kind}Poll",
            parameters={
                "Left.$": f"States.MathAdd({Poll.POLLS_LEFT_PATH}, -{step})",
                "WatchLeft.$": f"States.MathAdd({Poll.WATCH_LEFT_PATH}, -{step})",
                "Fast.$": f"States.MathAdd({Poll.FAST_POLLS_PATH}, -1)"
                if fast
                else Poll.FAST_POLLS_PATH,
            },
            result_path=Poll.POLLS_PATH,
        )
        seconds = LONG_POLL_SECONDS * step
        wait = sfn.Wait(self, f"{kind}Wait", time=sfn.WaitTime.duration(Duration.seconds(seconds)))
        return count.next(wait)

    def _slow_down(self) -> sfn.Condition:
        """Nobody waits (no deploy, or past its deadline) and the first hour has passed."""
        return sfn.Condition.and_(
            sfn.Condition.string_equals(Poll.HANDLE_PATH, ""),
            sfn.Condition.number_less_than_equals(Poll.FAST_POLLS_PATH, 0),
        )

    def _ended(self) -> sfn.IChainable:
        """Publish the event, record the latest good export, signal a waiting deploy, and end
        failed if the event could not be published (the ExecutionsFailed metric tells)."""
        latest_done = sfn.Pass(self, "LatestRecorded")
        latest_done.next(self._signal_if_waited("Ended")).next(self._finish())
        record_latest = self._record_latest(latest_done)
        budget = self._publish(record_latest)
        # Personalize leaves failureReason out of an ACTIVE job; the event always has it.
        with_reason = sfn.Pass(
            self,
            "CompletionDetail",
            parameters=_detail_parameters(f"{Poll.DESCRIBED_JOB_PATH}.FailureReason"),
            result_path=Poll.DETAIL_PATH,
        )
        without_reason = sfn.Pass(
            self,
            "CompletionDetailNoReason",
            parameters=_detail_parameters(None),
            result_path=Poll.DETAIL_PATH,
        )
        with_reason.next(budget)
        without_reason.next(budget)
        has_reason = sfn.Condition.is_present(f"{Poll.DESCRIBED_JOB_PATH}.FailureReason")
        return (
            sfn.Choice(self, "FailureReason?")
            .when(has_reason, with_reason)
            .otherwise(without_reason)
        )

    def _finish(self) -> sfn.Choice:
        not_published = sfn.Fail(
            self,
            "EventNotPublished",
            error=EVENT_NOT_PUBLISHED,
            cause_path=f"States.JsonToString({Poll.EVENT_ERROR_PATH})",
        )
        return (
            sfn.Choice(self, "EventPublished?")
            .when(sfn.Condition.is_present(Poll.EVENT_ERROR_PATH), not_published)
            .otherwise(sfn.Succeed(self, "Done"))
        )

    def _deadline(self, watch_on: sfn.IChainable) -> sfn.IChainable:
        """Tell the waiting deploy once, then watch on for the completion event."""
        stop_waiting = sfn.Pass(
            self, "StopWaiting", result=sfn.Result.from_string(""), result_path=Poll.HANDLE_PATH
        )
        stop_waiting.next(watch_on)
        signal = self._signal("Deadline")
        signal.add_catch(stop_waiting, errors=[sfn.Errors.ALL], result_path=DISCARD)
        return signal.next(stop_waiting)

    def _create_if_asked(self, describe: sfn.IChainable, ended: sfn.IChainable) -> sfn.IChainable:
        """Start the job first when the input asks (a schedule's run), then watch it.

        A scheduled run (input `Run`) first names its job and dated folder (Create.JobName,
        the Path's folder, and Job) from its scheduled time: the same time always gives the
        same job, so a retried or repeated invocation finds the job its first one started
        (ResourceAlreadyExists) and watches that. A create still refused after the retries is
        reported like a job that failed: the completion event, status CREATE FAILED, the
        refusal as the reason.
        """
        already_started = sfn.Pass(
            self, "AlreadyStarted", comment="A repeated run of one scheduled time: watch its job"
        )
        already_started.next(describe)
        not_started = sfn.Pass(
            self,
            "NotStarted",
            parameters={
                "Job": {
                    "Status": FAILED,
                    "FailureReason.$": "States.Format('Could not start export job {}: {}. Check "
                    "that the export poller role {} may call personalize:CreateDatasetExportJob "
                    f"and pass the service role', {Poll.JOB_ARN_PATH}, "
                    f"States.JsonToString({Poll.ERROR_PATH}), {EXECUTION_ROLE_PATH})",
                }
            },
            result_path=Poll.DESCRIBE_PATH,
        )
        not_started.next(ended)
        outcomes = (describe, already_started, not_started)
        create = (
            sfn.Choice(self, "Tagged?")
            .when(
                sfn.Condition.is_present(Poll.CREATE_TAGS_PATH),
                self._create("CreateTaggedJob", *outcomes, tagged=True),
            )
            .otherwise(self._create("CreateJob", *outcomes, tagged=False))
        )
        scheduled = (
            sfn.Choice(self, "ScheduledRun?")
            .when(sfn.Condition.not_(sfn.Condition.is_present(Poll.RUN_PATH)), create)
            .when(
                sfn.Condition.string_matches(Poll.SCHEDULED_TIME_PATH, "*-*-*T*:*:*Z"),
                self._name_run().next(create),
            )
            .otherwise(
                sfn.Fail(
                    self,
                    "ScheduledTimeInvalid",
                    error="ScheduledTimeInvalid",
                    cause="Event.ScheduledTime must be a UTC time such as 2026-11-29T02:00:00Z",
                )
            )
        )
        return (
            sfn.Choice(self, "Create?")
            .when(sfn.Condition.is_present(Poll.CREATE_PATH), scheduled)
            .otherwise(describe)
        )

    def _create(
        self,
        construct_id: str,
        describe: sfn.IChainable,
        already_started: sfn.IChainable,
        not_started: sfn.IChainable,
        *,
        tagged: bool,
    ) -> sfn.IChainable:
        """CreateDatasetExportJob from `Create`, retried (CREATE_RETRY) on every error but a bad
        request or a missing dataset; with Tags only when `Create` has them."""
        tags = {"Tags.$": Poll.CREATE_TAGS_PATH} if tagged else {}
        create = tasks.CallAwsService(
            self,
            construct_id,
            service="personalize",
            action="createDatasetExportJob",
            iam_action="personalize:CreateDatasetExportJob",
            iam_resources=[self._job_arns()],
            parameters={**_create_parameters(), **tags},
            result_path=DISCARD,
        )
        CREATE_RETRY.apply(create, CREATE_FATAL_ERRORS)
        create.add_catch(already_started, errors=[ALREADY_EXISTS], result_path=Poll.ERROR_PATH)
        create.add_catch(not_started, errors=[sfn.Errors.ALL], result_path=Poll.ERROR_PATH)
        return create.next(describe)

    def _name_run(self) -> sfn.Chain:
        """The job's name, ARN and dated folder, from the run's scheduled time (in UTC).

        2026-11-29T02:00:00Z gives the job <NamePrefix>-20261129-0200 writing into
        <Path>2026/11/29/0200/ (contract.RUN_NAME_SUFFIX_LENGTH, RUN_FOLDER_LENGTH).
        """
        split = sfn.Pass(
            self,
            "SplitScheduledTime",
            parameters={
                "Parts.$": f"States.StringSplit({Poll.SCHEDULED_TIME_PATH}, '-T:Z')",
                # arn:<partition>:cloudformation:<region>:<account>:stack/...: the job's ARN is
                # in the stack's partition, region and account.
                "Stack.$": f"States.StringSplit({Poll.STACK_ID_PATH}, ':')",
            },
            result_path=Poll.RUN_TIME_PATH,
        )
        year, month, day, hour, minute = (
            f"States.ArrayGetItem({Poll.RUN_TIME_PARTS_PATH}, {index})" for index in range(5)
        )
        stamp = f"{year}, {month}, {day}, {hour}, {minute}"
        partition, region, account = (
            f"States.ArrayGetItem({Poll.RUN_STACK_PARTS_PATH}, {index})" for index in (1, 3, 4)
        )
        base = Poll.CREATE_PATH_PATH
        name_job = sfn.Pass(
            self,
            "NameJob",
            parameters={
                "JobName.$": f"States.Format('{{}}-{{}}{{}}{{}}-{{}}{{}}', "
                f"{Poll.RUN_NAME_PREFIX_PATH}, {stamp})",
                "JobArn.$": "States.Format('arn:{}:personalize:{}:{}:dataset-export-job/"
                f"{{}}-{{}}{{}}{{}}-{{}}{{}}', {partition}, {region}, {account}, "
                f"{Poll.RUN_NAME_PREFIX_PATH}, {stamp})",
                "OutputPath.$": f"States.Format('{{}}{{}}/{{}}/{{}}/{{}}{{}}/', {base}, {stamp})",
                "DatasetArn.$": f"{Poll.CREATE_PATH}.DatasetArn",
                "IngestionMode.$": f"{Poll.CREATE_PATH}.IngestionMode",
            },
            result_path=Poll.JOB_PATH,
        )
        # The request takes the job's name, and its Path (the schedule's prefix) the folder.
        request_name = sfn.Pass(
            self,
            "RequestJobName",
            input_path=f"{Poll.JOB_PATH}.JobName",
            result_path=f"{Poll.CREATE_PATH}.JobName",
        )
        request_folder = sfn.Pass(
            self,
            "RequestRunFolder",
            input_path=f"{Poll.JOB_PATH}.OutputPath",
            result_path=base,
        )
        return split.next(name_job).next(request_name).next(request_folder)

    def _describe(self) -> tasks.CallAwsService:
        describe = tasks.CallAwsService(
            self,
            "DescribeJob",
            service="personalize",
            action="describeDatasetExportJob",
            iam_action="personalize:DescribeDatasetExportJob",
            iam_resources=[self._job_arns()],
            parameters={"DatasetExportJobArn.$": Poll.JOB_ARN_PATH},
            result_selector={"Job.$": "$.DatasetExportJob"},
            result_path=Poll.DESCRIBE_PATH,
        )
        DESCRIBE_RETRY.apply(describe, DESCRIBE_FATAL_ERRORS)
        return describe

    def _status_is(self, *statuses: str) -> sfn.Condition:
        return sfn.Condition.or_(
            *(sfn.Condition.string_equals(Poll.STATUS_PATH, status) for status in statuses)
        )

    def _deadline_passed(self) -> sfn.Condition:
        return sfn.Condition.and_(
            sfn.Condition.number_less_than_equals(Poll.POLLS_LEFT_PATH, 0),
            sfn.Condition.not_(sfn.Condition.string_equals(Poll.HANDLE_PATH, "")),
        )

    def _give_up(self) -> sfn.Succeed:
        return sfn.Succeed(self, "StoppedWatching", comment="The job outlived the watch")

    def _publish(self, then: sfn.IChainable) -> sfn.IChainable:
        """The completion event. A failed call is retried; an entry EventBridge rejects
        (PutEvents answers 200 with FailedEntryCount) is sent again PUBLISH_TRIES times. Either
        way `then` follows, with EventError set when the event was lost."""
        publish = tasks.CallAwsService(
            self,
            "PublishCompletion",
            service="eventbridge",
            action="putEvents",
            iam_action="events:PutEvents",
            iam_resources=self._granted(self._buses, self._unused("events", "event-bus/")),
            parameters={
                "Entries": [
                    {
                        "Source": SOURCE,
                        "DetailType": DETAIL_TYPE,
                        "EventBusName.$": Poll.BUS_PATH,
                        # As AWS's own service events: the resource the event is about.
                        "Resources.$": f"States.Array({Poll.JOB_ARN_PATH})",
                        "Detail.$": f"States.JsonToString({Poll.DETAIL_PATH})",
                    }
                ]
            },
            result_selector={"FailedEntryCount.$": "$.FailedEntryCount", "Entries.$": "$.Entries"},
            result_path=Poll.PUBLISHED_PATH,
        )
        publish.add_retry(
            errors=[sfn.Errors.ALL], interval=Duration.seconds(5), backoff_rate=2, max_attempts=5
        )
        publish.add_catch(
            sfn.Pass(self, "PublishFailed", comment="Ends the execution failed").next(then),
            errors=[sfn.Errors.ALL],
            result_path=Poll.EVENT_ERROR_PATH,
        )
        rejected = sfn.Pass(
            self,
            "EventRejected",
            parameters={
                "Error": REJECTED_ENTRY,
                "Cause.$": f"States.JsonToString({Poll.PUBLISHED_PATH}.Entries)",
            },
            result_path=Poll.EVENT_ERROR_PATH,
        )
        rejected.next(then)
        again = sfn.Wait(
            self,
            "PublishAgain",
            time=sfn.WaitTime.duration(Duration.seconds(PUBLISH_RETRY_SECONDS)),
        )
        again.next(
            sfn.Pass(
                self,
                "CountPublish",
                parameters={"Left.$": f"States.MathAdd({Poll.PUBLISH_TRIES_LEFT_PATH}, -1)"},
                result_path=Poll.PUBLISH_TRIES_PATH,
            )
        ).next(publish)
        publish.next(
            sfn.Choice(self, "EventAccepted?")
            .when(sfn.Condition.number_equals(f"{Poll.PUBLISHED_PATH}.FailedEntryCount", 0), then)
            .when(sfn.Condition.number_less_than_equals(Poll.PUBLISH_TRIES_LEFT_PATH, 0), rejected)
            .otherwise(again)
        )
        return sfn.Pass(
            self,
            "PublishBudget",
            result=sfn.Result.from_object({"Left": PUBLISH_TRIES - 1}),
            result_path=Poll.PUBLISH_TRIES_PATH,
        ).next(publish)

    def _record_latest(self, then: sfn.Pass) -> sfn.Choice:
        """A schedule's latest good output path, in its SSM parameter (runs that end ACTIVE)."""
        record = tasks.CallAwsService(
            self,
            "RecordLatest",
            service="ssm",
            action="putParameter",
            iam_action="ssm:PutParameter",
            iam_resources=self._granted(self._parameters, self._unused("ssm", "parameter/")),
            parameters={
                "Name.$": Poll.LATEST_PATH,
                "Value.$": f"{Poll.JOB_PATH}.OutputPath",
                "Overwrite": True,
                "Type": "String",
            },
            result_path=DISCARD,
        )
        record.add_retry(
            errors=[sfn.Errors.ALL], interval=Duration.seconds(5), backoff_rate=2, max_attempts=5
        )
        record.add_catch(then, errors=[sfn.Errors.ALL], result_path=Poll.PUBLISH_ERROR_PATH)
        record.next(then)
        asked = sfn.Condition.and_(
            self._status_is(SUCCEEDED),
            sfn.Condition.not_(sfn.Condition.string_equals(Poll.LATEST_PATH, "")),
        )
        return (
            sfn.Choice(self, "RecordLatest?")
            .when(asked, self._unless_older(record, then))
            .otherwise(then)
        )

    def _unless_older(self, record: sfn.IChainable, then: sfn.IChainable) -> sfn.IChainable:
        """Overlapping runs may end out of order: a run whose dated path sorts before the value
        held ended after a newer one, and leaves it. An unreadable value is overwritten."""
        read = tasks.CallAwsService(
            self,
            "ReadLatest",
            service="ssm",
            action="getParameter",
            iam_action="ssm:GetParameter",
            iam_resources=self._granted(self._parameters, self._unused("ssm", "parameter/")),
            parameters={"Name.$": Poll.LATEST_PATH},
            result_selector={"Value.$": "$.Parameter.Value"},
            result_path=Poll.LATEST_VALUE_PATH,
        )
        read.add_retry(
            errors=[sfn.Errors.ALL], interval=Duration.seconds(5), backoff_rate=2, max_attempts=3
        )
        read.add_catch(record, errors=[sfn.Errors.ALL], result_path=Poll.PUBLISH_ERROR_PATH)
        older = sfn.Condition.string_less_than_json_path(
            f"{Poll.JOB_PATH}.OutputPath", f"{Poll.LATEST_VALUE_PATH}.Value"
        )
        keep = sfn.Pass(self, "NewerRunRecorded", comment="A newer run is the latest already")
        keep.next(then)
        return read.next(sfn.Choice(self, "OlderThanLatest?").when(older, keep).otherwise(record))

    def _signal_if_waited(self, outcome: str) -> sfn.Chain:
        not_waited = sfn.Pass(self, f"{outcome}Signalled")
        signal = self._signal(outcome)
        signal.add_catch(not_waited, errors=[sfn.Errors.ALL], result_path=DISCARD)
        waited = sfn.Condition.not_(sfn.Condition.string_equals(Poll.HANDLE_PATH, ""))
        return (
            sfn.Choice(self, f"{outcome}Waited?")
            .when(waited, signal.next(not_waited))
            .otherwise(not_waited)
            .afterwards()
        )

    def _signal(self, outcome: str) -> tasks.LambdaInvoke:
        signal = tasks.LambdaInvoke(
            self,
            f"Signal{outcome}",
            lambda_function=self.signal_function,
            payload=sfn.TaskInput.from_object(
                {
                    Signal.OUTCOME: outcome,
                    Signal.STATE: sfn.JsonPath.entire_payload,
                    Signal.ROLE: sfn.JsonPath.string_at(EXECUTION_ROLE_PATH),
                }
            ),
            result_path=DISCARD,
            retry_on_service_exceptions=True,
        )
        return signal

    # --- parts ------------------------------------------------------------------------------

    def _unused(self, service: str, resource: str) -> str:
        stack = Stack.of(self)
        return f"{service}:{stack.region}:{stack.account}:{resource}{POLLER_ID}-unused"

    def _job_arns(self) -> str:
        stack = Stack.of(self)
        return JOB_ARNS.format(
            partition=stack.partition, region=stack.region, account=stack.account
        )

    def _signal_function(self) -> lambda_.Function:
        log_group = self._log_group("SignalLogs")
        role = iam.Role(
            self,
            "SignalRole",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description="Signals a CloudFormation WaitCondition when an export job ends",
        )
        log_group.grant_write(role)
        return lambda_.Function(
            self,
            "Signal",
            runtime=HANDLER_RUNTIME,
            architecture=lambda_.Architecture.ARM_64,
            handler=SIGNAL_ENTRY,
            code=handler_code(),
            role=role,
            timeout=Duration.seconds(30),
            memory_size=128,
            log_group=log_group,
            description="Personalize export poller: signals a WaitCondition's presigned URL",
        )

    def _log_group(self, construct_id: str) -> logs.LogGroup:
        return logs.LogGroup(
            self,
            construct_id,
            retention=logs.RetentionDays.ONE_YEAR,
            removal_policy=RemovalPolicy.RETAIN,
        )


@jsii.implements(IStableListProducer)
class _GrantedSoFar:
    def __init__(self, granted: list[str], placeholder: str) -> None:
        self._granted = granted
        self._placeholder = placeholder

    def produce(self) -> list[str]:
        return list(self._granted) or [self._placeholder]


def _create_parameters() -> dict[str, str]:
    """CreateDatasetExportJob's parameters from the Create input (Tags apart: optional)."""
    fields = ("JobName", "DatasetArn", "IngestionMode", "RoleArn", "JobOutput")
    return {f"{name}.$": f"{Poll.CREATE_PATH}.{name}" for name in fields}


def _detail_parameters(failure_reason_path: str | None) -> dict[str, str]:
    job, event, described = Poll.JOB_PATH, Poll.EVENT_PATH, Poll.DESCRIBED_JOB_PATH
    detail = {
        f"{Detail.JOB_ARN}.$": f"{job}.JobArn",
        f"{Detail.JOB_NAME}.$": f"{job}.JobName",
        f"{Detail.DATASET_ARN}.$": f"{job}.DatasetArn",
        f"{Detail.INGESTION_MODE}.$": f"{job}.IngestionMode",
        f"{Detail.OUTPUT_PATH}.$": f"{job}.OutputPath",
        f"{Detail.STATUS}.$": f"{described}.Status",
        f"{Detail.STACK_ID}.$": f"{event}.StackId",
        f"{Detail.CONSTRUCT_PATH}.$": f"{event}.ConstructPath",
        f"{Detail.SCHEDULED_TIME}.$": f"{event}.ScheduledTime",
    }
    if failure_reason_path is None:
        return {**detail, Detail.FAILURE_REASON: ""}
    return {**detail, f"{Detail.FAILURE_REASON}.$": failure_reason_path}
