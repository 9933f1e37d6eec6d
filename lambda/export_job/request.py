"""What a CloudFormation event asks for: the export settings, the job name and the job ARN."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .contract import (
    ACCESS_SETTINGS,
    DEFAULT_INGESTION_MODE,
    EXPORT_SETTINGS,
    JOB_NAME_HASH_LENGTH,
    JOB_NAME_PREFIX_MAX_LENGTH,
    Prop,
)

Event = Mapping[str, Any]

_NAME_ILLEGAL = re.compile(r"[^a-zA-Z0-9\-_]+")


@dataclass(frozen=True)
class ExportRequest:
    """The export a resource's properties describe, normalized the way the service sees it."""

    dataset_arn: str
    ingestion_mode: str
    role_arn: str
    output_path: str
    kms_key_arn: str
    job_name: str
    job_name_prefix: str
    run_id: str
    tags: tuple[tuple[str, str], ...]
    timeout_seconds: int

    @classmethod
    def from_properties(cls, properties: Mapping[str, Any]) -> ExportRequest:
        def text(key: str) -> str:
            return str(properties.get(key) or "").strip()

        return cls(
            dataset_arn=text(Prop.DATASET_ARN),
            ingestion_mode=(text(Prop.INGESTION_MODE) or DEFAULT_INGESTION_MODE).upper(),
            role_arn=text(Prop.ROLE_ARN),
            output_path=normalize_output_path(text(Prop.OUTPUT_PATH)),
            kms_key_arn=text(Prop.KMS_KEY_ARN),
            job_name=text(Prop.JOB_NAME),
            job_name_prefix=text(Prop.JOB_NAME_PREFIX),
            run_id=text(Prop.RUN_ID),
            tags=parse_tags(properties.get(Prop.TAGS)),
            timeout_seconds=seconds(text(Prop.TIMEOUT_SECONDS)),
        )

    def export_settings(self) -> dict[str, str]:
        """The settings whose change means a new export (see contract.EXPORT_SETTINGS)."""
        values = {
            Prop.DATASET_ARN: self.dataset_arn,
            Prop.INGESTION_MODE: self.ingestion_mode,
            Prop.ROLE_ARN: self.role_arn,
            Prop.OUTPUT_PATH: self.output_path,
            Prop.KMS_KEY_ARN: self.kms_key_arn,
            Prop.JOB_NAME: self.job_name,
            Prop.RUN_ID: self.run_id,
        }
        return {key: values[key] for key in EXPORT_SETTINGS}

    def access_settings(self) -> dict[str, str]:
        """What Personalize needs access to: the role, the bucket (path) and the KMS key."""
        settings = self.export_settings()
        return {key: settings[key] for key in ACCESS_SETTINGS}

    def differences(self, job: Mapping[str, Any]) -> list[str]:
        """How an existing job (a DescribeDatasetExportJob answer) differs from this export."""
        destination = job.get("jobOutput", {}).get("s3DataDestination", {})
        found = {
            Prop.DATASET_ARN: str(job.get("datasetArn", "")),
            Prop.INGESTION_MODE: str(job.get("ingestionMode") or DEFAULT_INGESTION_MODE),
            Prop.ROLE_ARN: str(job.get("roleArn", "")),
            Prop.OUTPUT_PATH: normalize_output_path(str(destination.get("path", ""))),
            Prop.KMS_KEY_ARN: str(destination.get("kmsKeyArn", "")),
        }
        if self.job_name:
            found[Prop.JOB_NAME] = str(job.get("jobName", ""))
        wanted = self.export_settings()
        return [
            f"{key} is {value or 'unset'!r}, not {wanted[key] or 'unset'!r}"
            for key, value in found.items()
            if value != wanted[key]
        ]

    def create_arguments(self, job_name: str) -> dict[str, Any]:
        """Keyword arguments for CreateDatasetExportJob."""
        destination: dict[str, str] = {"path": self.output_path}
        if self.kms_key_arn:
            destination["kmsKeyArn"] = self.kms_key_arn
        arguments: dict[str, Any] = {
            "jobName": job_name,
            "datasetArn": self.dataset_arn,
            "ingestionMode": self.ingestion_mode,
            "roleArn": self.role_arn,
            "jobOutput": {"s3DataDestination": destination},
        }
        if self.tags:
            arguments["tags"] = [{"tagKey": key, "tagValue": value} for key, value in self.tags]
        return arguments


def normalize_output_path(path: str) -> str:
    """Personalize treats the path as a prefix: keep exactly one trailing slash."""
    return path.rstrip("/") + "/" if path else ""


def seconds(text: str) -> int:
    """TimeoutSeconds as a whole number; 0 (no deadline of our own) when unset."""
    return int(float(text)) if text else 0


def parse_tags(raw: object) -> tuple[tuple[str, str], ...]:
    """Tags arrive as [{"tagKey": k, "tagValue": v}]; order is not significant."""
    if not isinstance(raw, list):
        return ()
    pairs = {(str(tag.get("tagKey", "")), str(tag.get("tagValue", ""))) for tag in raw}
    return tuple(sorted(pairs))


def changes_access(event: Event) -> bool:
    """A Create, or an Update of the role, output path or KMS key: this deploy has just created or
    changed the role, its policies, the bucket policy or the key policy the export depends on."""
    if event["RequestType"] == "Create":
        return True
    if event["RequestType"] != "Update":
        return False
    new = ExportRequest.from_properties(event["ResourceProperties"])
    old = ExportRequest.from_properties(event.get("OldResourceProperties", {}))
    return new.access_settings() != old.access_settings()


def job_name_for(request: ExportRequest, event: Event, attempt: int = 0) -> str:
    """The user's name if given; otherwise one unique to this stack, resource, request and attempt.

    A retried request carries the same RequestId, so it derives the same names and finds its jobs.
    Attempt 0 is the first job; a job started again (see handler.next_attempt) gets attempt 1, 2.
    """
    if request.job_name:
        return request.job_name
    parts = [event["StackId"], event["LogicalResourceId"], event["RequestId"]]
    if attempt:
        parts.append(f"attempt-{attempt}")
    seed = "|".join(parts)
    digest = hashlib.sha256(seed.encode()).hexdigest()[:JOB_NAME_HASH_LENGTH]
    prefix = job_name_prefix(request.job_name_prefix or event["LogicalResourceId"])
    return f"{prefix}-{digest}" if prefix else digest


def job_name_prefix(text: str) -> str:
    """A prefix that keeps a derived name valid: legal characters only, room left for the hash.

    The construct uses it too, to scope the handler's permissions to the names it will derive.
    """
    prefix = _NAME_ILLEGAL.sub("-", text).lstrip("-_")
    return prefix[-JOB_NAME_PREFIX_MAX_LENGTH:].lstrip("-_")


def job_arn_for(event: Event, job_name: str) -> str:
    """Export job ARNs are built from the name, in the stack's partition, region and account."""
    _, partition, _, region, account = event["StackId"].split(":")[:5]
    return f"arn:{partition}:personalize:{region}:{account}:dataset-export-job/{job_name}"


def job_name_of(job_arn: str) -> str:
    return job_arn.rsplit("/", 1)[-1]
