"""The export files the Personalize stand-in writes when a job turns ACTIVE.

Public API (through the stand-in, `personalize_standin.PersonalizeStandIn`):

- `standin.hold_dataset(arn, schema, records)`: the dataset's Personalize schema (Avro JSON as a
  `str` or `dict`) and its records in the order they arrived, each made with `bulk({...})`
  (loaded by a dataset import job) or `put({...})` (PutEvents/PutUsers/PutItems). A categorical
  field's value may be a list: it is written joined with `|`. Holding again replaces the data.
- `standin.exports.writer`: how a file reaches S3, `writer(bucket, key, body, kms_key_arn)`;
  the default puts the object through boto3's S3 client (moto's, where `mock_aws` is active, as
  in the deploy harness). Whatever it raises fails the job (see below).
- `standin.exports.rows_per_file`: at most this many rows per file (default 3).

What a job exports (Personalize developer guide, export-data; NOTES.md "Personalize export
output"): the records its ingestionMode selects (PUT: put ones only; BULK: imported ones only;
ALL: both), where PUT and BULK drop only records identical in every field, and ALL keeps, for
an ITEMS or USERS dataset, only the newest (last arrived) record per ITEM_ID or USER_ID, and for
every other dataset every record.

What a file looks like, where AWS documents nothing (the unkind answer each time, so readers
built against the stand-in hold on a real account too):
- Names: the job's output path is a prefix. Files are named
  `<job name>_<8 hex digits of the job ARN's hash>_<n>.csv` (n from 0), and an export of more
  than `rows_per_file` rows spans several files: a reader must list the prefix, never guess a name.
- Every file starts with the same header row (the schema's field names in schema order); a reader
  must skip one header line per file, not one per export. An export without rows is one file
  holding only the header.
- CSV as Python's `csv` module writes it (comma, `"` quoting only where needed, `\\n` line ends);
  booleans as `true`/`false`, a missing or null value as an empty field.
- Without data held for a job's dataset nothing is written (every other stand-in test).

A write Personalize can't make fails the job: a missing bucket (NoSuchBucket) or a refused one
(AccessDenied), or any other error from S3, turns the job CREATE FAILED with the in-job S3
message the stand-in uses for a bucket it may not write (personalize_standin.S3_DENIED_IN_JOB).
Whether Personalize words a missing bucket differently is not documented.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import boto3

BULK = "BULK"
PUT = "PUT"
# The id field whose newest record ALL keeps, per dataset type (the ARN's last segment).
NEWEST_PER_ID = {"ITEMS": "ITEM_ID", "USERS": "USER_ID"}
DEFAULT_ROWS_PER_FILE = 3

Writer = Callable[[str, str, bytes, "str | None"], None]


@dataclass(frozen=True)
class Record:
    """One record of a dataset and how it arrived: BULK (an import job) or PUT (the put APIs)."""

    values: Mapping[str, Any]
    arrived_by: str

    def __post_init__(self) -> None:
        if self.arrived_by not in (BULK, PUT):
            raise ValueError(f"arrived_by must be {BULK} or {PUT}, not {self.arrived_by!r}")


def bulk(values: Mapping[str, Any]) -> Record:
    """A record loaded by a dataset import job."""
    return Record(dict(values), BULK)


def put(values: Mapping[str, Any]) -> Record:
    """A record sent through PutEvents, PutUsers or PutItems."""
    return Record(dict(values), PUT)


def field_names(schema: str | Mapping[str, Any]) -> list[str]:
    """The schema's field names in schema order."""
    document = json.loads(schema) if isinstance(schema, str) else schema
    return [str(entry["name"]) for entry in document["fields"]]


@dataclass(frozen=True)
class HeldDataset:
    """A dataset's field names (schema order) and records (arrival order)."""

    fields: list[str]
    records: list[Record]

    def selected(self, ingestion_mode: str, dataset_type: str) -> list[Record]:
        """The records an export of this ingestion mode writes."""
        if ingestion_mode == "ALL":
            id_field = NEWEST_PER_ID.get(dataset_type)
            return self.records if id_field is None else _newest_per_id(self.records, id_field)
        chosen = [record for record in self.records if record.arrived_by == ingestion_mode]
        return _without_identical(chosen)


