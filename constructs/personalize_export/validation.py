"""Synth-time checks of every CreateDatasetExportJob rule we can know before deploying.

Each check returns the problems it finds; the construct gathers all of them and raises once.
Values that are still tokens are skipped: they are only known at deploy time.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping

from aws_cdk import Duration, Token

from personalize_export.runtime.export_job.contract import (
    INGESTION_MODES,
    JOB_NAME_MAX_LENGTH,
    JOB_NAME_PATTERN,
)

ARN_MAX_LENGTH = 256
OUTPUT_PATH_MAX_LENGTH = 256
# A bucket whose name is a token may be named with up to 63 characters.
BUCKET_NAME_MAX_LENGTH = 63
TAGS_MAX = 200
TAG_KEY_MAX_LENGTH = 128
TAG_VALUE_MAX_LENGTH = 256

DATASET_ARN_PATTERN = r"arn:([a-z\d-]+):personalize:.*:.*:dataset/.+"
KMS_KEY_ARN_PATTERN = r"arn:aws.*:kms:.*:[0-9]{12}:key/.*"
# Letters, separators and numbers in any script, and _ . : / = + - @ (the API's \p{L}\p{Z}\p{N}).
TAG_PUNCTUATION = set("_.:/=+-@")
TAG_CATEGORIES = ("L", "Z", "N")


def is_literal(value: object) -> bool:
    return value is not None and not Token.is_unresolved(value)


def check_job_name(job_name: str | None) -> list[str]:
    if not is_literal(job_name):
        return []
    assert job_name is not None
    rule = f"1 to {JOB_NAME_MAX_LENGTH} characters matching {JOB_NAME_PATTERN}"
    if not 1 <= len(job_name) <= JOB_NAME_MAX_LENGTH:
        return [f"job_name {job_name!r} has {len(job_name)} characters; must be {rule}"]
    if not re.fullmatch(JOB_NAME_PATTERN, job_name):
        return [
            f"job_name {job_name!r} must start with a letter or digit and hold only letters, "
            f"digits, '-' and '_' ({rule})"
        ]
    return []


def check_dataset_arn(dataset_arn: str) -> list[str]:
    if not is_literal(dataset_arn):
        return []
    rule = f"a Personalize dataset ARN ({DATASET_ARN_PATTERN}), at most {ARN_MAX_LENGTH} chars"
    if len(dataset_arn) > ARN_MAX_LENGTH:
        return [f"dataset_arn {dataset_arn!r} has {len(dataset_arn)} characters; must be {rule}"]
    if not re.fullmatch(DATASET_ARN_PATTERN, dataset_arn):
        return [f"dataset_arn {dataset_arn!r} is not {rule}"]
    return []


def check_ingestion_mode(mode: str) -> list[str]:
    if not is_literal(mode) or mode in INGESTION_MODES:
        return []
    return [f"ingestion_mode {mode!r} must be one of {', '.join(INGESTION_MODES)}"]


def check_output_prefix(prefix: str, bucket_name: str | None) -> list[str]:
    """bucket_name: None or a token when the bucket is new or its name is known only on deploy."""
    if not is_literal(prefix):
        return []
    problems = []
    if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", prefix):
        problems.append(
            f"output_prefix {prefix!r} is a URL; give the key prefix inside the bucket "
            "(the bucket is set with bucket=)"
        )
    if prefix.startswith("/"):
        problems.append(f"output_prefix {prefix!r} must not start with '/' (S3 keys have none)")
    known = bucket_name is not None and is_literal(bucket_name)
    bucket_length = (
        len(bucket_name) if bucket_name is not None and known else BUCKET_NAME_MAX_LENGTH
    )
    path_length = len("s3://") + bucket_length + 1 + len(prefix.rstrip("/")) + 1
    if path_length > OUTPUT_PATH_MAX_LENGTH:
        bucket_note = "" if known else f" with a bucket name of up to {bucket_length} chars"
        problems.append(
            f"output_prefix {prefix[:40]!r}... makes an output path of {path_length} characters"
            f"{bucket_note}; the path s3://bucket/prefix/ must be at most {OUTPUT_PATH_MAX_LENGTH}"
        )
    return problems


def check_kms_key_arn(key_arn: str | None) -> list[str]:
    if not is_literal(key_arn):
        return []
    assert key_arn is not None
    if re.fullmatch(KMS_KEY_ARN_PATTERN, key_arn) and ":alias/" not in key_arn:
        return []
    return [
        f"encryption_key {key_arn!r} must be a KMS key ARN ({KMS_KEY_ARN_PATTERN}); "
        "Personalize does not accept an alias: pass the key itself"
    ]


def check_tags(tags: Mapping[str, str] | None) -> list[str]:
    if not tags:
        return []
    problems = []
    if len(tags) > TAGS_MAX:
        problems.append(f"tags has {len(tags)} entries; at most {TAGS_MAX} are allowed")
    for key, value in tags.items():
        problems.extend(_check_tag(key, value))
    return problems


def _check_tag(key: str, value: str) -> list[str]:
    problems = []
    if is_literal(key):
        if not 1 <= len(key) <= TAG_KEY_MAX_LENGTH:
            problems.append(f"tag key {key!r} must have 1 to {TAG_KEY_MAX_LENGTH} characters")
        if key.lower().startswith("aws:"):
            problems.append(f"tag key {key!r} must not start with 'aws:' (reserved by AWS)")
        problems.extend(_check_tag_characters("tag key", key))
    if is_literal(value):
        if len(value) > TAG_VALUE_MAX_LENGTH:
            problems.append(
                f"tag value for {key!r} has {len(value)} characters; "
                f"at most {TAG_VALUE_MAX_LENGTH} are allowed"
            )
        problems.extend(_check_tag_characters(f"tag value for {key!r}", value))
    return problems


def _check_tag_characters(what: str, text: str) -> list[str]:
    illegal = sorted({char for char in text if not _is_tag_character(char)})
    if not illegal:
        return []
    return [
        f"{what} {text!r} holds {''.join(illegal)!r}; tags allow letters, digits, spaces "
        "and _ . : / = + - @"
    ]


def _is_tag_character(char: str) -> bool:
    return char in TAG_PUNCTUATION or unicodedata.category(char)[0] in TAG_CATEGORIES


def check_timeout(timeout: Duration, *, minimum: Duration, maximum: Duration) -> list[str]:
    seconds = timeout.to_seconds()
    if seconds <= 0:
        return [f"timeout {seconds} s must be positive"]
    if seconds < minimum.to_seconds():
        return [
            f"timeout {seconds} s is shorter than the polling interval "
            f"({minimum.to_seconds()} s): the job would never be polled"
        ]
    if seconds > maximum.to_seconds():
        return [
            f"timeout {seconds} s is longer than CloudFormation allows: it waits at most 3600 s "
            f"for a custom resource, and {maximum.to_seconds()} s is the most that leaves room "
            "for starting the job and reporting back"
        ]
    return []
