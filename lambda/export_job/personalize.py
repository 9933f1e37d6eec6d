"""The Personalize client and what its errors mean for a deploy."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

if TYPE_CHECKING:
    from mypy_boto3_personalize import PersonalizeClient

_client: PersonalizeClient | None = None

# Refusals that pass with time: retried on the next poll until the resource's deadline.
TRANSIENT_CODES = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "InternalFailure",
        "InternalServerError",
        "InternalServerException",
        "ResourceInUseException",
        "LimitExceededException",
    }
)

# What to check, for the permanent errors a user can meet.
HINTS = {
    "InvalidInputException": "check the DatasetExportJob settings (dataset ARN, ingestion mode, "
    "output path, KMS key ARN, tags) against the CreateDatasetExportJob rules",
    "ResourceNotFoundException": "check that the dataset ARN names an existing dataset in this "
    "account and region",
    "AccessDeniedException": "check the handler role's personalize and iam:PassRole permissions, "
    "and that the service role trusts personalize.amazonaws.com",
    "TooManyTagsException": "check the number of tags on the export job (at most 200)",
}


def personalize() -> PersonalizeClient:
    """The client, created on first use with the default endpoint resolution.

    AWS_ENDPOINT_URL_PERSONALIZE, AWS_MAX_ATTEMPTS and the usual credential chain apply.
    """
    global _client
    if _client is None:
        config = Config(retries={"mode": "standard"}, connect_timeout=5, read_timeout=30)
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
    if isinstance(error, ClientError):
        status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
        return error_code(error) in TRANSIENT_CODES or status >= 500
    return isinstance(error, BotoCoreError)


def describe_error(error: Exception) -> str:
    """One line: the error code, the service's message and what to check."""
    message = str(error)
    hint = HINTS.get(error_code(error))
    return f"{message}; {hint}" if hint else message


def describe_job(job_arn: str) -> dict[str, Any]:
    response = personalize().describe_dataset_export_job(datasetExportJobArn=job_arn)
    return dict(response["datasetExportJob"])


def create_job(arguments: dict[str, Any]) -> None:
    personalize().create_dataset_export_job(**arguments)


API_ERRORS: tuple[type[Exception], ...] = (ClientError, BotoCoreError)
