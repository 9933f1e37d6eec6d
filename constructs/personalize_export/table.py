"""Glue Data Catalog tables over exports, for Athena: ``table=TableOptions(schema=...)``.

One place maps a Personalize schema (flat Avro records) to Glue columns, builds the table on
aws-cdk-lib's ``aws_glue.S3Table`` and grants what a query needs. Both constructs use it:

- a DatasetExportJob's table reads its output path;
- a DatasetExportSchedule's table reads its prefix, with the run folder as a partition column
  ``run`` (values ``YYYY/MM/DD/HHMM``, UTC) found by partition projection: no crawler, no
  partitions to add. The projection steps by the schedule's period where the expression fixes
  the run times (see ``run_projection``).

Columns are the schema's fields in schema order, named in lower case (Glue and Athena keep
only lower-case names: ``USER_ID`` is queried as ``user_id``), typed string, int, bigint (Avro
long), float, double or boolean; a nullable union takes its other type; categorical strings stay
strings (values joined with ``|``). Files are read through OpenCSVSerde, one header line skipped
per file. Two assumptions only an account settles: the CSV's column order is the schema's field
order, and every file has exactly one header row.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aws_cdk import Stack, Token
from aws_cdk import aws_glue as glue
from aws_cdk import aws_iam as iam
from constructs import Construct

from personalize_export.acknowledgments import acknowledge_query_objects

if TYPE_CHECKING:
    from personalize_export.destination import ExportDestination

__all__ = [
    "DEFAULT_FIRST_RUN",
    "QUERY_ACTIONS",
    "RUN_COLUMN",
    "RUN_FORMAT",
    "ExportFiles",
    "ExportTable",
    "RunProjection",
    "TableOptions",
    "glue_columns",
    "run_projection",
]

RUN_COLUMN = "run"
# The run folder's layout (dataset_export_schedule.py) as a Java DateTimeFormatter pattern.
RUN_FORMAT = "yyyy/MM/dd/HHmm"
# No run of a schedule with a table can come before this library could make one.
DEFAULT_FIRST_RUN = datetime.datetime(2026, 12, 1, tzinfo=datetime.UTC)
# What Athena reads from the Data Catalog for a query (the Athena user guide's
# "Access to the AWS Glue Data Catalog"; projection makes the partition reads unneeded, but a
# table without it needs them).
QUERY_ACTIONS = [
    "glue:BatchGetPartition",
    "glue:GetDatabase",
    "glue:GetPartition",
    "glue:GetPartitions",
    "glue:GetTable",
]
AVRO_TO_GLUE = {
    "string": glue.Schema.STRING,
    "int": glue.Schema.INTEGER,
    "long": glue.Schema.BIG_INT,
    "float": glue.Schema.FLOAT,
    "double": glue.Schema.DOUBLE,
    "boolean": glue.Schema.BOOLEAN,
}
# Athena's rule for database, table and column names (Athena user guide, "Name databases,
# tables and columns"); Glue itself allows up to 255 characters.
NAME_PATTERN = re.compile(r"[a-z0-9_]{1,255}")
NAME_RULE = "a Glue table name Athena can read has 1-255 lower-case letters, digits or '_'"
SCHEMA_RULE = "the schema is the dataset's Avro JSON: a record with a list of named fields"
_NAME_ILLEGAL = re.compile(r"[^a-z0-9_]+")
_MINUTES_PER_DAY = 24 * 60


@dataclass(frozen=True, kw_only=True)
class TableOptions:
    """A Glue table over an export's files, for Athena (``table=`` on both constructs).

    :param schema: the dataset's Personalize schema, Avro JSON as a ``str`` or ``dict`` (the
        document given to ``CfnSchema``). Default: none, which the construct refuses.
    :param database: the Glue database to hold the table. Default: one database per stack,
        which the library creates (``personalize_exports`` plus a hash of the stack).
    :param table_name: the table's name. Default: the construct path in lower case, with
        ``_`` for every other character (``Nightly/Interactions`` -> ``nightly_interactions``).
    :param first_run: a schedule's first scheduled time or earlier (UTC): the partition
        projection's range starts at the first run time from here. Default: 2026-12-01, the
        first time this library could run a schedule with a table; a later date spares Athena
        one empty partition per step before the schedule's first run.
    """

    schema: str | Mapping[str, Any] | None = None
    database: glue.IDatabase | None = None
    table_name: str | None = None
    first_run: datetime.datetime | None = None

    def problems(self, *, partitioned: bool) -> list[str]:
        """Every problem with the options, each naming the option, the value and the rule."""
        _, schema_problems = glue_columns(
            self.schema, reserved=(RUN_COLUMN,) if partitioned else ()
        )
        return schema_problems + _table_name_problems(self.table_name)


def glue_columns(
    schema: str | Mapping[str, Any] | None, *, reserved: Sequence[str] = ()
) -> tuple[list[glue.Column], list[str]]:
    """The Glue columns of a Personalize schema, in field order, and the problems found."""
    document, problems = _schema_document(schema)
    if problems:
        return [], problems
    columns: list[glue.Column] = []
    seen: set[str] = set()
    for field in document["fields"]:
        column, field_problems = _column(field, reserved, seen)
        seen.add(str(field["name"]).lower())
        problems += field_problems
        if column is not None:
            columns.append(column)
    return columns, problems


def _schema_document(schema: str | Mapping[str, Any] | None) -> tuple[dict[str, Any], list[str]]:
    if schema is None or schema == "" or schema == {}:
        return {}, [f"table.schema is missing; {SCHEMA_RULE}"]
    document: Any = schema
    if isinstance(schema, str):
        try:
            document = json.loads(schema)
        except ValueError:
            return {}, [f"table.schema {_shown(schema)} is not JSON; {SCHEMA_RULE}"]
    fields = document.get("fields") if isinstance(document, Mapping) else None
    if not isinstance(fields, list) or not fields:
        shown = _shown(json.dumps(document) if not isinstance(schema, str) else schema)
        return {}, [f"table.schema {shown} has no fields; {SCHEMA_RULE}"]
    if not all(isinstance(f, Mapping) and isinstance(f.get("name"), str) for f in fields):
        return {}, [f"table.schema has a field without a name; {SCHEMA_RULE}"]
    return dict(document), []


def _column(
    field: Mapping[str, Any], reserved: Sequence[str], taken: set[str]
) -> tuple[glue.Column | None, list[str]]:
    name = str(field["name"]).lower()
    glue_type = _glue_type(field.get("type"))
    given = f"table.schema field {field['name']!r}"
    problems = []
    if glue_type is None:
        problems.append(
            f"{given} has type {json.dumps(field.get('type'))}, which Glue can't hold here; "
            "a field is string, int, long, float, double or boolean, or one of them or null"
        )
    if NAME_PATTERN.fullmatch(name) is None:
        problems.append(
            f"{given} is no column name; a column name has 1-255 letters, digits or '_'"
        )
    if name in reserved or name in taken:
        what = "the run partition column" if name in reserved else "another field"
        problems.append(f"{given} is named like {what} ({name!r}); column names must be unique")
    if problems or glue_type is None:
        return None, problems
    return glue.Column(name=name, type=glue_type), []


def _glue_type(avro_type: Any) -> glue.Type | None:
    if isinstance(avro_type, list):
        others = [entry for entry in avro_type if entry != "null"]
        return _glue_type(others[0]) if len(others) == 1 and len(avro_type) == 2 else None
    if isinstance(avro_type, str):
        return AVRO_TO_GLUE.get(avro_type)
    return None


def _table_name_problems(table_name: str | None) -> list[str]:
    if table_name is None or Token.is_unresolved(table_name):
        return []
    if NAME_PATTERN.fullmatch(table_name) is None:
        length = f" ({len(table_name)} characters)" if len(table_name) > 255 else ""
        return [f"table.table_name {_shown(table_name)}{length} is refused; {NAME_RULE}"]
    return []


def _shown(value: str) -> str:
    return repr(value if len(value) <= 60 else value[:57] + "...")


def default_table_name(owner: Construct) -> str:
    """The owner's construct path (stack included), lower case, every other character '_'."""
    path = "_".join(scope.node.id for scope in owner.node.scopes)
    readable = _NAME_ILLEGAL.sub("_", path.lower()).strip("_")
    if len(readable) <= 255:
        return readable or "export"
    digest = hashlib.sha256(path.encode()).hexdigest()[:8]
    return f"{readable[: 255 - 9]}_{digest}"


