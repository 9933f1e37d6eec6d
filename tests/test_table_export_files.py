"""The stand-in's export files (standin_exports.py): what a job writes when it turns ACTIVE.

Most tests catch the files with a writer of their own; those marked "through moto" put them
with boto3 into moto's S3, as the deploy harness does (mock_aws active in-process).
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from harness.cloudformation import Harness
from personalize_standin import ACTIVE, FAILED, S3_DENIED_IN_JOB, PersonalizeStandIn
from standin_exports import BULK, PUT, Record, bulk, put

INTERACTIONS = "arn:aws:personalize:us-east-1:123456789012:dataset/shop/INTERACTIONS"
ITEMS = "arn:aws:personalize:us-east-1:123456789012:dataset/shop/ITEMS"
ROLE = "arn:aws:iam::123456789012:role/PersonalizeExport"
KMS_KEY = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
INTERACTIONS_SCHEMA = {
    "type": "record",
    "name": "Interactions",
    "namespace": "com.amazonaws.personalize.schema",
    "fields": [
        {"name": "USER_ID", "type": "string"},
        {"name": "ITEM_ID", "type": "string"},
        {"name": "TIMESTAMP", "type": "long"},
        {"name": "EVENT_VALUE", "type": ["null", "float"]},
    ],
    "version": "1.0",
}
ITEMS_SCHEMA = {
    "type": "record",
    "name": "Items",
    "namespace": "com.amazonaws.personalize.schema",
    "fields": [
        {"name": "ITEM_ID", "type": "string"},
        {"name": "GENRES", "type": ["null", "string"], "categorical": True},
        {"name": "PRICE", "type": "double"},
        {"name": "IN_STOCK", "type": "boolean"},
    ],
    "version": "1.0",
}
HEADER = "USER_ID,ITEM_ID,TIMESTAMP,EVENT_VALUE"
FILE_NAME = re.compile(r"(?P<job>.+)_[0-9a-f]{8}_(?P<n>\d+)\.csv")


class CaughtFiles:
    """A writer that keeps every file (bucket, key -> text) and can refuse like S3."""

    def __init__(self) -> None:
        self.files: dict[tuple[str, str], str] = {}
        self.kms_keys: list[str | None] = []
        self.refusal: str | None = None

    def __call__(self, bucket: str, key: str, body: bytes, kms_key_arn: str | None) -> None:
        if self.refusal is not None:
            error: Any = {"Error": {"Code": self.refusal, "Message": self.refusal}}
            raise ClientError(error, "PutObject")
        self.files[(bucket, key)] = body.decode()
        self.kms_keys.append(kms_key_arn)

    def texts(self) -> list[str]:
        return [self.files[key] for key in sorted(self.files)]


@pytest.fixture
def standin() -> Iterator[PersonalizeStandIn]:
    with PersonalizeStandIn() as running:
        yield running


@pytest.fixture
def caught(standin: PersonalizeStandIn) -> CaughtFiles:
    writer = CaughtFiles()
    standin.exports.writer = writer
    return writer


def run_job(
    standin: PersonalizeStandIn,
    name: str,
    *,
    dataset: str = INTERACTIONS,
    mode: str | None = None,
    path: str = "s3://lake/exports/run-1/",
    kms_key: str | None = None,
) -> dict[str, Any]:
    """Create a job and describe it until it ends; return its description."""
    client = standin.client()
    destination: dict[str, str] = {"path": path}
    if kms_key:
        destination["kmsKeyArn"] = kms_key
    args: dict[str, Any] = {
        "jobName": name,
        "datasetArn": dataset,
        "roleArn": ROLE,
        "jobOutput": {"s3DataDestination": destination},
    }
    if mode:
        args["ingestionMode"] = mode
    arn = client.create_dataset_export_job(**args)["datasetExportJobArn"]
    for _ in range(5):
        job: dict[str, Any] = client.describe_dataset_export_job(datasetExportJobArn=arn)[
            "datasetExportJob"
        ]
        if job["status"] in (ACTIVE, FAILED):
            return job
    raise AssertionError(f"job {name} never ended")


def rows_of(texts: list[str]) -> list[list[str]]:
    """Every file's rows after its own header, which must be the same in every file."""
    rows = []
    headers = set()
    for text in texts:
        header, *body = list(csv.reader(io.StringIO(text)))
        headers.add(",".join(header))
        rows += body
    assert len(headers) == 1, headers
    return rows


