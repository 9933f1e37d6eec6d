"""The event published when an export job the library started ends, and rules that match it.

Personalize itself sends EventBridge only CloudTrail API-call events, none when a job ends; the
stack's export poller publishes this one. Its detail keeps Personalize's own field names.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from aws_cdk import Stack
from aws_cdk import aws_events as events
from constructs import Construct

SOURCE: Final = "personalize-export"
DETAIL_TYPE: Final = "Personalize Dataset Export Job State Change"
SUCCEEDED: Final = "ACTIVE"
FAILED: Final = "CREATE FAILED"


class Detail:
    """The event's detail fields."""

    JOB_ARN: Final = "datasetExportJobArn"
    JOB_NAME: Final = "jobName"
    DATASET_ARN: Final = "datasetArn"
    INGESTION_MODE: Final = "ingestionMode"
    STATUS: Final = "status"
    FAILURE_REASON: Final = "failureReason"
    OUTPUT_PATH: Final = "outputPath"
    STACK_ID: Final = "stackId"
    CONSTRUCT_PATH: Final = "constructPath"
    # When a schedule started the job: the run's scheduled time (ISO 8601); "" otherwise.
    SCHEDULED_TIME: Final = "scheduledTime"


def completion_pattern(scope: Construct, statuses: Sequence[str]) -> events.EventPattern:
    """This construct's jobs only: same stack, same construct path, the given end states."""
    return events.EventPattern(
        source=[SOURCE],
        detail_type=[DETAIL_TYPE],
        detail={
            Detail.STACK_ID: [Stack.of(scope).stack_id],
            Detail.CONSTRUCT_PATH: [scope.node.path],
            Detail.STATUS: list(statuses),
        },
    )


class CompletionEvents:
    """`on_completion`, `on_success`, `on_failure` for a construct whose jobs the poller watches.

    Mixed into the constructs; `_completion_bus` is the bus their jobs' events go to.
    """

    _completion_bus: events.IEventBus | None

    @property
    def _completion_bus_arn(self) -> str:
        """The bus the poller may put this construct's events on (the default bus if none)."""
        if self._completion_bus is not None:
            return self._completion_bus.event_bus_arn
        assert isinstance(self, Construct)
        stack = Stack.of(self)
        return f"arn:{stack.partition}:events:{stack.region}:{stack.account}:event-bus/default"

    def on_completion(
        self,
        construct_id: str,
        *,
        target: events.IRuleTarget | None = None,
        description: str | None = None,
        rule_name: str | None = None,
    ) -> events.Rule:
        """A rule matching every end of this construct's jobs (ACTIVE or CREATE FAILED)."""
        return self._completion_rule(
            construct_id, (SUCCEEDED, FAILED), target, description, rule_name
        )

    def on_success(
        self,
        construct_id: str,
        *,
        target: events.IRuleTarget | None = None,
        description: str | None = None,
        rule_name: str | None = None,
    ) -> events.Rule:
        """A rule matching this construct's jobs that end ACTIVE."""
        return self._completion_rule(construct_id, (SUCCEEDED,), target, description, rule_name)

    def on_failure(
        self,
        construct_id: str,
        *,
        target: events.IRuleTarget | None = None,
        description: str | None = None,
        rule_name: str | None = None,
    ) -> events.Rule:
        """A rule matching this construct's jobs that end CREATE FAILED."""
        return self._completion_rule(construct_id, (FAILED,), target, description, rule_name)

    def _completion_rule(
        self,
        construct_id: str,
        statuses: Sequence[str],
        target: events.IRuleTarget | None,
        description: str | None,
        rule_name: str | None,
    ) -> events.Rule:
        assert isinstance(self, Construct)
        rule = events.Rule(
            self,
            construct_id,
            event_pattern=completion_pattern(self, statuses),
            event_bus=self._completion_bus,
            description=description,
            rule_name=rule_name,
        )
        if target is not None:
            rule.add_target(target)
        return rule