# --- scheduled runs as a projected partition ---------------------------------------------------


@dataclass(frozen=True)
class RunProjection:
    """The date projection of the run column: its first value and step (Athena steps from the
    range's start, so the start must be a run time for every step to land on one)."""

    start: datetime.datetime
    interval: int
    unit: glue.DateIntervalUnit

    def configuration(self) -> glue.PartitionProjectionConfiguration:
        return glue.PartitionProjectionConfiguration.date(
            min=self.start.strftime("%Y/%m/%d/%H%M"),
            max="NOW",
            format=RUN_FORMAT,
            step=glue.DateProjectionStep(interval=self.interval, interval_unit=self.unit),
        )


def run_projection(
    expression: str, time_zone: str | None, first_run: datetime.datetime | None
) -> RunProjection:
    """The run column's projection for a Scheduler expression.

    The step is the schedule's period where the expression fixes the run times in UTC: a cron
    at a fixed minute and hour steps a day (weekly or monthly ones too: the other days read as
    empty partitions); at a fixed minute every hour, or every n hours (``*/n``, n dividing 24),
    an hour or n hours; every n minutes (``*/n``, n dividing 60) n minutes. A rate's runs
    follow the moment Scheduler created the schedule, unknown at synth: given ``first_run``
    (a run's scheduled time), the rate's period steps from it; otherwise, and for crons in
    another time zone, minute lists or ranges, the step is one minute: Athena then projects
    1,440 partitions a day, nearly all empty, so queries should filter on ``run``.
    """
    first = _in_utc(first_run or DEFAULT_FIRST_RUN)
    rate = re.fullmatch(r"rate\((\d+) (minute|hour|day)s?\)", expression)
    if rate is not None and first_run is not None:
        unit = {"minute": "MINUTES", "hour": "HOURS", "day": "DAYS"}[rate[2]]
        return RunProjection(_to_minute(first), int(rate[1]), glue.DateIntervalUnit(unit))
    offset, step = _cron_period(expression) if time_zone in (None, "UTC", "Etc/UTC") else (0, 1)
    return RunProjection(_first_at(first, offset, step), *_as_interval(step))


