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
