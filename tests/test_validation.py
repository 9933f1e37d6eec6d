"""Bad input fails at synth, in the constructor, with every problem named in one error."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from conftest import template_of

from personalize_export import DatasetExportJob
from personalize_export.runtime.export_job.contract import Prop

DATASET = "arn:aws:personalize:us-east-1:123456789012:dataset/shop/INTERACTIONS"
KEY_ARN = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
Options = Callable[[cdk.Stack], dict[str, Any]]


@dataclass
class Case:
    """One rule: the options that break it, and what the message must name."""

    id: str
    options: Options
    setting: str
    value: str
    rule: str
    extra: list[str] = field(default_factory=list)


def given(**options: Any) -> Options:
    return lambda _stack: options


def a_param(stack: cdk.Stack, name: str, kind: str = "String") -> cdk.CfnParameter:
    return cdk.CfnParameter(stack, name, type=kind)


LONG_ARN = DATASET + "-" + "X" * 250
TOO_MANY_TAGS = {f"key{index}": "value" for index in range(201)}

CASES = [
    Case(
        "run-id-with-a-fixed-job-name",
        given(job_name="nightly", run_id="2"),
        "run_id",
        "'2'",
        "export job names are unique and jobs can't be deleted",
        ["job_name 'nightly'"],
    ),
    Case("job-name-empty", given(job_name=""), "job_name", "''", "1 to 63 characters"),
    Case(
        "job-name-too-long",
        given(job_name="a" * 64),
        "job_name",
        "'" + "a" * 60,
        "1 to 63 characters",
        ["64 characters"],
    ),
    Case(
        "job-name-bad-first-character",
        given(job_name="-nightly"),
        "job_name",
        "'-nightly'",
        "starts with a letter or digit",
    ),
    Case(
        "job-name-illegal-characters",
        given(job_name="nightly.export now"),
        "job_name",
        "'nightly.export now'",
        "only letters, digits, '-' and '_'",
        ["' ', '.'"],
    ),
    Case(
        "dataset-arn-not-an-arn",
        given(dataset_arn="shop/INTERACTIONS"),
        "dataset_arn",
        "'shop/INTERACTIONS'",
        "is not an ARN",
        ["a Personalize dataset ARN"],
    ),
    Case(
        "dataset-arn-another-service",
        given(dataset_arn="arn:aws:s3:::shop/interactions.csv"),
        "dataset_arn",
        "'arn:aws:s3:::shop/interactions.csv'",
        "is not a Personalize dataset ARN",
        ["service 's3'"],
    ),
    Case(
        "dataset-arn-a-dataset-group",
        given(dataset_arn="arn:aws:personalize:us-east-1:123456789012:dataset-group/shop"),
        "dataset_arn",
        "dataset-group/shop",
        "is not a Personalize dataset ARN",
        ["resource 'dataset-group/shop'"],
    ),
    Case(
        "dataset-arn-too-long",
        given(dataset_arn=LONG_ARN),
        "dataset_arn",
        repr(LONG_ARN[:40])[:-1],
        "at most 256",
        [f"has {len(LONG_ARN)} characters"],
    ),
    Case(
        "ingestion-mode-unknown",
        given(ingestion_mode="FULL"),
        "ingestion_mode",
        "'FULL'",
        "one of BULK, PUT, ALL",
    ),
    Case(
        "ingestion-mode-lower-case",
        given(ingestion_mode="all"),
        "ingestion_mode",
        "'all'",
        "one of BULK, PUT, ALL",
        ["did you mean 'ALL'?"],
    ),
    Case(
        "output-prefix-a-url",
        given(output_prefix="s3://shop-exports/interactions"),
        "output_prefix",
        "'s3://shop-exports/interactions'",
        "is a URL; it must be a key prefix inside the bucket",
    ),
    Case(
        "output-prefix-leading-slash",
        given(output_prefix="/interactions"),
        "output_prefix",
        "'/interactions'",
        "a key prefix has no leading '/'",
    ),
    Case(
        "output-prefix-line-break",
        given(output_prefix="interactions\nnightly"),
        "output_prefix",
        "'interactions\\nnightly'",
        "control character",
    ),
    Case(
        "output-path-too-long-with-a-new-bucket",
        given(output_prefix="p" * 200),
        "output_prefix",
        "'" + "p" * 40,
        "must have at most 256",
        ["output path of 270 characters", "a bucket name of up to 63 characters"],
    ),
    Case(
        "output-path-too-long-with-a-named-bucket",
        lambda stack: {
            "bucket": s3.Bucket.from_bucket_name(stack, "Given", "shop-exports"),
            "output_prefix": "p" * 238,
        },
        "output_prefix",
        "'" + "p" * 40,
        "must have at most 256",
        ["output path of 257 characters", "bucket 'shop-exports'"],
    ),
    Case(
        "encryption-key-an-alias",
        lambda stack: {"encryption_key": kms.Alias.from_alias_name(stack, "A", "alias/exports")},
        "encryption_key",
        "'alias/exports'",
        "never an alias",
    ),
    Case(
        "encryption-key-an-alias-arn",
        lambda stack: {
            "encryption_key": kms.Key.from_key_arn(
                stack, "K", "arn:aws:kms:us-east-1:123456789012:alias/exports"
            )
        },
        "encryption_key",
        "'arn:aws:kms:us-east-1:123456789012:alias/exports'",
        "never an alias",
    ),
    Case(
        "encryption-key-not-a-key-arn",
        lambda stack: {
            "encryption_key": kms.Key.from_key_arn(stack, "K", "arn:aws:kms:us-east-1:42:key/k")
        },
        "encryption_key",
        "'arn:aws:kms:us-east-1:42:key/k'",
        "is not a KMS key ARN",
    ),
    Case(
        "role-not-a-role-arn",
        lambda stack: {
            "role": iam.Role.from_role_arn(stack, "R", "arn:aws:iam::123456789012:user/bob")
        },
        "role",
        "'arn:aws:iam::123456789012:user/bob'",
        "is not an IAM role ARN",
    ),
    Case(
        "tags-too-many",
        given(tags=TOO_MANY_TAGS),
        "tags",
        "201 entries",
        "at most 200",
    ),
    Case("tag-key-empty", given(tags={"": "recs"}), "tags key", "''", "1 to 128"),
    Case(
        "tag-key-too-long",
        given(tags={"k" * 129: "recs"}),
        "tags key",
        "'" + "k" * 40,
        "1 to 128",
        ["129 characters"],
    ),
    Case(
        "tag-value-too-long",
        given(tags={"team": "v" * 257}),
        "tags value",
        "'" + "v" * 40,
        "at most 256",
        ["(key 'team')", "257 characters"],
    ),
    Case(
        "tag-key-illegal-characters",
        given(tags={"team#1": "recs"}),
        "tags key",
        "'team#1'",
        "letters, digits, spaces and _ . : / = + - @",
        ["'#'"],
    ),
    Case(
        "tag-value-illegal-characters",
        given(tags={"team": "recs<ops>"}),
        "tags value",
        "'recs<ops>'",
        "letters, digits, spaces and _ . : / = + - @",
        ["'<', '>'"],
    ),
    Case(
        "tag-key-aws-prefix",
        given(tags={"AWS:owner": "recs"}),
        "tags key",
        "'AWS:owner'",
        "reserved for AWS",
    ),
    Case(
        "timeout-zero",
        given(timeout=cdk.Duration.seconds(0)),
        "timeout",
        "0 s",
        "is not positive",
    ),
    Case(
        "timeout-shorter-than-the-polling-interval",
        given(timeout=cdk.Duration.seconds(10)),
        "timeout",
        "10 seconds",
        "shorter than the polling interval (30 s)",
    ),
    Case(
        "timeout-longer-than-cloudformation-allows",
        given(timeout=cdk.Duration.hours(13)),
        "timeout",
        "13 hours",
        "longer than CloudFormation allows",
        ["43200 s (12 hours)", "wait_for_completion=False"],
    ),
    Case(
        "timeout-without-waiting",
        given(timeout=cdk.Duration.hours(1), wait_for_completion=False),
        "timeout",
        "wait_for_completion=False",
        "a deploy that doesn't wait has no timeout",
        ["completion event"],
    ),
    Case(
        "timeout-token-not-in-seconds",
        lambda stack: {
            "timeout": cdk.Duration.minutes(a_param(stack, "Minutes", "Number").value_as_number)
        },
        "timeout",
        "comes from a token",
        "must be Duration.seconds(token)",
    ),
]


def misconfiguration(stack: cdk.Stack, construct_id: str = "Export", **options: Any) -> str:
    options.setdefault("dataset_arn", DATASET)
    with pytest.raises(ValueError) as raised:
        DatasetExportJob(stack, construct_id, **options)
    return str(raised.value)


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_each_rule_fails_naming_path_setting_value_and_rule(stack: cdk.Stack, case: Case) -> None:
    message = misconfiguration(stack, **case.options(stack))

    assert message.startswith("DatasetExportJob at 'TestStack/Export' is misconfigured:\n")
    (problem,) = [line for line in message.splitlines()[1:] if case.setting in line]
    assert problem.startswith(f"  - {case.setting} ")
    for fragment in (case.value, case.rule, *case.extra):
        assert fragment in problem


def test_every_problem_comes_in_one_raise(stack: cdk.Stack) -> None:
    message = misconfiguration(
        stack,
        dataset_arn="shop",
        job_name="-x",
        ingestion_mode="FULL",
        output_prefix="/out",
        tags={"aws:team": "recs"},
        timeout=cdk.Duration.seconds(0),
    )
    problems = message.splitlines()[1:]
    assert [line.split()[1] for line in problems] == [
        "dataset_arn",
        "ingestion_mode",
        "job_name",
        "output_prefix",
        "tags",
        "timeout",
    ]


def test_a_failed_export_synthesizes_nothing_and_claims_nothing(stack: cdk.Stack) -> None:
    shared = s3.Bucket.from_bucket_name(stack, "Shared", "shop-exports")
    misconfiguration(stack, bucket=shared, output_prefix="out", ingestion_mode="FULL")

    assert not stack.node.find_child("Export").node.children
    assert not [c for c in stack.node.find_all() if isinstance(c, cdk.CfnResource)]
    DatasetExportJob(stack, "Retry", dataset_arn=DATASET, bucket=shared, output_prefix="out")
    assert template_of(stack)["Resources"]


def test_tokens_are_skipped_and_reach_the_resource(stack: cdk.Stack) -> None:
    def text(name: str) -> str:
        return a_param(stack, name).value_as_string

    seconds = a_param(stack, "Seconds", "Number").value_as_number
    DatasetExportJob(
        stack,
        "Export",
        dataset_arn=text("Dataset"),
        ingestion_mode=text("Mode"),
        job_name=text("JobName"),
        output_prefix=text("Prefix"),
        bucket=s3.Bucket.from_bucket_name(stack, "Given", text("BucketName")),
        role=iam.Role.from_role_arn(stack, "Role", text("RoleArn")),
        encryption_key=kms.Key.from_key_arn(stack, "Key", text("KeyArn")),
        tags={text("TagKey"): text("TagValue")},
        timeout=cdk.Duration.seconds(seconds),
    )

    (resource,) = [
        res["Properties"]
        for res in template_of(stack)["Resources"].values()
        if res["Type"].startswith("Custom::")
    ]
    assert resource[Prop.DATASET_ARN] == {"Ref": "Dataset"}
    assert resource[Prop.INGESTION_MODE] == {"Ref": "Mode"}
    assert resource[Prop.JOB_NAME] == {"Ref": "JobName"}
    assert resource[Prop.KMS_KEY_ARN] == {"Ref": "KeyArn"}
    assert resource[Prop.TIMEOUT_SECONDS] == {"Ref": "Seconds"}
    assert resource["ServiceTimeout"] == "3600"


def test_two_exports_must_not_share_a_bucket_and_prefix_even_across_stacks(app: cdk.App) -> None:
    first, second = cdk.Stack(app, "First"), cdk.Stack(app, "Second")
    DatasetExportJob(
        first,
        "Export",
        dataset_arn=DATASET,
        bucket=s3.Bucket.from_bucket_name(first, "Shared", "shop-exports"),
        output_prefix="interactions",
    )
    message = misconfiguration(
        second,
        bucket=s3.Bucket.from_bucket_name(second, "Shared", "shop-exports"),
        output_prefix="interactions/",
    )
    assert "DatasetExportJob at 'Second/Export'" in message
    assert "output_prefix 'interactions/' in bucket shop-exports" in message
    assert "already the destination of First/Export" in message
    assert "same bucket and prefix" in message


def test_one_bucket_object_shared_by_exports_in_one_stack(stack: cdk.Stack) -> None:
    shared = s3.Bucket(stack, "Shared")
    DatasetExportJob(stack, "A", dataset_arn=DATASET, bucket=shared, output_prefix="a")
    DatasetExportJob(stack, "B", dataset_arn=DATASET, bucket=shared, output_prefix="b")

    message = misconfiguration(stack, "C", bucket=shared, output_prefix="a")
    assert "in bucket TestStack/Shared is already the destination of TestStack/A" in message


def test_nested_prefixes_in_one_bucket_overlap(stack: cdk.Stack) -> None:
    shared = s3.Bucket.from_bucket_name(stack, "Shared", "shop-exports")
    DatasetExportJob(stack, "A", dataset_arn=DATASET, bucket=shared, output_prefix="exports")

    message = misconfiguration(stack, "B", bucket=shared, output_prefix="exports/nightly")
    assert "output_prefix 'exports/nightly/' in bucket shop-exports overlaps 'exports/'" in message
    assert "the destination of TestStack/A" in message


def test_a_job_name_is_used_once_per_account_and_region(app: cdk.App) -> None:
    env = cdk.Environment(account="123456789012", region="us-east-1")
    elsewhere = cdk.Environment(account="123456789012", region="eu-west-1")
    first = cdk.Stack(app, "First", env=env)
    DatasetExportJob(first, "Export", dataset_arn=DATASET, job_name="nightly")
    other_region = cdk.Stack(app, "OtherRegion", env=elsewhere)
    eu_dataset = DATASET.replace("us-east-1", "eu-west-1")
    DatasetExportJob(other_region, "Export", dataset_arn=eu_dataset, job_name="nightly")

    message = misconfiguration(cdk.Stack(app, "Second", env=env), job_name="nightly")
    assert "job_name 'nightly' is already the job name of First/Export" in message
    assert "unique per account and region" in message


def test_dataset_and_key_must_be_in_the_stacks_region(app: cdk.App) -> None:
    stack = cdk.Stack(app, "Eu", env=cdk.Environment(region="eu-west-1"))
    message = misconfiguration(stack, encryption_key=kms.Key.from_key_arn(stack, "Key", KEY_ARN))
    problems = message.splitlines()[1:]
    assert [line.split()[1] for line in problems] == ["dataset_arn", "encryption_key"]
    assert all("region 'us-east-1' but the stack deploys to 'eu-west-1'" in p for p in problems)


def test_an_empty_prefix_exports_to_the_bucket_root(stack: cdk.Stack) -> None:
    shared = s3.Bucket.from_bucket_name(stack, "Shared", "shop-exports")
    job = DatasetExportJob(stack, "Export", dataset_arn=DATASET, bucket=shared, output_prefix="")
    assert job.output_prefix == ""
    assert stack.resolve(job.destination) == "s3://shop-exports/"
