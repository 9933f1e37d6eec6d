"""onEvent and isComplete for Custom::PersonalizeDatasetExportJob (CDK Provider framework).

onEvent starts the export (Create, or an Update that changes what is exported) and names the
resource after the job's ARN. isComplete polls the job until ACTIVE, starting it if onEvent could
not. Delete touches nothing: Personalize has no API to delete an export job, and the exported
files are the user's data.
"""

from __future__ import annotations

import json
import time
from typing import Any

from . import personalize as api
from .contract import DEADLINE_FIELD, MAX_MESSAGE_BYTES, Attr
from .request import (
    Event,
    ExportRequest,
    job_arn_for,
    job_name_for,
    job_name_of,
    normalize_output_path,
)

ACTIVE = "ACTIVE"
FAILED = "CREATE FAILED"


class ExportJobError(Exception):
    """A failure reported to CloudFormation; kept short enough for its 4096-byte response."""

    def __init__(self, message: str) -> None:
        super().__init__(trim_utf8(message, MAX_MESSAGE_BYTES))


def on_event(event: Event, context: object = None) -> dict[str, Any]:
    log("onEvent", event)
    match event["RequestType"]:
        case "Create":
            return start_export(event)
        case "Update":
            return update_export(event)
        case "Delete":
            return {"PhysicalResourceId": event["PhysicalResourceId"]}
        case other:
            raise ExportJobError(f"Unknown RequestType {other!r}")


def is_complete(event: Event, context: object = None) -> dict[str, Any]:
    match event["RequestType"]:
        case "Create" | "Update":
            return poll_export(event)
        case _:
            log("isComplete", event)
            return {"IsComplete": True}


def start_export(event: Event) -> dict[str, Any]:
    request = ExportRequest.from_properties(event["ResourceProperties"])
    job_name = job_name_for(request, event)
    job_arn = job_arn_for(event, job_name)
    ensure_started(request, job_name, job_arn)
    return waiting_on(job_arn, request)


def update_export(event: Event) -> dict[str, Any]:
    new = ExportRequest.from_properties(event["ResourceProperties"])
    old = ExportRequest.from_properties(event.get("OldResourceProperties", {}))
    if new.export_settings() == old.export_settings():
        return waiting_on(event["PhysicalResourceId"], new)
    # A new job under a new name: CloudFormation sees a replacement, the old job stays as it is.
    return start_export(event)


def waiting_on(job_arn: str, request: ExportRequest) -> dict[str, Any]:
    deadline = time.time() + request.timeout_seconds
    return {"PhysicalResourceId": job_arn, DEADLINE_FIELD: str(int(deadline))}


def ensure_started(request: ExportRequest, job_name: str, job_arn: str) -> None:
    """Create the job; a job of that name with the same export is ours from an earlier try."""
    try:
        api.create_job(request.create_arguments(job_name))
        log_line("started", jobArn=job_arn)
    except api.API_ERRORS as error:
        if api.error_code(error) == "ResourceAlreadyExistsException":
            adopt(request, job_arn)
        elif api.is_transient(error):
            log_line("start deferred", jobArn=job_arn, error=api.error_code(error))
        else:
            raise ExportJobError(
                f"Could not start export job {job_arn}: {api.describe_error(error)}"
            ) from error


def adopt(request: ExportRequest, job_arn: str) -> None:
    try:
        job = api.describe_job(job_arn)
    except api.API_ERRORS as error:
        if api.is_transient(error):
            return
        raise ExportJobError(
            f"Could not read existing export job {job_arn}: {api.describe_error(error)}"
        ) from error
    found = (job.get("datasetArn"), normalize_output_path(output_path_of(job)))
    if found != (request.dataset_arn, request.output_path):
        raise ExportJobError(
            f"Job name {job_name_of(job_arn)} is already used by export job {job_arn}, which "
            f"exports {found[0]} to {found[1]}; this resource exports {request.dataset_arn} to "
            f"{request.output_path}. Export job names are unique per account and region and "
            "jobs cannot be deleted: set another job_name, or leave it unset to derive one."
        )
    log_line("adopted", jobArn=job_arn)


def poll_export(event: Event) -> dict[str, Any]:
    request = ExportRequest.from_properties(event["ResourceProperties"])
    job_arn = str(event["PhysicalResourceId"])
    job, status = read_job(request, job_arn)
    log("isComplete", event, jobArn=job_arn, status=status)
    if job is not None and status == ACTIVE:
        return {"IsComplete": True, "Data": attributes(job)}
    if status == FAILED:
        reason = (job or {}).get("failureReason") or "no reason given"
        raise ExportJobError(f"Export job {job_arn} failed (CREATE FAILED): {reason}")
    deadline = float(event.get(DEADLINE_FIELD) or 0)
    if deadline and time.time() >= deadline:
        raise ExportJobError(
            f"Export job {job_arn} was not ACTIVE after {request.timeout_seconds} s (last status: "
            f"{status}). The job goes on running in Personalize; raise the timeout, or check the "
            "job with DescribeDatasetExportJob before deploying again."
        )
    return {"IsComplete": False}


def read_job(request: ExportRequest, job_arn: str) -> tuple[dict[str, Any] | None, str]:
    """The job and its status; a job not found yet is started, a failed call is another poll."""
    try:
        job = api.describe_job(job_arn)
        return job, str(job.get("status", "UNKNOWN"))
    except api.API_ERRORS as error:
        code = api.error_code(error)
        if code == "ResourceNotFoundException":
            ensure_started(request, job_name_of(job_arn), job_arn)
            return None, "NOT STARTED"
        if api.is_transient(error):
            return None, f"UNKNOWN ({code} on DescribeDatasetExportJob)"
        raise ExportJobError(
            f"Could not read export job {job_arn}: {api.describe_error(error)}"
        ) from error


def attributes(job: dict[str, Any]) -> dict[str, str]:
    return {
        Attr.JOB_ARN: str(job["datasetExportJobArn"]),
        Attr.JOB_NAME: str(job["jobName"]),
        Attr.OUTPUT_PATH: output_path_of(job),
        Attr.STATUS: str(job["status"]),
        Attr.DATASET_ARN: str(job.get("datasetArn", "")),
        Attr.INGESTION_MODE: str(job.get("ingestionMode", "")),
    }


def output_path_of(job: dict[str, Any]) -> str:
    return str(job.get("jobOutput", {}).get("s3DataDestination", {}).get("path", ""))


def log(stage: str, event: Event, **fields: object) -> None:
    """One JSON line per event or poll; never the ResponseURL (it is a presigned URL)."""
    log_line(
        stage,
        requestType=event.get("RequestType"),
        logicalResourceId=event.get("LogicalResourceId"),
        physicalResourceId=event.get("PhysicalResourceId"),
        **fields,
    )


def log_line(message: str, **fields: object) -> None:
    print(json.dumps({"message": message, **fields}, default=str), flush=True)


def trim_utf8(text: str, max_bytes: int) -> str:
    encoded = text.encode()
    if len(encoded) <= max_bytes:
        return text
    return encoded[: max_bytes - 3].decode(errors="ignore") + "..."
