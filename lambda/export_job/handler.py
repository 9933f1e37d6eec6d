"""onEvent and isComplete for Custom::PersonalizeDatasetExportJob (CDK Provider framework).

onEvent starts the export (Create, or an Update that changes what is exported) and names the
resource after the job's ARN. isComplete polls the job until ACTIVE, starting it if onEvent could
not. Delete touches nothing: Personalize has no API to delete an export job, and the exported
files are the user's data.

Each call prints one JSON line (request type, logical id, job ARN, status); never the event's
ResponseURL, a presigned URL.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from . import personalize as api
from .contract import (
    CLOUDFORMATION_MAX_WAIT_SECONDS,
    DEADLINE_FIELD,
    MAX_MESSAGE_BYTES,
    MAX_TIMEOUT_SECONDS,
    Attr,
)
from .request import Event, ExportRequest, job_arn_for, job_name_for, job_name_of

ACTIVE = "ACTIVE"
FAILED = "CREATE FAILED"
STARTED = "STARTED"
NOT_STARTED = "NOT STARTED"
UNKNOWN = "UNKNOWN"
ELLIPSIS = "..."


class ExportJobError(Exception):
    """A failure reported to CloudFormation; kept short enough for its 4096-byte response."""

    def __init__(self, message: str, job_arn: str = "") -> None:
        super().__init__(trim_utf8(message, MAX_MESSAGE_BYTES))
        self.job_arn = job_arn


@dataclass(frozen=True)
class Step:
    """What one call answers the framework, and the job and status it logs."""

    response: dict[str, Any]
    job_arn: str
    status: str


def on_event(event: Event, context: object = None) -> dict[str, Any]:
    with logged("onEvent", event) as answer:
        match event["RequestType"]:
            case "Create":
                step = start_export(event)
            case "Update":
                step = update_export(event)
            case "Delete":
                step = leave_in_place(event)
            case other:
                raise ExportJobError(f"Unknown RequestType {other!r}")
        return answer(step)


def is_complete(event: Event, context: object = None) -> dict[str, Any]:
    with logged("isComplete", event) as answer:
        match event["RequestType"]:
            case "Create" | "Update":
                step = poll_export(event)
            case _:
                step = Step({"IsComplete": True}, physical_id(event), "LEFT IN PLACE")
        return answer(step)


def start_export(event: Event) -> Step:
    request = ExportRequest.from_properties(event["ResourceProperties"])
    job_arn = job_arn_for(event, job_name_for(request, event))
    return waiting_on(job_arn, request, ensure_started(request, job_arn))


def update_export(event: Event) -> Step:
    new = ExportRequest.from_properties(event["ResourceProperties"])
    old = ExportRequest.from_properties(event.get("OldResourceProperties", {}))
    job_arn = physical_id(event)
    if new.export_settings() == old.export_settings():
        return waiting_on(job_arn, new, "UNCHANGED")
    if new.job_name and new.job_name == old.job_name:
        # Names are unique and jobs immutable: the job stays only if it already exports this.
        named_arn = job_arn_for(event, new.job_name)
        return waiting_on(named_arn, new, adopt(new, named_arn))
    if is_rollback(new, old, job_arn):
        return waiting_on(job_arn, new, "ROLLED BACK")
    # A new job under a new name: CloudFormation sees a replacement, the old job stays as it is.
    return start_export(event)


def leave_in_place(event: Event) -> Step:
    job_arn = physical_id(event)
    return Step({"PhysicalResourceId": job_arn} if job_arn else {}, job_arn, "LEFT IN PLACE")


def is_rollback(new: ExportRequest, old: ExportRequest, job_arn: str) -> bool:
    """CloudFormation undoing a failed update: the job exports `new` already, and not `old`."""
    try:
        job = api.describe_job(job_arn)
    except api.API_ERRORS:
        return False  # can't tell: a new job is the safe answer
    return not new.differences(job) and bool(old.differences(job))


def waiting_on(job_arn: str, request: ExportRequest, status: str) -> Step:
    response: dict[str, Any] = {"PhysicalResourceId": job_arn}
    if request.timeout_seconds > 0:
        response[DEADLINE_FIELD] = str(int(time.time()) + allowed_wait(request))
    return Step(response, job_arn, status)


def allowed_wait(request: ExportRequest) -> int:
    return min(request.timeout_seconds, MAX_TIMEOUT_SECONDS)


def ensure_started(request: ExportRequest, job_arn: str) -> str:
    """Create the job; a job of that name exporting the same is ours from an earlier try."""
    try:
        api.create_job(request.create_arguments(job_name_of(job_arn)))
    except api.API_ERRORS as error:
        code = api.error_code(error)
        if code == "ResourceAlreadyExistsException":
            return adopt(request, job_arn)
        if api.is_transient(error):
            # Throttled, busy dataset, job limit, 5xx: every poll tries again until the deadline.
            return f"{NOT_STARTED} ({code})"
        raise ExportJobError(
            f"Could not start export job {job_arn}: {api.describe_error(error)}", job_arn
        ) from error
    return STARTED


def adopt(request: ExportRequest, job_arn: str) -> str:
    try:
        job = api.describe_job(job_arn)
    except api.API_ERRORS as error:
        code = api.error_code(error)
        if api.is_transient(error) or code == "ResourceNotFoundException":
            return f"ADOPTING ({code})"  # every poll checks the job before using it
        raise ExportJobError(
            f"Could not read existing export job {job_arn}: {api.describe_error(error)}", job_arn
        ) from error
    check_exports(request, job_arn, job)
    return f"ADOPTED ({job.get('status', UNKNOWN)})"


def check_exports(request: ExportRequest, job_arn: str, job: dict[str, Any]) -> None:
    if differences := request.differences(job):
        raise ExportJobError(
            f"Export job {job_arn} already exists and is not the export this resource asks for: "
            f"{'; '.join(differences)}. Export job names are unique per account and region, and "
            "jobs can be neither updated nor deleted: set a new job_name, or leave job_name unset "
            "so that every export gets a name of its own.",
            job_arn,
        )


def poll_export(event: Event) -> Step:
    request = ExportRequest.from_properties(event["ResourceProperties"])
    job_arn = physical_id(event)
    job, status = read_job(request, job_arn)
    if job is not None:
        check_exports(request, job_arn, job)
        if status == ACTIVE:
            return Step({"IsComplete": True, "Data": attributes(job)}, job_arn, status)
        if status == FAILED:
            reason = job.get("failureReason") or "no failureReason given"
            raise ExportJobError(f"Export job {job_arn} ended in {FAILED}: {reason}", job_arn)
    if past_deadline(event):
        raise ExportJobError(deadline_message(job_arn, status, request), job_arn)
    return Step({"IsComplete": False}, job_arn, status)


def read_job(request: ExportRequest, job_arn: str) -> tuple[dict[str, Any] | None, str]:
    """The job and its status; a job not found yet is started, a failed call is another poll."""
    try:
        job = api.describe_job(job_arn)
    except api.API_ERRORS as error:
        code = api.error_code(error)
        if code == "ResourceNotFoundException":
            return None, ensure_started(request, job_arn)
        if api.is_transient(error):
            return None, f"{UNKNOWN} (DescribeDatasetExportJob answered {code})"
        raise ExportJobError(
            f"Could not read export job {job_arn}: {api.describe_error(error)}", job_arn
        ) from error
    return job, str(job.get("status", UNKNOWN))


def past_deadline(event: Event) -> bool:
    deadline = float(event.get(DEADLINE_FIELD) or 0)
    return bool(deadline) and time.time() >= deadline


def deadline_message(job_arn: str, status: str, request: ExportRequest) -> str:
    waited = allowed_wait(request)
    if status.startswith(NOT_STARTED):
        code = status.removeprefix(NOT_STARTED).strip(" ()")
        return (
            f"Export job {job_arn} could not be started within the {waited} s timeout: "
            f"CreateDatasetExportJob was refused until the end, last with {code}; "
            f"{api.describe_refusal(code)}. No export job was started."
        )
    if request.timeout_seconds > waited:
        advice = (
            f"The timeout asked for ({request.timeout_seconds} s) was cut to {waited} s: "
            f"CloudFormation waits at most one hour ({CLOUDFORMATION_MAX_WAIT_SECONDS} s) for a "
            "custom resource, and the rest of it is kept for starting the job and reporting back."
        )
    else:
        advice = (
            f"To wait longer raise the DatasetExportJob's timeout (at most {MAX_TIMEOUT_SECONDS} "
            "s: CloudFormation waits at most one hour for a custom resource)."
        )
    return (
        f"Export job {job_arn} was not ACTIVE within the {waited} s timeout (last status: "
        f"{status}). The job goes on running in Personalize (export jobs can't be stopped): check "
        "it with aws personalize describe-dataset-export-job --dataset-export-job-arn "
        f"{job_arn}. {advice}"
    )


def attributes(job: dict[str, Any]) -> dict[str, str]:
    destination = job.get("jobOutput", {}).get("s3DataDestination", {})
    return {
        Attr.JOB_ARN: str(job["datasetExportJobArn"]),
        Attr.JOB_NAME: str(job["jobName"]),
        Attr.OUTPUT_PATH: str(destination.get("path", "")),
        Attr.STATUS: str(job["status"]),
        Attr.DATASET_ARN: str(job.get("datasetArn", "")),
        Attr.INGESTION_MODE: str(job.get("ingestionMode", "")),
    }


def physical_id(event: Event) -> str:
    return str(event.get("PhysicalResourceId") or "")


@contextmanager
def logged(handler: str, event: Event) -> Iterator[Callable[[Step], dict[str, Any]]]:
    """One JSON line per call: the event's type and resource, then the job and its status."""
    line: dict[str, object] = {
        "handler": handler,
        "requestType": event.get("RequestType"),
        "logicalResourceId": event.get("LogicalResourceId"),
        "requestId": event.get("RequestId"),
        "jobArn": physical_id(event),
        "status": None,
    }

    def answer(step: Step) -> dict[str, Any]:
        line.update(jobArn=step.job_arn or line["jobArn"], status=step.status)
        return step.response

    try:
        yield answer
    except Exception as error:
        line.update(status="FAILED", error=str(error))
        if isinstance(error, ExportJobError) and error.job_arn:
            line["jobArn"] = error.job_arn
        raise
    finally:
        print(json.dumps(line, default=str), flush=True)


def trim_utf8(text: str, max_bytes: int) -> str:
    """Cut text to max_bytes as it travels in CloudFormation's response: UTF-8, JSON-escaped."""
    if json_bytes(text) <= max_bytes:
        return text
    kept: list[str] = []
    used = len(ELLIPSIS)
    for char in text:
        used += json_bytes(char)
        if used > max_bytes:
            break
        kept.append(char)
    return "".join(kept) + ELLIPSIS


def json_bytes(text: str) -> int:
    return len(json.dumps(text, ensure_ascii=False).encode(errors="surrogatepass")) - 2
