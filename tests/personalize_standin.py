"""Local stand-in for Amazon Personalize dataset export jobs, spoken over AWS JSON 1.1 HTTP.

Each DescribeDatasetExportJob advances the job first and then returns it: a job spends
`polls_per_state` describes in CREATE PENDING and as many in CREATE IN_PROGRESS, so with the
default of 1 the first describe shows CREATE IN_PROGRESS and the second ACTIVE. Nothing else
(listing included) advances a job.

Faults for the handler's tests: inject_error (any code and status, optionally after the call
took effect), throttle_next, server_error_next, drop_connection_next, fail_next_job and
never_finish_next_job; seed_job puts a job in place unlogged. `calls` and answers() record every
call and its answer.

Limits under load: max_jobs_in_progress (LimitExceededException beyond) and throttle_every (every
n-th request answered ThrottlingException).

IAM's propagation delay (see "IAM's lag" below): told through iam_changed() when a role (or one of
its policies), a bucket policy or a key policy was created or changed, the stand-in refuses the
caller's calls and fails jobs that use them for `iam_lag_seconds`. Time is read only through
`clock` (a constructor keyword and a settable attribute), so a test or harness can make it virtual.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import copy
import json
import re
import socket
import threading
import time
import unicodedata
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from types import TracebackType
from typing import Any, cast

import boto3
from botocore.config import Config
from local_server import LocalServer
from standin_exports import Record, StandInExports

TARGET_PREFIX = "AmazonPersonalize."
SFN_TARGET_PREFIX = "AWSStepFunctions."
_ACCESS_KEY = re.compile(r"Credential=([^/]+)/")
PENDING = "CREATE PENDING"
IN_PROGRESS = "CREATE IN_PROGRESS"
ACTIVE = "ACTIVE"
FAILED = "CREATE FAILED"
INGESTION_MODES = ("BULK", "PUT", "ALL")
MAX_TAGS = 200
MAX_RESULTS = 100
SERVER_ERROR_CODES = {500: "InternalFailure", 503: "ServiceUnavailable"}
# The status of a reply that is never sent: the connection is closed instead.
DROPPED = 0
_TAG_EXTRA_CHARS = frozenset("_.:/=+-@")

Body = dict[str, Any]
Reply = tuple[int, Body]


def _tag_text_matches(value: str) -> bool:
    """Match `^([\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*)$` using Unicode categories."""
    return all(unicodedata.category(char)[0] in "LZN" or char in _TAG_EXTRA_CHARS for char in value)


@dataclass(frozen=True)
class _Rule:
    """Length and pattern constraints of one string member, as in the service model."""

    pattern: str
    max_len: int
    min_len: int = 0
    matcher: Callable[[str], bool] | None = None

    def matches(self, value: str) -> bool:
        """Whether the whole value satisfies the pattern."""
        if self.matcher is not None:
            return self.matcher(value)
        return re.fullmatch(self.pattern, value, re.ASCII) is not None


_NAME = _Rule(r"^[a-zA-Z0-9][a-zA-Z0-9\-_]*", 63, 1)
_ARN = _Rule(r"arn:([a-z\d-]+):personalize:.*:.*:.+", 256)
_ROLE_ARN = _Rule(r"arn:([a-z\d-]+):iam::\d{12}:role/?[a-zA-Z_0-9+=,.@\-_/]+", 256)
_S3_PATH = _Rule(r"(s3|http|https)://.+", 256)
_KMS_KEY_ARN = _Rule(r"arn:aws.*:kms:.*:[0-9]{12}:key/.*", 2048)
_TAG_PATTERN = r"^([\p{L}\p{Z}\p{N}_.:/=+\-@]*)$"
_TAG_KEY = _Rule(_TAG_PATTERN, 128, 1, _tag_text_matches)
_TAG_VALUE = _Rule(_TAG_PATTERN, 256, 0, _tag_text_matches)


class ServiceError(Exception):
    """An error the stand-in answers with: an AWS error code, an HTTP status and a message."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status

    def reply(self) -> Reply:
        """The HTTP status and the AWS JSON 1.1 error body."""
        return self.status, {"__type": self.code, "message": self.message}


def _violation(value: Any, path: str, rule: str) -> str:
    shown = "null" if value is None else f"'{value}'"
    return f"Value {shown} at '{path}' failed to satisfy constraint: Member must {rule}"