def _cron_period(expression: str) -> tuple[int, int]:
    """(minute of the day of a run, minutes between runs) for crons of fixed period; (0, 1)
    when the period is not fixed."""
    match = re.fullmatch(r"cron\((\S+) (\S+) (\S+) (\S+) (\S+) (\S+)\)", expression)
    if match is None:
        return 0, 1
    minute, hour = match[1], match[2]
    if minute.isdigit() and hour.isdigit():
        return int(hour) * 60 + int(minute), _MINUTES_PER_DAY
    hours = _every(hour, 24)
    if minute.isdigit() and hours is not None:
        return hours[0] * 60 + int(minute), hours[1] * 60
    minutes = _every(minute, 60)
    if minutes is not None and hour == "*":
        return minutes
    return 0, 1


def _every(field: str, cycle: int) -> tuple[int, int] | None:
    """(first, step) of `*`, `*/n` or `a/n` when n divides the cycle (hours: 24, minutes: 60)."""
    if field == "*":
        return 0, 1
    match = re.fullmatch(r"(\*|\d+)/(\d+)", field)
    if match is None or int(match[2]) < 1 or cycle % int(match[2]) != 0:
        return None
    first = 0 if match[1] == "*" else int(match[1])
    return (first % int(match[2]), int(match[2])) if first < cycle else None


