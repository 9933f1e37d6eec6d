"""Creating a run: when the input asks (`Create`), start the job before watching it; a
schedule's run (`Run`) first names its job, ARN and dated folder from its scheduled time."""

from __future__ import annotations

from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from personalize_export.completion_event import FAILED
from personalize_export.poller.parts import DISCARD, EXECUTION_ROLE_PATH, job_arns
from personalize_export.poller.retries import ALREADY_EXISTS, CREATE_FATAL_ERRORS, CREATE_RETRY
from personalize_export.runtime.export_job.contract import Poll


def create_if_asked(
    scope: Construct, *, describe: sfn.IChainable, ended: sfn.IChainable
) -> sfn.Choice:
    """Start the job first when the input asks (a schedule's run), then watch it.

    A scheduled run (input `Run`) first names its job and dated folder (Create.JobName,
    the Path's folder, and Job) from its scheduled time: the same time always gives the
    same job, so a retried or repeated invocation finds the job its first one started
    (ResourceAlreadyExists) and watches that. A create still refused after the retries is
    reported like a job that failed: the completion event, status CREATE FAILED, the
    refusal as the reason.
    """
    already_started = sfn.Pass(
        scope, "AlreadyStarted", comment="A repeated run of one scheduled time: watch its job"
    )
    already_started.next(describe)
    not_started = _not_started(scope)
    not_started.next(ended)
    outcomes = (describe, already_started, not_started)
    create = (
        sfn.Choice(scope, "Tagged?")
        .when(
            sfn.Condition.is_present(Poll.CREATE_TAGS_PATH),
            _create_job(scope, "CreateTaggedJob", *outcomes, tagged=True),
        )
        .otherwise(_create_job(scope, "CreateJob", *outcomes, tagged=False))
    )
    scheduled = (
        sfn.Choice(scope, "ScheduledRun?")
        .when(sfn.Condition.not_(sfn.Condition.is_present(Poll.RUN_PATH)), create)
        .when(
            sfn.Condition.string_matches(Poll.SCHEDULED_TIME_PATH, "*-*-*T*:*:*Z"),
            name_run(scope).next(create),
        )
        .otherwise(
            sfn.Fail(
                scope,
                "ScheduledTimeInvalid",
                error="ScheduledTimeInvalid",
                cause="Event.ScheduledTime must be a UTC time such as 2026-11-29T02:00:00Z",
            )
        )
    )
    return (
        sfn.Choice(scope, "Create?")
        .when(sfn.Condition.is_present(Poll.CREATE_PATH), scheduled)
        .otherwise(describe)
    )


def _not_started(scope: Construct) -> sfn.Pass:
    """A refused create, described as a job that failed, with the refusal as its reason."""
    return sfn.Pass(
        scope,
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


def _create_job(
    scope: Construct,
    construct_id: str,
    describe: sfn.IChainable,
    already_started: sfn.IChainable,
    not_started: sfn.IChainable,
    *,
    tagged: bool,
) -> sfn.Chain:
    """CreateDatasetExportJob from `Create`, retried (CREATE_RETRY) on every error but a bad
    request or a missing dataset; with Tags only when `Create` has them."""
    tags = {"Tags.$": Poll.CREATE_TAGS_PATH} if tagged else {}
    create = tasks.CallAwsService(
        scope,
        construct_id,
        service="personalize",
        action="createDatasetExportJob",
        iam_action="personalize:CreateDatasetExportJob",
        iam_resources=[job_arns(scope)],
        parameters={**_create_parameters(), **tags},
        result_path=DISCARD,
    )
    CREATE_RETRY.apply(create, CREATE_FATAL_ERRORS)
    create.add_catch(already_started, errors=[ALREADY_EXISTS], result_path=Poll.ERROR_PATH)
    create.add_catch(not_started, errors=[sfn.Errors.ALL], result_path=Poll.ERROR_PATH)
    return create.next(describe)


def _create_parameters() -> dict[str, str]:
    """CreateDatasetExportJob's parameters from the Create input (Tags apart: optional)."""
    fields = ("JobName", "DatasetArn", "IngestionMode", "RoleArn", "JobOutput")
    return {f"{name}.$": f"{Poll.CREATE_PATH}.{name}" for name in fields}


def name_run(scope: Construct) -> sfn.Chain:
    """The job's name, ARN and dated folder, from the run's scheduled time (in UTC).

    2026-11-29T02:00:00Z gives the job <NamePrefix>-20261129-0200 writing into
    <Path>2026/11/29/0200/ (contract.RUN_NAME_SUFFIX_LENGTH, RUN_FOLDER_LENGTH).
    """
    split = sfn.Pass(
        scope,
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
        scope,
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
        scope,
        "RequestJobName",
        input_path=f"{Poll.JOB_PATH}.JobName",
        result_path=f"{Poll.CREATE_PATH}.JobName",
    )
    request_folder = sfn.Pass(
        scope,
        "RequestRunFolder",
        input_path=f"{Poll.JOB_PATH}.OutputPath",
        result_path=base,
    )
    return split.next(name_job).next(request_name).next(request_folder)
