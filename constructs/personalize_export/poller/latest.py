"""Recording the latest good export: a schedule's run that ends ACTIVE writes its dated output
path into the schedule's SSM parameter, unless a newer run's path is there already."""

from __future__ import annotations

from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from personalize_export.completion_event import SUCCEEDED
from personalize_export.poller.parts import DISCARD, granted_so_far, status_is
from personalize_export.poller.retries import retry_briefly
from personalize_export.runtime.export_job.contract import Poll


def record_latest(scope: Construct, *, parameters: list[str], then: sfn.Pass) -> sfn.Choice:
    """A schedule's latest good output path, in its SSM parameter (runs that end ACTIVE)."""
    record = tasks.CallAwsService(
        scope,
        "RecordLatest",
        service="ssm",
        action="putParameter",
        iam_action="ssm:PutParameter",
        iam_resources=_parameter_arns(scope, parameters),
        parameters={
            "Name.$": Poll.LATEST_PATH,
            "Value.$": f"{Poll.JOB_PATH}.OutputPath",
            "Overwrite": True,
            "Type": "String",
        },
        result_path=DISCARD,
    )
    retry_briefly(record, max_attempts=5)
    record.add_catch(then, errors=[sfn.Errors.ALL], result_path=Poll.PUBLISH_ERROR_PATH)
    record.next(then)
    asked = sfn.Condition.and_(
        status_is(SUCCEEDED),
        sfn.Condition.not_(sfn.Condition.string_equals(Poll.LATEST_PATH, "")),
    )
    return (
        sfn.Choice(scope, "RecordLatest?")
        .when(asked, _unless_older(scope, parameters, record, then))
        .otherwise(then)
    )


def _unless_older(
    scope: Construct, parameters: list[str], record: sfn.IChainable, then: sfn.IChainable
) -> sfn.Chain:
    """Overlapping runs may end out of order: a run whose dated path sorts before the value
    held ended after a newer one, and leaves it. An unreadable value is overwritten."""
    read = tasks.CallAwsService(
        scope,
        "ReadLatest",
        service="ssm",
        action="getParameter",
        iam_action="ssm:GetParameter",
        iam_resources=_parameter_arns(scope, parameters),
        parameters={"Name.$": Poll.LATEST_PATH},
        result_selector={"Value.$": "$.Parameter.Value"},
        result_path=Poll.LATEST_VALUE_PATH,
    )
    retry_briefly(read, max_attempts=3)
    read.add_catch(record, errors=[sfn.Errors.ALL], result_path=Poll.PUBLISH_ERROR_PATH)
    older = sfn.Condition.string_less_than_json_path(
        f"{Poll.JOB_PATH}.OutputPath", f"{Poll.LATEST_VALUE_PATH}.Value"
    )
    keep = sfn.Pass(scope, "NewerRunRecorded", comment="A newer run is the latest already")
    keep.next(then)
    return read.next(sfn.Choice(scope, "OlderThanLatest?").when(older, keep).otherwise(record))


def _parameter_arns(scope: Construct, parameters: list[str]) -> list[str]:
    return granted_so_far(scope, parameters, service="ssm", resource="parameter/")
