"""table= (issue 18): the Glue table over an export or a schedule's runs, read from templates.

The files themselves are read through these tables with DuckDB in test_table_duckdb.py.
"""

from __future__ import annotations

import datetime
import fnmatch
import json
import subprocess
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import cdk_nag
import pytest
from aws_cdk import Duration, TimeZone
from aws_cdk import aws_glue as glue
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_scheduler as scheduler
from conftest import new_app, template_of
from iam_reference import check_template
from test_security import CFN_LINT_IGNORED, _cfn_lint, acknowledgments

from personalize_export import DatasetExportJob, DatasetExportSchedule
from personalize_export.dataset_export_job import BUCKET_POLICY_NOT_ADDED
from personalize_export.table import (
    DEFAULT_FIRST_RUN,
    QUERY_ACTIONS,
    TableOptions,
    run_projection,
)

DATASET = "arn:aws:personalize:us-east-1:123456789012:dataset/shop/INTERACTIONS"
ITEMS_DATASET = "arn:aws:personalize:us-east-1:123456789012:dataset/shop/ITEMS"
NIGHTLY = scheduler.ScheduleExpression.cron(hour="2", minute="0")
INTERACTIONS_SCHEMA: dict[str, Any] = {
    "type": "record",
    "name": "Interactions",
    "namespace": "com.amazonaws.personalize.schema",
    "fields": [
        {"name": "USER_ID", "type": "string"},
        {"name": "ITEM_ID", "type": "string"},
        {"name": "TIMESTAMP", "type": "long"},
        {"name": "EVENT_TYPE", "type": "string"},
        {"name": "EVENT_VALUE", "type": ["null", "float"]},
        {"name": "IMPRESSION", "type": ["null", "string"]},
    ],
    "version": "1.0",
}
ITEMS_SCHEMA: dict[str, Any] = {
    "type": "record",
    "name": "Items",
    "namespace": "com.amazonaws.personalize.schema",
    "fields": [
        {"name": "ITEM_ID", "type": "string"},
        {"name": "GENRES", "type": ["null", "string"], "categorical": True},
        {"name": "YEAR", "type": "int"},
        {"name": "PRICE", "type": "double"},
        {"name": "IN_STOCK", "type": "boolean"},
        {"name": "CREATED", "type": ["long", "null"]},
    ],
    "version": "1.0",
}
INTERACTION_COLUMNS = [
    {"Name": "user_id", "Type": "string"},
    {"Name": "item_id", "Type": "string"},
    {"Name": "timestamp", "Type": "bigint"},
    {"Name": "event_type", "Type": "string"},
    {"Name": "event_value", "Type": "float"},
    {"Name": "impression", "Type": "string"},
]
OPEN_CSV = "org.apache.hadoop.hive.serde2.OpenCSVSerde"
Template = dict[str, Any]


def build_tables(app: cdk.App) -> None:
    """An export with a table (its own bucket, a key), one into a bucket the app does not own
    (a given database and name), a nightly schedule with a table; each queried by a role."""
    stack = cdk.Stack(app, "Tables")
    key = kms.Key(stack, "Key", enable_key_rotation=True)
    export = DatasetExportJob(
        stack,
        "Interactions",
        dataset_arn=DATASET,
        encryption_key=key,
        table=TableOptions(schema=json.dumps(INTERACTIONS_SCHEMA)),
    )
    lake = s3.Bucket.from_bucket_name(stack, "Lake", "team-data-lake")
    analytics = glue.Database(stack, "Analytics", database_name="analytics")
    items = DatasetExportJob(
        stack,
        "Items",
        dataset_arn=ITEMS_DATASET,
        bucket=lake,
        output_prefix="personalize/items",
        ingestion_mode="ALL",
        table=TableOptions(schema=ITEMS_SCHEMA, database=analytics, table_name="shop_items"),
    )
    nightly = DatasetExportSchedule(
        stack,
        "Nightly",
        dataset_arn=DATASET,
        schedule=NIGHTLY,
        keep=Duration.days(30),
        table=TableOptions(schema=INTERACTIONS_SCHEMA),
    )
    for source, reader in ((export, "Analyst"), (items, "Merchandiser"), (nightly, "Scientist")):
        source.grant_query(iam.Role(stack, reader, assumed_by=iam.AccountRootPrincipal()))


