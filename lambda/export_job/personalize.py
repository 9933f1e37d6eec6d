"""The Personalize client and what its errors mean for a deploy."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError

if TYPE_CHECKING:
    from mypy_boto3_personalize import PersonalizeClient

_client: PersonalizeClient | None = None

# Refusals that pass with time: retried on the next poll until the resource's deadline.
TRANSIENT_CODES = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "ThrottledException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "RequestThrottled",
        "RequestThrottledException",
        "SlowDown",
        "RequestTimeout",
        "RequestTimeoutException",
        "PriorRequestNotComplete",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "InternalFailure",
        "InternalServerError",
        "InternalServerException",
        "ResourceInUseException",
        "LimitExceededException",
    }
)

# Words of a refusal or a failureReason about access: the caller may not act, Personalize may not
# assume the role, or the role, bucket or key policy does not (yet) allow it. Published wordings
# (sources in tests/personalize_standin.py): "User: ... is not authorized to perform: ..."
# (AccessDeniedException), "Insufficient privileges for accessing data in S3" (Personalize's
# dataset import jobs); other services say "... cannot be assumed ..." or "unable to assume".
ACCESS_WORDS = re.compile(
    r"privilege|access ?denied|not authori[sz]ed|assum(e|ing)|permission", re.IGNORECASE
)
ACCESS_DENIED_CODES = frozenset({"AccessDeniedException", "AccessDenied"})

# What to check, for the permanent errors a user can meet.
HINTS = {
    "InvalidInputException": "check the DatasetExportJob settings (dataset ARN, ingestion mode, "
    "output path, KMS key ARN, tags) against the CreateDatasetExportJob rules",
    "ParamValidationError": "check the DatasetExportJob settings: a required one resolved to an "
    "empty or invalid value",
    "ResourceNotFoundException": "check that the dataset ARN names an existing dataset in this "
    "account and region",
    "AccessDeniedException": "check the handler role's personalize and iam:PassRole permissions, "
    "and that the service role trusts personalize.amazonaws.com",
    "TooManyTagsException": "check the number of tags on the export job (at most 200)",
}

# What a refusal that lasted until the deadline means.
REFUSAL_HINTS = {
    "ResourceInUseException": "the dataset is busy (a dataset import job may still be running): "
    "deploy again once it is done",
    "LimitExceededException": "too many export jobs are running in this account and region: "
    "deploy again once they finish, or ask for a higher Personalize quota",
    "AccessDeniedException": "IAM changes this deploy made had not reached Personalize yet, or "
    "the handler role lacks the personalize and iam:PassRole permissions",
    "InvalidInputException": "Personalize could not yet use the role, bucket policy or key policy "
    "this deploy created or changed",
}


def personalize() -> PersonalizeClient:
    """The client, created on first use with the default endpoint resolution.

    AWS_ENDPOINT_URL_PERSONALIZE, AWS_MAX_ATTEMPTS and the usual credential chain apply.
    botocore's few retries (standard mode: 3 attempts with jittered backoff) smooth over a blip
    inside one call; lasting refusals are retried by the handler on every poll until the deadline.
    The timeouts keep a call with its retries well inside the handler's Lambda timeout.
    """
    global _client
    if _client is None:
        config = Config(retries={"mode": "standard"}, connect_timeout=5, read_timeout=10)
        _client = boto3.client("personalize", config=config)
    return _client


def use_client(client: PersonalizeClient | None) -> None:
    """Inject a client (tests), or None to create a fresh one on next use."""
    global _client
    _client = client


def error_code(error: Exception) -> str:
    if isinstance(error, ClientError):
        return str(error.response.get("Error", {}).get("Code", "Unknown"))
    return type(error).__name__


def is_transient(error: Exception) -> bool:
    """Throttling, 5xx, a busy dataset, the job limit, or a network failure."""
    if isinstance(error, ClientError):
        status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
        return error_code(error) in TRANSIENT_CODES or status == 429 or status >= 500
    # Other botocore errors (parameter validation, missing credentials) won't pass with time.
    return isinstance(error, (BotoConnectionError, HTTPClientError))


def is_access_refusal(error: Exception) -> bool:
    """AccessDeniedException, or an InvalidInputException saying the role can't be used."""
    code = error_code(error)
    if code in ACCESS_DENIED_CODES:
        return True
    return code == "InvalidInputException" and is_about_access(error_message(error))


def is_about_access(text: str) -> bool:
    """Whether a message or failureReason is about access (privileges, assume role, permissions)."""
    return bool(ACCESS_WORDS.search(text))


def error_message(error: Exception) -> str:
    if isinstance(error, ClientError):
        return str(error.response.get("Error", {}).get("Message", ""))
    return str(error)


def describe_error(error: Exception) -> str:
    """One line: the error code, the service's message and what to check."""
    message = str(error)
    hint = HINTS.get(error_code(error))
    return f"{message}; {hint}" if hint else message


def describe_refusal(code: str) -> str:
    """What a transient refusal that never passed means, for the deadline message."""
    return REFUSAL_HINTS.get(code, "Personalize kept refusing the call: try the deploy again later")


def describe_job(job_arn: str) -> dict[str, Any]:
    response = personalize().describe_dataset_export_job(datasetExportJobArn=job_arn)
    return dict(response["datasetExportJob"])


def create_job(arguments: dict[str, Any]) -> None:
    personalize().create_dataset_export_job(**arguments)


API_ERRORS: tuple[type[Exception], ...] = (ClientError, BotoCoreError)
