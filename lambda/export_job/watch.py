"""Hand a started job to the stack's export poller, which watches it to its end: it publishes the
completion event (every mode) and signals the WaitCondition of a long wait.

One execution per job (and per WaitCondition handle), named after them: starting it again is a
no-op, so every retried or repeated call may ask for it.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from .contract import (
    LONG_POLL_SECONDS,
    MAX_LONG_TIMEOUT_SECONDS,
    POLLER_ARN_ENV,
    STARTED_FIELD,
    WAIT_CONDITION_MARGIN_SECONDS,
    WATCH_AFTER_DEADLINE_SECONDS,
    Poll,
    Prop,
    WaitMode,
)
from .request import Event, ExportRequest, job_name_of

if TYPE_CHECKING:
    from mypy_boto3_stepfunctions import SFNClient

_client: SFNClient | None = None
ALREADY_WATCHED = "ExecutionAlreadyExists"


class WatchError(Exception):
    """The poller could not be started (and nothing retried it)."""


def states() -> SFNClient:
    """The Step Functions client, created on first use (AWS_ENDPOINT_URL_SFN applies)."""
    global _client
    if _client is None:
        config = Config(retries={"mode": "standard"}, connect_timeout=5, read_timeout=10)
        _client = boto3.client("stepfunctions", config=config)
    return _client


def use_client(client: SFNClient | None) -> None:
    """Inject a client (tests), or None to create a fresh one on next use."""
    global _client
    _client = client


def wait_mode(event: Event) -> str:
    return str(event["ResourceProperties"].get(Prop.WAIT_MODE) or WaitMode.RESOURCE)


def ensure_watched(event: Event, request: ExportRequest, job_arn: str) -> str:
    """Start the poller on this job unless it already runs; returns what happened.

    An execution of that name already started (or ended) is this one: ExecutionAlreadyExists
    is success. Any other refusal raises WatchError for the caller to weigh.
    """
    properties = event["ResourceProperties"]
    poller = poller_arn()
    if not poller:
        return "NOT WATCHED (no poller)"
    try:
        states().start_execution(
            stateMachineArn=poller,
            name=execution_name(job_arn, str(properties.get(Prop.WAIT_HANDLE) or "")),
            input=json.dumps(poller_input(event, request, job_arn)),
        )
    except ClientError as error:
        code = str(error.response.get("Error", {}).get("Code", ""))
        if code == ALREADY_WATCHED:
            return "WATCHED"
        raise WatchError(f"{code}: {error}") from error
    except BotoCoreError as error:
        raise WatchError(str(error)) from error
    return "WATCHED"


def poller_arn() -> str:
    return os.environ.get(POLLER_ARN_ENV, "")


def execution_name(job_arn: str, handle: str) -> str:
    """The job's name, plus a hash of the WaitCondition handle a long wait signals."""
    name = job_name_of(job_arn)
    if not handle:
        return name
    return f"{name}-{hashlib.sha256(handle.encode()).hexdigest()[:8]}"


def poller_input(event: Event, request: ExportRequest, job_arn: str) -> dict[str, Any]:
    properties = event["ResourceProperties"]
    waits = wait_mode(event) == WaitMode.CONDITION
    longest = MAX_LONG_TIMEOUT_SECONDS - WAIT_CONDITION_MARGIN_SECONDS
    timeout = min(request.timeout_seconds, longest) if waits else MAX_LONG_TIMEOUT_SECONDS
    # The timeout counts from the event's start: the job may have waited to start, or for IAM.
    started = float(event.get(STARTED_FIELD) or time.time())
    remaining = max(0.0, timeout - (time.time() - started))
    polls_left = math.ceil(remaining / LONG_POLL_SECONDS)
    return {
        Poll.JOB: {
            "JobArn": job_arn,
            "JobName": job_name_of(job_arn),
            "DatasetArn": request.dataset_arn,
            "IngestionMode": request.ingestion_mode,
            "OutputPath": request.output_path,
        },
        Poll.EVENT: {
            "EventBusName": str(properties.get(Prop.EVENT_BUS_NAME) or "default"),
            "StackId": str(event["StackId"]),
            "ConstructPath": str(properties.get(Prop.CONSTRUCT_PATH) or ""),
            "ScheduledTime": "",
        },
        Poll.POLLS: {
            "Left": polls_left,
            "WatchLeft": polls_left + WATCH_AFTER_DEADLINE_SECONDS // LONG_POLL_SECONDS,
        },
        Poll.HANDLE: str(properties.get(Prop.WAIT_HANDLE) or "") if waits else "",
        Poll.LATEST: "",
        Poll.TIMEOUT_SECONDS: timeout,
    }