@pytest.fixture(scope="module")
def tables(tmp_path_factory: pytest.TempPathFactory) -> Template:
    app = new_app(tmp_path_factory.mktemp("tables") / "cdk.out")
    build_tables(app)
    return json.loads((Path(app.synth().directory) / "Tables.template.json").read_text())  # type: ignore[no-any-return]


def glue_table(template: Template, construct: str) -> dict[str, Any]:
    (found,) = [
        resource["Properties"]
        for key, resource in template["Resources"].items()
        if resource["Type"] == "AWS::Glue::Table" and key.startswith(f"{construct}Table")
    ]
    return dict(found)


def joined(value: Any, refs: dict[str, str]) -> str:
    """An Fn::Join as text: each Ref whose logical id starts with a key of `refs` replaced by
    its value, any other intrinsic by "<token>"."""
    if isinstance(value, str):
        return value
    parts = []
    for part in value["Fn::Join"][1]:
        if isinstance(part, str):
            parts.append(part)
            continue
        named = [v for k, v in refs.items() if str(part.get("Ref", "")).startswith(k)]
        parts.append(named[0] if named else "<token>")
    return "".join(parts)


# --- one export --------------------------------------------------------------------------------


def test_an_export_s_table_has_the_schema_s_columns_in_order_read_as_csv_skipping_the_header(
    tables: Template,
) -> None:
    table = glue_table(tables, "Interactions")["TableInput"]
    storage = table["StorageDescriptor"]

    assert storage["Columns"] == INTERACTION_COLUMNS
    assert storage["SerdeInfo"] == {"SerializationLibrary": OPEN_CSV}
    assert storage["InputFormat"] == "org.apache.hadoop.mapred.TextInputFormat"
    assert storage["Parameters"] == {"skip.header.line.count": "1"}
    assert table["Parameters"]["skip.header.line.count"] == "1"
    assert table["Parameters"]["classification"] == "csv"
    assert table["Parameters"]["has_encrypted_data"] is False  # SSE, not client-side
    assert "PartitionKeys" not in table
    assert not [key for key in table["Parameters"] if key.startswith("projection.")]
    assert table["Name"] == "tables_interactions"
    bucket = {"InteractionsBucket": "exports-bucket"}
    assert joined(storage["Location"], bucket) == "s3://exports-bucket/Tables/Interactions/"


def test_the_location_is_the_export_s_output_path(tables: Template) -> None:
    (export,) = [
        r["Properties"]
        for k, r in tables["Resources"].items()
        if r["Type"] == "Custom::PersonalizeDatasetExportJob" and k.startswith("Interactions")
    ]
    table = glue_table(tables, "Interactions")["TableInput"]
    assert table["StorageDescriptor"]["Location"] == export["OutputPath"]


def test_types_map_from_avro_nullable_unions_take_their_type_categoricals_stay_strings(
    tables: Template,
) -> None:
    table = glue_table(tables, "Items")

    columns = table["TableInput"]["StorageDescriptor"]["Columns"]
    assert [(c["Name"], c["Type"]) for c in columns] == [
        ("item_id", "string"),
        ("genres", "string"),
        ("year", "int"),
        ("price", "double"),
        ("in_stock", "boolean"),
        ("created", "bigint"),
    ]
    assert table["TableInput"]["Name"] == "shop_items"
    assert table["DatabaseName"] == {
        "Ref": next(k for k in tables["Resources"] if "Analytics" in k)
    }
    location = table["TableInput"]["StorageDescriptor"]["Location"]
    assert location == "s3://team-data-lake/personalize/items/"


def test_tables_without_a_database_share_one_the_library_creates(tables: Template) -> None:
    databases = {
        key: r["Properties"]["DatabaseInput"]["Name"]
        for key, r in tables["Resources"].items()
        if r["Type"] == "AWS::Glue::Database"
    }
    (own,) = [key for key in databases if key.startswith("PersonalizeExportsDatabase")]
    assert databases[own].startswith("personalize_exports_")
    for construct in ("Interactions", "Nightly"):
        assert glue_table(tables, construct)["DatabaseName"] == {"Ref": own}