def _newest_per_id(records: list[Record], id_field: str) -> list[Record]:
    newest: dict[Any, Record] = {}
    for record in records:
        newest.pop(record.values.get(id_field), None)  # re-inserted: kept in arrival order
        newest[record.values.get(id_field)] = record
    return list(newest.values())


def _without_identical(records: list[Record]) -> list[Record]:
    seen: set[str] = set()
    kept = []
    for record in records:
        key = json.dumps(record.values, sort_keys=True, default=str)
        if key not in seen:
            seen.add(key)
            kept.append(record)
    return kept


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return "|".join(str(entry) for entry in value)
    return str(value)


def csv_files(fields: Sequence[str], rows: Iterable[Mapping[str, Any]], per_file: int) -> list[str]:
    """The rows as CSV texts of at most `per_file` rows each, every one with the header row."""
    listed = list(rows)
    chunks = [listed[start : start + per_file] for start in range(0, len(listed), per_file)]
    texts = []
    for chunk in chunks or [[]]:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(fields)
        writer.writerows([_cell(row.get(name)) for name in fields] for row in chunk)
        texts.append(buffer.getvalue())
    return texts


def file_names(job_name: str, job_arn: str, count: int) -> list[str]:
    """The generated names of an export's files under its output path."""
    token = hashlib.sha256(job_arn.encode()).hexdigest()[:8]
    return [f"{job_name}_{token}_{index}.csv" for index in range(count)]


def split_s3_path(path: str) -> tuple[str, str]:
    """(bucket, key prefix) of an s3:// output path."""
    bucket, _, prefix = path.split("://", 1)[-1].partition("/")
    return bucket, prefix


def put_with_boto3(bucket: str, key: str, body: bytes, kms_key_arn: str | None) -> None:
    """Put one object through boto3's S3 client (moto's where `mock_aws` is active)."""
    s3 = boto3.client(
        "s3", region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test"
    )
    encryption: dict[str, str] = {}
    if kms_key_arn:
        encryption = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": kms_key_arn}
    s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="text/csv", **encryption)


@dataclass
class StandInExports:
    """The data the stand-in holds per dataset ARN, and the export files it writes from it."""

    writer: Writer = put_with_boto3
    rows_per_file: int = DEFAULT_ROWS_PER_FILE
    datasets: dict[str, HeldDataset] = field(default_factory=dict)
    # (bucket, key) of every file written, in order.
    written: list[tuple[str, str]] = field(default_factory=list)

    def hold(self, arn: str, schema: str | Mapping[str, Any], records: Iterable[Record]) -> None:
        """Hold a dataset's schema and records (replacing any held before)."""
        self.datasets[arn] = HeldDataset(field_names(schema), list(records))

    def write(self, job: Any) -> bool:
        """Write the export of a job that just turned ACTIVE (a personalize_standin.ExportJob);
        False when S3 refused a file (the job fails), True otherwise (also when nothing is held)."""
        held = self.datasets.get(job.dataset_arn)
        if held is None:
            return True
        dataset_type = str(job.dataset_arn).rsplit("/", 1)[-1]
        rows = [record.values for record in held.selected(job.ingestion_mode, dataset_type)]
        texts = csv_files(held.fields, rows, self.rows_per_file)
        destination = job.job_output["s3DataDestination"]
        bucket, prefix = split_s3_path(str(destination["path"]))
        names = file_names(job.job_name, job.dataset_export_job_arn, len(texts))
        try:
            for name, text in zip(names, texts, strict=True):
                self.writer(bucket, prefix + name, text.encode(), destination.get("kmsKeyArn"))
                self.written.append((bucket, prefix + name))
        except Exception:  # any refusal from S3 fails the job, as Personalize would
            return False
        return True
