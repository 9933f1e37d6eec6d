"""The watch loop: describe the job and, until it ends, count the poll and wait for the next
one. Every LONG_POLL_SECONDS the first hour and all the while a deploy waits, every
SLOW_POLL_SECONDS after that; the deploy's deadline signals it once, and the watch goes on."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from personalize_export.completion_event import FAILED, SUCCEEDED
from personalize_export.poller.parts import DISCARD, job_arns, status_is
from personalize_export.poller.retries import DESCRIBE_FATAL_ERRORS, DESCRIBE_RETRY
from personalize_export.poller.signal import signal_if_waited, signal_step
from personalize_export.runtime.export_job.contract import LONG_POLL_SECONDS, Poll

# The first hour, and all the while a deploy waits, the poller looks every LONG_POLL_SECONDS;
# after that it looks every SLOW_POLL_SECONDS, so that a 12-hour wait plus a day's watch stays
# far below Step Functions' 25,000 history events per execution.
FAST_POLLS = 3600 // LONG_POLL_SECONDS
SLOW_POLL_SECONDS = 300
SLOW_POLL_STEP = SLOW_POLL_SECONDS // LONG_POLL_SECONDS


def poll_budget(scope: Construct) -> sfn.Pass:
    """The input's poll budgets, and the first hour's fast polls."""
    return sfn.Pass(
        scope,
        "PollBudget",
        parameters={
            "Left.$": Poll.POLLS_LEFT_PATH,
            "WatchLeft.$": Poll.WATCH_LEFT_PATH,
            "Fast": FAST_POLLS,
        },
        result_path=Poll.POLLS_PATH,
    )


def describe_job(scope: Construct) -> tasks.CallAwsService:
    """DescribeDatasetExportJob, retried (DESCRIBE_RETRY) on every error but a bad request or a
    missing job."""
    describe = tasks.CallAwsService(
        scope,
        "DescribeJob",
        service="personalize",
        action="describeDatasetExportJob",
        iam_action="personalize:DescribeDatasetExportJob",
        iam_resources=[job_arns(scope)],
        parameters={"DatasetExportJobArn.$": Poll.JOB_ARN_PATH},
        result_selector={"Job.$": "$.DatasetExportJob"},
        result_path=Poll.DESCRIBE_PATH,
    )
    DESCRIBE_RETRY.apply(describe, DESCRIBE_FATAL_ERRORS)
    return describe


def next_poll(scope: Construct, kind: str, *, step: int, fast: bool) -> sfn.Chain:
    """Count the poll (`step` minutes off both budgets; a fast one off the first hour's),
    then wait for it."""
    count = sfn.Pass(
        scope,
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
    wait = sfn.Wait(scope, f"{kind}Wait", time=sfn.WaitTime.duration(Duration.seconds(seconds)))
    return count.next(wait)


def ended_or_poll_again(
    scope: Construct,
    *,
    ended: sfn.IChainable,
    fast: sfn.IChainable,
    slow: sfn.IChainable,
    signal_function: lambda_.IFunction,
) -> sfn.Choice:
    """What a description leads to: the end, the end of the watch, the deploy's deadline, or
    the next poll (slow or fast)."""
    return (
        sfn.Choice(scope, "Ended?")
        .when(status_is(SUCCEEDED, FAILED), ended)
        .when(sfn.Condition.number_less_than_equals(Poll.WATCH_LEFT_PATH, 0), _give_up(scope))
        .when(_deadline_passed(), _deadline(scope, fast, signal_function))
        .when(_slow_down(), slow)
        .otherwise(fast)
    )


def could_not_read_job(scope: Construct, signal_function: lambda_.IFunction) -> sfn.Chain:
    """A description that failed for good: tell a waiting deploy, then end failed."""
    return signal_if_waited(scope, "Unreadable", signal_function).next(
        sfn.Fail(
            scope,
            "CouldNotReadJob",
            error="ExportJobUnreadable",
            cause_path=f"States.JsonToString({Poll.ERROR_PATH})",
        )
    )


def _give_up(scope: Construct) -> sfn.Succeed:
    return sfn.Succeed(scope, "StoppedWatching", comment="The job outlived the watch")


def _deadline_passed() -> sfn.Condition:
    return sfn.Condition.and_(
        sfn.Condition.number_less_than_equals(Poll.POLLS_LEFT_PATH, 0),
        sfn.Condition.not_(sfn.Condition.string_equals(Poll.HANDLE_PATH, "")),
    )


def _deadline(
    scope: Construct, watch_on: sfn.IChainable, signal_function: lambda_.IFunction
) -> sfn.IChainable:
    """Tell the waiting deploy once, then watch on for the completion event."""
    stop_waiting = sfn.Pass(
        scope, "StopWaiting", result=sfn.Result.from_string(""), result_path=Poll.HANDLE_PATH
    )
    stop_waiting.next(watch_on)
    signal = signal_step(scope, "Deadline", signal_function)
    signal.add_catch(stop_waiting, errors=[sfn.Errors.ALL], result_path=DISCARD)
    return signal.next(stop_waiting)


def _slow_down() -> sfn.Condition:
    """Nobody waits (no deploy, or past its deadline) and the first hour has passed."""
    return sfn.Condition.and_(
        sfn.Condition.string_equals(Poll.HANDLE_PATH, ""),
        sfn.Condition.number_less_than_equals(Poll.FAST_POLLS_PATH, 0),
    )