# --- a schedule --------------------------------------------------------------------------------


def test_a_schedule_s_table_projects_the_run_folders_day_by_day(tables: Template) -> None:
    table = glue_table(tables, "Nightly")["TableInput"]
    parameters = table["Parameters"]

    assert table["PartitionKeys"] == [{"Name": "run", "Type": "string"}]
    assert table["StorageDescriptor"]["Columns"] == INTERACTION_COLUMNS
    assert {k: v for k, v in parameters.items() if k.startswith("projection.")} == {
        "projection.enabled": "true",
        "projection.run.type": "date",
        "projection.run.format": "yyyy/MM/dd/HHmm",
        "projection.run.range": "2026/12/01/0200,NOW",
        "projection.run.interval": "1",
        "projection.run.interval.unit": "DAYS",
    }
    bucket = {"NightlyBucket": "runs-bucket"}
    assert (
        joined(table["StorageDescriptor"]["Location"], bucket) == "s3://runs-bucket/Tables/Nightly/"
    )
    template = joined(parameters["storage.location.template"], bucket)
    assert template == "s3://runs-bucket/Tables/Nightly/${run}/"


def test_the_location_template_resolves_to_the_folders_the_schedule_writes(
    tables: Template,
) -> None:
    """The run values Athena projects, put into the template, are the folders of the runs the
    schedule starts (dataset_export_schedule.py's layout: <prefix>YYYY/MM/DD/HHMM/, UTC)."""
    parameters = glue_table(tables, "Nightly")["TableInput"]["Parameters"]
    start, _ = parameters["projection.run.range"].split(",")
    first = datetime.datetime.strptime(start, "%Y/%m/%d/%H%M").replace(tzinfo=datetime.UTC)
    template = joined(parameters["storage.location.template"], {"NightlyBucket": "b"})
    projected = [
        template.replace("${run}", (first + datetime.timedelta(days=n)).strftime("%Y/%m/%d/%H%M"))
        for n in range(3)
    ]
    (schedule,) = [
        r["Properties"]
        for r in tables["Resources"].values()
        if r["Type"] == "AWS::Scheduler::Schedule"
    ]
    run_input = json.loads(joined(schedule["Target"]["Input"], {"NightlyBucket": "b"}))
    base = run_input["Create"]["JobOutput"]["S3DataDestination"]["Path"]
    nights = [datetime.datetime(2026, 12, 1 + n, 2, 0, tzinfo=datetime.UTC) for n in range(3)]
    assert projected == [base + night.strftime("%Y/%m/%d/%H%M/") for night in nights]
    assert schedule["ScheduleExpression"] == "cron(0 2 * * ? *)"


@pytest.mark.parametrize(
    ("expression", "time_zone", "first_run", "expected"),
    [
        # A fixed time of day (weekly ones too: their other days read as empty partitions).
        ("cron(0 2 * * ? *)", None, None, ("2026/12/01/0200", 1, "DAYS")),
        ("cron(30 23 ? * MON *)", "UTC", None, ("2026/12/01/2330", 1, "DAYS")),
        # Every hour at :15, every six hours from 01:00, every five minutes.
        ("cron(15 * * * ? *)", None, None, ("2026/12/01/0015", 1, "HOURS")),
        ("cron(0 1/6 * * ? *)", None, None, ("2026/12/01/0100", 6, "HOURS")),
        ("cron(0/5 * * * ? *)", None, None, ("2026/12/01/0000", 5, "MINUTES")),
        # The first run given: the range starts at the first run time from there.
        (
            "cron(0 2 * * ? *)",
            None,
            datetime.datetime(2027, 3, 4, 9, 30, tzinfo=datetime.UTC),
            ("2027/03/05/0200", 1, "DAYS"),
        ),
        # A rate's runs follow the schedule's creation: its period only from a given run.
        ("rate(6 hours)", "UTC", None, ("2026/12/01/0000", 1, "MINUTES")),
        (
            "rate(6 hours)",
            "UTC",
            datetime.datetime(2027, 1, 2, 7, 41, 59),  # naive: UTC
            ("2027/01/02/0741", 6, "HOURS"),
        ),
        (
            "rate(2 days)",
            None,
            datetime.datetime(2027, 1, 2, 7, 41),
            ("2027/01/02/0741", 2, "DAYS"),
        ),
        # Not fixed in UTC, or no fixed period: every minute.
        ("cron(0 2 * * ? *)", "Europe/Berlin", None, ("2026/12/01/0000", 1, "MINUTES")),
        ("cron(0,30 * * * ? *)", None, None, ("2026/12/01/0000", 1, "MINUTES")),
        ("cron(0 1-5 * * ? *)", None, None, ("2026/12/01/0000", 1, "MINUTES")),
        ("cron(0/7 * * * ? *)", None, None, ("2026/12/01/0000", 1, "MINUTES")),
        ("at(2027-01-01T00:00:00)", None, None, ("2026/12/01/0000", 1, "MINUTES")),
    ],
)
def test_the_run_projection_steps_by_the_schedule_s_period_where_it_is_fixed(
    expression: str,
    time_zone: str | None,
    first_run: datetime.datetime | None,
    expected: tuple[str, int, str],
) -> None:
    projection = run_projection(expression, time_zone, first_run)

    found = (projection.start.strftime("%Y/%m/%d/%H%M"), projection.interval, projection.unit.value)
    assert found == expected