def interactions() -> list[Record]:
    return [
        bulk({"USER_ID": "u1", "ITEM_ID": "i1", "TIMESTAMP": 1700000000, "EVENT_VALUE": 1.5}),
        bulk({"USER_ID": "u2", "ITEM_ID": "i2", "TIMESTAMP": 1700000001}),
        put({"USER_ID": "u1", "ITEM_ID": "i3", "TIMESTAMP": 1700000100, "EVENT_VALUE": 2.0}),
        put({"USER_ID": "u3", "ITEM_ID": "i1", "TIMESTAMP": 1700000200}),
        put({"USER_ID": "u3", "ITEM_ID": "i1", "TIMESTAMP": 1700000200}),  # identical
    ]


# --- nothing held, nothing written -----------------------------------------------------------


def test_without_data_held_a_job_turns_active_and_writes_nothing(
    standin: PersonalizeStandIn, caught: CaughtFiles
) -> None:
    job = run_job(standin, "plain")

    assert job["status"] == ACTIVE
    assert caught.files == {}
    assert standin.exports.written == []


# --- what each ingestion mode exports --------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "users"),
    [
        (None, ["u1", "u3"]),  # the service default is PUT; identical put records count once
        ("PUT", ["u1", "u3"]),
        ("BULK", ["u1", "u2"]),
        ("ALL", ["u1", "u2", "u1", "u3", "u3"]),  # interactions keep every record
    ],
)
def test_the_ingestion_mode_picks_the_records(
    standin: PersonalizeStandIn, caught: CaughtFiles, mode: str | None, users: list[str]
) -> None:
    standin.hold_dataset(INTERACTIONS, INTERACTIONS_SCHEMA, interactions())

    job = run_job(standin, f"by-{(mode or 'default').lower()}", mode=mode)

    assert job["status"] == ACTIVE
    assert [row[0] for row in rows_of(caught.texts())] == users


def test_all_keeps_the_newest_record_per_id_of_an_items_dataset(
    standin: PersonalizeStandIn, caught: CaughtFiles
) -> None:
    schema_text = json.dumps(ITEMS_SCHEMA)  # the schema as a str works too
    standin.hold_dataset(
        ITEMS,
        schema_text,
        [
            bulk({"ITEM_ID": "i1", "GENRES": ["Drama", "Comedy"], "PRICE": 9.5, "IN_STOCK": True}),
            bulk({"ITEM_ID": "i2", "GENRES": None, "PRICE": 3, "IN_STOCK": False}),
            put({"ITEM_ID": "i1", "GENRES": ["Drama"], "PRICE": 12.25, "IN_STOCK": False}),
        ],
    )

    run_job(standin, "items-all", dataset=ITEMS, mode="ALL")

    assert rows_of(caught.texts()) == [
        ["i2", "", "3", "false"],
        ["i1", "Drama", "12.25", "false"],
    ]
    header = caught.texts()[0].splitlines()[0]
    assert header == "ITEM_ID,GENRES,PRICE,IN_STOCK"


def test_bulk_keeps_records_sharing_an_id_unless_identical(
    standin: PersonalizeStandIn, caught: CaughtFiles
) -> None:
    record = {"ITEM_ID": "i1", "GENRES": ["A", "B"], "PRICE": 1.0, "IN_STOCK": True}
    standin.hold_dataset(
        ITEMS,
        ITEMS_SCHEMA,
        [bulk(record), bulk(record), bulk({**record, "PRICE": 2.0})],
    )

    run_job(standin, "items-bulk", dataset=ITEMS, mode="BULK")

    assert rows_of(caught.texts()) == [["i1", "A|B", "1.0", "true"], ["i1", "A|B", "2.0", "true"]]


# --- the files ------------------------------------------------------------------------------