def _string_errors(value: Any, path: str, rule: _Rule, *, required: bool) -> list[str]:
    if value is None:
        return [_violation(None, path, "not be null")] if required else []
    if not isinstance(value, str):
        return [_violation(value, path, "be a string")]
    checks = (
        (len(value) >= rule.min_len, f"have length greater than or equal to {rule.min_len}"),
        (len(value) <= rule.max_len, f"have length less than or equal to {rule.max_len}"),
        (rule.matches(value), f"satisfy regular expression pattern: {rule.pattern}"),
    )
    return [_violation(value, path, text) for satisfied, text in checks if not satisfied]


def _enum_errors(value: Any, path: str, allowed: tuple[str, ...]) -> list[str]:
    if value is None or value in allowed:
        return []
    return [_violation(value, path, f"satisfy enum value set: [{', '.join(allowed)}]")]


def _structure(value: Any, path: str) -> tuple[Body, list[str]]:
    if isinstance(value, dict):
        return value, []
    rule = "not be null" if value is None else "be a structure"
    return {}, [_violation(value, path, rule)]


def _job_output_errors(job_output: Any) -> list[str]:
    output, errors = _structure(job_output, "jobOutput")
    if errors:
        return errors
    path = "jobOutput.s3DataDestination"
    destination, errors = _structure(output.get("s3DataDestination"), path)
    if errors:
        return errors
    s3_path = _string_errors(destination.get("path"), f"{path}.path", _S3_PATH, required=True)
    kms_key = destination.get("kmsKeyArn")
    return s3_path + _string_errors(kms_key, f"{path}.kmsKeyArn", _KMS_KEY_ARN, required=False)


def _tag_errors(tag: Any, path: str) -> list[str]:
    members, errors = _structure(tag, path)
    if errors:
        return errors
    key = members.get("tagKey")
    errors = _string_errors(key, f"{path}.tagKey", _TAG_KEY, required=True)
    if isinstance(key, str) and key.lower().startswith("aws:"):
        errors.append(_violation(key, f"{path}.tagKey", "not begin with 'aws:'"))
    return errors + _string_errors(
        members.get("tagValue"), f"{path}.tagValue", _TAG_VALUE, required=True
    )


def _tags_errors(tags: Any) -> list[str]:
    if tags is None:
        return []
    if not isinstance(tags, list):
        return [_violation(tags, "tags", "be a list")]
    errors = []
    if len(tags) > MAX_TAGS:
        errors.append(_violation(tags, "tags", f"have length less than or equal to {MAX_TAGS}"))
    for index, tag in enumerate(tags, start=1):
        errors += _tag_errors(tag, f"tags.{index}.member")
    return errors


def _create_errors(body: Body) -> list[str]:
    return (
        _string_errors(body.get("jobName"), "jobName", _NAME, required=True)
        + _string_errors(body.get("datasetArn"), "datasetArn", _ARN, required=True)
        + _enum_errors(body.get("ingestionMode"), "ingestionMode", INGESTION_MODES)
        + _string_errors(body.get("roleArn"), "roleArn", _ROLE_ARN, required=True)
        + _job_output_errors(body.get("jobOutput"))
        + _tags_errors(body.get("tags"))
    )


def _max_results_errors(value: Any) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, int) or isinstance(value, bool):
        return [_violation(value, "maxResults", "be an integer")]
    if not 1 <= value <= MAX_RESULTS:
        return [_violation(value, "maxResults", f"be between 1 and {MAX_RESULTS}")]
    return []


def _raise_invalid(errors: list[str]) -> None:
    if errors:
        plural = "s" if len(errors) > 1 else ""
        detail = "; ".join(errors)
        raise ServiceError(
            "InvalidInputException", f"{len(errors)} validation error{plural} detected: {detail}"
        )


def _not_found(arn: str) -> ServiceError:
    return ServiceError("ResourceNotFoundException", f"Could not find resource with ARN {arn}")


