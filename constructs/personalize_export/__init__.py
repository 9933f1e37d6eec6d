"""Amazon Personalize dataset exports as AWS CDK constructs."""

from personalize_export.dataset_export_job import (
    INGESTION_MODE_NOT_GIVEN,
    DatasetExportJob,
    IngestionMode,
)
from personalize_export.dataset_export_schedule import DatasetExportSchedule
from personalize_export.destination import (
    BUCKET_POLICY_NOT_ADDED,
    KEY_POLICY_NOT_ADDED,
    LIFECYCLE_RULE_NOT_ADDED,
    ROLE_POLICY_NOT_ADDED,
)
from personalize_export.poller import ExportPoller
from personalize_export.table import ExportTable, TableOptions
from personalize_export.tagging import TAG_NOT_APPLIED

# The constructs, what their attributes are typed as, and every warning id a user may acknowledge
# (Annotations.of(construct).acknowledge_warning(id, reason)).
__all__ = [
    "BUCKET_POLICY_NOT_ADDED",
    "INGESTION_MODE_NOT_GIVEN",
    "KEY_POLICY_NOT_ADDED",
    "LIFECYCLE_RULE_NOT_ADDED",
    "ROLE_POLICY_NOT_ADDED",
    "TAG_NOT_APPLIED",
    "DatasetExportJob",
    "DatasetExportSchedule",
    "ExportPoller",
    "ExportTable",
    "IngestionMode",
    "TableOptions",
]
