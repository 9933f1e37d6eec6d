"""What CloudFormation is told when an export fails: the error, the jobs tried, and messages cut
to fit its 4096-byte response."""

from __future__ import annotations

import json
from dataclasses import dataclass

from . import personalize as api
from .contract import CLOUDFORMATION_MAX_WAIT_SECONDS, MAX_MESSAGE_BYTES, MAX_TIMEOUT_SECONDS
from .request import ExportRequest

FAILED = "CREATE FAILED"
NOT_STARTED = "NOT STARTED"
ELLIPSIS = "..."
# Bytes each failureReason may take in a message that lists several jobs.
LISTED_REASON_BYTES = 300
LAST_REASON_BYTES = 450


@dataclass(frozen=True)
class Tried:
    """A job of this resource that ended in CREATE FAILED, and why."""

    job_arn: str
    reason: str


class ExportJobError(Exception):
    """A failure reported to CloudFormation; kept short enough for its 4096-byte response."""

    def __init__(self, message: str, job_arn: str = "", tried: tuple[Tried, ...] = ()) -> None:
        super().__init__(trim_utf8(message, MAX_MESSAGE_BYTES))
        self.job_arn = job_arn
        self.tried = tried


def ended_in_failure(tried: tuple[Tried, ...]) -> str:
    """The last job's failure, and every job tried before it."""
    last = tried[-1]
    message = (
        f"Export job {last.job_arn} ended in {FAILED}: {trim_utf8(last.reason, LAST_REASON_BYTES)}"
    )
    if len(tried) > 1:
        message += f" {listed(tried[:-1])}"
    return message


def listed(tried: tuple[Tried, ...]) -> str:
    jobs = "; ".join(
        f"{number}) {job.job_arn}: {trim_utf8(job.reason, LISTED_REASON_BYTES)}"
        for number, job in enumerate(tried, start=1)
    )
    end = "" if jobs.endswith(".") else "."
    return f"Jobs tried before it: {jobs}{end}" if jobs else ""


def allowed_wait(request: ExportRequest) -> int:
    return min(request.timeout_seconds, MAX_TIMEOUT_SECONDS)


def deadline_message(
    job_arn: str, status: str, request: ExportRequest, tried: tuple[Tried, ...] = ()
) -> str:
    waited = allowed_wait(request)
    before = f" {listed(tried)}" if tried else ""
    if status.startswith(NOT_STARTED):
        code = status.removeprefix(NOT_STARTED).strip(" ()")
        started = before or " No export job was started."
        return (
            f"Export job {job_arn} could not be started within the {waited} s timeout: "
            f"CreateDatasetExportJob was refused until the end, last with {code}; "
            f"{api.describe_refusal(code)}.{started}"
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
        f"{job_arn}. {advice}{before}"
    )


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
