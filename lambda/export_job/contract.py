"""Names shared by the construct (synth time) and the handler (deploy time).

The construct imports this module from the package; the handler imports it from the asset.
Both sides therefore read the same constants and cannot drift apart.
"""

from typing import Final

RESOURCE_TYPE: Final = "Custom::PersonalizeDatasetExportJob"
# A long wait's result: created once the WaitCondition got its signal, it returns the attributes,
# so resources that use them wait for the job's end too.
RESULT_RESOURCE_TYPE: Final = "Custom::PersonalizeDatasetExportResult"

ON_EVENT_ENTRY: Final = "export_job.handler.on_event"
IS_COMPLETE_ENTRY: Final = "export_job.handler.is_complete"
SIGNAL_ENTRY: Final = "export_job.signal.send"
# The handler functions' environment: the stack's export poller (one per stack, so it rides in
# the functions' environment rather than in every export's properties).
POLLER_ARN_ENV: Final = "PERSONALIZE_EXPORT_POLLER_ARN"


class Prop:
    """Keys of the custom resource's properties (every value arrives as a string)."""

    DATASET_ARN: Final = "DatasetArn"
    INGESTION_MODE: Final = "IngestionMode"
    ROLE_ARN: Final = "RoleArn"
    OUTPUT_PATH: Final = "OutputPath"
    KMS_KEY_ARN: Final = "KmsKeyArn"
    JOB_NAME: Final = "JobName"
    JOB_NAME_PREFIX: Final = "JobNamePrefix"
    RUN_ID: Final = "RunId"
    TAGS: Final = "Tags"
    TIMEOUT_SECONDS: Final = "TimeoutSeconds"
    # How the deploy waits (WaitMode), and what watches the job to its end for the event.
    WAIT_MODE: Final = "WaitMode"
    WAIT_HANDLE: Final = "WaitHandle"
    EVENT_BUS_NAME: Final = "EventBusName"
    CONSTRUCT_PATH: Final = "ConstructPath"


class WaitMode:
    """How a deploy waits for the job: the custom resource itself (up to 55 minutes), a
    WaitCondition the poller signals (up to 12 hours), or not at all."""

    RESOURCE: Final = "RESOURCE"
    CONDITION: Final = "CONDITION"
    NONE: Final = "NONE"


# A change to any of these starts a new export job; other properties only shape how we wait.
EXPORT_SETTINGS: Final = (
    Prop.DATASET_ARN,
    Prop.INGESTION_MODE,
    Prop.ROLE_ARN,
    Prop.OUTPUT_PATH,
    Prop.KMS_KEY_ARN,
    Prop.JOB_NAME,
    Prop.RUN_ID,
)

# What Personalize needs access to: a Create, or an Update changing one of these, follows a deploy
# that just created or changed the role, its policies, the bucket policy or the key policy.
ACCESS_SETTINGS: Final = (Prop.ROLE_ARN, Prop.OUTPUT_PATH, Prop.KMS_KEY_ARN)


class Attr:
    """Attributes the resource returns (Fn::GetAtt names)."""

    JOB_ARN: Final = "JobArn"
    JOB_NAME: Final = "JobName"
    OUTPUT_PATH: Final = "OutputPath"
    STATUS: Final = "Status"
    DATASET_ARN: Final = "DatasetArn"
    INGESTION_MODE: Final = "IngestionMode"


# Fields onEvent hands to isComplete (the Provider framework merges them into its event).
DEADLINE_FIELD: Final = "PersonalizeExportDeadline"
# When the event began (epoch seconds): a long wait's timeout counts from there.
STARTED_FIELD: Final = "PersonalizeExportStarted"
# Until when (epoch seconds) refusals and job failures for access are taken for IAM's propagation
# delay: set on a Create, and on an Update changing one of ACCESS_SETTINGS.
SETTLING_FIELD: Final = "PersonalizeExportIamSettling"

# IAM is eventually consistent: a role or policy created seconds ago may not be usable yet, by our
# handler (AccessDeniedException) nor by Personalize (a job failing for access). It typically takes
# seconds; terraform-provider-aws#6566 measured 10-30 s of AccessDenied after creating a role. Five
# minutes (ten polls) covers that ten times over, and bounds what a real misconfiguration costs: its
# failure comes at most five minutes late, and at most two extra jobs are started.
IAM_SETTLING_SECONDS: Final = 300
# A job failing for access while IAM settles is started again, under a new derived name, at most
# this many times in all (the first job included).
MAX_JOB_ATTEMPTS: Final = 3

DEFAULT_INGESTION_MODE: Final = "PUT"
INGESTION_MODES: Final = ("BULK", "PUT", "ALL")
JOB_NAME_MAX_LENGTH: Final = 63
JOB_NAME_PATTERN: Final = r"[a-zA-Z0-9][a-zA-Z0-9\-_]*"
# Room left in a derived name for "-" and the request hash.
JOB_NAME_HASH_LENGTH: Final = 10
JOB_NAME_PREFIX_MAX_LENGTH: Final = JOB_NAME_MAX_LENGTH - JOB_NAME_HASH_LENGTH - 1

# CloudFormation waits at most an hour for a custom resource; the handler's own deadline keeps
# the last minutes of it for starting the job and reporting back (a timeout given as a token
# can't be checked at synth time, so the handler applies this cap too).
CLOUDFORMATION_MAX_WAIT_SECONDS: Final = 3600
MAX_TIMEOUT_SECONDS: Final = CLOUDFORMATION_MAX_WAIT_SECONDS - 300

