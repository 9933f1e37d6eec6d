"""The export poller's one step of code: signal a CloudFormation WaitCondition.

A signal is an HTTP PUT of {"Status", "UniqueId", "Data", "Reason"} to the handle's presigned
URL with an empty Content-Type (any other breaks the URL's signature: 403). A handle whose
stack was deleted or whose deploy was cancelled answers an error: that is logged and nothing
fails, since nobody waits any more.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from .contract import MAX_MESSAGE_BYTES, WAIT_UNIQUE_ID, Poll, Signal
from .handler import trim_utf8

ACTIVE = "ACTIVE"
SIGNAL_TIMEOUT_SECONDS = 10


def send(event: dict[str, Any], context: object = None) -> dict[str, Any]:
    """Tell the waiting deploy how the job ended (or why the poller can't tell)."""
    state: dict[str, Any] = event.get(Signal.STATE) or {}
    status, reason = outcome(str(event.get(Signal.OUTCOME)), state, str(event.get(Signal.ROLE, "")))
    job_arn = str(state.get(Poll.JOB, {}).get("JobArn", ""))
    body = {
        "Status": status,
        "UniqueId": WAIT_UNIQUE_ID,
        "Data": job_arn,
        "Reason": trim_utf8(reason, MAX_MESSAGE_BYTES),
    }
    answered = put(str(state.get(Poll.HANDLE, "")), json.dumps(body).encode())
    print(json.dumps({"signal": status, "jobArn": job_arn, "answered": answered}), flush=True)
    return {"Status": status, "Answered": answered}


def outcome(kind: str, state: dict[str, Any], role: str = "") -> tuple[str, str]:
    """SUCCESS or FAILURE, and the reason CloudFormation shows."""
    job_arn = str(state.get(Poll.JOB, {}).get("JobArn", ""))
    job = state.get(Poll.DESCRIBE, {}).get("Job", {})
    if kind == "Ended" and job.get("Status") == ACTIVE:
        return "SUCCESS", f"Export job {job_arn} is ACTIVE"
    if kind == "Ended":
        reason = job.get("FailureReason") or "no failureReason given"
        return "FAILURE", f"Export job {job_arn} ended in {job.get('Status')}: {reason}"
    if kind == "Deadline":
        return "FAILURE", deadline_reason(job_arn, job, state)
    error = state.get(Poll.ERROR, {})
    cause = f"{error.get('Error', 'Error')}: {error.get('Cause', 'no cause given')}"
    if kind == "NotStarted":
        return "FAILURE", f"Export job {job_arn} could not be started: {cause}"
    poller_role = f"the export poller's role {role}" if role else "the export poller's role"
    return "FAILURE", (
        f"The export poller could not read export job {job_arn}: {cause}. Check that "
        f"{poller_role} may call personalize:DescribeDatasetExportJob on the job."
    )


def deadline_reason(job_arn: str, job: dict[str, Any], state: dict[str, Any]) -> str:
    waited = state.get(Poll.TIMEOUT_SECONDS, "the")
    return (
        f"Export job {job_arn} was not ACTIVE within the {waited} s timeout (last status: "
        f"{job.get('Status', 'unknown')}). The job goes on running in Personalize (export jobs "
        "can't be stopped) and the completion event is still sent when it ends: check it with "
        f"aws personalize describe-dataset-export-job --dataset-export-job-arn {job_arn}. "
        "To wait longer raise the DatasetExportJob's timeout (at most 43200 s)."
    )


def put(url: str, body: bytes) -> int:
    """PUT the signal; the HTTP status, or 0 when the URL could not be reached."""
    request = urllib.request.Request(url, data=body, method="PUT", headers={"Content-Type": ""})
    try:
        with urllib.request.urlopen(request, timeout=SIGNAL_TIMEOUT_SECONDS) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return error.code
    except (urllib.error.URLError, OSError, ValueError):
        return 0
