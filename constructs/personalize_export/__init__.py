"""Amazon Personalize dataset exports as AWS CDK constructs."""

from personalize_export.dataset_export_job import DatasetExportJob, IngestionMode
from personalize_export.dataset_export_schedule import DatasetExportSchedule
from personalize_export.table import TableOptions

__all__ = ["DatasetExportJob", "DatasetExportSchedule", "IngestionMode", "TableOptions"]
