"""The handler a user would hand-write: start the export, then poll it until ACTIVE."""

from __future__ import annotations

from typing import Any

import boto3

_personalize: Any = None


def client() -> Any:
    global _personalize
    if _personalize is None:
        _personalize = boto3.client("personalize")
    return _personalize


def on_event(event: dict[str, Any], context: object = None) -> dict[str, Any]:
    if event["RequestType"] != "Create":
        return {"PhysicalResourceId": event.get("PhysicalResourceId", "none")}
    props = event["ResourceProperties"]
    response = client().create_dataset_export_job(
        jobName=props["JobName"],
        datasetArn=props["DatasetArn"],
        ingestionMode=props["IngestionMode"],
        roleArn=props["RoleArn"],
        jobOutput={"s3DataDestination": {"path": props["OutputPath"]}},
    )
    return {"PhysicalResourceId": response["datasetExportJobArn"]}


def is_complete(event: dict[str, Any], context: object = None) -> dict[str, Any]:
    if event["RequestType"] != "Create":
        return {"IsComplete": True}
    job = client().describe_dataset_export_job(datasetExportJobArn=event["PhysicalResourceId"])
    status = job["datasetExportJob"]["status"]
    if status == "CREATE FAILED":
        raise RuntimeError(job["datasetExportJob"].get("failureReason", "export failed"))
    if status != "ACTIVE":
        return {"IsComplete": False}
    return {"IsComplete": True, "Data": {"JobArn": event["PhysicalResourceId"]}}
