"""onEvent and isComplete for Custom::PersonalizeDatasetExportJob (CDK Provider framework).

onEvent starts the export (Create, or an Update that changes what is exported) and names the
resource after the job's ARN. isComplete polls the job until ACTIVE, starting it if onEvent could
not. Delete touches nothing: Personalize has no API to delete an export job, and the exported
files are the user's data.

While IAM settles (see settling.py), a refusal for access is retried like throttling, and a job
failing for access is started again under a new derived name. isComplete's answers are dropped
while IsComplete is false, so each poll finds the current job by following the derived names from
the first job; the job that ends ACTIVE becomes the resource's physical id. What CloudFormation is
told on failure is worded in failures.py.

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
from . import watch
from .contract import (
    DEADLINE_FIELD,
    RESULT_RESOURCE_TYPE,
    SETTLING_FIELD,
    STARTED_FIELD,
    Attr,
    WaitMode,
)
from .failures import ELLIPSIS as ELLIPSIS
from .failures import (
    FAILED,
    NOT_STARTED,
    Tried,
    allowed_wait,
    deadline_message,
)
from .failures import ExportJobError as ExportJobError
from .failures import trim_utf8 as trim_utf8
from .request import (
    Event,
    ExportRequest,
    job_arn_for,
    job_name_for,
    job_name_of,
)
from .settling import NOT_SETTLING, Settling, failure_message, next_attempt, still_refused

ACTIVE = "ACTIVE"
STARTED = "STARTED"
UNKNOWN = "UNKNOWN"
# A later job of the chain that does not exist and may no longer be started.
MISSING = "MISSING"


@dataclass(frozen=True)
class Step:
    """What one call answers the framework, and the job, status and failed jobs it logs."""

    response: dict[str, Any]
    job_arn: str
    status: str
    tried: tuple[Tried, ...] = ()


def on_event(event: Event, context: object = None) -> dict[str, Any]:
    with logged("onEvent", event) as answer:
        match event["RequestType"], event.get("ResourceType") == RESULT_RESOURCE_TYPE:
            case "Create" | "Update", True:
                step = result_of(event)
            case "Create", False:
                step = start_export(event)
            case "Update", False:
                step = update_export(event)
            case "Delete", _:
                step = leave_in_place(event)
            case other, _:
                raise ExportJobError(f"Unknown RequestType {other!r}")
        return answer(step)


def is_complete(event: Event, context: object = None) -> dict[str, Any]:
    with logged("isComplete", event) as answer:
        match event["RequestType"], event.get("ResourceType") == RESULT_RESOURCE_TYPE:
            case "Create" | "Update", True:
                step = poll_result(event)
            case "Create" | "Update", False:
                step = poll_export(event)
            case _:
                step = Step({"IsComplete": True}, physical_id(event), "LEFT IN PLACE")
        return answer(step)


def start_export(event: Event) -> Step:
    request = ExportRequest.from_properties(event["ResourceProperties"])
    job_arn = job_arn_for(event, job_name_for(request, event))
    settling = Settling.starting_now(event, time.time)
    status = ensure_started(request, job_arn, settling)
    watch_for_the_event(event, request, job_arn, status)
    return waiting_on(job_arn, request, status, settling)


def watch_for_the_event(event: Event, request: ExportRequest, job_arn: str, status: str) -> None:
    """While the deploy waits itself, the poller watches a new job only for the completion event:
    a poller that can't start costs the event, never the deploy (the log says so)."""
    if watch.wait_mode(event) != WaitMode.RESOURCE or status != STARTED:
        return
    try:
        watch.ensure_watched(event, request, job_arn)
    except watch.WatchError as error:
        print(json.dumps({"jobArn": job_arn, "notWatched": str(error)}), flush=True)


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


def waiting_on(
    job_arn: str, request: ExportRequest, status: str, settling: Settling = NOT_SETTLING
) -> Step:
    response: dict[str, Any] = {"PhysicalResourceId": job_arn, STARTED_FIELD: str(int(time.time()))}
    if request.timeout_seconds > 0:
        response[DEADLINE_FIELD] = str(int(time.time()) + allowed_wait(request))
    if settling.applies:
        response[SETTLING_FIELD] = str(int(settling.until))
    return Step(response, job_arn, status)


def ensure_started(
    request: ExportRequest,
    job_arn: str,
    settling: Settling = NOT_SETTLING,
    tried: tuple[Tried, ...] = (),
) -> str:
    """Create the job; a job of that name exporting the same is ours from an earlier try."""
    try:
        api.create_job(request.create_arguments(job_name_of(job_arn)))
    except api.API_ERRORS as error:
        code = api.error_code(error)
        if code == "ResourceAlreadyExistsException":
            return adopt(request, job_arn, settling)
        if api.is_transient(error) or settling.excuses(error):
            # Throttled, busy dataset, job limit, 5xx, or IAM still settling: every poll tries
            # again (until the deadline, or the end of the settling window for access).
            return f"{NOT_STARTED} ({code})"
        message = f"Could not start export job {job_arn}: {api.describe_error(error)}"
        if settling.applies and api.is_access_refusal(error):
            message = f"{message.rstrip('.')}. {still_refused(request, settling, tried)}"
        raise ExportJobError(message, job_arn, tried) from error
    return STARTED