# CloudFormation's whole response must stay under 4096 bytes; failure messages keep well below.
MAX_MESSAGE_BYTES: Final = 2048

# Past the hour: an AWS::CloudFormation::WaitCondition waits at most 12 hours.
MAX_LONG_TIMEOUT_SECONDS: Final = 43200
# The WaitCondition waits this much longer than the timeout, so that the poller's own deadline
# message (naming the job and its last status) comes first; at 12 hours the poller's deadline is
# this much earlier instead.
WAIT_CONDITION_MARGIN_SECONDS: Final = 300
# The poller's interval; after a deploy's deadline it watches on this long for the event.
LONG_POLL_SECONDS: Final = 60
WATCH_AFTER_DEADLINE_SECONDS: Final = 86400
# The UniqueId of the poller's WaitCondition signal (Data: the job's ARN).
WAIT_UNIQUE_ID: Final = "export"


class Poll:
    """The poller's input fields (and their JSONPaths) as the handler and schedules start it."""

    JOB: Final = "Job"
    EVENT: Final = "Event"
    POLLS: Final = "Polls"
    HANDLE: Final = "Handle"
    LATEST: Final = "Latest"
    CREATE: Final = "Create"
    TIMEOUT_SECONDS: Final = "TimeoutSeconds"
    # Written by the workflow itself.
    DESCRIBE: Final = "Describe"
    ERROR: Final = "Error"
    DETAIL: Final = "Detail"
    PUBLISH_ERROR: Final = "PublishError"
    # The completion event: PutEvents' answer, the tries left, and why it was lost (if it was).
    PUBLISHED: Final = "Published"
    PUBLISH_TRIES: Final = "PublishTries"
    EVENT_ERROR: Final = "EventError"

    JOB_PATH: Final = "$.Job"
    JOB_ARN_PATH: Final = "$.Job.JobArn"
    EVENT_PATH: Final = "$.Event"
    BUS_PATH: Final = "$.Event.EventBusName"
    POLLS_PATH: Final = "$.Polls"
    POLLS_LEFT_PATH: Final = "$.Polls.Left"
    WATCH_LEFT_PATH: Final = "$.Polls.WatchLeft"
    HANDLE_PATH: Final = "$.Handle"
    LATEST_PATH: Final = "$.Latest"
    CREATE_PATH: Final = "$.Create"
    DESCRIBE_PATH: Final = "$.Describe"
    DESCRIBED_JOB_PATH: Final = "$.Describe.Job"
    STATUS_PATH: Final = "$.Describe.Job.Status"
    ERROR_PATH: Final = "$.Error"
    DETAIL_PATH: Final = "$.Detail"
    PUBLISH_ERROR_PATH: Final = "$.PublishError"
    PUBLISHED_PATH: Final = "$.Published"
    PUBLISH_TRIES_PATH: Final = "$.PublishTries"
    PUBLISH_TRIES_LEFT_PATH: Final = "$.PublishTries.Left"
    EVENT_ERROR_PATH: Final = "$.EventError"
    # Fast polls left (the workflow sets it): the first hour it looks every LONG_POLL_SECONDS.
    FAST_POLLS_PATH: Final = "$.Polls.Fast"

    # A schedule's run: the workflow names the job and its dated folder from the scheduled time.
    # Run holds NamePrefix (the schedule's job name prefix); the workflow adds Time (the parts
    # of the scheduled time, and of the stack's ARN).
    RUN: Final = "Run"
    RUN_PATH: Final = "$.Run"
    RUN_NAME_PREFIX_PATH: Final = "$.Run.NamePrefix"
    RUN_TIME_PATH: Final = "$.Run.Time"
    RUN_TIME_PARTS_PATH: Final = "$.Run.Time.Parts"
    RUN_STACK_PARTS_PATH: Final = "$.Run.Time.Stack"
    SCHEDULED_TIME_PATH: Final = "$.Event.ScheduledTime"
    STACK_ID_PATH: Final = "$.Event.StackId"
    CREATE_TAGS_PATH: Final = "$.Create.Tags"
    CREATE_PATH_PATH: Final = "$.Create.JobOutput.S3DataDestination.Path"
    # The latest parameter's value before a run records its own (it never goes back in time).
    LATEST_VALUE: Final = "LatestValue"
    LATEST_VALUE_PATH: Final = "$.LatestValue"


# A scheduled run's job is named <prefix>-YYYYMMDD-HHMM and writes into <prefix>YYYY/MM/DD/HHMM/,
# both from the run's scheduled time in UTC (EventBridge Scheduler's
# <aws.scheduler.scheduled-time>, e.g. 2026-11-29T02:00:00Z). Scheduler runs a schedule at most
# once a minute, so the minute tells its runs apart.
RUN_NAME_SUFFIX_LENGTH: Final = len("-YYYYMMDD-HHMM")
RUN_FOLDER_LENGTH: Final = len("YYYY/MM/DD/HHMM/")
RUN_NAME_PREFIX_MAX_LENGTH: Final = JOB_NAME_MAX_LENGTH - RUN_NAME_SUFFIX_LENGTH


class Signal:
    """The signal step's input: what happened (Ended, Deadline, Unreadable, NotStarted) and the
    execution's state."""

    OUTCOME: Final = "Outcome"
    STATE: Final = "State"
    # The role the poller's execution runs as: the one a refusal names.
    ROLE: Final = "Role"
