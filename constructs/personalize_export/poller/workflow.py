"""The whole workflow, piece by piece: the poll budget, creating a run if asked, the watch loop,
and, once the job ended, the completion event, the latest good export and the signal.

The order the pieces are built in is the order of their states in the construct tree
(cdk.out's tree.json): keep it when moving them."""

from __future__ import annotations

from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from personalize_export.poller.create import create_if_asked
from personalize_export.poller.latest import record_latest
from personalize_export.poller.publish import (
    completion_detail,
    fail_if_event_lost,
    publish_completion,
)
from personalize_export.poller.signal import signal_if_waited
from personalize_export.poller.watch import (
    SLOW_POLL_STEP,
    could_not_read_job,
    describe_job,
    ended_or_poll_again,
    next_poll,
    poll_budget,
)
from personalize_export.runtime.export_job.contract import Poll


def definition(
    scope: Construct,
    *,
    signal_function: lambda_.IFunction,
    buses: list[str],
    parameters: list[str],
) -> sfn.IChainable:
    """The state machine's definition. `buses` and `parameters` are the poller's grants, read
    at synth: the grants made after this still reach the tasks' IAM resources."""
    describe = describe_job(scope)
    fast = next_poll(scope, "", step=1, fast=True).next(describe)
    slow = next_poll(scope, "Slow", step=SLOW_POLL_STEP, fast=False).next(describe)
    ended = job_ended(scope, signal_function=signal_function, buses=buses, parameters=parameters)
    describe.next(
        ended_or_poll_again(
            scope, ended=ended, fast=fast, slow=slow, signal_function=signal_function
        )
    )
    unreadable = could_not_read_job(scope, signal_function)
    describe.add_catch(unreadable, errors=[sfn.Errors.ALL], result_path=Poll.ERROR_PATH)
    return poll_budget(scope).next(create_if_asked(scope, describe=describe, ended=ended))


def job_ended(
    scope: Construct,
    *,
    signal_function: lambda_.IFunction,
    buses: list[str],
    parameters: list[str],
) -> sfn.IChainable:
    """Publish the event, record the latest good export, signal a waiting deploy, and end
    failed if the event could not be published (the ExecutionsFailed metric tells)."""
    latest_done = sfn.Pass(scope, "LatestRecorded")
    latest_done.next(signal_if_waited(scope, "Ended", signal_function)).next(
        fail_if_event_lost(scope)
    )
    record = record_latest(scope, parameters=parameters, then=latest_done)
    publish = publish_completion(scope, buses=buses, then=record)
    return completion_detail(scope, then=publish)