def adopt(request: ExportRequest, job_arn: str, settling: Settling = NOT_SETTLING) -> str:
    try:
        job = api.describe_job(job_arn)
    except api.API_ERRORS as error:
        code = api.error_code(error)
        if (
            api.is_transient(error)
            or code == "ResourceNotFoundException"
            or settling.excuses(error)
        ):
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
    """Follow the resource's jobs (the first, then any started again) to the current one."""
    request = ExportRequest.from_properties(event["ResourceProperties"])
    first = physical_id(event)
    settling = Settling.of(event, time.time)
    tried: tuple[Tried, ...] = ()
    job_arn, may_start = first, True
    while True:
        job, status = read_job(request, job_arn, settling, tried, may_start=may_start)
        if status == MISSING:
            message = failure_message(request, tried, settling)
            raise ExportJobError(message, tried[-1].job_arn, tried)
        if job is None:
            watch_for_the_event(event, request, job_arn, status)
            break
        check_exports(request, job_arn, job)
        if status == ACTIVE or (status != FAILED and hands_over(event, settling)):
            if watch.wait_mode(event) != WaitMode.RESOURCE:
                hand_over(event, request, job_arn)
            response = {"IsComplete": True, "Data": attributes(job)}
            if job_arn != first:
                response["PhysicalResourceId"] = job_arn  # framework.js answers with it
            return Step(response, job_arn, status, tried)
        if status != FAILED:
            break
        tried += (Tried(job_arn, str(job.get("failureReason") or "no failureReason given")),)
        job_arn = next_attempt(request, event, settling, tried, first)
        # A job started while IAM settled is followed to its end; none is started after that.
        may_start = settling.is_open()
    if past_deadline(event):
        raise ExportJobError(deadline_message(job_arn, status, request, tried), job_arn, tried)
    return Step({"IsComplete": False}, job_arn, status, tried)


def hands_over(event: Event, settling: Settling) -> bool:
    """Whether a running job is handed to the poller now: at once when the deploy doesn't wait;
    for a long wait, once IAM has settled (a job failing for access is still started again)."""
    mode = watch.wait_mode(event)
    if mode == WaitMode.NONE:
        return True
    return mode == WaitMode.CONDITION and not settling.is_open()


def hand_over(event: Event, request: ExportRequest, job_arn: str) -> None:
    """The poller takes the job to its end (event, WaitCondition signal)."""
    try:
        watch.ensure_watched(event, request, job_arn)
    except watch.WatchError as error:
        if watch.wait_mode(event) == WaitMode.CONDITION:
            raise ExportJobError(
                f"Export job {job_arn} was started, but the export poller that waits for its end "
                f"could not be started: {error}. Check the handler role's states:StartExecution "
                f"permission on {watch.poller_arn()}.",
                job_arn,
            ) from error
        print(json.dumps({"jobArn": job_arn, "notWatched": str(error)}), flush=True)


def result_of(event: Event) -> Step:
    """A long wait's result resource: named after the job whose end the WaitCondition saw."""
    job_arn = str(event["ResourceProperties"].get(Attr.JOB_ARN) or "")
    return Step({"PhysicalResourceId": job_arn}, job_arn, "ENDED")


def poll_result(event: Event) -> Step:
    """The ended job's attributes (the WaitCondition before this resource got its signal)."""
    job_arn = physical_id(event)
    try:
        job = api.describe_job(job_arn)
    except api.API_ERRORS as error:
        if api.is_transient(error):
            return Step({"IsComplete": False}, job_arn, f"{UNKNOWN} ({api.error_code(error)})")
        raise ExportJobError(
            f"Could not read export job {job_arn}: {api.describe_error(error)}", job_arn
        ) from error
    status = str(job.get("status", UNKNOWN))
    if status != ACTIVE:
        raise ExportJobError(f"Export job {job_arn} is {status}, not ACTIVE", job_arn)
    return Step({"IsComplete": True, "Data": attributes(job)}, job_arn, status)


def read_job(
    request: ExportRequest,
    job_arn: str,
    settling: Settling = NOT_SETTLING,
    tried: tuple[Tried, ...] = (),
    *,
    may_start: bool = True,
) -> tuple[dict[str, Any] | None, str]:
    """The job and its status; a job not found yet is started, a failed call is another poll."""
    try:
        job = api.describe_job(job_arn)
    except api.API_ERRORS as error:
        code = api.error_code(error)
        if code == "ResourceNotFoundException":
            if not may_start:
                return None, MISSING
            return None, ensure_started(request, job_arn, settling, tried)
        if api.is_transient(error):
            return None, f"{UNKNOWN} (DescribeDatasetExportJob answered {code})"
        if settling.applies and may_start and api.is_access_refusal(error):
            # The job can't be seen yet: starting it is safe (a job of that name answers
            # ResourceAlreadyExists), and CreateDatasetExportJob's answer tells the state.
            return None, ensure_started(request, job_arn, settling, tried)
        raise ExportJobError(
            f"Could not read export job {job_arn}: {api.describe_error(error)}", job_arn, tried
        ) from error
    return job, str(job.get("status", UNKNOWN))


def past_deadline(event: Event) -> bool:
    deadline = float(event.get(DEADLINE_FIELD) or 0)
    return bool(deadline) and time.time() >= deadline


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
        if step.tried:
            line["jobsTried"] = logged_jobs(step.tried)
        return step.response

    try:
        yield answer
    except Exception as error:
        line.update(status="FAILED", error=str(error))
        if isinstance(error, ExportJobError):
            if error.job_arn:
                line["jobArn"] = error.job_arn
            if error.tried:
                line["jobsTried"] = logged_jobs(error.tried)
        raise
    finally:
        print(json.dumps(line, default=str), flush=True)


def logged_jobs(tried: tuple[Tried, ...]) -> list[dict[str, str]]:
    return [{"jobArn": job.job_arn, "failureReason": job.reason} for job in tried]
