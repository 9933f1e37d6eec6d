"""What DatasetExportJob synthesizes: bucket, service role, provider, custom resource, outputs."""

from __future__ import annotations

import json
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk.assertions import Match, Template
from conftest import template_of

from personalize_export import DatasetExportJob, IngestionMode
from personalize_export.provider import POLL_INTERVAL
from personalize_export.runtime.export_job.contract import RESOURCE_TYPE, Attr, Prop

DATASET = "arn:aws:personalize:us-east-1:123456789012:dataset/shop/INTERACTIONS"
PERSONALIZE = "personalize.amazonaws.com"


def resources(template: dict[str, Any], kind: str) -> dict[str, Any]:
    return {key: res for key, res in template["Resources"].items() if res["Type"] == kind}


def only(template: dict[str, Any], kind: str) -> dict[str, Any]:
    (resource,) = resources(template, kind).values()
    props: dict[str, Any] = resource
    return props


def only_key(template: dict[str, Any], kind: str, fragment: str) -> str:
    """The logical id of the one resource of this type whose id holds `fragment`."""
    (key,) = [key for key in resources(template, kind) if fragment in key]
    return key


def export_bucket(template: dict[str, Any]) -> dict[str, Any]:
    """The export's own bucket (the stack also holds the access log bucket)."""
    (bucket,) = [
        res
        for key, res in resources(template, "AWS::S3::Bucket").items()
        if key.startswith("ExportBucket")
    ]
    found: dict[str, Any] = bucket
    return found


def statements(template: dict[str, Any], kind: str = "AWS::IAM::Policy") -> list[dict[str, Any]]:
    return [
        statement
        for res in resources(template, kind).values()
        for statement in res["Properties"]["PolicyDocument"]["Statement"]
    ]


def handler_statements(template: dict[str, Any]) -> list[dict[str, Any]]:
    (policy,) = [
        res
        for key, res in resources(template, "AWS::IAM::Policy").items()
        if key.startswith("PersonalizeExportProviderHandlerRole")
    ]
    found: list[dict[str, Any]] = policy["Properties"]["PolicyDocument"]["Statement"]
    return found


def actions_of(statement: dict[str, Any]) -> list[str]:
    action = statement["Action"]
    return [action] if isinstance(action, str) else list(action)


def test_default_bucket_is_private_tls_only_encrypted_versioned_and_retained(
    stack: cdk.Stack,
) -> None:
    DatasetExportJob(stack, "Export", dataset_arn=DATASET)
    template = template_of(stack)

    bucket = export_bucket(template)
    assert bucket["DeletionPolicy"] == "Retain"
    assert bucket["UpdateReplacePolicy"] == "Retain"
    props = bucket["Properties"]
    assert props["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    (rule,) = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"] == {"SSEAlgorithm": "AES256"}
    deny_http = [s for s in statements(template, "AWS::S3::BucketPolicy") if s["Effect"] == "Deny"]
    assert deny_http and deny_http[0]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert not resources(template, "Custom::S3AutoDeleteObjects")


