"""Amazon Personalize dataset exports as AWS CDK constructs."""

from personalize_export.dataset_export_job import DatasetExportJob, IngestionMode

__all__ = ["DatasetExportJob", "IngestionMode"]