def _encode_token(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode()


def _decode_token(token: Any) -> int:
    if token is None:
        return 0
    try:
        offset = json.loads(base64.urlsafe_b64decode(str(token)))["offset"]
    except (binascii.Error, ValueError, TypeError, KeyError) as error:
        raise ServiceError("InvalidNextTokenException", "The next token is invalid") from error
    if not isinstance(offset, int) or offset < 0:
        raise ServiceError("InvalidNextTokenException", "The next token is invalid")
    return offset


# --- IAM's lag -----------------------------------------------------------------------------------
# IAM is eventually consistent: a role or policy created or changed seconds ago may not be usable
# yet. terraform-provider-aws#6566 measured 10-30 s of AccessDenied after creating a role; other
# reports: hashicorp/terraform PR #2037 ("typically 5-10 seconds"), terraform-provider-aws#44517
# (quoting AWS support: up to 15 minutes, for Lambda assuming a new role).
#
# The caller's own role: IAM answers a call whose policy has not arrived with AccessDeniedException
# (HTTP 400 in Personalize's common errors: awsdocs/amazon-personalize-developer-guide,
# doc_source/CommonErrors.md) worded "User: <principal> is not authorized to perform: <action> on
# resource: <arn>", as quoted from the service in terraform-provider-aws#22962 (a role's new policy
# not yet propagated) and terraform-aws-modules/terraform-aws-ecs#414 (iam:PassRole on a role
# created in the same apply).
CALLER_DENIED = "User: {principal} is not authorized to perform: personalize:{operation}{resource}"
#
# Personalize's own access to the role, bucket and key. Published, for dataset *import* jobs:
# - as a job's failureReason (Personalize developer guide, "Error messages", archived in
#   awsdocs/amazon-personalize-developer-guide doc_source/error-messages.md): "Failed to create a
#   data import job for <dataset type> dataset....Insufficient privileges for accessing data in
#   Amazon S3." (the guide elides the middle with "....");
# - refused at create, HTTP 400, through CloudFormation's AWS::Personalize::Dataset
#   (mshakhomirov/persoanlize_ops, lp3_notes.md, FAQ 4): "Insufficient privileges for accessing
#   data in S3. Please look at https://docs.aws.amazon.com/personalize/latest/dg/
#   granting-personalize-s3-access.html#attach-bucket-policy and fix bucket policy on <bucket>."
#   (that page capitalises every "personalize", the URL included, and writes
#   `aws CloudFormation deploy`: a find-and-replace of the notes, not the service's spelling).
# Not published for dataset *export* jobs, nor for a role Personalize cannot assume, nor for a KMS
# key: those wordings below are ours, shaped like the import ones. Whether the export API checks
# access at create (like the import one) or only when the job runs is not documented either:
# `access_checked_at_create` chooses (default: the job fails).
S3_DENIED_AT_CREATE = (
    "Insufficient privileges for accessing data in S3. Please look at "
    "https://docs.aws.amazon.com/personalize/latest/dg/granting-personalize-s3-access.html"
    "#attach-bucket-policy and fix bucket policy on {bucket}."
)
ROLE_DENIED_AT_CREATE = (  # ours: no published wording
    "Insufficient privileges: Amazon Personalize could not assume role {role}. Make sure the "
    "role exists and trusts personalize.amazonaws.com."
)
KEY_DENIED_AT_CREATE = (  # ours: no published wording
    "Insufficient privileges for using the AWS KMS key {key}. Make sure the key policy allows "
    "Amazon Personalize and the role to use it."
)
JOB_FAILED_PREFIX = "Failed to create a dataset export job for {dataset_type} dataset. "
S3_DENIED_IN_JOB = "Insufficient privileges for accessing data in Amazon S3."


@dataclass(frozen=True)
class Call:
    """One request the stand-in received (faulted ones included) and how it was answered."""

    operation: str
    body: Body
    # "OK", the error code answered, or "DROPPED" when the connection was closed unanswered.
    answer: str = field(default="OK", compare=False)
    # The caller's access key id, from the request's SigV4 Authorization header.
    caller: str = field(default="", compare=False)
    # When it came, by the stand-in's clock.
    at: float = field(default=0.0, compare=False)


@dataclass
class ExportJob:
    """A dataset export job: the DescribeDatasetExportJob fields, its tags and poll counters."""

    job_name: str
    dataset_export_job_arn: str
    dataset_arn: str
    ingestion_mode: str
    role_arn: str
    job_output: Body
    creation_date_time: float
    last_updated_date_time: float
    status: str = PENDING
    failure_reason: str | None = None
    tags: list[dict[str, str]] = field(default_factory=list)
    polls: int = 0
    polls_in_status: int = 0
    final_status: str | None = ACTIVE
    final_failure_reason: str | None = None

    def advance(self, polls_per_state: int, now: float, duration: float | None = None) -> None:
        """Count one describe and move on once the current status has been seen often enough,
        or, with a duration, once that much time has passed since the job was created (a tenth
        of it PENDING, the rest IN_PROGRESS)."""
        self.polls += 1
        if duration is not None:
            self._advance_in_time(now, duration)
            return
        self.polls_in_status += 1
        following = self._following_status()
        if following is None or self.polls_in_status < polls_per_state:
            return
        self.status = following
        self.polls_in_status = 0
        self.last_updated_date_time = now
        if following == FAILED:
            self.failure_reason = self.final_failure_reason

    def _advance_in_time(self, now: float, duration: float) -> None:
        elapsed = now - self.creation_date_time
        due = (elapsed >= duration / 10, elapsed >= duration)
        if self.status == PENDING and due[0]:
            self.status, self.last_updated_date_time = IN_PROGRESS, now
        if self.status == IN_PROGRESS and due[1] and self.final_status is not None:
            self.status, self.last_updated_date_time = self.final_status, now
            if self.final_status == FAILED:
                self.failure_reason = self.final_failure_reason

    def _following_status(self) -> str | None:
        if self.status == PENDING:
            return IN_PROGRESS
        if self.status == IN_PROGRESS:
            return self.final_status
        return None

    def summary(self) -> Body:
        """The DatasetExportJobSummary shape."""
        summary: Body = {
            "datasetExportJobArn": self.dataset_export_job_arn,
            "jobName": self.job_name,
            "status": self.status,
            "creationDateTime": self.creation_date_time,
            "lastUpdatedDateTime": self.last_updated_date_time,
        }
        if self.failure_reason is not None:
            summary["failureReason"] = self.failure_reason
        return summary

    def description(self) -> Body:
        """The DatasetExportJob shape returned by DescribeDatasetExportJob."""
        return {
            **self.summary(),
            "datasetArn": self.dataset_arn,
            "ingestionMode": self.ingestion_mode,
            "roleArn": self.role_arn,
            "jobOutput": copy.deepcopy(self.job_output),
        }


@dataclass(frozen=True)
class _Fault:
    code: str
    status: int
    message: str
    operation: str | None
    take_effect: bool

    def reply(self) -> Reply:
        if self.status == DROPPED:
            return DROPPED, {}
        return ServiceError(self.code, self.message, self.status).reply()

    def matches(self, operation: str) -> bool:
        return self.operation is None or self.operation == operation


@dataclass(frozen=True)
class _Window:
    start: float
    until: float
    fault: _Fault


@dataclass(frozen=True)
class _Outcome:
    final_status: str | None
    failure_reason: str | None = None


class PersonalizeStandIn:
    """An in-process HTTP server that answers boto3's Personalize export-job calls."""

    def __init__(
        self,
        *,
        account: str = "123456789012",
        region: str = "us-east-1",
        partition: str = "aws",
        polls_per_state: int = 1,
        iam_lag_seconds: float = 0.0,
        clock: Callable[[], float] = time.time,
        access_checked_at_create: bool = False,
    ) -> None:
        if polls_per_state < 1:
            raise ValueError("polls_per_state must be at least 1")
        self.account = account
        self.region = region
        self.partition = partition
        self.polls_per_state = polls_per_state
        # IAM's lag: how long a role, bucket policy or key policy is unusable after a change.
        self.iam_lag_seconds = iam_lag_seconds
        # The lag the caller's own role sees, when it differs (None: iam_lag_seconds).
        self.caller_lag_seconds: float | None = None
        # Time is read only through this: a callable (time.time, a virtual clock's time), or an
        # object with time() (bench/'s subclass assigns its FakeClock): hence Any.
        self.clock: Any = clock
        # The role the handler's calls come from (its session: caller_session_name).
        self.caller_role_arn: str | None = None
        self.caller_session_name = "handler"
        # True: a young role, bucket or key refuses CreateDatasetExportJob (InvalidInputException,
        # as the import API does); False: the job is created and ends CREATE FAILED.
        self.access_checked_at_create = access_checked_at_create
        # When each role, bucket (policy) or key (policy) was last created or changed.
        self.iam_changes: dict[str, float] = {}
        self.calls: list[Call] = []
        self.jobs: dict[str, ExportJob] = {}
        self.datasets: set[str] | None = None
        # Data held per dataset ARN and the files written from it (see hold_dataset).
        self.exports = StandInExports()
        self._faults: list[_Fault] = []
        self._windows: list[_Window] = []
        self._outcomes: list[_Outcome] = []
        # Service limits under load: at most this many jobs in progress per account and region
        # (LimitExceededException beyond; None: no limit), and every n-th request of any kind
        # throttled (0: none). most_jobs_in_progress records the peak.
        # How long a job runs, by the clock (None: it moves on by describes, polls_per_state).
        self.job_seconds: float | None = None
        # Only this caller's describes move a job on, and only its calls meet injected faults
        # (None: anyone's): an observer, such as the export poller, then changes nothing the
        # handler sees.
        self.progress_caller: str | None = None
        self._caller = ""
        # StartExecution requests received (see _start_execution).
        self.executions: list[Body] = []
        self.max_jobs_in_progress: int | None = None
        self.throttle_every = 0
        self.most_jobs_in_progress = 0
        self._requests = 0
        self._lock = threading.RLock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> PersonalizeStandIn:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> PersonalizeStandIn:
        """Listen on an ephemeral 127.0.0.1 port and serve from a daemon thread."""
        if self._server is not None:
            raise RuntimeError("the stand-in is already running")
        self._server = _Server(self)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.01},
            name="personalize-standin",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, drop open connections and close the socket; safe to call twice."""
        server, thread = self._server, self._thread
        self._server, self._thread = None, None
        if server is None or thread is None:
            return
        server.shutdown()
        server.close_connections()
        server.server_close()
        thread.join()

    @property
    def endpoint_url(self) -> str:
        """The URL to pass to boto3 as endpoint_url."""
        if self._server is None:
            raise RuntimeError("the stand-in is not running")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def client(self, *, parameter_validation: bool = True) -> Any:
        """A real boto3 Personalize client aimed at the stand-in that never retries."""
        config = Config(
            retries={"mode": "standard", "total_max_attempts": 1},
            parameter_validation=parameter_validation,
        )
        return boto3.client(
            "personalize",
            endpoint_url=self.endpoint_url,
            region_name=self.region,
            aws_access_key_id="test",
            aws_secret_access_key="test",
            config=config,
        )

    def job_arn(self, job_name: str) -> str:
        """The ARN the service gives a dataset export job of this name."""
        return (
            f"arn:{self.partition}:personalize:{self.region}:{self.account}"
            f":dataset-export-job/{job_name}"
        )

    def operations(self) -> list[str]:
        """The operation names of every call received, in order."""
        with self._lock:
            return [call.operation for call in self.calls]

    def inject_error(
        self,
        code: str,
        *,
        status: int = 400,
        count: int = 1,
        operation: str | None = None,
        message: str = "Injected fault",
        take_effect: bool = False,
    ) -> None:
        """Fail the next `count` matching calls with `code`; take_effect applies them first."""
        fault = _Fault(code, status, message, operation, take_effect)
        with self._lock:
            self._faults.extend([fault] * count)

    def throttle_next(self, count: int = 1, operation: str | None = None) -> None:
        """Answer the next `count` matching calls with ThrottlingException (400)."""
        self.inject_error(
            "ThrottlingException", count=count, operation=operation, message="Rate exceeded"
        )

    def server_error_next(
        self, count: int = 1, operation: str | None = None, status: int = 500
    ) -> None:
        """Fail the next `count` matching calls with InternalFailure (500) or ServiceUnavailable."""
        code = SERVER_ERROR_CODES.get(status, "InternalFailure")
        self.inject_error(code, status=status, count=count, operation=operation, message=code)

    def fail_for(
        self,
        seconds: float,
        code: str = "ThrottlingException",
        *,
        operation: str | None = None,
        status: int = 400,
        message: str = "Rate exceeded",
        starting_in: float = 0.0,
    ) -> None:
        """Fail every matching call for `seconds`, `starting_in` seconds from now by the
        stand-in's clock (a storm)."""
        start = self.now() + starting_in
        window = _Window(start, start + seconds, _Fault(code, status, message, operation, False))
        with self._lock:
            self._windows.append(window)

    def drop_connection_next(
        self, count: int = 1, operation: str | None = None, *, take_effect: bool = False
    ) -> None:
        """Close the connection of the next `count` matching calls without answering."""
        fault = _Fault("DROPPED", DROPPED, "", operation, take_effect)
        with self._lock:
            self._faults.extend([fault] * count)

    def answers(self, caller: str | None = None) -> list[str]:
        """Each call as "Operation" when it succeeded, else "Operation:Answer" (code or DROPPED);
        only those of one caller (access key id) if given."""
        with self._lock:
            return [
                call.operation if call.answer == "OK" else f"{call.operation}:{call.answer}"
                for call in self.calls
                if caller is None or call.caller == caller
            ]

    def seed_job(
        self,
        job_name: str,
        dataset_arn: str,
        path: str,
        *,
        role_arn: str = "arn:aws:iam::123456789012:role/Seeded",
        ingestion_mode: str = "PUT",
        status: str = ACTIVE,
    ) -> str:
        """Put a job in place as if created earlier, without a logged call; return its ARN."""
        arn = self.job_arn(job_name)
        now = self._now()
        with self._lock:
            self.jobs[arn] = ExportJob(
                job_name=job_name,
                dataset_export_job_arn=arn,
                dataset_arn=dataset_arn,
                ingestion_mode=ingestion_mode,
                role_arn=role_arn,
                job_output={"s3DataDestination": {"path": path}},
                creation_date_time=now,
                last_updated_date_time=now,
                status=status,
            )
        return arn

    def hold_dataset(self, arn: str, schema: str | dict[str, Any], records: list[Record]) -> None:
        """Hold a dataset's schema and records: its jobs write export files on turning ACTIVE."""
        with self._lock:
            self.exports.hold(arn, schema, records)

    def fail_next_job(self, reason: str) -> None:
        """Make the next job created end in CREATE FAILED with this failureReason."""
        with self._lock:
            self._outcomes.append(_Outcome(FAILED, reason))

    def never_finish_next_job(self) -> None:
        """Make the next job created stay in CREATE IN_PROGRESS forever."""
        with self._lock:
            self._outcomes.append(_Outcome(None))

    def iam_changed(self, arn: str, at: float | None = None) -> None:
        """A role (or one of its policies), a bucket's policy (arn:aws:s3:::name) or a KMS key's
        policy was created or changed at `at` (default: now, by the clock)."""
        with self._lock:
            self.iam_changes[arn] = self.now() if at is None else at

    def settling(self, arn: str, lag: float | None = None) -> bool:
        """Whether `arn` changed less than the lag ago: IAM may not let anyone use it yet."""
        lag = self.iam_lag_seconds if lag is None else lag
        changed = self.iam_changes.get(arn)
        return changed is not None and self.now() - changed < lag

    def reset_faults(self) -> None:
        """Drop every pending injected error and job outcome."""
        with self._lock:
            self._faults.clear()
            self._windows.clear()
            self._outcomes.clear()

    def handle(self, target: str, raw_body: bytes, caller: str = "") -> Reply:
        """Answer one request given its X-Amz-Target header, body and caller's access key."""
        if target.startswith(SFN_TARGET_PREFIX):
            return self._start_execution(target.removeprefix(SFN_TARGET_PREFIX), raw_body)
        operation = target.removeprefix(TARGET_PREFIX)
        with self._lock:
            try:
                body = self._parse(raw_body)
            except ServiceError as error:
                self.calls.append(Call(operation, {}, error.code, caller, self.now()))
                return error.reply()
            logged = copy.deepcopy(body)
            self._caller = caller
            status, payload = self._answer(operation, body)
            answer = "OK" if status == 200 else str(payload.get("__type", "DROPPED"))
            self.calls.append(Call(operation, logged, answer, caller, self.now()))
            return status, payload

    def _start_execution(self, operation: str, raw_body: bytes) -> Reply:
        """Step Functions' StartExecution, recorded only: where no interpreter runs (the deploy
        simulation), the handler's hand-over to the export poller lands here."""
        if operation != "StartExecution":
            return ServiceError("UnknownOperationException", operation).reply()
        with self._lock:
            body = self._parse(raw_body)
            name = str(body.get("name") or uuid.uuid4())
            if any(execution["name"] == name for execution in self.executions):
                return ServiceError("ExecutionAlreadyExists", f"Execution {name} exists").reply()
            self.executions.append(body)
            arn = f"{body.get('stateMachineArn')}:{name}".replace(":stateMachine:", ":execution:")
            return 200, {"executionArn": arn, "startDate": self._now()}

    @staticmethod
    def _parse(raw_body: bytes) -> Body:
        try:
            body = json.loads(raw_body or b"{}")
        except ValueError as error:
            raise ServiceError("SerializationException", "The body is not valid JSON") from error
        if not isinstance(body, dict):
            raise ServiceError("SerializationException", "The body must be a JSON object")
        return body

    def _answer(self, operation: str, body: Body) -> Reply:
        self._requests += 1
        if self.throttle_every and self._requests % self.throttle_every == 0:
            return ServiceError("ThrottlingException", "Rate exceeded").reply()
        fault = self._take_fault(operation)
        if fault is not None and not fault.take_effect:
            return fault.reply()
        try:
            result = self._dispatch(operation, body)
        except ServiceError as error:
            return error.reply()
        if fault is not None:
            return fault.reply()
        return 200, result

    def _take_fault(self, operation: str) -> _Fault | None:
        if self.progress_caller not in (None, self._caller):
            return None  # an observer's calls are answered plainly (see progress_caller)
        for index, fault in enumerate(self._faults):
            if fault.matches(operation):
                return self._faults.pop(index)
        now = self.now()
        for window in self._windows:
            if window.start <= now < window.until and window.fault.matches(operation):
                return window.fault
        return None

    def now(self) -> float:
        """The time as the stand-in sees it, through `clock`."""
        clock = self.clock
        return float(clock() if callable(clock) else clock.time())

    def _now(self) -> float:
        return round(self.now(), 3)

    def _dispatch(self, operation: str, body: Body) -> Body:
        self._check_caller(operation, body)
        handlers: dict[str, Callable[[Body], Body]] = {
            "CreateDatasetExportJob": self._create_dataset_export_job,
            "DescribeDatasetExportJob": self._describe_dataset_export_job,
            "ListDatasetExportJobs": self._list_dataset_export_jobs,
            "ListTagsForResource": self._list_tags_for_resource,
        }
        handler = handlers.get(operation)
        if handler is None:
            raise ServiceError("UnknownOperationException", f"Unknown operation {operation!r}")
        return handler(body)

    def _check_caller(self, operation: str, body: Body) -> None:
        """Refuse every call while the caller's role (or its policy) is younger than the lag."""
        caller = self.caller_role_arn
        if caller is None or not self.settling(caller, self.caller_lag_seconds):
            return
        role_name = caller.rsplit("/", 1)[-1]
        principal = (
            f"arn:{self.partition}:sts::{self.account}:assumed-role/{role_name}"
            f"/{self.caller_session_name}"
        )
        if operation == "CreateDatasetExportJob":
            resource = self.job_arn(str(body.get("jobName", "")))
        else:
            resource = str(body.get("datasetExportJobArn") or body.get("resourceArn") or "")
        on_resource = f" on resource: {resource}" if resource else ""
        message = CALLER_DENIED.format(
            principal=principal, operation=operation, resource=on_resource
        )
        raise ServiceError("AccessDeniedException", message)

    def _access_refusal(self, body: Body) -> tuple[str, str] | None:
        """What Personalize can't use yet for this job: its at-create and in-job messages."""
        destination = body["jobOutput"]["s3DataDestination"]
        bucket = str(destination["path"]).split("://", 1)[-1].split("/", 1)[0]
        role, key = str(body["roleArn"]), destination.get("kmsKeyArn")
        dataset_type = str(body["datasetArn"]).rsplit("/", 1)[-1]
        prefix = JOB_FAILED_PREFIX.format(dataset_type=dataset_type)
        if self.settling(role):
            at_create = ROLE_DENIED_AT_CREATE.format(role=role)
            return at_create, prefix + at_create
        if self.settling(f"arn:{self.partition}:s3:::{bucket}"):
            return S3_DENIED_AT_CREATE.format(bucket=bucket), prefix + S3_DENIED_IN_JOB
        if key and self.settling(str(key)):
            at_create = KEY_DENIED_AT_CREATE.format(key=key)
            return at_create, prefix + at_create
        return None

    def _create_dataset_export_job(self, body: Body) -> Body:
        _raise_invalid(_create_errors(body))
        name, dataset_arn = body["jobName"], body["datasetArn"]
        arn = self.job_arn(name)
        if arn in self.jobs:
            raise ServiceError(
                "ResourceAlreadyExistsException", f"Dataset export job {name} already exists"
            )
        if self.datasets is not None and dataset_arn not in self.datasets:
            raise _not_found(dataset_arn)
        refusal = self._access_refusal(body)
        if refusal is not None and self.access_checked_at_create:
            raise ServiceError("InvalidInputException", refusal[0])
        self._check_job_limit()
        self.jobs[arn] = self._new_job(arn, body, refusal[1] if refusal else None)
        self.most_jobs_in_progress = max(self.most_jobs_in_progress, self.jobs_in_progress())
        return {"datasetExportJobArn": arn}

    def jobs_in_progress(self) -> int:
        return sum(job.status in (PENDING, IN_PROGRESS) for job in self.jobs.values())

    def _check_job_limit(self) -> None:
        limit = self.max_jobs_in_progress
        if limit is not None and self.jobs_in_progress() >= limit:
            raise ServiceError(
                "LimitExceededException",
                f"The limit of {limit} dataset export jobs in progress has been reached",
            )

    def _new_job(self, arn: str, body: Body, access_failure: str | None = None) -> ExportJob:
        # A job Personalize can't assume the role or write for fails; queued outcomes wait.
        if access_failure is not None:
            outcome = _Outcome(FAILED, access_failure)
        else:
            outcome = self._outcomes.pop(0) if self._outcomes else _Outcome(ACTIVE)
        now = self._now()
        return ExportJob(
            job_name=body["jobName"],
            dataset_export_job_arn=arn,
            dataset_arn=body["datasetArn"],
            ingestion_mode=body.get("ingestionMode") or "PUT",
            role_arn=body["roleArn"],
            job_output=copy.deepcopy(body["jobOutput"]),
            creation_date_time=now,
            last_updated_date_time=now,
            tags=copy.deepcopy(body.get("tags") or []),
            final_status=outcome.final_status,
            final_failure_reason=outcome.failure_reason,
        )

    def _known_job(self, body: Body, member: str) -> ExportJob:
        arn = body.get(member)
        _raise_invalid(_string_errors(arn, member, _ARN, required=True))
        job = self.jobs.get(str(arn))
        if job is None:
            raise _not_found(str(arn))
        return job

    def _describe_dataset_export_job(self, body: Body) -> Body:
        job = self._known_job(body, "datasetExportJobArn")
        # A job that runs by the clock is the same to everyone; one moved on by describes
        # moves only for the progress caller.
        if self.job_seconds is not None or self.progress_caller in (None, self._caller):
            was = job.status
            job.advance(self.polls_per_state, self._now(), self.job_seconds)
            if was != ACTIVE and job.status == ACTIVE:
                self._write_export(job)
        return {"datasetExportJob": job.description()}

    def _write_export(self, job: ExportJob) -> None:
        """A job turning ACTIVE writes its files; one S3 refuses fails instead."""
        if not self.exports.write(job):
            dataset_type = job.dataset_arn.rsplit("/", 1)[-1]
            job.status = FAILED
            job.failure_reason = JOB_FAILED_PREFIX.format(dataset_type=dataset_type)
            job.failure_reason += S3_DENIED_IN_JOB

    def _list_dataset_export_jobs(self, body: Body) -> Body:
        dataset_arn = body.get("datasetArn")
        max_results = body.get("maxResults")
        _raise_invalid(
            _string_errors(dataset_arn, "datasetArn", _ARN, required=False)
            + _max_results_errors(max_results)
        )
        jobs = [j for j in self.jobs.values() if dataset_arn in (None, j.dataset_arn)]
        start = _decode_token(body.get("nextToken"))
        end = start + (max_results or MAX_RESULTS)
        result: Body = {"datasetExportJobs": [job.summary() for job in jobs[start:end]]}
        if end < len(jobs):
            result["nextToken"] = _encode_token(end)
        return result

    def _list_tags_for_resource(self, body: Body) -> Body:
        job = self._known_job(body, "resourceArn")
        return {"tags": copy.deepcopy(job.tags)}


