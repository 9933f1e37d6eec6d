"""The signal step: the poller's one function tells a waiting deploy (its WaitCondition's
presigned URL) how the job ended, or why the poller can't tell."""

from __future__ import annotations

from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from personalize_export.poller.parts import DISCARD, EXECUTION_ROLE_PATH
from personalize_export.runtime.export_job.contract import Poll, Signal


def signal_if_waited(
    scope: Construct, outcome: str, signal_function: lambda_.IFunction
) -> sfn.Chain:
    """Signal the outcome when a deploy waits (Handle is set); a failed signal is let go."""
    not_waited = sfn.Pass(scope, f"{outcome}Signalled")
    signal = signal_step(scope, outcome, signal_function)
    signal.add_catch(not_waited, errors=[sfn.Errors.ALL], result_path=DISCARD)
    waited = sfn.Condition.not_(sfn.Condition.string_equals(Poll.HANDLE_PATH, ""))
    return (
        sfn.Choice(scope, f"{outcome}Waited?")
        .when(waited, signal.next(not_waited))
        .otherwise(not_waited)
        .afterwards()
    )


def signal_step(
    scope: Construct, outcome: str, signal_function: lambda_.IFunction
) -> tasks.LambdaInvoke:
    """Invoke the signal function with the outcome, the whole state and the execution's role."""
    return tasks.LambdaInvoke(
        scope,
        f"Signal{outcome}",
        lambda_function=signal_function,
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
