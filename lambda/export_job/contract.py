"""Names shared by the construct (synth time) and the handler (deploy time).

The construct imports this module from the package; the handler imports it from the asset.
Both sides therefore read the same constants and cannot drift apart.
"""

from typing import Final

RESOURCE_TYPE: Final = "Custom::PersonalizeDatasetExportJob"

ON_EVENT_ENTRY: Final = "export_job.handler.on_event"
IS_COMPLETE_ENTRY: Final = "export_job.handler.is_complete"


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
