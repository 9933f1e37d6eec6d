"""Security gate: cdk-nag AwsSolutions, cfn-lint, least privilege, bucket and KMS hardening."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import cdk_nag
import pytest
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk.assertions import Annotations, Match
from conftest import new_app

import app as demo_app
from personalize_export import DatasetExportJob, IngestionMode
from personalize_export.access_logs import access_log_bucket
from personalize_export.dataset_export_job import BUCKET_POLICY_NOT_ADDED, KEY_POLICY_NOT_ADDED
from personalize_export.runtime.export_job.contract import RESOURCE_TYPE, Prop

DATASET = "arn:aws:personalize:us-east-1:123456789012:dataset/shop/INTERACTIONS"
PERSONALIZE = "personalize.amazonaws.com"
IAM_POLICY_TYPES = ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy")
# W3005 (DependsOn already implied by a Ref/GetAtt) is noise on plain CDK output: CDK adds the
# explicit DependsOn on purpose (see NOTES.md). Nothing else is ignored.
CFN_LINT_IGNORED = ["W3005"]
Template = dict[str, Any]
AppBuilder = Callable[[cdk.App], None]


def build_demo(app: cdk.App) -> None:
    demo_app.build(app)


def build_many(app: cdk.App) -> None:
    """Several exports in one stack: a shared bucket, own buckets, a key, an imported bucket."""
    stack = cdk.Stack(app, "Many")
    shared = s3.Bucket(
        stack,
        "Shared",
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        enforce_ssl=True,
        encryption=s3.BucketEncryption.S3_MANAGED,
        versioned=True,
        object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
        removal_policy=cdk.RemovalPolicy.RETAIN,
        server_access_logs_bucket=access_log_bucket(stack),
        server_access_logs_prefix="Shared/",
    )
    key = kms.Key(stack, "Key", enable_key_rotation=True)
    DatasetExportJob(
        stack,
        "Interactions",
        dataset_arn=DATASET,
        bucket=shared,
        output_prefix="exports/interactions",
        ingestion_mode=IngestionMode.ALL,
        job_name="nightly-interactions",
        tags={"team": "recs"},
    )
    DatasetExportJob(
        stack,
        "Users",
        dataset_arn=DATASET.replace("INTERACTIONS", "USERS"),
        bucket=shared,
        output_prefix="exports/users",
        ingestion_mode=IngestionMode.BULK,
    )
    DatasetExportJob(stack, "Items", dataset_arn=DATASET.replace("INTERACTIONS", "ITEMS"))
    DatasetExportJob(stack, "Encrypted", dataset_arn=DATASET, encryption_key=key)
    DatasetExportJob(
        stack,
        "IntoImported",
        dataset_arn=DATASET,
        bucket=s3.Bucket.from_bucket_name(stack, "Imported", "shop-exports"),
        output_prefix="exports",
    )


def build_kms(app: cdk.App) -> None:
    stack = cdk.Stack(app, "Kms")
    key = kms.Key(stack, "Key", enable_key_rotation=True)
    DatasetExportJob(stack, "Export", dataset_arn=DATASET, encryption_key=key)


BUILDERS: dict[str, AppBuilder] = {"demo": build_demo, "many": build_many, "kms": build_kms}


def synthesized(tmp_path: Path, build: AppBuilder, **context: Any) -> Path:
    app = new_app(tmp_path / "cdk.out", **context)
    build(app)
    return Path(app.synth().directory)


def templates(assembly: Path) -> dict[str, Template]:
    return {
        path.name.removesuffix(".template.json"): json.loads(path.read_text())
        for path in sorted(assembly.glob("*.template.json"))
    }


@pytest.fixture(scope="module")
def many(tmp_path_factory: pytest.TempPathFactory) -> Template:
    return templates(synthesized(tmp_path_factory.mktemp("many"), build_many))["Many"]


@pytest.fixture(scope="module")
def kms_stack(tmp_path_factory: pytest.TempPathFactory) -> Template:
    return templates(synthesized(tmp_path_factory.mktemp("kms"), build_kms))["Kms"]


def of_type(template: Template, *kinds: str) -> dict[str, Any]:
    return {key: res for key, res in template["Resources"].items() if res["Type"] in kinds}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def identity_statements(template: Template) -> Iterator[tuple[str, dict[str, Any]]]:
    """(policy logical id, statement) for every identity policy, inline or standalone."""
    for key, res in of_type(template, *IAM_POLICY_TYPES).items():
        for statement in res["Properties"]["PolicyDocument"]["Statement"]:
            yield key, statement
    for key, res in of_type(template, "AWS::IAM::Role").items():
        for policy in res["Properties"].get("Policies", []):
            for statement in policy["PolicyDocument"]["Statement"]:
                yield key, statement


def bucket_policy_statements(template: Template) -> Iterator[dict[str, Any]]:
    for res in of_type(template, "AWS::S3::BucketPolicy").values():
        yield from res["Properties"]["PolicyDocument"]["Statement"]


def export_resources(template: Template) -> dict[str, Any]:
    return {key: res["Properties"] for key, res in of_type(template, RESOURCE_TYPE).items()}


def logical_id(reference: Any) -> str:
    if "Ref" in reference:
        return str(reference["Ref"])
    return str(reference["Fn::GetAtt"][0])


# --- cdk-nag -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", BUILDERS)
def test_cdk_nag_aws_solutions_has_no_unacknowledged_finding(tmp_path: Path, name: str) -> None:
    app = new_app(tmp_path / "cdk.out")
    cdk.Validations.of(app).add_plugins(cdk_nag.AwsSolutionsChecks(app))
    BUILDERS[name](app)
    app.synth()  # raises on any unacknowledged error

    acknowledged = acknowledgments(app)
    assert acknowledged, "the Provider framework's findings are acknowledged, not absent"
    for rule, reason in acknowledged:
        assert re.fullmatch(r"AwsSolutions::AwsSolutions-[A-Z]+\d+(\[.+\])?", rule)
        if re.match(r"AwsSolutions::AwsSolutions-IAM[45]", rule):
            assert "[" in rule, f"{rule} must name the exact finding"
        assert len(reason) >= 40, f"{rule} needs a reason"


def acknowledgments(app: cdk.App) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    for construct in app.node.find_all():
        for entry in construct.node.metadata:
            if entry.type == cdk.Validations.ACKNOWLEDGED_RULES_METADATA_KEY:
                data: dict[str, str] = entry.data
                found.extend(data.items())
    return found


def test_acknowledgments_are_exact_a_new_wildcard_is_still_reported(tmp_path: Path) -> None:
    app = new_app(tmp_path / "cdk.out")
    cdk.Validations.of(app).add_plugins(cdk_nag.AwsSolutionsChecks(app))
    stack = cdk.Stack(app, "Widened")
    job = DatasetExportJob(stack, "Export", dataset_arn=DATASET)
    job.role.add_to_principal_policy(
        iam.PolicyStatement(actions=["s3:GetObject"], resources=[job.bucket.arn_for_objects("*")])
    )
    with pytest.raises(RuntimeError) as raised:
        app.synth()
    report = str(raised.value)
    assert "AwsSolutions-IAM5[Resource::<ExportBucketFD42BCED.Arn>/*]" in report
    assert "Widened-Export-*" not in report


# --- cfn-lint ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", BUILDERS)
def test_cfn_lint_finds_nothing_beyond_documented_ignores(tmp_path: Path, name: str) -> None:
    assembly = synthesized(tmp_path, BUILDERS[name])
    files = sorted(str(path) for path in assembly.glob("*.template.json"))
    assert files
    result = subprocess.run(
        [_cfn_lint(), "--format", "parseable", "--ignore-checks", *CFN_LINT_IGNORED, "--", *files],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def _cfn_lint() -> str:
    found = shutil.which("cfn-lint", path=str(Path(sys.executable).parent))
    assert found, "cfn-lint must be installed in the test environment"
    return found


# --- least privilege ---------------------------------------------------------------------------


@pytest.mark.parametrize("fixture", ["many", "kms_stack"])
def test_no_allow_statement_has_a_wildcard_action(
    fixture: str, request: pytest.FixtureRequest
) -> None:
    template: Template = request.getfixturevalue(fixture)
    statements = [s for _, s in identity_statements(template)]
    statements.extend(bucket_policy_statements(template))
    assert len(statements) > 10
    wide = [
        statement
        for statement in statements
        if statement["Effect"] == "Allow"
        and any("*" in action for action in as_list(statement["Action"]))
    ]
    assert wide == []


def service_roles(template: Template) -> dict[str, dict[str, Any]]:
    return {
        key: res
        for key, res in of_type(template, "AWS::IAM::Role").items()
        if res["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"]
        == {"Service": PERSONALIZE}
    }


def test_pass_role_only_on_service_roles_and_only_to_personalize(many: Template) -> None:
    passing = [s for _, s in identity_statements(many) if "iam:PassRole" in as_list(s["Action"])]
    assert passing
    passed: set[str] = set()
    for statement in passing:
        assert as_list(statement["Action"]) == ["iam:PassRole"]
        assert statement["Condition"] == {"StringEquals": {"iam:PassedToService": PERSONALIZE}}
        passed.update(logical_id(resource) for resource in as_list(statement["Resource"]))
    exports = export_resources(many)
    assert passed == {logical_id(props[Prop.ROLE_ARN]) for props in exports.values()}
    assert passed == set(service_roles(many))


def test_each_service_role_reaches_only_its_bucket_and_prefixes(many: Template) -> None:
    """A role is shared only by exports into one bucket, and reaches just their prefixes."""
    expected: dict[str, set[str]] = {}
    for props in export_resources(many).values():
        bucket_reference, prefix = _destination(props[Prop.OUTPUT_PATH])
        expected.setdefault(logical_id(props[Prop.ROLE_ARN]), set()).update(
            {
                json.dumps(_bucket_arn(bucket_reference), sort_keys=True),
                json.dumps(_object_arn(bucket_reference, prefix), sort_keys=True),
            }
        )
    assert len(expected) < len(export_resources(many))  # the shared bucket's exports share one
    for role, reachable in expected.items():
        statements = _statements_of_role(many, role)
        s3_resources = {
            json.dumps(resource, sort_keys=True)
            for statement in statements
            if any(action.startswith("s3:") for action in as_list(statement["Action"]))
            for resource in as_list(statement["Resource"])
        }
        assert s3_resources == reachable
        actions = {action for statement in statements for action in as_list(statement["Action"])}
        assert actions - {"s3:PutObject", "s3:ListBucket"} <= {
            "kms:Decrypt",
            "kms:GenerateDataKey",
            "kms:DescribeKey",
            "kms:ListGrants",
        }


def _destination(output_path: Any) -> tuple[Any, str]:
    """(bucket reference or name, prefix) from the resource's s3://bucket/prefix/ property."""
    if isinstance(output_path, str):
        bucket, prefix = output_path.removeprefix("s3://").split("/", 1)
        return bucket, prefix
    scheme, bucket_reference, prefix = output_path["Fn::Join"][1]
    assert scheme == "s3://"
    return bucket_reference, str(prefix).removeprefix("/")