def test_the_default_first_run_is_when_the_library_could_first_run_one() -> None:
    assert datetime.datetime(2026, 12, 1, tzinfo=datetime.UTC) == DEFAULT_FIRST_RUN


def test_a_schedule_in_another_time_zone_projects_every_minute(stack: cdk.Stack) -> None:
    berlin = scheduler.ScheduleExpression.cron(
        hour="2", minute="0", time_zone=TimeZone.EUROPE_BERLIN
    )
    DatasetExportSchedule(
        stack,
        "Berlin",
        dataset_arn=DATASET,
        schedule=berlin,
        table=TableOptions(schema=INTERACTIONS_SCHEMA),
    )

    parameters = glue_table(template_of(stack), "Berlin")["TableInput"]["Parameters"]
    assert parameters["projection.run.interval.unit"] == "MINUTES"
    assert parameters["projection.run.range"] == "2026/12/01/0000,NOW"


# --- table=None --------------------------------------------------------------------------------


def build_plain(app: cdk.App, *, with_none: bool) -> cdk.Stack:
    stack = cdk.Stack(app, "Plain")
    given: dict[str, Any] = {"table": None} if with_none else {}
    DatasetExportJob(stack, "Export", dataset_arn=DATASET, **given)
    DatasetExportSchedule(stack, "Runs", dataset_arn=DATASET, schedule=NIGHTLY, **given)
    return stack


def test_table_none_changes_nothing(tmp_path: Path) -> None:
    without = template_of(build_plain(new_app(tmp_path / "a"), with_none=False))
    with_none = template_of(build_plain(new_app(tmp_path / "b"), with_none=True))

    assert json.dumps(with_none, sort_keys=True) == json.dumps(without, sort_keys=True)
    assert not [r for r in without["Resources"].values() if r["Type"].startswith("AWS::Glue")]


# --- refused at synth --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (TableOptions(), ["table.schema is missing"]),
        (TableOptions(schema="{not json"), ["table.schema '{not json' is not JSON"]),
        (TableOptions(schema={"type": "record"}), ["has no fields"]),
        (
            TableOptions(
                schema={"fields": [{"name": "USER_ID", "type": "bytes"}]}, table_name="Bad-Name"
            ),
            [
                "table.schema field 'USER_ID' has type \"bytes\", which Glue can't hold",
                "table.table_name 'Bad-Name' is refused",
            ],
        ),
        (
            TableOptions(
                schema={
                    "fields": [
                        {"name": "A", "type": ["null", "string", "long"]},
                        {"name": "B", "type": {"type": "array", "items": "string"}},
                        {"name": "a", "type": "string"},
                    ]
                }
            ),
            ["field 'A' has type", "field 'B' has type", "field 'a' is named like another field"],
        ),
        (
            TableOptions(schema=INTERACTIONS_SCHEMA, table_name="x" * 256),
            ["(256 characters) is refused"],
        ),
    ],
)
def test_bad_table_options_are_refused_at_synth_naming_the_option(
    stack: cdk.Stack, options: TableOptions, expected: list[str]
) -> None:
    with pytest.raises(ValueError) as raised:
        DatasetExportJob(stack, "Export", dataset_arn=DATASET, table=options)

    message = str(raised.value)
    assert message.startswith("DatasetExportJob at 'TestStack/Export' is misconfigured:")
    problems = message.splitlines()[1:]
    assert len(problems) == len(expected)
    for problem, text in zip(problems, expected, strict=True):
        assert text in problem
    assert not [c for c in stack.node.find_all() if isinstance(c, cdk.CfnResource)]