def test_bucket_policy_lets_personalize_write_only_with_confused_deputy_conditions(
    stack: cdk.Stack,
) -> None:
    DatasetExportJob(stack, "Export", dataset_arn=DATASET, output_prefix="exports/shop")
    template = template_of(stack)

    (grant,) = [
        s
        for s in statements(template, "AWS::S3::BucketPolicy")
        if s.get("Principal") == {"Service": PERSONALIZE}
    ]
    assert sorted(actions_of(grant)) == ["s3:ListBucket", "s3:PutObject"]
    assert grant["Condition"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
    source_arn = json.dumps(grant["Condition"]["ArnLike"]["aws:SourceArn"])
    assert ":personalize:" in source_arn and '":*"' in source_arn
    assert "exports/shop/*" in json.dumps(grant["Resource"])


def test_service_role_trusts_personalize_with_source_conditions_and_writes_its_prefix(
    stack: cdk.Stack,
) -> None:
    DatasetExportJob(stack, "Export", dataset_arn=DATASET, output_prefix="exports/shop/")
    template = template_of(stack)

    roles = resources(template, "AWS::IAM::Role")
    (service_role,) = [
        r
        for r in roles.values()
        if r["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"]
        == {"Service": PERSONALIZE}
    ]
    (trust,) = service_role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert set(trust["Condition"]) == {"StringEquals", "ArnLike"}
    assert "aws:SourceAccount" in trust["Condition"]["StringEquals"]
    assert "aws:SourceArn" in trust["Condition"]["ArnLike"]
    (write,) = [s for s in statements(template) if "s3:PutObject" in actions_of(s)]
    assert sorted(actions_of(write)) == ["s3:ListBucket", "s3:PutObject"]
    assert json.dumps(write["Resource"]).count("exports/shop/*") == 1


def test_custom_resource_carries_every_setting_as_the_handler_expects(stack: cdk.Stack) -> None:
    DatasetExportJob(
        stack,
        "Export",
        dataset_arn=DATASET,
        ingestion_mode=IngestionMode.BULK,
        job_name="nightly-export",
        output_prefix="out",
        tags={"team": "recs"},
        timeout=cdk.Duration.minutes(20),
    )
    DatasetExportJob(stack, "Rerun", dataset_arn=DATASET, run_id="2026-11-28")
    template = template_of(stack)

    exports = resources(template, RESOURCE_TYPE)
    props = next(r["Properties"] for key, r in exports.items() if key.startswith("Export"))
    rerun = next(r["Properties"] for key, r in exports.items() if key.startswith("Rerun"))
    assert rerun[Prop.RUN_ID] == "2026-11-28"
    assert Prop.RUN_ID not in props
    assert props[Prop.DATASET_ARN] == DATASET
    assert props[Prop.INGESTION_MODE] == "BULK"
    assert props[Prop.JOB_NAME] == "nightly-export"
    assert props[Prop.TAGS] == [{"tagKey": "team", "tagValue": "recs"}]
    assert props[Prop.TIMEOUT_SECONDS] == "1200"
    assert props["ServiceTimeout"] == "1500"
    assert json.dumps(props[Prop.OUTPUT_PATH]).endswith('"/out/"]]}')
    assert "Fn::GetAtt" in props[Prop.ROLE_ARN]
    assert Prop.KMS_KEY_ARN not in props
    assert {*props} - {"ServiceToken", "ServiceTimeout"} <= {
        value for name, value in vars(Prop).items() if name.isupper()
    }


def test_ingestion_mode_defaults_to_put_and_accepts_plain_strings(stack: cdk.Stack) -> None:
    DatasetExportJob(stack, "Default", dataset_arn=DATASET)
    DatasetExportJob(stack, "Plain", dataset_arn=DATASET, ingestion_mode="ALL")
    modes = {
        key.split("Resource")[0]: res["Properties"][Prop.INGESTION_MODE]
        for key, res in resources(template_of(stack), RESOURCE_TYPE).items()
    }
    assert sorted(modes.values()) == ["ALL", "PUT"]


def test_handler_may_create_and_describe_only_this_exports_jobs(stack: cdk.Stack) -> None:
    DatasetExportJob(stack, "Export", dataset_arn=DATASET)
    found = handler_statements(template_of(stack))
    by_action = {action: s for s in found for action in actions_of(s)}

    resources_by_action: dict[str, list[str]] = {}
    for statement in found:
        for action in actions_of(statement):
            resource = statement["Resource"]
            listed = resource if isinstance(resource, list) else [resource]
            resources_by_action.setdefault(action, []).extend(json.dumps(r) for r in listed)
    job_arns = ':dataset-export-job/TestStack-Export-*"}'
    (create,) = resources_by_action["personalize:CreateDatasetExportJob"]
    assert create.endswith(job_arns)
    (describe,) = resources_by_action["personalize:DescribeDatasetExportJob"]
    assert describe.endswith(job_arns)
    pass_role = by_action["iam:PassRole"]
    assert pass_role["Condition"] == {"StringEquals": {"iam:PassedToService": PERSONALIZE}}
    assert "personalize:TagResource" not in by_action
    start = by_action["states:StartExecution"]["Resource"]
    assert start == {
        "Ref": only_key(template_of(stack), "AWS::StepFunctions::StateMachine", "Poller")
    }
    assert set(by_action) == {
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "personalize:CreateDatasetExportJob",
        "personalize:DescribeDatasetExportJob",
        "iam:PassRole",
        "states:StartExecution",
    }


def test_tagging_is_allowed_only_when_tags_are_set(stack: cdk.Stack) -> None:
    DatasetExportJob(stack, "Export", dataset_arn=DATASET, job_name="tagged", tags={"a": "b"})
    by_action = {
        action: s for s in handler_statements(template_of(stack)) for action in actions_of(s)
    }
    # The Service Authorization Reference gives TagResource no resource type: only "*" works.
    assert by_action["personalize:TagResource"]["Resource"] == "*"


def test_one_provider_per_stack_shared_by_every_export(app: cdk.App) -> None:
    stack = cdk.Stack(app, "Many")
    other = cdk.Stack(app, "Other")
    for index in range(3):
        DatasetExportJob(stack, f"Export{index}", dataset_arn=DATASET)
    DatasetExportJob(other, "Export", dataset_arn=DATASET)

    template = template_of(stack)
    assert len(resources(template, RESOURCE_TYPE)) == 3
    # The framework's waiter and the export poller.
    assert len(resources(template, "AWS::StepFunctions::StateMachine")) == 2
    functions = resources(template, "AWS::Lambda::Function")
    assert len(functions) == 6  # onEvent, isComplete, the framework's three, the poller's signal
    tokens = {
        json.dumps(r["Properties"]["ServiceToken"])
        for r in resources(template, RESOURCE_TYPE).values()
    }
    assert len(tokens) == 1
    assert len(resources(template_of(other), "AWS::StepFunctions::StateMachine")) == 2


def test_handler_functions_use_the_latest_python_on_arm64(stack: cdk.Stack) -> None:
    DatasetExportJob(stack, "Export", dataset_arn=DATASET)
    python = [
        f["Properties"]
        for f in resources(template_of(stack), "AWS::Lambda::Function").values()
        if str(f["Properties"].get("Runtime", "")).startswith("python")
    ]
    assert len(python) == 3
    latest = max(
        (r for r in dir(cdk.aws_lambda.Runtime) if r.startswith("PYTHON_")),
        key=lambda name: tuple(int(part) for part in name.split("_")[1:]),
    )
    expected = getattr(cdk.aws_lambda.Runtime, latest).name
    assert {p["Runtime"] for p in python} == {expected}
    assert {tuple(p["Architectures"]) for p in python} == {("arm64",)}
    assert sorted(p["Handler"] for p in python) == [
        "export_job.handler.is_complete",
        "export_job.handler.on_event",
        "export_job.signal.send",
    ]


def test_service_timeout_matches_the_waiter(stack: cdk.Stack) -> None:
    DatasetExportJob(stack, "Export", dataset_arn=DATASET)
    template = template_of(stack)
    resource = only(template, RESOURCE_TYPE)["Properties"]
    waiter = only_key(template, "AWS::StepFunctions::StateMachine", "waiter")
    machine = json.dumps(template["Resources"][waiter])
    interval = POLL_INTERVAL.to_seconds()
    assert f'\\"IntervalSeconds\\":{interval}' in machine
    assert f'\\"MaxAttempts\\":{3600 // interval}' in machine
    assert int(resource["ServiceTimeout"]) == 3600
    assert int(resource[Prop.TIMEOUT_SECONDS]) < int(resource["ServiceTimeout"])


def test_outputs_read_the_resource_attributes(stack: cdk.Stack) -> None:
    DatasetExportJob(stack, "Export", dataset_arn=DATASET)
    outputs = template_of(stack)["Outputs"]
    attributes = sorted(o["Value"]["Fn::GetAtt"][1] for o in outputs.values())
    assert attributes == sorted([Attr.JOB_ARN, Attr.OUTPUT_PATH])


def test_stack_outputs_can_be_turned_off(stack: cdk.Stack) -> None:
    DatasetExportJob(stack, "Export", dataset_arn=DATASET, stack_outputs=False)
    assert "Outputs" not in template_of(stack)


def test_attributes_are_tokens_other_constructs_can_use(stack: cdk.Stack) -> None:
    job = DatasetExportJob(stack, "Export", dataset_arn=DATASET)
    for value in (job.job_arn, job.job_name, job.output_path):
        assert cdk.Token.is_unresolved(value)
    resolved = {
        stack.resolve(job.job_arn)["Fn::GetAtt"][1],
        stack.resolve(job.job_name)["Fn::GetAtt"][1],
        stack.resolve(job.output_path)["Fn::GetAtt"][1],
    }
    assert resolved == {Attr.JOB_ARN, Attr.JOB_NAME, Attr.OUTPUT_PATH}
    assert isinstance(job.bucket, s3.Bucket)
    assert isinstance(job.role, iam.Role)


def test_kms_key_encrypts_the_bucket_and_reaches_the_job(stack: cdk.Stack) -> None:
    key = kms.Key(stack, "Key")
    DatasetExportJob(stack, "Export", dataset_arn=DATASET, encryption_key=key)
    template = template_of(stack)

    bucket = export_bucket(template)["Properties"]
    (rule,) = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    key_id = next(iter(resources(template, "AWS::KMS::Key")))
    assert rule["ServerSideEncryptionByDefault"]["KMSMasterKeyID"] == {
        "Fn::GetAtt": [key_id, "Arn"]
    }
    resource = only(template, RESOURCE_TYPE)["Properties"]
    assert resource[Prop.KMS_KEY_ARN] == {"Fn::GetAtt": [key_id, "Arn"]}
    key_policy = only(template, "AWS::KMS::Key")["Properties"]["KeyPolicy"]["Statement"]
    (for_service,) = [s for s in key_policy if s.get("Principal") == {"Service": PERSONALIZE}]
    assert {"kms:CreateGrant", "kms:Decrypt", "kms:GenerateDataKey"} <= set(actions_of(for_service))
    role_kms = [s for s in statements(template) if any(a.startswith("kms:") for a in actions_of(s))]
    assert {"kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey", "kms:ListGrants"} <= {
        a for s in role_kms for a in actions_of(s)
    }


def test_grant_read_gives_exactly_the_exported_objects(stack: cdk.Stack) -> None:
    job = DatasetExportJob(stack, "Export", dataset_arn=DATASET, output_prefix="exports")
    reader = iam.Role(stack, "Reader", assumed_by=iam.AccountRootPrincipal())
    job.grant_read(reader)
    template = Template.from_stack(stack)
    template.has_resource_properties(
        "AWS::IAM::Policy",
        {
            "Roles": [{"Ref": Match.string_like_regexp("Reader")}],
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {"Action": "s3:GetObject", "Resource": Match.any_value()}
                        ),
                        Match.object_like(
                            {
                                "Action": "s3:ListBucket",
                                "Condition": {"StringLike": {"s3:prefix": ["exports/*"]}},
                            }
                        ),
                    ]
                )
            },
        },
    )
    reader_policy = next(
        res
        for key, res in template.to_json()["Resources"].items()
        if key.startswith("ReaderDefaultPolicy")
    )
    read = reader_policy["Properties"]["PolicyDocument"]["Statement"]
    assert {a for s in read for a in actions_of(s)} == {"s3:GetObject", "s3:ListBucket"}
    assert "exports/*" in json.dumps(read[0]["Resource"])


