"""Publishing the completion event: its detail from the described job, PutEvents with retries
and a budget of resends for a rejected entry, and the failed end of an event that was lost."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from personalize_export.completion_event import DETAIL_TYPE, SOURCE, Detail
from personalize_export.poller.parts import granted_so_far
from personalize_export.poller.retries import retry_briefly
from personalize_export.runtime.export_job.contract import Poll

# A completion event is sent this many times in all while EventBridge rejects it
# (FailedEntryCount > 0), PUBLISH_RETRY_SECONDS apart; then the execution ends failed, naming the
# rejection.
PUBLISH_TRIES = 4
PUBLISH_RETRY_SECONDS = 30
EVENT_NOT_PUBLISHED = "CompletionEventNotPublished"
REJECTED_ENTRY = "EventBridge.FailedEntry"


def publish_completion(scope: Construct, *, buses: list[str], then: sfn.IChainable) -> sfn.Chain:
    """The completion event. A failed call is retried; an entry EventBridge rejects
    (PutEvents answers 200 with FailedEntryCount) is sent up to PUBLISH_TRIES times in all. Either
    way `then` follows, with EventError set when the event was lost."""
    publish = _put_completion_event(scope, buses)
    publish.add_catch(
        sfn.Pass(scope, "PublishFailed", comment="Ends the execution failed").next(then),
        errors=[sfn.Errors.ALL],
        result_path=Poll.EVENT_ERROR_PATH,
    )
    rejected = sfn.Pass(
        scope,
        "EventRejected",
        parameters={
            "Error": REJECTED_ENTRY,
            "Cause.$": f"States.JsonToString({Poll.PUBLISHED_PATH}.Entries)",
        },
        result_path=Poll.EVENT_ERROR_PATH,
    )
    rejected.next(then)
    again = _publish_again(scope, publish)
    publish.next(
        sfn.Choice(scope, "EventAccepted?")
        .when(sfn.Condition.number_equals(f"{Poll.PUBLISHED_PATH}.FailedEntryCount", 0), then)
        .when(sfn.Condition.number_less_than_equals(Poll.PUBLISH_TRIES_LEFT_PATH, 0), rejected)
        .otherwise(again)
    )
    return sfn.Pass(
        scope,
        "PublishBudget",
        result=sfn.Result.from_object({"Left": PUBLISH_TRIES - 1}),
        result_path=Poll.PUBLISH_TRIES_PATH,
    ).next(publish)


def _put_completion_event(scope: Construct, buses: list[str]) -> tasks.CallAwsService:
    publish = tasks.CallAwsService(
        scope,
        "PublishCompletion",
        service="eventbridge",
        action="putEvents",
        iam_action="events:PutEvents",
        iam_resources=granted_so_far(scope, buses, service="events", resource="event-bus/"),
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
    retry_briefly(publish, max_attempts=5)
    return publish


def _publish_again(scope: Construct, publish: sfn.IChainable) -> sfn.Wait:
    """Wait PUBLISH_RETRY_SECONDS, count the resend, and publish again."""
    again = sfn.Wait(
        scope,
        "PublishAgain",
        time=sfn.WaitTime.duration(Duration.seconds(PUBLISH_RETRY_SECONDS)),
    )
    again.next(
        sfn.Pass(
            scope,
            "CountPublish",
            parameters={"Left.$": f"States.MathAdd({Poll.PUBLISH_TRIES_LEFT_PATH}, -1)"},
            result_path=Poll.PUBLISH_TRIES_PATH,
        )
    ).next(publish)
    return again


def completion_detail(scope: Construct, *, then: sfn.IChainable) -> sfn.Choice:
    """The event's detail from the job and the description, then `then`."""
    # Personalize leaves failureReason out of an ACTIVE job; the event always has it.
    with_reason = sfn.Pass(
        scope,
        "CompletionDetail",
        parameters=_detail_parameters(f"{Poll.DESCRIBED_JOB_PATH}.FailureReason"),
        result_path=Poll.DETAIL_PATH,
    )
    without_reason = sfn.Pass(
        scope,
        "CompletionDetailNoReason",
        parameters=_detail_parameters(None),
        result_path=Poll.DETAIL_PATH,
    )
    with_reason.next(then)
    without_reason.next(then)
    has_reason = sfn.Condition.is_present(f"{Poll.DESCRIBED_JOB_PATH}.FailureReason")
    return (
        sfn.Choice(scope, "FailureReason?").when(has_reason, with_reason).otherwise(without_reason)
    )


def fail_if_event_lost(scope: Construct) -> sfn.Choice:
    """End failed when the event could not be published (the ExecutionsFailed metric tells)."""
    not_published = sfn.Fail(
        scope,
        "EventNotPublished",
        error=EVENT_NOT_PUBLISHED,
        cause_path=f"States.JsonToString({Poll.EVENT_ERROR_PATH})",
    )
    return (
        sfn.Choice(scope, "EventPublished?")
        .when(sfn.Condition.is_present(Poll.EVENT_ERROR_PATH), not_published)
        .otherwise(sfn.Succeed(scope, "Done"))
    )


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