def test_a_schedule_refuses_a_field_named_like_its_run_column_with_its_other_problems(
    stack: cdk.Stack,
) -> None:
    schema = {"fields": [{"name": "RUN", "type": "string"}]}
    with pytest.raises(ValueError) as raised:
        DatasetExportSchedule(
            stack,
            "Runs",
            dataset_arn="not-an-arn",
            schedule=NIGHTLY,
            table=TableOptions(schema=schema, table_name="runs table"),
        )

    message = str(raised.value)
    assert message.startswith("DatasetExportSchedule at 'TestStack/Runs' is misconfigured:")
    assert "dataset_arn" in message
    assert "table.schema field 'RUN' is named like the run partition column ('run')" in message
    assert "table.table_name 'runs table' is refused" in message


def test_an_export_may_have_a_run_field(stack: cdk.Stack) -> None:
    schema = {"fields": [{"name": "RUN", "type": "string"}]}
    DatasetExportJob(stack, "Export", dataset_arn=DATASET, table=TableOptions(schema=schema))
    columns = glue_table(template_of(stack), "Export")["TableInput"]["StorageDescriptor"]
    assert columns["Columns"] == [{"Name": "run", "Type": "string"}]


def test_a_token_table_name_is_left_to_deploy_time(stack: cdk.Stack) -> None:
    name = cdk.CfnParameter(stack, "Name").value_as_string
    DatasetExportJob(
        stack,
        "Export",
        dataset_arn=DATASET,
        table=TableOptions(schema=INTERACTIONS_SCHEMA, table_name=name),
    )
    assert glue_table(template_of(stack), "Export")["TableInput"]["Name"] == {"Ref": "Name"}


# --- grant_query -------------------------------------------------------------------------------


def statements_of(template: Template, role: str) -> list[dict[str, Any]]:
    (policy,) = [
        r["Properties"]["PolicyDocument"]["Statement"]
        for k, r in template["Resources"].items()
        if k.startswith(f"{role}DefaultPolicy")
    ]
    return list(policy)


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def test_grant_query_reads_the_catalog_the_objects_and_decrypts_with_the_key(
    tables: Template,
) -> None:
    statements = statements_of(tables, "Analyst")
    glue_reads, objects, listing, decrypt = statements

    assert glue_reads["Action"] == QUERY_ACTIONS
    targets = [json.dumps(resource) for resource in glue_reads["Resource"]]
    assert targets[0].endswith(':catalog"]]}')
    assert "database/" in targets[1] and "PersonalizeExportsDatabase" in targets[1]
    assert "table/" in targets[2] and '"InteractionsTable' in targets[2]
    assert objects["Action"] == "s3:GetObject"
    assert objects["Resource"]["Fn::Join"][1][1] == "/Tables/Interactions/*"
    assert listing["Condition"] == {"StringLike": {"s3:prefix": ["Tables/Interactions/*"]}}
    assert decrypt["Action"] == "kms:Decrypt"
    assert all(s["Effect"] == "Allow" for s in statements)
    assert not [a for s in statements for a in as_list(s["Action"]) if a.endswith("*")]


def test_grant_query_on_a_bucket_the_app_does_not_own_reads_only(tables: Template) -> None:
    statements = statements_of(tables, "Merchandiser")

    actions = sorted(a for s in statements for a in as_list(s["Action"]))
    assert actions == sorted([*QUERY_ACTIONS, "s3:GetObject", "s3:ListBucket"])
    objects = next(s for s in statements if s["Action"] == "s3:GetObject")
    assert json.dumps(objects["Resource"]).endswith(':s3:::team-data-lake/personalize/items/*"]]}')
    policies = [r for r in tables["Resources"].values() if r["Type"] == "AWS::S3::BucketPolicy"]
    assert not [p for p in policies if "team-data-lake" in json.dumps(p)]


