"""What several of the poller's steps share: its construct id, the resources its tasks are
granted on, the execution's own role, and the job's status."""

from __future__ import annotations

import jsii
from aws_cdk import IStableListProducer, Lazy, Stack
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from personalize_export.runtime.export_job.contract import Poll

POLLER_ID = "PersonalizeExportPoller"
DISCARD = sfn.JsonPath.DISCARD
# The role the execution runs as (the context object), named in failure reasons.
EXECUTION_ROLE_PATH = "$$.Execution.RoleArn"
JOB_ARNS = "arn:{partition}:personalize:{region}:{account}:dataset-export-job/*"


def job_arns(scope: Construct) -> str:
    stack = Stack.of(scope)
    return JOB_ARNS.format(partition=stack.partition, region=stack.region, account=stack.account)


def granted_so_far(
    scope: Construct, granted: list[str], *, service: str, resource: str
) -> list[str]:
    """The resources granted so far, resolved at synth; a name of the poller's own that
    nothing uses when none were (an IAM statement needs at least one resource)."""
    stack = Stack.of(scope)
    unused = f"{service}:{stack.region}:{stack.account}:{resource}{POLLER_ID}-unused"
    return Lazy.list(_GrantedSoFar(granted, f"arn:{stack.partition}:{unused}"))


def status_is(*statuses: str) -> sfn.Condition:
    return sfn.Condition.or_(
        *(sfn.Condition.string_equals(Poll.STATUS_PATH, status) for status in statuses)
    )


@jsii.implements(IStableListProducer)
class _GrantedSoFar:
    def __init__(self, granted: list[str], placeholder: str) -> None:
        self._granted = granted
        self._placeholder = placeholder

    def produce(self) -> list[str]:
        return list(self._granted) or [self._placeholder]
