"""Reuse in other apps: many exports per stack, resources brought from elsewhere, results used."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_personalize as personalize
from aws_cdk import aws_s3 as s3
from conftest import DeploymentFactory, new_app, template_of
from personalize_standin import PersonalizeStandIn

from personalize_export import DatasetExportJob
from personalize_export.dataset_export_job import (
    BUCKET_POLICY_NOT_ADDED,
    KEY_POLICY_NOT_ADDED,
    ROLE_POLICY_NOT_ADDED,
)
from personalize_export.runtime.export_job.contract import RESOURCE_TYPE, Prop

DATASET = "arn:aws:personalize:us-east-1:123456789012:dataset/shop/INTERACTIONS"
ROLE_ARN = "arn:aws:iam::123456789012:role/existing-personalize-export"
KEY_ARN = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
ENV = cdk.Environment(account="123456789012", region="us-east-1")
# cdk.json's recommended flags make cross-stack references weak: Fn::GetStackOutput, no exports.
CROSS_STACK_REFERENCE = "Fn::GetStackOutput"


def kinds(template: dict[str, Any]) -> Counter[str]:
    return Counter(res["Type"] for res in template["Resources"].values())


def of_type(template: dict[str, Any], kind: str) -> dict[str, Any]:
    return {key: res for key, res in template["Resources"].items() if res["Type"] == kind}


def exports_into_shared_bucket(count: int) -> dict[str, Any]:
    app = new_app()
    stack = cdk.Stack(app, "Exports")
    bucket = s3.Bucket(stack, "Shared")
    for index in range(count):
        DatasetExportJob(
            stack,
            f"Export{index}",
            dataset_arn=DATASET,
            bucket=bucket,
            output_prefix=f"exports/{index}",
        )
    return template_of(stack)


def warnings_of(stack: cdk.Stack) -> list[str]:
    return [
        str(entry.entry.data)
        for entry in cdk.assertions.Annotations.from_stack(stack).find_warning(
            "*", cdk.assertions.Match.any_value()
        )
    ]


@pytest.mark.parametrize("count", [1, 5, 25])
def test_functions_and_state_machines_do_not_grow_with_exports(count: int) -> None:
    template = exports_into_shared_bucket(count)
    found = kinds(template)
    assert found[RESOURCE_TYPE] == count
    # onEvent, isComplete, the framework's three, the poller's signal; the waiter and the poller.
    assert found["AWS::Lambda::Function"] == 6
    assert found["AWS::StepFunctions::StateMachine"] == 2


def test_an_extra_export_into_a_shared_bucket_adds_only_its_custom_resource() -> None:
    five, six = kinds(exports_into_shared_bucket(5)), kinds(exports_into_shared_bucket(6))
    assert six - five == Counter({RESOURCE_TYPE: 1})
    assert five["AWS::IAM::Role"] == six["AWS::IAM::Role"]


def test_exports_into_one_bucket_share_one_service_role_scoped_to_their_prefixes() -> None:
    template = exports_into_shared_bucket(3)
    roles = {
        json.dumps(r["Properties"][Prop.ROLE_ARN])
        for r in of_type(template, RESOURCE_TYPE).values()
    }
    assert len(roles) == 1
    (role_id,) = [json.loads(role)["Fn::GetAtt"][0] for role in roles]
    policy = next(
        res
        for res in of_type(template, "AWS::IAM::Policy").values()
        if res["Properties"]["Roles"] == [{"Ref": role_id}]
    )
    text = json.dumps(policy["Properties"]["PolicyDocument"])
    assert all(f"/exports/{index}/*" in text for index in range(3))
    assert "/exports/*" not in text


def test_an_imported_bucket_is_written_to_and_its_policy_left_to_the_user(
    stack: cdk.Stack,
) -> None:
    bucket = s3.Bucket.from_bucket_name(stack, "Existing", "team-exports")
    job = DatasetExportJob(stack, "Export", dataset_arn=DATASET, bucket=bucket, output_prefix="x")
    template = template_of(stack)

    assert job.destination == "s3://team-exports/x/"
    assert not of_type(template, "AWS::S3::BucketPolicy")
    assert any(BUCKET_POLICY_NOT_ADDED in warning for warning in warnings_of(stack))
    role_policy = json.dumps(of_type(template, "AWS::IAM::Policy"))
    assert ":s3:::team-exports/x/*" in role_policy


def test_a_bucket_from_another_stack_gets_the_policy_there(app: cdk.App) -> None:
    storage = cdk.Stack(app, "Storage", env=ENV)
    bucket = s3.Bucket(storage, "Exports")
    exports = cdk.Stack(app, "Exports", env=ENV)
    DatasetExportJob(
        exports,
        "Export",
        dataset_arn=DATASET,
        bucket=bucket,
        output_prefix="x",
        ingestion_mode="ALL",
    )

    storage_policy = json.dumps(of_type(template_of(storage), "AWS::S3::BucketPolicy"))
    assert "personalize.amazonaws.com" in storage_policy and "/x/*" in storage_policy
    (resource,) = of_type(template_of(exports), RESOURCE_TYPE).values()
    assert CROSS_STACK_REFERENCE in json.dumps(resource["Properties"][Prop.OUTPUT_PATH])
    assert not warnings_of(exports)


def test_an_imported_mutable_role_gets_the_export_policy_attached(stack: cdk.Stack) -> None:
    role = iam.Role.from_role_arn(stack, "Role", ROLE_ARN)
    job = DatasetExportJob(stack, "Export", dataset_arn=DATASET, role=role)
    template = template_of(stack)

    assert job.role is role
    attached = [
        res
        for res in of_type(template, "AWS::IAM::Policy").values()
        if res["Properties"]["Roles"] == ["existing-personalize-export"]
    ]
    assert attached and "s3:PutObject" in json.dumps(attached)
    assert not [
        r
        for r in of_type(template, "AWS::IAM::Role").values()
        if "personalize.amazonaws.com" in json.dumps(r["Properties"]["AssumeRolePolicyDocument"])
    ]
    (resource,) = of_type(template, RESOURCE_TYPE).values()
    assert resource["Properties"][Prop.ROLE_ARN] == ROLE_ARN


def test_an_immutable_role_is_only_passed_never_changed(stack: cdk.Stack) -> None:
    role = iam.Role.from_role_arn(stack, "Role", ROLE_ARN, mutable=False)
    DatasetExportJob(stack, "Export", dataset_arn=DATASET, role=role)
    template = template_of(stack)

    policies = of_type(template, "AWS::IAM::Policy").values()
    assert not [p for p in policies if p["Properties"]["Roles"] == ["existing-personalize-export"]]
    pass_role = [
        s
        for p in policies
        for s in p["Properties"]["PolicyDocument"]["Statement"]
        if s["Action"] == "iam:PassRole"
    ]
    assert [s["Resource"] for s in pass_role] == [ROLE_ARN]
    (warning,) = [w for w in warnings_of(stack) if ROLE_POLICY_NOT_ADDED in w]
    assert "s3:PutObject" in warning and ROLE_ARN in warning


def test_a_mutable_role_raises_no_role_warning(stack: cdk.Stack) -> None:
    DatasetExportJob(
        stack, "Export", dataset_arn=DATASET, role=iam.Role.from_role_arn(stack, "Role", ROLE_ARN)
    )
    assert not [w for w in warnings_of(stack) if ROLE_POLICY_NOT_ADDED in w]


def test_grant_read_returns_every_grant_it_made(stack: cdk.Stack) -> None:
    key = kms.Key(stack, "Key")
    job = DatasetExportJob(stack, "Export", dataset_arn=DATASET, encryption_key=key)
    reader = iam.Role(stack, "Reader", assumed_by=iam.AccountRootPrincipal())
    grant = job.grant_read(reader)
    assert grant.success
    statements = [
        cdk.Stack.of(stack).resolve(s.to_statement_json()) for s in grant.principal_statements
    ]
    actions = {
        a
        for s in statements
        for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
    }
    assert {"s3:GetObject", "s3:ListBucket", "kms:Decrypt"} <= actions


def test_an_imported_key_reaches_the_job_and_its_policy_is_left_to_the_user(
    stack: cdk.Stack,
) -> None:
    key = kms.Key.from_key_arn(stack, "Key", KEY_ARN)
    DatasetExportJob(stack, "Export", dataset_arn=DATASET, encryption_key=key)
    template = template_of(stack)

    (resource,) = of_type(template, RESOURCE_TYPE).values()
    assert resource["Properties"][Prop.KMS_KEY_ARN] == KEY_ARN
    bucket = next(
        iter(r for k, r in of_type(template, "AWS::S3::Bucket").items() if k.startswith("Export"))
    )
    (rule,) = bucket["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"]["KMSMasterKeyID"] == KEY_ARN
    assert any(KEY_POLICY_NOT_ADDED in warning for warning in warnings_of(stack))
    assert "kms:GenerateDataKey" in json.dumps(of_type(template, "AWS::IAM::Policy"))


def test_a_dataset_from_another_stack_is_imported(app: cdk.App) -> None:
    data = cdk.Stack(app, "Data", env=ENV)
    dataset = personalize.CfnDataset(
        data,
        "Interactions",
        name="interactions",
        dataset_group_arn="arn:aws:personalize:us-east-1:123456789012:dataset-group/shop",
        dataset_type="Interactions",
        schema_arn="arn:aws:personalize:us-east-1:123456789012:schema/interactions",
    )
    exports = cdk.Stack(app, "Exports", env=ENV)
    DatasetExportJob(exports, "Export", dataset_arn=dataset.attr_dataset_arn)
    (resource,) = of_type(template_of(exports), RESOURCE_TYPE).values()
    assert resource["Properties"][Prop.DATASET_ARN][CROSS_STACK_REFERENCE]["StackName"] == "Data"


def test_results_feed_constructs_in_another_stack(app: cdk.App) -> None:
    exports = cdk.Stack(app, "Exports", env=ENV)
    job = DatasetExportJob(exports, "Export", dataset_arn=DATASET)
    consumers = cdk.Stack(app, "Consumers", env=ENV)
    reader = iam.Role(consumers, "Reader", assumed_by=iam.AccountRootPrincipal())
    job.grant_read(reader)
    cdk.CfnOutput(consumers, "UpstreamJob", value=job.job_arn)

    consumer = template_of(consumers)
    assert CROSS_STACK_REFERENCE in json.dumps(consumer["Outputs"]["UpstreamJob"])
    assert "s3:GetObject" in json.dumps(of_type(consumer, "AWS::IAM::Policy"))
    reference = consumer["Outputs"]["UpstreamJob"]["Value"][CROSS_STACK_REFERENCE]
    published = template_of(exports)["Outputs"][reference["OutputName"]]
    assert published["Value"]["Fn::GetAtt"][1] == "JobArn"


def test_imported_bucket_and_role_deploy_with_the_given_names(
    app: cdk.App, standin: PersonalizeStandIn, deployment_of: DeploymentFactory
) -> None:
    stack = cdk.Stack(app, "Imported")
    DatasetExportJob(
        stack,
        "Export",
        dataset_arn=DATASET,
        bucket=s3.Bucket.from_bucket_name(stack, "Existing", "team-exports"),
        role=iam.Role.from_role_arn(stack, "Role", ROLE_ARN, mutable=False),
        output_prefix="nightly",
    )
    deployment = deployment_of(app, "Imported")
    with deployment.handler() as handler:
        outputs = deployment.deploy(handler)

    (job,) = standin.jobs.values()
    assert job.role_arn == ROLE_ARN
    assert job.job_output == {"s3DataDestination": {"path": "s3://team-exports/nightly/"}}
    assert "s3://team-exports/nightly/" in outputs.values()


def build_exports(count: int, *, shared_bucket: bool) -> dict[str, Any]:
    app = new_app()
    stack = cdk.Stack(app, "Capacity")
    bucket = s3.Bucket(stack, "Shared") if shared_bucket else None
    for index in range(count):
        DatasetExportJob(
            stack,
            f"E{index}",
            dataset_arn=f"{DATASET}{index}",
            bucket=bucket,
            output_prefix=f"exports/{index}" if bucket else None,
        )
    return template_of(stack)


@pytest.mark.parametrize(
    ("count", "shared_bucket", "limit"),
    [(95, False, "TooManyResourcesInStack"), (101, True, "outputs, maximum is 200")],
)
def test_documented_capacity_is_where_cloudformation_limits_bite(
    count: int, shared_bucket: bool, limit: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """README 'How many exports fit in one stack': 94 with own buckets, 100 into one bucket."""
    fitting = build_exports(count - 1, shared_bucket=shared_bucket)
    assert len(fitting["Resources"]) <= 500
    assert len(fitting["Outputs"]) <= 200
    with pytest.raises(RuntimeError) as raised:
        build_exports(count, shared_bucket=shared_bucket)
    assert limit in str(raised.value) + capsys.readouterr().err