def _bucket_arn(bucket: Any) -> Any:
    if isinstance(bucket, str):
        return {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, f":s3:::{bucket}"]]}
    return {"Fn::GetAtt": [bucket["Ref"], "Arn"]}


def _object_arn(bucket: Any, prefix: str) -> Any:
    if isinstance(bucket, str):
        return {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, f":s3:::{bucket}/{prefix}*"]]}
    return {"Fn::Join": ["", [{"Fn::GetAtt": [bucket["Ref"], "Arn"]}, f"/{prefix}*"]]}


def _statements_of_role(template: Template, role: str) -> list[dict[str, Any]]:
    return [
        statement
        for res in of_type(template, *IAM_POLICY_TYPES).values()
        if {"Ref": role} in res["Properties"].get("Roles", [])
        for statement in res["Properties"]["PolicyDocument"]["Statement"]
    ]


def test_service_role_trust_carries_source_account_and_source_arn(many: Template) -> None:
    roles = service_roles(many)
    used = {logical_id(props[Prop.ROLE_ARN]) for props in export_resources(many).values()}
    assert set(roles) == used
    for role in roles.values():
        (trust,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
        assert trust["Action"] == "sts:AssumeRole"
        assert trust["Condition"]["StringEquals"] == {
            "aws:SourceAccount": {"Ref": "AWS::AccountId"}
        }
        source_arn = trust["Condition"]["ArnLike"]["aws:SourceArn"]
        assert source_arn == {
            "Fn::Join": [
                "",
                [
                    "arn:",
                    {"Ref": "AWS::Partition"},
                    ":personalize:",
                    {"Ref": "AWS::Region"},
                    ":",
                    {"Ref": "AWS::AccountId"},
                    ":*",
                ],
            ]
        }


# --- buckets -----------------------------------------------------------------------------------


def created_buckets(template: Template) -> dict[str, Any]:
    """The buckets the library creates: each export's own and the access log bucket."""
    return {
        key: res
        for key, res in of_type(template, "AWS::S3::Bucket").items()
        if re.match(r"(Items|Encrypted|Export)Bucket|PersonalizeExportAccessLogs", key)
    }


@pytest.mark.parametrize("fixture", ["many", "kms_stack"])
def test_created_buckets_are_private_tls_only_encrypted_versioned_logged_and_retained(
    fixture: str, request: pytest.FixtureRequest
) -> None:
    template: Template = request.getfixturevalue(fixture)
    buckets = created_buckets(template)
    (log_bucket,) = [key for key in buckets if key.startswith("PersonalizeExportAccessLogs")]
    assert len(buckets) >= 2
    for key, bucket in buckets.items():
        props = bucket["Properties"]
        assert (bucket["DeletionPolicy"], bucket["UpdateReplacePolicy"]) == ("Retain", "Retain")
        assert set(props["PublicAccessBlockConfiguration"].values()) == {True}
        assert len(props["PublicAccessBlockConfiguration"]) == 4
        assert props["VersioningConfiguration"] == {"Status": "Enabled"}
        assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        assert props["OwnershipControls"]["Rules"] == [{"ObjectOwnership": "BucketOwnerEnforced"}]
        assert "AccessControl" not in props
        assert _denies_plain_http(template, key)
        if key != log_bucket:
            assert props["LoggingConfiguration"]["DestinationBucketName"] == {"Ref": log_bucket}
    assert not of_type(template, "Custom::S3AutoDeleteObjects")


def _denies_plain_http(template: Template, bucket: str) -> bool:
    for res in of_type(template, "AWS::S3::BucketPolicy").values():
        if res["Properties"]["Bucket"] != {"Ref": bucket}:
            continue
        for statement in res["Properties"]["PolicyDocument"]["Statement"]:
            if statement["Effect"] == "Deny" and statement.get("Condition") == {
                "Bool": {"aws:SecureTransport": "false"}
            }:
                return bool(
                    statement["Action"] == "s3:*" and statement["Principal"] == {"AWS": "*"}
                )
    return False


def test_access_log_bucket_is_sse_s3_and_one_per_stack(many: Template) -> None:
    (log_bucket,) = [
        res
        for key, res in of_type(many, "AWS::S3::Bucket").items()
        if key.startswith("PersonalizeExportAccessLogs")
    ]
    (rule,) = log_bucket["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"] == {"SSEAlgorithm": "AES256"}
    assert "LoggingConfiguration" not in log_bucket["Properties"]


def test_log_delivery_uses_a_bucket_policy_even_if_the_app_says_acl(tmp_path: Path) -> None:
    assembly = synthesized(
        tmp_path, build_kms, **{"@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy": False}
    )
    template = templates(assembly)["Kms"]
    (log_bucket,) = [key for key in of_type(template, "AWS::S3::Bucket") if "AccessLogs" in key]
    assert "AccessControl" not in template["Resources"][log_bucket]["Properties"]
    (delivery,) = [
        s
        for s in bucket_policy_statements(template)
        if s.get("Principal") == {"Service": "logging.s3.amazonaws.com"}
    ]
    assert delivery["Action"] == "s3:PutObject"
    assert delivery["Condition"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
    assert "aws:SourceArn" in delivery["Condition"]["ArnLike"]


def test_a_given_bucket_is_left_alone_and_an_imported_one_warns(stack: cdk.Stack) -> None:
    imported = s3.Bucket.from_bucket_name(stack, "Imported", "shop-exports")
    DatasetExportJob(stack, "Export", dataset_arn=DATASET, bucket=imported)
    template = cdk.assertions.Template.from_stack(stack)
    template.resource_count_is("AWS::S3::Bucket", 0)
    Annotations.from_stack(stack).has_warning(
        "/TestStack/Export",
        Match.string_like_regexp("policy of bucket shop-exports can't be changed from here"),
    )
    assert BUCKET_POLICY_NOT_ADDED.startswith("personalize-export:")


# --- KMS ---------------------------------------------------------------------------------------


def test_kms_key_encrypts_bucket_reaches_job_and_both_principals_may_use_it(
    kms_stack: Template,
) -> None:
    (key_id,) = of_type(kms_stack, "AWS::KMS::Key")
    key_arn = {"Fn::GetAtt": [key_id, "Arn"]}
    (bucket,) = [b for k, b in created_buckets(kms_stack).items() if k.startswith("Export")]
    (rule,) = bucket["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"] == {
        "SSEAlgorithm": "aws:kms",
        "KMSMasterKeyID": key_arn,
    }
    (export,) = export_resources(kms_stack).values()
    assert export[Prop.KMS_KEY_ARN] == key_arn

    role = logical_id(export[Prop.ROLE_ARN])
    role_kms = [
        s for s in _statements_of_role(kms_stack, role) if s["Action"][0].startswith("kms:")
    ]
    assert [(sorted(s["Action"]), s["Resource"]) for s in role_kms] == [
        (["kms:Decrypt", "kms:DescribeKey", "kms:GenerateDataKey", "kms:ListGrants"], key_arn)
    ]
    key_policy = of_type(kms_stack, "AWS::KMS::Key")[key_id]["Properties"]["KeyPolicy"]
    documented = ["kms:CreateGrant", *sorted(a for a in role_kms[0]["Action"])]
    by_principal = {json.dumps(s["Principal"], sort_keys=True): s for s in key_policy["Statement"]}
    for_role = by_principal[json.dumps({"AWS": {"Fn::GetAtt": [role, "Arn"]}})]
    for_service = by_principal[json.dumps({"Service": PERSONALIZE})]
    for statement in (for_role, for_service):
        assert sorted(statement["Action"]) == sorted(documented)
    assert for_service["Condition"] == {
        "StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
    }


def test_an_imported_key_warns_that_its_policy_is_the_users_job(stack: cdk.Stack) -> None:
    key = kms.Key.from_key_arn(
        stack, "Key", "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    )
    DatasetExportJob(stack, "Export", dataset_arn=DATASET, encryption_key=key)
    Annotations.from_stack(stack).has_warning(
        "/TestStack/Export",
        Match.string_like_regexp("policy of key arn:aws:kms:.* can't be changed from here"),
    )
    assert KEY_POLICY_NOT_ADDED.startswith("personalize-export:")


def test_a_key_from_another_stack_makes_no_dependency_cycle(app: cdk.App) -> None:
    keys = cdk.Stack(app, "Keys")
    key = kms.Key(keys, "Key", enable_key_rotation=True)
    exports = cdk.Stack(app, "Exports")
    job = DatasetExportJob(exports, "Export", dataset_arn=DATASET, encryption_key=key)
    assembly = app.synth()

    assert [stack.stack_name for stack in assembly.stacks] == ["Keys", "Exports"]
    key_policy = assembly.get_stack_by_name("Keys").template["Resources"]
    (statements,) = [r["Properties"]["KeyPolicy"]["Statement"] for r in key_policy.values()]
    assert [s["Principal"] for s in statements][1:] == [{"Service": PERSONALIZE}]
    role = exports.get_logical_id(_cfn_role(job.role))
    template = assembly.get_stack_by_name("Exports").template
    (role_kms,) = [s for s in _statements_of_role(template, role) if "kms:Decrypt" in s["Action"]]
    assert '"StackName": "Keys"' in json.dumps(role_kms["Resource"])


def _cfn_role(role: iam.IRole) -> iam.CfnRole:
    resource = role.node.default_child
    assert isinstance(resource, iam.CfnRole)
    return resource