def test_many_rows_span_several_files_each_with_the_header_and_a_generated_name(
    standin: PersonalizeStandIn, caught: CaughtFiles
) -> None:
    records = [
        bulk({"USER_ID": f"u{n}", "ITEM_ID": "i", "TIMESTAMP": 1700000000 + n}) for n in range(7)
    ]
    standin.hold_dataset(INTERACTIONS, INTERACTIONS_SCHEMA, records)

    run_job(standin, "big-export", mode="BULK", path="s3://lake/exports/big/")

    keys = sorted(key for _, key in caught.files)
    assert len(keys) == 3  # 7 rows, at most 3 per file
    assert all(key.startswith("exports/big/") for key in keys)
    matches = [FILE_NAME.fullmatch(key.removeprefix("exports/big/")) for key in keys]
    assert [(m["job"], m["n"]) for m in matches if m] == [("big-export", str(n)) for n in range(3)]
    assert all(text.startswith(HEADER + "\n") for text in caught.texts())
    assert [int(row[2]) for row in rows_of(caught.texts())] == [1700000000 + n for n in range(7)]
    assert {bucket for bucket, _ in caught.files} == {"lake"}
    assert standin.exports.written == sorted(caught.files)


def test_an_export_without_rows_is_one_file_holding_only_the_header(
    standin: PersonalizeStandIn, caught: CaughtFiles
) -> None:
    standin.hold_dataset(INTERACTIONS, INTERACTIONS_SCHEMA, interactions())
    standin.exports.rows_per_file = 1

    run_job(standin, "nothing-put", mode="BULK")
    run_job(standin, "nothing-bulk", mode="PUT", path="s3://lake/exports/run-2/")

    assert len(caught.files) == 4  # two rows each, one per file
    standin.hold_dataset(INTERACTIONS, INTERACTIONS_SCHEMA, [])
    run_job(standin, "empty", mode="ALL", path="s3://lake/exports/empty/")
    (empty,) = [text for (_, key), text in caught.files.items() if "/empty/" in key]
    assert empty == HEADER + "\n"


def test_the_job_s_kms_key_goes_with_every_file(
    standin: PersonalizeStandIn, caught: CaughtFiles
) -> None:
    standin.hold_dataset(INTERACTIONS, INTERACTIONS_SCHEMA, interactions())

    run_job(standin, "encrypted", mode="ALL", kms_key=KMS_KEY)

    assert caught.kms_keys == [KMS_KEY, KMS_KEY]


@pytest.mark.parametrize("code", ["NoSuchBucket", "AccessDenied"])
def test_a_write_s3_refuses_fails_the_job(
    standin: PersonalizeStandIn, caught: CaughtFiles, code: str
) -> None:
    standin.hold_dataset(INTERACTIONS, INTERACTIONS_SCHEMA, interactions())
    caught.refusal = code

    job = run_job(standin, "refused")

    assert job["status"] == FAILED
    assert job["failureReason"] == (
        "Failed to create a dataset export job for INTERACTIONS dataset. " + S3_DENIED_IN_JOB
    )
    assert caught.files == {}


def test_records_are_marked_bulk_or_put_only() -> None:
    assert (bulk({}).arrived_by, put({}).arrived_by) == (BULK, PUT)
    with pytest.raises(ValueError, match="arrived_by"):
        Record({}, "STREAM")


# --- through moto, as in the deploy harness --------------------------------------------------


@pytest.fixture
def moto_s3() -> Any:
    Harness.get()  # moto's mock_aws, started once per session
    return boto3.client(
        "s3", region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test"
    )


def test_through_moto_the_files_land_in_the_bucket(
    standin: PersonalizeStandIn, moto_s3: Any
) -> None:
    moto_s3.create_bucket(Bucket="export-files-landing")
    standin.hold_dataset(INTERACTIONS, INTERACTIONS_SCHEMA, interactions())

    job = run_job(standin, "landed", mode="ALL", path="s3://export-files-landing/out/")

    assert job["status"] == ACTIVE
    listed = moto_s3.list_objects_v2(Bucket="export-files-landing", Prefix="out/")["Contents"]
    texts = [
        moto_s3.get_object(Bucket="export-files-landing", Key=item["Key"])["Body"].read().decode()
        for item in sorted(listed, key=lambda item: str(item["Key"]))
    ]
    assert len(texts) == 2
    assert len(rows_of(texts)) == 5


def test_through_moto_a_missing_bucket_fails_the_job(
    standin: PersonalizeStandIn, moto_s3: Any
) -> None:
    standin.hold_dataset(INTERACTIONS, INTERACTIONS_SCHEMA, interactions())

    job = run_job(standin, "nowhere", path="s3://no-such-bucket-for-exports/out/")

    assert job["status"] == FAILED
    assert S3_DENIED_IN_JOB in job["failureReason"]
    assert standin.exports.written == []
