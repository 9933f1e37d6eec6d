"""The stand-in's export files, read through the Glue table's own definition with DuckDB.

Stacks deploy through the harness (test_schedule.py's way): the stand-in holds a dataset and,
when a job turns ACTIVE, writes its CSV files into moto's S3 (standin_exports.py). A reader then
does what Athena does with the table in the deployed template, and nothing else:
- the columns and their types are the table's StorageDescriptor.Columns, in order;
- the files are every object under the table's location (a prefix: no file name is guessed),
  read as OpenCSVSerde reads them (comma, double quote), skip.header.line.count lines skipped
  in every file;
- for a schedule, the run values are the ones the projection (projection.run.* from its range
  start to NOW, by its interval) generates, each put into storage.location.template; a run
  without files reads as no rows.
What the SerDe can't check, the reader does too: every file's header must name the table's
columns in order (the assumption "column order = schema order"), so a table whose columns
don't match the files fails.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import boto3
import duckdb
import pytest
from aws_cdk import aws_scheduler as scheduler
from conftest import new_app
from deploy_sim import REGION
from harness.cloudformation import HarnessDeployment
from harness.scheduler import Scheduler
from personalize_standin import ACTIVE, PersonalizeStandIn
from standin_exports import Record, bulk, put

from personalize_export import DatasetExportJob, DatasetExportSchedule, IngestionMode
from personalize_export.table import TableOptions

DATASET = "arn:aws:personalize:us-east-1:123456789012:dataset/shop/INTERACTIONS"
SCHEMA: dict[str, Any] = {
    "type": "record",
    "name": "Interactions",
    "namespace": "com.amazonaws.personalize.schema",
    "fields": [
        {"name": "USER_ID", "type": "string"},
        {"name": "ITEM_ID", "type": "string"},
        {"name": "TIMESTAMP", "type": "long"},
        {"name": "EVENT_VALUE", "type": ["null", "float"]},
        {"name": "EVENT_TYPE", "type": ["null", "string"], "categorical": True},
        {"name": "IN_STOCK", "type": ["null", "boolean"]},
    ],
    "version": "1.0",
}
OPEN_CSV = "org.apache.hadoop.hive.serde2.OpenCSVSerde"
GLUE_TO_DUCKDB = {
    "string": "VARCHAR",
    "int": "INTEGER",
    "bigint": "BIGINT",
    "float": "FLOAT",
    "double": "DOUBLE",
    "boolean": "BOOLEAN",
}
# Java DateTimeFormatter letters the run format uses, as strftime directives.
JAVA_TO_STRFTIME = {"yyyy": "%Y", "MM": "%m", "dd": "%d", "HH": "%H", "mm": "%M"}
STEP_UNITS = {"DAYS": "days", "HOURS": "hours", "MINUTES": "minutes"}
Template = dict[str, Any]


def records(count: int, start: int = 0) -> list[Record]:
    """Interactions, some imported and some put, every field filled in some."""
    made = []
    for n in range(start, start + count):
        values: dict[str, Any] = {
            "USER_ID": f"user{n % 4}",
            "ITEM_ID": f"item,{n}",  # a comma: the field is quoted
            "TIMESTAMP": 1_800_000_000 + n,
            "EVENT_VALUE": n / 2 if n % 3 else None,
            "EVENT_TYPE": ["click", "view"] if n % 2 else "buy",
            "IN_STOCK": n % 2 == 0,
        }
        made.append(bulk(values) if n % 2 else put(values))
    return made


# --- reading through a table's definition ------------------------------------------------------


class ColumnsMismatchError(AssertionError):
    """A file's header does not name the table's columns in order."""


@dataclass(frozen=True)
class TableDefinition:
    """A deployed AWS::Glue::Table's TableInput, its intrinsics resolved."""

    table_input: dict[str, Any]

    @property
    def columns(self) -> list[tuple[str, str]]:
        storage = self.table_input["StorageDescriptor"]
        return [(column["Name"], column["Type"]) for column in storage["Columns"]]

    @property
    def skip_lines(self) -> int:
        storage = self.table_input["StorageDescriptor"]
        return int(storage.get("Parameters", {}).get("skip.header.line.count", "0"))

    @property
    def location(self) -> str:
        return str(self.table_input["StorageDescriptor"]["Location"])

    def parameter(self, key: str) -> str:
        return str(self.table_input["Parameters"][key])

    def run_values(self, now: datetime.datetime) -> list[str]:
        """The run partition's values, as Athena's date projection generates them up to now."""
        assert [key["Name"] for key in self.table_input["PartitionKeys"]] == ["run"]
        assert self.parameter("projection.enabled") == "true"
        assert self.parameter("projection.run.type") == "date"
        pattern = self.parameter("projection.run.format")
        for java, directive in JAVA_TO_STRFTIME.items():
            pattern = pattern.replace(java, directive)
        assert re.fullmatch(r"(%[YmdHM]|[^A-Za-z%])*", pattern), pattern  # nothing else to map
        start, end = self.parameter("projection.run.range").split(",")
        assert end == "NOW"
        moment = datetime.datetime.strptime(start, pattern).replace(tzinfo=datetime.UTC)
        unit = STEP_UNITS[self.parameter("projection.run.interval.unit")]
        step = datetime.timedelta(**{unit: int(self.parameter("projection.run.interval"))})
        values = []
        while moment <= now:
            values.append(moment.strftime(pattern))
            moment += step
        return values

    def run_location(self, run: str) -> str:
        return self.parameter("storage.location.template").replace("${run}", run)