@pytest.mark.parametrize("prefix", [None, "given"])
def test_output_prefix_defaults_to_the_construct_path(stack: cdk.Stack, prefix: str | None) -> None:
    job = DatasetExportJob(stack, "Export", dataset_arn=DATASET, output_prefix=prefix)
    assert job.output_prefix == ("TestStack/Export/" if prefix is None else "given/")


def test_the_poller_may_put_events_only_on_the_buses_its_exports_name(stack: cdk.Stack) -> None:
    """README: "The poller may put events only on the buses its exports name"."""
    bus = cdk.aws_events.EventBus(stack, "Bus")
    DatasetExportJob(stack, "OnBus", dataset_arn=DATASET, event_bus=bus)
    DatasetExportJob(stack, "OnDefault", dataset_arn=DATASET.replace("INTERACTIONS", "ITEMS"))
    template = template_of(stack)
    poller_policies = [
        policy["Properties"]["PolicyDocument"]["Statement"]
        for key, policy in resources(template, "AWS::IAM::Policy").items()
        if "PersonalizeExportPoller" in key
    ]
    put_events = [
        statement["Resource"]
        for statements in poller_policies
        for statement in statements
        if "events:PutEvents" in actions_of(statement)
    ]
    (granted,) = put_events
    rendered = json.dumps(granted)
    assert len(granted) == 2
    assert only_key(template, "AWS::Events::EventBus", "Bus") in rendered
    assert ":event-bus/default" in rendered
