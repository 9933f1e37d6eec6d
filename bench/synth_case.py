"""Synthesize one benchmark case in a fresh process, as `cdk synth` would, and time its phases.

Usage: python bench/synth_case.py CASE --outdir DIR [CASE --outdir DIR ...]
Several cases share one process (one jsii runtime) only when their time is not measured.
CASE: bare | demo | LAYOUT-N, with N exports (or schedules):
  bare        the hand-written pattern (bare_pattern.py);
  demo        the demo app (app.py);
  own         N exports at their defaults (each with its own bucket and service role);
  shared      one bucket, a distinct output_prefix per export (a service role per export, the
              default);
  lean        one bucket and one service role for all exports, and stack_outputs=False;
  longwait    as shared, every export with timeout=Duration.hours(6) (a WaitCondition waits);
  nowait      as shared, every export with wait_for_completion=False;
  schedshared N DatasetExportSchedules into one bucket, a prefix each;
  schedown    N DatasetExportSchedules at their defaults (own bucket and role each);
  table       as shared, every export with a Glue table (table=);
  schedtable  as schedshared, every schedule with a Glue table (table=).
Layout names hold no '-': build() splits the case on it.
Each case imports only what it uses. Prints one JSON line per case: seconds spent importing aws_cdk
(which starts jsii's Node process), building the construct tree, and synthesizing.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

IMPORT_START = time.perf_counter()

import aws_cdk as cdk  # noqa: E402

IMPORTED = time.perf_counter()

REPO = Path(__file__).resolve().parent.parent
DATASET_ARN = "arn:aws:personalize:us-east-1:123456789012:dataset/bench/INTERACTIONS"
STACK_NAME = "BenchStack"
# What the CDK CLI adds to cdk.json's context: path and asset metadata in every template.
CLI_CONTEXT = {"aws:cdk:enable-path-metadata": True, "aws:cdk:enable-asset-metadata": True}
# The table= cases' dataset schema: Personalize's Interactions fields.
SCHEMA = {
    "type": "record",
    "name": "Interactions",
    "fields": [
        {"name": "USER_ID", "type": "string"},
        {"name": "ITEM_ID", "type": "string"},
        {"name": "TIMESTAMP", "type": "long"},
        {"name": "EVENT_TYPE", "type": ["null", "string"]},
        {"name": "EVENT_VALUE", "type": ["null", "float"]},
    ],
    "version": "1.0",
}


def new_app(outdir: str) -> cdk.App:
    context = json.loads((REPO / "cdk.json").read_text())["context"]
    return cdk.App(context={**context, **CLI_CONTEXT}, outdir=outdir)


def build(app: cdk.App, case: str) -> str:
    """Add the case's stack to the app; return the stack's name."""
    if case == "bare":
        from bare_pattern import BareExportStack

        BareExportStack(app, STACK_NAME, dataset_arn=DATASET_ARN)
        return STACK_NAME
    if case == "demo":
        sys.path.insert(0, str(REPO))
        from app import build as build_demo

        return build_demo(app).stack_name
    layout, _, count = case.partition("-")
    add_exports = LAYOUTS.get(layout)
    if add_exports is None or not count.isdigit():
        raise SystemExit(f"unknown case {case!r}")
    add_exports(cdk.Stack(app, STACK_NAME), int(count))
    return STACK_NAME


def add_own_bucket_exports(stack: cdk.Stack, count: int) -> None:
    from personalize_export import DatasetExportJob

    for index in range(count):
        DatasetExportJob(stack, f"Export{index}", dataset_arn=DATASET_ARN)


def add_shared_bucket_exports(stack: cdk.Stack, count: int) -> None:
    add_exports_into_one_bucket(stack, count, role=None, stack_outputs=True)


def add_long_wait_exports(stack: cdk.Stack, count: int) -> None:
    add_exports_into_one_bucket(
        stack, count, role=None, stack_outputs=True, timeout=cdk.Duration.hours(6)
    )


def add_no_wait_exports(stack: cdk.Stack, count: int) -> None:
    add_exports_into_one_bucket(
        stack, count, role=None, stack_outputs=True, wait_for_completion=False
    )


def add_table_exports(stack: cdk.Stack, count: int) -> None:
    add_exports_into_one_bucket(stack, count, role=None, stack_outputs=True, table=True)


def add_lean_exports(stack: cdk.Stack, count: int) -> None:
    from aws_cdk import aws_iam as iam

    personalize = iam.ServicePrincipal("personalize.amazonaws.com")
    role = iam.Role(stack, "SharedServiceRole", assumed_by=personalize)
    add_exports_into_one_bucket(stack, count, role=role, stack_outputs=False)


def add_exports_into_one_bucket(
    stack: cdk.Stack,
    count: int,
    *,
    role: cdk.aws_iam.IRole | None,
    stack_outputs: bool,
    timeout: cdk.Duration | None = None,
    wait_for_completion: bool = True,
    table: bool = False,
) -> None:
    from personalize_export import DatasetExportJob
    from personalize_export.table import TableOptions

    bucket = shared_bucket(stack)
    for index in range(count):
        DatasetExportJob(
            stack,
            f"Export{index}",
            dataset_arn=DATASET_ARN,
            bucket=bucket,
            output_prefix=f"exports/{index}/",
            role=role,
            stack_outputs=stack_outputs,
            timeout=timeout,
            wait_for_completion=wait_for_completion,
            table=TableOptions(schema=SCHEMA) if table else None,
        )


def add_shared_bucket_schedules(stack: cdk.Stack, count: int, *, table: bool = False) -> None:
    from aws_cdk import aws_scheduler as scheduler

    from personalize_export import DatasetExportSchedule
    from personalize_export.table import TableOptions

    bucket = shared_bucket(stack)
    for index in range(count):
        DatasetExportSchedule(
            stack,
            f"Schedule{index}",
            dataset_arn=DATASET_ARN,
            schedule=scheduler.ScheduleExpression.cron(hour="2", minute="0"),
            bucket=bucket,
            output_prefix=f"runs/{index}/",
            table=TableOptions(schema=SCHEMA) if table else None,
        )


def add_table_schedules(stack: cdk.Stack, count: int) -> None:
    add_shared_bucket_schedules(stack, count, table=True)


def add_own_bucket_schedules(stack: cdk.Stack, count: int) -> None:
    from aws_cdk import aws_scheduler as scheduler

    from personalize_export import DatasetExportSchedule

    for index in range(count):
        DatasetExportSchedule(
            stack,
            f"Schedule{index}",
            dataset_arn=DATASET_ARN,
            schedule=scheduler.ScheduleExpression.cron(hour="2", minute="0"),
        )


def shared_bucket(stack: cdk.Stack) -> cdk.aws_s3.Bucket:
    from aws_cdk import aws_s3 as s3

    return s3.Bucket(
        stack,
        "SharedBucket",
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        enforce_ssl=True,
        encryption=s3.BucketEncryption.S3_MANAGED,
        versioned=True,
        removal_policy=cdk.RemovalPolicy.RETAIN,
    )


LAYOUTS: dict[str, Callable[[cdk.Stack, int], None]] = {
    "own": add_own_bucket_exports,
    "shared": add_shared_bucket_exports,
    "lean": add_lean_exports,
    "longwait": add_long_wait_exports,
    "nowait": add_no_wait_exports,
    "schedshared": add_shared_bucket_schedules,
    "schedown": add_own_bucket_schedules,
    "table": add_table_exports,
    "schedtable": add_table_schedules,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("cases", nargs="+", metavar="CASE")
    parser.add_argument("--outdir", action="append", required=True, help="one per CASE")
    args = parser.parse_intermixed_args()
    if len(args.outdir) != len(args.cases):
        raise SystemExit(f"{len(args.cases)} cases need as many --outdir, not {len(args.outdir)}")
    for case, outdir in zip(args.cases, args.outdir, strict=True):
        print(json.dumps(synth_case(case, outdir)), flush=True)


def synth_case(case: str, outdir: str) -> dict[str, str | float]:
    """Build and synthesize one case; the import phase is the process's one import of aws_cdk
    (the same for every case of a process), the build phase counts from this case's start."""
    started = time.perf_counter()
    app = new_app(outdir)
    stack_name = build(app, case)
    built = time.perf_counter()
    app.synth()
    done = time.perf_counter()
    return {
        "stack": stack_name,
        "import_s": IMPORTED - IMPORT_START,
        "build_s": built - started,
        "synth_s": done - built,
    }


if __name__ == "__main__":
    main()