def glue_table(deployment: HarnessDeployment) -> TableDefinition:
    (table,) = [
        resource["Properties"]["TableInput"]
        for resource in deployment.template["Resources"].values()
        if resource["Type"] == "AWS::Glue::Table"
    ]
    return TableDefinition(deployment.resolve(table))


def s3_client() -> Any:
    return boto3.client(
        "s3", region_name=REGION, aws_access_key_id="test", aws_secret_access_key="test"
    )


def download(location: str, folder: Path) -> list[Path]:
    """Every object under an s3:// location (a prefix), copied into a folder."""
    bucket, _, prefix = location.removeprefix("s3://").partition("/")
    s3 = s3_client()
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for index, item in enumerate(sorted(listed, key=lambda item: str(item["Key"]))):
        path = folder / f"{index}.csv"
        path.write_bytes(s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read())
        files.append(path)
    return files


def check_headers(table: TableDefinition, files: list[Path]) -> None:
    names = [name for name, _ in table.columns]
    for file in files:
        header = file.read_text().splitlines()[0].lower().split(",")
        if header != names:
            raise ColumnsMismatchError(f"{file.name}: header {header}, table columns {names}")


def scan(table: TableDefinition, files: list[Path], run: str | None = None) -> str:
    """A DuckDB SELECT over the files as the table's SerDe reads them."""
    serde = table.table_input["StorageDescriptor"]["SerdeInfo"]
    assert serde["SerializationLibrary"] == OPEN_CSV
    assert not serde.get("Parameters")  # OpenCSVSerde's defaults: ',' and '"'
    columns = ", ".join(f"'{name}': '{GLUE_TO_DUCKDB[kind]}'" for name, kind in table.columns)
    listed = ", ".join(f"'{file}'" for file in files)
    partition = f", '{run}' AS run" if run is not None else ""
    return (
        f"SELECT *{partition} FROM read_csv([{listed}], columns={{{columns}}}, delim=',', "
        f"quote='\"', escape='\"', header=false, skip={table.skip_lines}, auto_detect=false)"
    )


def define(
    connection: duckdb.DuckDBPyConnection,
    table: TableDefinition,
    folder: Path,
    now: datetime.datetime | None = None,
) -> None:
    """CREATE VIEW export AS the table: its files, or each projected run's files."""
    if now is None:
        files = download(table.location, folder)
        check_headers(table, files)
        connection.execute(f"CREATE VIEW export AS {scan(table, files)}")
        return
    selects = []
    for run in table.run_values(now):
        files = download(table.run_location(run), folder / run.replace("/", "-"))
        check_headers(table, files)
        if files:  # a projected run without files reads as no rows
            selects.append(scan(table, files, run))
    connection.execute(f"CREATE VIEW export AS {' UNION ALL '.join(selects)}")


def query(connection: duckdb.DuckDBPyConnection, sql: str) -> list[tuple[Any, ...]]:
    return connection.execute(sql).fetchall()


# --- one export --------------------------------------------------------------------------------


def build_export(app: cdk.App) -> None:
    stack = cdk.Stack(app, "OneExport")
    DatasetExportJob(
        stack,
        "Interactions",
        dataset_arn=DATASET,
        ingestion_mode=IngestionMode.ALL,
        table=TableOptions(schema=SCHEMA),
    )


def build_schedule(app: cdk.App) -> None:
    stack = cdk.Stack(app, "Nightly")
    DatasetExportSchedule(
        stack,
        "Interactions",
        dataset_arn=DATASET,
        schedule=scheduler.ScheduleExpression.cron(hour="2", minute="0"),
        ingestion_mode=IngestionMode.ALL,
        table=TableOptions(schema=SCHEMA),
    )


@pytest.fixture(scope="module")
def assembly(tmp_path_factory: pytest.TempPathFactory) -> Path:
    app = new_app(tmp_path_factory.mktemp("tables") / "cdk.out")
    build_export(app)
    build_schedule(app)
    return Path(app.synth().directory)


def with_bucket(deployment: HarnessDeployment) -> str:
    """Create the stack's export bucket in moto's S3 (the harness provisions no buckets)."""
    (bucket,) = [
        key
        for key, resource in deployment.template["Resources"].items()
        if resource["Type"] == "AWS::S3::Bucket" and key.startswith("InteractionsBucket")
    ]
    name = str(deployment.resolve({"Ref": bucket}))
    s3_client().create_bucket(Bucket=name)
    return name


@pytest.fixture
def connection() -> Iterator[duckdb.DuckDBPyConnection]:
    with duckdb.connect() as connected:
        yield connected