def _first_at(first: datetime.datetime, offset: int, step: int) -> datetime.datetime:
    """The first time at `offset` minutes into a day plus a whole number of steps, not before
    `first` (truncated to the minute)."""
    day = first.replace(hour=0, minute=0, second=0, microsecond=0)
    since_midnight = (_to_minute(first) - day) // datetime.timedelta(minutes=1)
    steps = max(0, -(-(since_midnight - offset) // step))
    return day + datetime.timedelta(minutes=offset + steps * step)


def _in_utc(moment: datetime.datetime) -> datetime.datetime:
    """A naive time is taken as UTC already."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=datetime.UTC)
    return moment.astimezone(datetime.UTC)


def _to_minute(moment: datetime.datetime) -> datetime.datetime:
    return moment.replace(second=0, microsecond=0)


def _as_interval(minutes: int) -> tuple[int, glue.DateIntervalUnit]:
    if minutes % _MINUTES_PER_DAY == 0:
        return minutes // _MINUTES_PER_DAY, glue.DateIntervalUnit.DAYS
    if minutes % 60 == 0:
        return minutes // 60, glue.DateIntervalUnit.HOURS
    return minutes, glue.DateIntervalUnit.MINUTES


# --- the table --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExportFiles:
    """Where an export's files are and how to read them (the construct's destination)."""

    destination: ExportDestination
    projection: RunProjection | None = None


class ExportTable(Construct):
    """A Glue table over one export's output path, or a schedule's prefix with its runs as the
    projected partition ``run``."""

    def __init__(
        self, scope: Construct, construct_id: str, options: TableOptions, files: ExportFiles
    ) -> None:
        super().__init__(scope, construct_id)
        self._destination = files.destination
        projection = files.projection
        columns, _ = glue_columns(options.schema, reserved=(RUN_COLUMN,) if projection else ())
        self.database = options.database or _stack_database(self)
        bucket, prefix = files.destination.bucket, files.destination.output_prefix
        self.table = glue.S3Table(
            self,
            "Resource",
            database=self.database,
            table_name=options.table_name or default_table_name(scope),
            description=f"Personalize dataset export {scope.node.path}"[:2048],
            columns=columns,
            data_format=glue.DataFormat.CSV,
            storage=glue.S3TableStorage.from_bucket(bucket),
            s3_prefix=prefix,
            # Exports are encrypted on the server side (SSE-S3 or SSE-KMS), which Athena reads
            # as is; `true` is for client-side encryption and makes Athena demand it.
            has_encrypted_data=False,
            storage_parameters=[glue.StorageParameter.skip_header_line_count(1)],
            parameters=_table_parameters(bucket.bucket_name, prefix, partitioned=bool(projection)),
            partition_keys=[glue.Column(name=RUN_COLUMN, type=glue.Schema.STRING)]
            if projection
            else None,
            partition_projection={RUN_COLUMN: projection.configuration()} if projection else None,
        )

    @property
    def table_name(self) -> str:
        return self.table.table_name

    def grant_query(self, grantee: iam.IGrantable) -> iam.Grant:
        """Glue catalog reads on the catalog, database and table, S3 reads on the export's
        objects (list the prefix, get), KMS decrypt when the export uses a key."""
        catalog = self.database.catalog.catalog_arn
        catalog_reads = iam.Grant.add_to_principal(
            grantee=grantee,
            actions=QUERY_ACTIONS,
            resource_arns=[catalog, self.database.database_arn, self.table.table_arn],
        )
        acknowledge_query_objects(grantee, self._destination.object_arns)
        return catalog_reads.combine(self._destination.grant_read(grantee))


def _table_parameters(bucket_name: str, prefix: str, *, partitioned: bool) -> dict[str, str]:
    # Athena's CREATE TABLE writes skip.header.line.count into the table's parameters, S3Table's
    # StorageParameter into the storage descriptor's: both, so every reader finds it.
    parameters = {"skip.header.line.count": "1"}
    if partitioned:
        template = f"s3://{bucket_name}/{prefix}${{{RUN_COLUMN}}}/"
        parameters["storage.location.template"] = template
    return parameters


def _stack_database(scope: Construct) -> glue.IDatabase:
    """The stack's own database for export tables, created once."""
    stack = Stack.of(scope)
    found = stack.node.try_find_child("PersonalizeExportsDatabase")
    if isinstance(found, glue.Database):
        return found
    name = stack.node.path if Token.is_unresolved(stack.stack_name) else stack.stack_name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return glue.Database(
        stack,
        "PersonalizeExportsDatabase",
        database_name=f"personalize_exports_{digest}",
        description="Tables over Amazon Personalize dataset exports",
    )
