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

Where each piece lives:

    construct   ExportPoller: the per-stack singleton, its state machine, grants, signal function
    workflow    the definition: how the pieces below connect
    watch       describe the job, count the polls, wait (fast, then slow), the deploy's deadline
    create      start a schedule's run (name it from its scheduled time, create the job)
    publish     the completion event: detail, PutEvents, resends of a rejected entry
    latest      record the latest good output path in a schedule's SSM parameter
    signal      signal a waiting deploy's WaitCondition
    retries     retry budgets and the errors no retry mends
    parts       what several pieces share: the poller's id, granted resources, the job's status
"""

from personalize_export.poller.construct import ExportPoller
from personalize_export.poller.parts import DISCARD, EXECUTION_ROLE_PATH, JOB_ARNS, POLLER_ID
from personalize_export.poller.publish import (
    EVENT_NOT_PUBLISHED,
    PUBLISH_RETRY_SECONDS,
    PUBLISH_TRIES,
    REJECTED_ENTRY,
)
from personalize_export.poller.retries import (
    ALREADY_EXISTS,
    CREATE_FATAL_ERRORS,
    CREATE_RETRY,
    DESCRIBE_FATAL_ERRORS,
    DESCRIBE_RETRY,
    RetryBudget,
)
from personalize_export.poller.watch import FAST_POLLS, SLOW_POLL_SECONDS, SLOW_POLL_STEP

__all__ = [
    "ALREADY_EXISTS",
    "CREATE_FATAL_ERRORS",
    "CREATE_RETRY",
    "DESCRIBE_FATAL_ERRORS",
    "DESCRIBE_RETRY",
    "DISCARD",
    "EVENT_NOT_PUBLISHED",
    "EXECUTION_ROLE_PATH",
    "FAST_POLLS",
    "JOB_ARNS",
    "POLLER_ID",
    "PUBLISH_RETRY_SECONDS",
    "PUBLISH_TRIES",
    "REJECTED_ENTRY",
    "SLOW_POLL_SECONDS",
    "SLOW_POLL_STEP",
    "ExportPoller",
    "RetryBudget",
]