@pytest.fixture
def one_export(assembly: Path, standin: PersonalizeStandIn) -> HarnessDeployment:
    standin.hold_dataset(DATASET, SCHEMA, records(8))
    deployment = HarnessDeployment(assembly, "OneExport", standin=standin)
    with_bucket(deployment)
    result = deployment.create_stack()
    assert result.ok, result.reason()
    assert [job.status for job in standin.jobs.values()] == [ACTIVE]
    return deployment


def test_one_export_reads_through_its_table(
    one_export: HarnessDeployment,
    connection: duckdb.DuckDBPyConnection,
    tmp_path: Path,
    standin: PersonalizeStandIn,
) -> None:
    table = glue_table(one_export)
    define(connection, table, tmp_path)

    assert len(standin.exports.written) == 3  # 8 rows, at most 3 a file: read as a prefix
    assert query(connection, "SELECT count(*), sum(timestamp) FROM export") == [
        (8, sum(1_800_000_000 + n for n in range(8)))
    ]
    assert query(connection, "SELECT item_id, event_type FROM export WHERE user_id = 'user1'") == [
        ("item,1", "click|view"),
        ("item,5", "click|view"),
    ]
    typed = query(connection, "SELECT sum(event_value), count(event_value) FROM export")
    assert typed == [(sum(n / 2 for n in range(8) if n % 3), 5)]
    assert query(connection, "SELECT count(*) FROM export WHERE in_stock") == [(4,)]


def test_a_table_whose_columns_do_not_match_the_files_fails(
    one_export: HarnessDeployment, connection: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    table = glue_table(one_export)
    columns = table.table_input["StorageDescriptor"]["Columns"]
    swapped = [columns[1], columns[0], *columns[2:]]
    storage = {**table.table_input["StorageDescriptor"], "Columns": swapped}
    mismatched = TableDefinition({**table.table_input, "StorageDescriptor": storage})

    with pytest.raises(ColumnsMismatchError, match="header"):
        define(connection, mismatched, tmp_path / "swapped")

    # The SerDe alone would not notice names, but types it does: a string read as a number.
    retyped = [columns[0], {**columns[1], "Type": "bigint"}, *columns[2:]]
    storage = {**table.table_input["StorageDescriptor"], "Columns": retyped}
    wrong_type = TableDefinition({**table.table_input, "StorageDescriptor": storage})
    files = download(table.location, tmp_path / "typed")
    with pytest.raises(duckdb.ConversionException):
        query(connection, scan(wrong_type, files))


def test_without_skipping_the_header_the_typed_read_fails(
    one_export: HarnessDeployment, connection: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    """skip.header.line.count matters in every file: DuckDB reads the headers as rows otherwise."""
    table = glue_table(one_export)
    storage = {**table.table_input["StorageDescriptor"], "Parameters": {}}
    no_skip = TableDefinition({**table.table_input, "StorageDescriptor": storage})
    files = download(table.location, tmp_path)

    with pytest.raises(duckdb.ConversionException):
        query(connection, scan(no_skip, files))


# --- three scheduled runs ----------------------------------------------------------------------


def test_three_nightly_runs_read_through_the_table_one_partition_each(
    assembly: Path,
    standin: PersonalizeStandIn,
    connection: duckdb.DuckDBPyConnection,
    tmp_path: Path,
) -> None:
    deployment = HarnessDeployment(assembly, "Nightly", standin=standin)
    with_bucket(deployment)
    assert deployment.create_stack().ok
    runs = Scheduler(deployment)
    (schedule,) = runs.schedules()
    clock = deployment.harness.clock
    now = datetime.datetime.fromtimestamp(clock.time(), datetime.UTC)
    nights = runs.occurrences(schedule, now, 3)
    counts = [4, 7, 2]  # records held before each night (ALL keeps every interaction)
    for night, count in zip(nights, counts, strict=True):
        standin.hold_dataset(DATASET, SCHEMA, records(count, start=100 * night.day))
        assert runs.run(schedule, night)["status"] == "SUCCEEDED"

    table = glue_table(deployment)
    later = datetime.datetime.fromtimestamp(clock.time(), datetime.UTC)
    define(connection, table, tmp_path, now=later)

    folders = [night.strftime("%Y/%m/%d/%H%M") for night in nights]
    assert set(folders) <= set(table.run_values(later))
    assert query(connection, "SELECT run, count(*) FROM export GROUP BY run ORDER BY run") == list(
        zip(folders, counts, strict=True)
    )
    expected_sum = sum(
        1_800_000_000 + 100 * night.day + n
        for night, count in zip(nights, counts, strict=True)
        for n in range(count)
    )
    assert query(connection, "SELECT sum(timestamp) FROM export") == [(expected_sum,)]
    second = folders[1]
    assert query(connection, f"SELECT count(*) FROM export WHERE run = '{second}'") == [(7,)]
    assert query(connection, f"SELECT count(*) FROM export WHERE run >= '{second}'") == [(9,)]
    # The projection reaches back to the range's start: the days before the first run are
    # projected too, and read as empty.
    assert len(table.run_values(later)) > 3