class _Server(LocalServer):
    """A threading HTTP server that knows its stand-in and can drop open connections."""

    def __init__(self, standin: PersonalizeStandIn) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.standin = standin
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()

    def process_request(
        self, request: socket.socket | tuple[bytes, socket.socket], client_address: Any
    ) -> None:
        """Remember the connection, then serve it in its own thread."""
        if isinstance(request, socket.socket):
            with self._connections_lock:
                self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: socket.socket | tuple[bytes, socket.socket]) -> None:
        """Forget the connection and close it."""
        if isinstance(request, socket.socket):
            with self._connections_lock:
                self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """Shut down every kept-alive connection so no handler thread answers after stop."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    """Turns AWS JSON 1.1 POSTs into PersonalizeStandIn.handle calls."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    wbufsize = -1

    def do_POST(self) -> None:
        """Answer one AWS JSON 1.1 request."""
        length = int(self.headers.get("Content-Length") or 0)
        raw_body = self.rfile.read(length)
        standin = cast(_Server, self.server).standin
        found = _ACCESS_KEY.search(self.headers.get("Authorization", ""))
        caller = found.group(1) if found else ""
        status, payload = standin.handle(self.headers.get("X-Amz-Target", ""), raw_body, caller)
        if status == DROPPED:
            self.close_connection = True
            return
        self._send(status, payload)

    def _send(self, status: int, payload: Body) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/x-amz-json-1.1")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
        if status >= 400:
            self.send_header("x-amzn-ErrorType", str(payload["__type"]))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        """Keep test output quiet."""