def test_grant_query_on_a_schedule_reads_every_run(tables: Template) -> None:
    statements = statements_of(tables, "Scientist")
    objects = next(s for s in statements if s["Action"] == "s3:GetObject")
    key = "Tables/Nightly/2026/12/03/0200/part.csv"
    assert fnmatch.fnmatchcase(key, "Tables/Nightly/*")
    assert objects["Resource"]["Fn::Join"][1][1] == "/Tables/Nightly/*"
    assert statements[0]["Action"] == QUERY_ACTIONS


def test_grant_query_without_a_table_says_so(stack: cdk.Stack) -> None:
    export = DatasetExportJob(stack, "Export", dataset_arn=DATASET)
    runs = DatasetExportSchedule(stack, "Runs", dataset_arn=DATASET, schedule=NIGHTLY)
    role = iam.Role(stack, "Reader", assumed_by=iam.AccountRootPrincipal())
    with pytest.raises(ValueError, match="'TestStack/Export' has no table= to query"):
        export.grant_query(role)
    with pytest.raises(ValueError, match="'TestStack/Runs' has no table= to query"):
        runs.grant_query(role)


# --- nag, cfn-lint, the IAM reference ----------------------------------------------------------


def test_cdk_nag_finds_nothing_unacknowledged(tmp_path: Path) -> None:
    app = new_app(tmp_path / "cdk.out")
    cdk.Validations.of(app).add_plugins(cdk_nag.AwsSolutionsChecks(app))
    build_tables(app)
    # The user's to settle: the bucket the app does not own must let Personalize write.
    items = app.node.find_child("Tables").node.find_child("Items")
    cdk.Validations.of(items).acknowledge(
        cdk.Acknowledgment(
            id=f"Annotation::{BUCKET_POLICY_NOT_ADDED}",
            reason="The lake is not the app's bucket: its owners add the policy Personalize needs.",
        )
    )
    app.synth()  # raises on any unacknowledged error

    tables = [c for c in app.node.find_all() if isinstance(c, glue.S3Table)]
    assert len(tables) == 3
    # The readers' wildcards, each exactly their export's objects, are acknowledged; no other.
    readers = {
        rule
        for role in ("Analyst", "Merchandiser", "Scientist")
        for construct in [app.node.find_child("Tables").node.find_child(role)]
        for entry in construct.node.metadata
        if entry.type == cdk.Validations.ACKNOWLEDGED_RULES_METADATA_KEY
        for rule in entry.data
    }
    assert readers == {
        "AwsSolutions::AwsSolutions-IAM5[Resource::<InteractionsBucketFF19969C.Arn>/Tables/Interactions/*]",
        "AwsSolutions::AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:s3:::team-data-lake/personalize/items/*]",
        "AwsSolutions::AwsSolutions-IAM5[Resource::<NightlyBucketC63AB2E3.Arn>/Tables/Nightly/*]",
    }
    assert all(len(reason) >= 40 for _, reason in acknowledgments(app))


def test_cfn_lint_finds_nothing(tmp_path: Path) -> None:
    app = new_app(tmp_path / "cdk.out")
    build_tables(app)
    template = Path(app.synth().directory) / "Tables.template.json"
    result = subprocess.run(
        [
            _cfn_lint(),
            "--format",
            "parseable",
            "--ignore-checks",
            *CFN_LINT_IGNORED,
            "--",
            str(template),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def test_every_statement_matches_the_iam_reference(tables: Template) -> None:
    report = check_template(tables)

    assert not report.findings, "\n".join(str(finding) for finding in report.findings)
    glue_statements = [
        s
        for r in tables["Resources"].values()
        if r["Type"] == "AWS::IAM::Policy"
        for s in r["Properties"]["PolicyDocument"]["Statement"]
        if "glue:GetTable" in as_list(s["Action"])
    ]
    assert len(glue_statements) == 3
