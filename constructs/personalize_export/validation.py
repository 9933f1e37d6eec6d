"""Synth-time checks of every CreateDatasetExportJob rule we can know before deploying.

Each check returns the problems it finds; the construct gathers all of them and raises once.
Every problem names the setting, the value given and the rule it breaks. Values that are still
tokens are skipped: they are only known at deploy time.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Mapping
from typing import Any

from aws_cdk import Duration, Token

from personalize_export.runtime.export_job.contract import (
    INGESTION_MODES,
    JOB_NAME_MAX_LENGTH,
    JOB_NAME_PATTERN,
)

ARN_MAX_LENGTH = 256
KMS_KEY_ARN_MAX_LENGTH = 2048
OUTPUT_PATH_MAX_LENGTH = 256
# A bucket whose name is not known at synth time may be named with up to 63 characters.
BUCKET_NAME_MAX_LENGTH = 63
TAGS_MAX = 200
TAG_KEY_MAX_LENGTH = 128
TAG_VALUE_MAX_LENGTH = 256
# Values longer than this are shown shortened in messages.
SHOWN_MAX_LENGTH = 80

DATASET_ARN_PATTERN = r"arn:([a-z\d-]+):personalize:.*:.*:dataset/.+"
DATASET_ARN_EXAMPLE = "arn:aws:personalize:<region>:<account>:dataset/<dataset-group>/<TYPE>"
ROLE_ARN_PATTERN = r"arn:([a-z\d-]+):iam::\d{12}:role/?[a-zA-Z_0-9+=,.@\-_/]+"
KMS_KEY_ARN_PATTERN = r"arn:aws.*:kms:.*:[0-9]{12}:key/.*"
JOB_NAME_RULE = f"1 to {JOB_NAME_MAX_LENGTH} characters matching ^{JOB_NAME_PATTERN}$"
JOB_NAME_CHARACTERS = re.compile(r"[a-zA-Z0-9\-_]")
URL_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")
# Letters, separators and numbers in any script, and _ . : / = + - @ (the API's \p{L}\p{Z}\p{N}).
TAG_PUNCTUATION = frozenset("_.:/=+-@")
TAG_CATEGORIES = ("L", "Z", "N")
TAG_CHARACTERS_RULE = "tags allow letters, digits, spaces and _ . : / = + - @"


def is_literal(value: object) -> bool:
    return value is not None and not Token.is_unresolved(value)


def shown(value: str) -> str:
    """The value as quoted in a message; a long one is cut short."""
    if len(value) <= SHOWN_MAX_LENGTH:
        return repr(value)
    return f"{value[: SHOWN_MAX_LENGTH - 20]!r}..."


def check_job_name(job_name: str | None) -> list[str]:
    if job_name is None or not is_literal(job_name):
        return []
    given = f"job_name {shown(job_name)}"
    if not job_name:
        return [f"{given} is empty; a job name has {JOB_NAME_RULE}"]
    problems = []
    if len(job_name) > JOB_NAME_MAX_LENGTH:
        problems.append(f"{given} has {len(job_name)} characters; a job name has {JOB_NAME_RULE}")
    if not job_name[0].isascii() or not job_name[0].isalnum():
        problems.append(
            f"{given} starts with {job_name[0]!r}; a job name starts with a letter or digit "
            f"({JOB_NAME_RULE})"
        )
    illegal = _illegal_characters(job_name, lambda char: bool(JOB_NAME_CHARACTERS.fullmatch(char)))
    if illegal:
        problems.append(
            f"{given} holds {illegal}; a job name holds only letters, digits, '-' and '_' "
            f"({JOB_NAME_RULE})"
        )
    return problems


def check_dataset_arn(dataset_arn: str, stack_region: str) -> list[str]:
    if not is_literal(dataset_arn):
        return []
    given = f"dataset_arn {shown(dataset_arn)}"
    rule = f"a Personalize dataset ARN, {DATASET_ARN_EXAMPLE}, of at most {ARN_MAX_LENGTH} chars"
    problems = []
    if len(dataset_arn) > ARN_MAX_LENGTH:
        problems.append(f"{given} has {len(dataset_arn)} characters; it must be {rule}")
    parts = dataset_arn.split(":", 5)
    if len(parts) < 6 or parts[0] != "arn":
        problems.append(f"{given} is not an ARN; it must be {rule}")
    elif not re.fullmatch(DATASET_ARN_PATTERN, dataset_arn):
        problems.append(
            f"{given} is not a Personalize dataset ARN (service {shown(parts[2])}, resource "
            f"{shown(parts[5])}); it must be {rule}"
        )
    else:
        problems.extend(_check_region("dataset_arn", dataset_arn, stack_region))
    return problems


def check_ingestion_mode(mode: str) -> list[str]:
    if not is_literal(mode) or mode in INGESTION_MODES:
        return []
    hint = f" (did you mean {mode.upper()!r}?)" if mode.upper() in INGESTION_MODES else ""
    return [
        f"ingestion_mode {shown(mode)} is not an ingestion mode; it must be one of "
        f"{', '.join(INGESTION_MODES)}{hint}"
    ]


def check_output_prefix(
    given: str | None, prefix: str, bucket_name: str | None, folder_length: int = 0
) -> list[str]:
    """given: what the user passed (None for the default); prefix: it with its trailing '/'.

    bucket_name: None or a token when the bucket is new or its name is known only on deploy.
    folder_length: what each job adds under the prefix (a schedule's dated run folder).
    """
    if not is_literal(prefix):
        return []
    setting = (
        f"output_prefix {shown(given)}"
        if given is not None
        else f"output_prefix (default: the construct path) {shown(prefix)}"
    )
    problems = []
    if URL_SCHEME.match(prefix):
        problems.append(
            f"{setting} is a URL; it must be a key prefix inside the bucket "
            "(choose the bucket with bucket=)"
        )
    if prefix.startswith("/"):
        problems.append(f"{setting} starts with '/'; a key prefix has no leading '/' in S3")
    if any(unicodedata.category(char) == "Cc" for char in prefix):
        problems.append(
            f"{setting} holds a control character (such as a line break); the output path "
            "must match (s3|http|https)://.+ on one line"
        )
    problems.extend(_check_output_path_length(setting, prefix, bucket_name, folder_length))
    return problems


def _check_output_path_length(
    setting: str, prefix: str, bucket_name: str | None, folder_length: int
) -> list[str]:
    known = bucket_name is not None and is_literal(bucket_name)
    bucket_length = len(bucket_name) if known and bucket_name else BUCKET_NAME_MAX_LENGTH
    path_length = len("s3://") + bucket_length + len("/") + len(prefix) + folder_length
    if path_length <= OUTPUT_PATH_MAX_LENGTH:
        return []
    bucket_note = (
        f"bucket {bucket_name!r}"
        if known
        else f"a bucket name of up to {BUCKET_NAME_MAX_LENGTH} characters"
    )
    path = "s3://bucket/prefix/YYYY/MM/DD/HHMM/" if folder_length else "s3://bucket/prefix/"
    return [
        f"{setting} makes an output path of {path_length} characters with {bucket_note}; "
        f"the path {path} must have at most {OUTPUT_PATH_MAX_LENGTH}"
    ]


def check_role_arn(role_arn: str | None) -> list[str]:
    if role_arn is None or not is_literal(role_arn):
        return []
    if len(role_arn) <= ARN_MAX_LENGTH and re.fullmatch(ROLE_ARN_PATTERN, role_arn):
        return []
    return [
        f"role {shown(role_arn)} is not an IAM role ARN of at most {ARN_MAX_LENGTH} characters "
        f"matching {ROLE_ARN_PATTERN}"
    ]


def check_kms_key(key_arn: str | None, alias_name: str | None, stack_region: str) -> list[str]:
    """alias_name: set when the key given is an alias object (kms.Alias or an imported alias)."""
    rule = (
        "Personalize's kmsKeyArn must be a key ARN (arn:aws:kms:<region>:<account>:key/<key-id>), "
        "never an alias: pass the key itself, e.g. kms.Key.from_key_arn(...)"
    )
    if alias_name is not None:
        return [f"encryption_key is the alias {shown(alias_name)}; {rule}"]
    if key_arn is None:
        return []
    if ":alias/" in key_arn:  # also catches an alias ARN built from tokens
        return [f"encryption_key {shown(key_arn)} is an alias ARN; {rule}"]
    if not is_literal(key_arn):
        return []
    if len(key_arn) > KMS_KEY_ARN_MAX_LENGTH or not re.fullmatch(KMS_KEY_ARN_PATTERN, key_arn):
        return [f"encryption_key {shown(key_arn)} is not a KMS key ARN; {rule}"]
    return _check_region("encryption_key", key_arn, stack_region)


def _check_region(setting: str, arn: str, stack_region: str) -> list[str]:
    region = arn.split(":")[3]
    if not is_literal(stack_region) or not region or region == stack_region:
        return []
    return [
        f"{setting} {shown(arn)} is in region {region!r} but the stack deploys to "
        f"{stack_region!r}; Personalize, the bucket and the key must share one region"
    ]


PERSONALIZE_SERVICE = "personalize.amazonaws.com"
ASSUME_ACTIONS = frozenset({"sts:AssumeRole", "sts:*", "*"})
ROLE_TRUST_RULE = (
    f"Personalize must be able to assume the service role: its trust policy must allow "
    f"sts:AssumeRole to the service principal {PERSONALIZE_SERVICE} (e.g. "
    f"assumed_by=iam.ServicePrincipal({PERSONALIZE_SERVICE!r}))"
)


def check_role_trust(role_label: str, trust_policy: Mapping[str, Any] | None) -> list[str]:
    """trust_policy: the role's assume-role policy document as resolved at synth, when the role
    is created in the app (None for an imported role: nothing to check)."""
    if trust_policy is None or _trusts_personalize(trust_policy):
        return []
    trusted = sorted(_principals(trust_policy)) or ["nobody"]
    return [
        f"role {role_label} trusts {', '.join(trusted)}, not {PERSONALIZE_SERVICE}; "
        f"{ROLE_TRUST_RULE}"
    ]


def _allow_statements(policy: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    statements = policy.get("Statement") or []
    return [
        statement
        for statement in statements
        if statement.get("Effect") == "Allow"
        and ASSUME_ACTIONS.intersection(_as_list(statement.get("Action")))
    ]


def _trusts_personalize(policy: Mapping[str, Any]) -> bool:
    principals = _principals(policy)
    # A principal built from tokens can't be read at synth: only a known "no" is an error.
    return bool({PERSONALIZE_SERVICE, "*", UNREADABLE} & principals)


UNREADABLE = "<a principal known only on deploy>"


def _principals(policy: Mapping[str, Any]) -> set[str]:
    found: set[str] = set()
    for statement in _allow_statements(policy):
        principal = statement.get("Principal")
        if principal == "*":
            found.add("*")
        elif isinstance(principal, Mapping):
            for values in principal.values():
                found.update(
                    value if isinstance(value, str) and is_literal(value) else UNREADABLE
                    for value in _as_list(values)
                )
    return found


def _as_list(value: object) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def check_bucket_region(
    bucket_label: str, bucket_region: str | None, stack_region: str, dataset_arn: str
) -> list[str]:
    """bucket_region: the given bucket's region when known at synth (its env or attributes)."""
    if bucket_region is None or not is_literal(bucket_region):
        return []
    rule = "Personalize, the bucket and the key must share one region"
    if is_literal(stack_region) and bucket_region != stack_region:
        return [
            f"bucket {bucket_label} is in region {bucket_region!r} but the stack deploys to "
            f"{stack_region!r}; {rule}"
        ]
    dataset_region = _arn_region(dataset_arn)
    if dataset_region and bucket_region != dataset_region:
        return [
            f"bucket {bucket_label} is in region {bucket_region!r} but the dataset is in "
            f"{dataset_region!r}; {rule}"
        ]
    return []


def _arn_region(arn: str) -> str | None:
    if not is_literal(arn):
        return None
    parts = arn.split(":")
    return parts[3] if len(parts) > 3 and parts[0] == "arn" and parts[3] else None


def check_tags(tags: Mapping[str, str] | None) -> list[str]:
    if not tags:
        return []
    problems = []
    if len(tags) > TAGS_MAX:
        problems.append(f"tags has {len(tags)} entries; an export job takes at most {TAGS_MAX}")
    for key, value in tags.items():
        problems.extend(_check_tag_key(key))
        problems.extend(_check_tag_value(key, value))
    return problems


def _check_tag_key(key: str) -> list[str]:
    if not is_literal(key):
        return []
    given = f"tags key {shown(key)}"
    problems = []
    if not 1 <= len(key) <= TAG_KEY_MAX_LENGTH:
        problems.append(
            f"{given} has {len(key)} characters; a tag key has 1 to {TAG_KEY_MAX_LENGTH}"
        )
    if key.lower().startswith("aws:"):
        problems.append(f"{given} starts with 'aws:'; that prefix is reserved for AWS's own tags")
    illegal = _illegal_characters(key, _is_tag_character)
    if illegal:
        problems.append(f"{given} holds {illegal}; {TAG_CHARACTERS_RULE}")
    return problems


def _check_tag_value(key: str, value: str) -> list[str]:
    if not is_literal(value):
        return []
    given = f"tags value {shown(value)} (key {shown(key)})"
    problems = []
    if len(value) > TAG_VALUE_MAX_LENGTH:
        problems.append(
            f"{given} has {len(value)} characters; a tag value has at most {TAG_VALUE_MAX_LENGTH}"
        )
    illegal = _illegal_characters(value, _is_tag_character)
    if illegal:
        problems.append(f"{given} holds {illegal}; {TAG_CHARACTERS_RULE}")
    return problems


def _is_tag_character(char: str) -> bool:
    return char in TAG_PUNCTUATION or unicodedata.category(char)[0] in TAG_CATEGORIES


def _illegal_characters(text: str, allowed: Callable[[str], bool]) -> str:
    illegal = sorted({char for char in text if not allowed(char)})
    return ", ".join(repr(char) for char in illegal)


def check_timeout(timeout: Duration, *, minimum: Duration, maximum: Duration) -> list[str]:
    if timeout.is_unresolved():
        return _check_timeout_token(timeout)
    seconds = timeout.to_seconds(integral=False)
    given = f"timeout {timeout.to_human_string()} ({seconds:g} s)"
    if seconds <= 0:
        return [f"{given} is not positive; the deploy must wait some time for the export"]
    if seconds < minimum.to_seconds():
        return [
            f"{given} is shorter than the polling interval ({minimum.to_seconds()} s); "
            "the job would time out before it is ever checked"
        ]
    if seconds > maximum.to_seconds():
        return [
            f"{given} is longer than CloudFormation allows: a WaitCondition waits at most "
            f"{maximum.to_seconds()} s (12 hours); for longer exports set "
            "wait_for_completion=False and act on the completion event"
        ]
    return []


def check_no_wait(*, wait_for_completion: bool, timeout_given: bool) -> list[str]:
    if wait_for_completion or not timeout_given:
        return []
    return [
        "timeout is set with wait_for_completion=False; a deploy that doesn't wait has no "
        "timeout: drop one of the two (the completion event reports the job's end)"
    ]


def _check_timeout_token(timeout: Duration) -> list[str]:
    try:
        timeout.to_seconds()
    except RuntimeError:
        return [
            f"timeout {timeout.to_human_string()} comes from a token in another unit; "
            "a token timeout must be Duration.seconds(token)"
        ]
    return []


def check_destination(prefix: str, bucket: str, prefixes_taken: Mapping[str, str]) -> list[str]:
    """prefixes_taken: the prefixes other exports of this app use in this bucket, and by whom."""
    problems = []
    for other_prefix, holder in prefixes_taken.items():
        if other_prefix == prefix:
            problems.append(
                f"output_prefix {shown(prefix)} in bucket {bucket} is already the destination of "
                f"{holder}; two exports must not write to the same bucket and prefix"
            )
        elif prefix.startswith(other_prefix) or other_prefix.startswith(prefix):
            problems.append(
                f"output_prefix {shown(prefix)} in bucket {bucket} overlaps "
                f"{shown(other_prefix)}, the destination of {holder}; one export's files would "
                "be read as part of the other's"
            )
    return problems


def check_job_name_unique(
    job_name: str | None, place: tuple[str, str], claimed: Mapping[tuple[str, str, str], str]
) -> list[str]:
    """place: the stack's (account, region); job names are unique per account and region."""
    if job_name is None or not is_literal(job_name):
        return []
    holder = claimed.get((*place, job_name))
    if holder is None:
        return []
    return [
        f"job_name {shown(job_name)} is already the job name of {holder} in the same account "
        "and region; export job names are unique per account and region"
    ]


def check_run_id(run_id: str | None, job_name: str | None) -> list[str]:
    """A fixed job name can run only once: a new run_id would need a second job of that name."""
    if run_id is None or job_name is None:
        return []
    return [
        f"run_id {shown(run_id)} can't be combined with job_name {shown(job_name)}: a run_id "
        "starts a new export job on each change, and export job names are unique and jobs "
        "can't be deleted; leave job_name unset so that each run gets a name of its own"
    ]
