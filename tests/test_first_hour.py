"""A newcomer's first hour (issue 17, items 3-6), for both constructs: warnings for silent
mistakes that the usual CDK ways acknowledge, errors for a role Personalize can't assume and a
bucket in another region, wrong types named at the boundary, Tags.of reaching the jobs, and a
public surface importable from the package."""

from __future__ import annotations

import contextlib
import datetime
import importlib
import inspect
import json
import re
import types
import typing
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import boto3
import cdk_nag
import pytest
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_scheduler as scheduler
from aws_cdk.assertions import Annotations, Match
from conftest import new_app, template_of
from constructs import Construct
from deploy_sim import Deployment, FakeClock
from harness.cloudformation import HarnessDeployment
from harness.scheduler import Scheduler
from personalize_standin import CALLER_DENIED, PersonalizeStandIn, ServiceError

import personalize_export
from personalize_export import (
    BUCKET_POLICY_NOT_ADDED,
    INGESTION_MODE_NOT_GIVEN,
    KEY_POLICY_NOT_ADDED,
    LIFECYCLE_RULE_NOT_ADDED,
    ROLE_POLICY_NOT_ADDED,
    TAG_NOT_APPLIED,
    DatasetExportJob,
    DatasetExportSchedule,
    IngestionMode,
)
from personalize_export.runtime.export_job.contract import RESOURCE_TYPE, Prop

DATASET = "arn:aws:personalize:us-east-1:123456789012:dataset/shop/INTERACTIONS"
ROLE_ARN = "arn:aws:iam::123456789012:role/existing-personalize-export"
KEY_ARN = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
NIGHTLY = scheduler.ScheduleExpression.cron(hour="2", minute="0")
TAG_RESOURCE = "personalize:TagResource"

Build = Callable[..., Construct]


def a_job(scope: Construct, construct_id: str = "Export", **options: Any) -> Construct:
    options.setdefault("dataset_arn", DATASET)
    return DatasetExportJob(scope, construct_id, **options)


def a_schedule(scope: Construct, construct_id: str = "Export", **options: Any) -> Construct:
    options.setdefault("dataset_arn", DATASET)
    options.setdefault("schedule", NIGHTLY)
    return DatasetExportSchedule(scope, construct_id, **options)


BUILDS: dict[str, Build] = {"DatasetExportJob": a_job, "DatasetExportSchedule": a_schedule}
both = pytest.mark.parametrize("kind", list(BUILDS))


def warnings_with(stack: cdk.Stack, warning_id: str) -> list[str]:
    """The stack's warnings carrying this acknowledgeable id (synthesizes the stack)."""
    found = Annotations.from_stack(stack).find_warning(
        "*", Match.string_like_regexp(re.escape(f"[ack: {warning_id}]"))
    )
    return [str(message.entry.data) for message in found]


# --- item 3: warnings, each acknowledged the usual ways -------------------------------------------


@dataclass(frozen=True)
class Warned:
    """Options that make a construct warn, and what the warning must say."""

    id: str
    warning: str
    options: Callable[[cdk.Stack], dict[str, Any]]
    says: tuple[str, ...]
    kinds: tuple[str, ...] = tuple(BUILDS)


WARNED = [
    Warned(
        "ingestion-mode-not-given",
        INGESTION_MODE_NOT_GIVEN,
        lambda stack: {},
        (
            "ingestion_mode is not given, so the export is PUT",
            "only data sent with PutEvents, PutUsers or PutItems",
            "nothing of a dataset filled by a dataset import job",
            "ingestion_mode=IngestionMode.ALL",
            "IngestionMode.BULK",
            "IngestionMode.PUT (passing it explicitly silences this warning)",
        ),
    ),
    Warned(
        "bucket-policy",
        BUCKET_POLICY_NOT_ADDED,
        lambda stack: {
            "ingestion_mode": IngestionMode.ALL,
            "bucket": s3.Bucket.from_bucket_name(stack, "Given", "shop-exports"),
        },
        ("the policy of bucket shop-exports can't be changed from here",),
    ),
    Warned(
        "role-policy",
        ROLE_POLICY_NOT_ADDED,
        lambda stack: {
            "ingestion_mode": IngestionMode.ALL,
            "role": iam.Role.from_role_arn(stack, "Given", ROLE_ARN, mutable=False),
        },
        (f"role {ROLE_ARN} can't be changed from here",),
    ),
    Warned(
        "key-policy",
        KEY_POLICY_NOT_ADDED,
        lambda stack: {
            "ingestion_mode": IngestionMode.ALL,
            "encryption_key": kms.Key.from_key_arn(stack, "Given", KEY_ARN),
        },
        (f"the policy of key {KEY_ARN} can't be changed from here",),
    ),
    Warned(
        "lifecycle-rule",
        LIFECYCLE_RULE_NOT_ADDED,
        lambda stack: {
            "ingestion_mode": IngestionMode.ALL,
            "bucket": s3.Bucket.from_bucket_name(stack, "Given", "shop-exports"),
            "keep": cdk.Duration.days(7),
        },
        ("add a lifecycle rule expiring the objects under",),
        kinds=("DatasetExportSchedule",),
    ),
]
WARNED_CASES = [
    pytest.param(kind, warned, id=f"{kind}-{warned.id}")
    for warned in WARNED
    for kind in warned.kinds
]


def acknowledge_with_annotations(scope: Construct, warning_id: str) -> None:
    cdk.Annotations.of(scope).acknowledge_warning(warning_id, "handled by the platform team")


def acknowledge_with_validations(scope: Construct, warning_id: str) -> None:
    cdk.Validations.of(scope).acknowledge(
        cdk.Acknowledgment(id=warning_id, reason="handled by the platform team")
    )


def acknowledge_as_the_synth_report_says(scope: Construct, warning_id: str) -> None:
    """CDK's validation report prints "Acknowledge with 'Annotation::<id>'"."""
    acknowledge_with_validations(scope, f"Annotation::{warning_id}")


ACKNOWLEDGE = {
    "annotations": acknowledge_with_annotations,
    "validations": acknowledge_with_validations,
    "as-the-report-says": acknowledge_as_the_synth_report_says,
}


@pytest.mark.parametrize(("kind", "warned"), WARNED_CASES)
def test_each_warning_names_its_id_and_says_what_to_do(kind: str, warned: Warned) -> None:
    stack = cdk.Stack(new_app(), "TestStack")
    BUILDS[kind](stack, **warned.options(stack))

    (warning,) = warnings_with(stack, warned.warning)
    for fragment in warned.says:
        assert fragment in warning


@pytest.mark.parametrize("how", list(ACKNOWLEDGE))
@pytest.mark.parametrize(("kind", "warned"), WARNED_CASES)
def test_each_warning_is_acknowledged_the_usual_ways(kind: str, warned: Warned, how: str) -> None:
    stack = cdk.Stack(new_app(), "TestStack")
    export = BUILDS[kind](stack, **warned.options(stack))
    ACKNOWLEDGE[how](export, warned.warning)

    assert warnings_with(stack, warned.warning) == []


@both
def test_an_acknowledgment_made_first_on_the_stack_holds_for_every_export(kind: str) -> None:
    # (On the App itself CDK's acknowledgments reach nothing: its path is empty.)
    stack = cdk.Stack(new_app(), "TestStack")
    acknowledge_with_annotations(stack, INGESTION_MODE_NOT_GIVEN)
    BUILDS[kind](stack, "A")
    BUILDS[kind](stack, "B", output_prefix="b")

    assert warnings_with(stack, INGESTION_MODE_NOT_GIVEN) == []


@both
@pytest.mark.parametrize("mode", [IngestionMode.PUT, "PUT", IngestionMode.ALL])
def test_an_ingestion_mode_given_explicitly_silences_the_warning(
    kind: str, mode: IngestionMode | str
) -> None:
    stack = cdk.Stack(new_app(), "TestStack")
    BUILDS[kind](stack, ingestion_mode=mode)

    assert warnings_with(stack, INGESTION_MODE_NOT_GIVEN) == []


@both
def test_an_ingestion_mode_not_given_still_sends_put(kind: str) -> None:
    stack = cdk.Stack(new_app(), "TestStack")
    export = BUILDS[kind](stack)
    assert getattr(export, "ingestion_mode") == "PUT"  # noqa: B009 (both kinds have it)
    template = template_of(stack)
    if kind == "DatasetExportJob":
        assert custom_resource(template)[Prop.INGESTION_MODE] == "PUT"
    else:
        assert run_input(template)["Create"]["IngestionMode"] == "PUT"


# --- item 3: errors for a role Personalize can't assume and a bucket in another region -----------


def misconfiguration(kind: str, stack: cdk.Stack, **options: Any) -> str:
    options.setdefault("ingestion_mode", IngestionMode.ALL)
    with pytest.raises(ValueError) as raised:
        BUILDS[kind](stack, **options)
    message = str(raised.value)
    assert message.startswith(f"{kind} at '{stack.node.path}/Export' is misconfigured:\n")
    return message


@both
def test_a_role_that_does_not_trust_personalize_fails_the_synth(kind: str) -> None:
    stack = cdk.Stack(new_app(), "TestStack")
    role = iam.Role(stack, "Role", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))

    message = misconfiguration(kind, stack, role=role)

    (problem,) = message.splitlines()[1:]
    assert problem.startswith("  - role TestStack/Role trusts lambda.amazonaws.com, ")
    assert "not personalize.amazonaws.com" in problem
    assert "its trust policy must allow sts:AssumeRole" in problem
    assert "assumed_by=iam.ServicePrincipal('personalize.amazonaws.com')" in problem


@both
@pytest.mark.parametrize(
    "principal",
    [
        iam.ServicePrincipal("personalize.amazonaws.com"),
        iam.CompositePrincipal(
            iam.ServicePrincipal("lambda.amazonaws.com"),
            iam.ServicePrincipal("personalize.amazonaws.com"),
        ),
    ],
    ids=["personalize", "composite"],
)
def test_a_role_trusting_personalize_is_accepted(kind: str, principal: iam.IPrincipal) -> None:
    stack = cdk.Stack(new_app(), "TestStack")
    role = iam.Role(stack, "Role", assumed_by=principal)
    export = BUILDS[kind](stack, role=role, ingestion_mode="ALL")
    assert getattr(export, "role") is role  # noqa: B009


@both
def test_an_imported_role_has_no_trust_policy_to_check(kind: str) -> None:
    stack = cdk.Stack(new_app(), "TestStack")
    role = iam.Role.from_role_arn(stack, "Role", ROLE_ARN)
    BUILDS[kind](stack, role=role, ingestion_mode="ALL")
    assert template_of(stack)["Resources"]


@both
def test_a_bucket_of_another_region_fails_with_the_region_rule(kind: str) -> None:
    stack = cdk.Stack(new_app(), "TestStack", env=cdk.Environment(region="us-east-1"))
    bucket = s3.Bucket.from_bucket_attributes(
        stack, "Given", bucket_name="shop-eu", region="eu-west-1"
    )

    message = misconfiguration(kind, stack, bucket=bucket)

    (problem,) = message.splitlines()[1:]
    assert problem == (
        "  - bucket shop-eu is in region 'eu-west-1' but the stack deploys to 'us-east-1'; "
        "Personalize, the bucket and the key must share one region"
    )


@both
def test_a_bucket_of_a_stack_in_another_region_fails_before_cdks_cross_environment_error(
    kind: str,
) -> None:
    app = new_app()
    lake = cdk.Stack(app, "Lake", env=cdk.Environment(region="eu-west-1"))
    bucket = s3.Bucket(lake, "Exports")
    stack = cdk.Stack(app, "TestStack", env=cdk.Environment(region="us-east-1"))

    message = misconfiguration(kind, stack, bucket=bucket)

    assert "bucket Lake/Exports is in region 'eu-west-1' but the stack deploys to 'us-east-1'" in (
        message
    )


@both
def test_a_bucket_of_another_region_than_the_dataset_fails(kind: str) -> None:
    stack = cdk.Stack(new_app(), "TestStack")  # region known only on deploy
    bucket = s3.Bucket.from_bucket_attributes(
        stack, "Given", bucket_name="shop-eu", region="eu-west-1"
    )

    message = misconfiguration(kind, stack, bucket=bucket)

    assert "bucket shop-eu is in region 'eu-west-1' but the dataset is in 'us-east-1'" in message


@both
def test_a_bucket_of_the_same_region_is_accepted(kind: str) -> None:
    stack = cdk.Stack(new_app(), "TestStack", env=cdk.Environment(region="us-east-1"))
    bucket = s3.Bucket.from_bucket_attributes(
        stack, "Given", bucket_name="shop-us", region="us-east-1"
    )
    BUILDS[kind](stack, bucket=bucket, ingestion_mode="ALL")
    assert template_of(stack)["Resources"]


# --- item 4: types checked at the boundary ------------------------------------------------------


@dataclass(frozen=True)
class WrongType:
    option: str
    value: Any
    expected: str


COMMON_WRONG_TYPES = [
    WrongType("dataset_arn", 42, "str"),
    WrongType("ingestion_mode", 1, "personalize_export.IngestionMode or str or None"),
    WrongType("bucket", "shop-exports", "aws_cdk.aws_s3.IBucket or None"),
    WrongType("output_prefix", ["exports"], "str or None"),
    WrongType("role", ROLE_ARN, "aws_cdk.aws_iam.IRole or None"),
    WrongType("encryption_key", KEY_ARN, "aws_cdk.aws_kms.IKey or None"),
    WrongType("tags", {"team": 1}, "Mapping[str, str] or None"),
    WrongType("event_bus", "default", "aws_cdk.aws_events.IEventBus or None"),
    WrongType("table", {"schema": "{}"}, "personalize_export.TableOptions or None"),
]
WRONG_TYPES = {
    "DatasetExportJob": [
        *COMMON_WRONG_TYPES,
        WrongType("job_name", 7, "str or None"),
        WrongType("timeout", 3600, "aws_cdk.Duration or None"),
        WrongType("run_id", 2, "str or None"),
        WrongType("stack_outputs", "yes", "bool"),
        WrongType("wait_for_completion", 0, "bool"),
    ],
    "DatasetExportSchedule": [
        *COMMON_WRONG_TYPES,
        WrongType("schedule", "cron(0 2 * * ? *)", "aws_cdk.aws_scheduler.ScheduleExpression"),
        WrongType("keep", 7, "aws_cdk.Duration or None"),
        WrongType("enabled", "false", "bool"),
    ],
}
WRONG_TYPE_CASES = [
    pytest.param(kind, row, id=f"{kind}-{row.option}")
    for kind, rows in WRONG_TYPES.items()
    for row in rows
]


@pytest.mark.parametrize(("kind", "row"), WRONG_TYPE_CASES)
def test_a_wrong_type_is_named_before_anything_else_happens(kind: str, row: WrongType) -> None:
    stack = cdk.Stack(new_app(), "TestStack")
    # Another option broken too: the type is reported first, alone, and nothing is built.
    other = {"output_prefix": "/bad"} if row.option != "output_prefix" else {}

    with pytest.raises(TypeError) as raised:
        BUILDS[kind](stack, **{**other, row.option: row.value})

    shown = f"{type(row.value).__name__} {row.value!r}"
    assert str(raised.value) == (
        f"{kind} at 'TestStack/Export' was given a wrong type:\n"
        f"  - {row.option}: expected {row.expected}, got {shown}"
    )
    assert stack.node.try_find_child("Export") is None


@pytest.mark.parametrize("kind", list(BUILDS))
def test_every_option_has_a_row_in_the_type_table_and_in_this_test(kind: str) -> None:
    constructs: dict[str, type] = {
        "DatasetExportJob": DatasetExportJob,
        "DatasetExportSchedule": DatasetExportSchedule,
    }
    init: Any = vars(constructs[kind])["__init__"]
    keyword_only = [
        name
        for name, parameter in inspect.signature(init).parameters.items()
        if parameter.kind is inspect.Parameter.KEYWORD_ONLY
    ]
    table = [option.name for option in init.__typed_options__]
    assert sorted(table) == sorted(keyword_only)
    assert sorted(row.option for row in WRONG_TYPES[kind]) == sorted(keyword_only)


@both
def test_every_wrong_option_is_listed_in_one_type_error(kind: str) -> None:
    stack = cdk.Stack(new_app(), "TestStack")
    with pytest.raises(TypeError) as raised:
        BUILDS[kind](stack, dataset_arn=None, tags="team=recs", event_bus=1)
    problems = [line.split(":")[0].strip(" -") for line in str(raised.value).splitlines()[1:]]
    assert problems == ["dataset_arn", "tags", "event_bus"]


@both
def test_tokens_and_imported_objects_pass_the_type_check(kind: str) -> None:
    stack = cdk.Stack(new_app(), "TestStack")
    prefix = cdk.CfnParameter(stack, "Prefix").value_as_string
    BUILDS[kind](
        stack,
        dataset_arn=cdk.CfnParameter(stack, "Dataset").value_as_string,
        ingestion_mode=cdk.CfnParameter(stack, "Mode").value_as_string,
        bucket=s3.Bucket.from_bucket_name(stack, "Given", "shop-exports"),
        output_prefix=prefix,
        role=iam.Role.from_role_arn(stack, "Role", ROLE_ARN),
        encryption_key=kms.Key.from_key_arn(stack, "Key", KEY_ARN),
        event_bus=events.EventBus.from_event_bus_name(stack, "Bus", "exports"),
        tags={"team": cdk.CfnParameter(stack, "Team").value_as_string},
    )
    assert template_of(stack)["Resources"]


def test_an_alias_object_passes_the_type_check_and_meets_the_alias_rule() -> None:
    stack = cdk.Stack(new_app(), "TestStack")
    alias = kms.Alias.from_alias_name(stack, "Alias", "alias/exports")  # IAlias and IKey at once
    with pytest.raises(ValueError, match="never an alias"):
        a_job(stack, encryption_key=alias, ingestion_mode="ALL")


# --- item 5: Tags.of reaches the jobs ------------------------------------------------------------


def custom_resource(template: dict[str, Any]) -> dict[str, Any]:
    (resource,) = [
        res["Properties"] for res in template["Resources"].values() if res["Type"] == RESOURCE_TYPE
    ]
    return dict(resource)


def run_input(template: dict[str, Any]) -> dict[str, Any]:
    (schedule,) = [
        res["Properties"]
        for res in template["Resources"].values()
        if res["Type"] == "AWS::Scheduler::Schedule"
    ]
    text = schedule["Target"]["Input"]
    if isinstance(text, dict):  # Fn::Join of the JSON text and references inside its strings
        text = "".join(part if isinstance(part, str) else "TOKEN" for part in text["Fn::Join"][1])
    found: dict[str, Any] = json.loads(text)
    return found


def job_tags(template: dict[str, Any]) -> Any:
    return custom_resource(template).get(Prop.TAGS)


def schedule_tags(template: dict[str, Any]) -> Any:
    return run_input(template)["Create"].get("Tags")


def statements_allowing(template: dict[str, Any], action: str) -> list[str]:
    """The logical ids of the policies that allow `action`."""
    return [
        key
        for key, res in template["Resources"].items()
        if res["Type"] == "AWS::IAM::Policy"
        for statement in res["Properties"]["PolicyDocument"]["Statement"]
        if action in ([statement["Action"]] if isinstance(statement["Action"], str) else [])
        or action in (statement["Action"] if isinstance(statement["Action"], list) else [])
    ]


TAGS_SEEN = {
    "DatasetExportJob": (job_tags, "tagKey", "tagValue", "PersonalizeExportProviderHandlerRole"),
    "DatasetExportSchedule": (schedule_tags, "TagKey", "TagValue", "PersonalizeExportPoller"),
}


def tag_list(kind: str, tags: dict[str, str]) -> list[dict[str, str]]:
    _, key_name, value_name, _ = TAGS_SEEN[kind]
    return [{key_name: key, value_name: value} for key, value in sorted(tags.items())]


@both
def test_tags_of_the_app_reach_the_jobs_and_allow_tagging(kind: str) -> None:
    app = new_app()
    stack = cdk.Stack(app, "TestStack")
    BUILDS[kind](stack, ingestion_mode="ALL")
    cdk.Tags.of(app).add("cost-center", "42")

    template = template_of(stack)

    read, _, _, granted_to = TAGS_SEEN[kind]
    assert read(template) == tag_list(kind, {"cost-center": "42"})
    (policy,) = statements_allowing(template, TAG_RESOURCE)
    assert policy.startswith(granted_to)


@both
def test_tags_given_win_over_tags_of_and_tags_of_the_export_count_when_added_later(
    kind: str,
) -> None:
    app = new_app()
    stack = cdk.Stack(app, "TestStack")
    cdk.Tags.of(app).add("team", "platform")
    export = BUILDS[kind](stack, ingestion_mode="ALL", tags={"team": "recs"})
    cdk.Tags.of(export).add("cost-center", "42")

    template = template_of(stack)

    read = TAGS_SEEN[kind][0]
    assert read(template) == tag_list(kind, {"cost-center": "42", "team": "recs"})
    assert len(statements_allowing(template, TAG_RESOURCE)) == 1


@both
def test_no_tags_anywhere_means_no_tags_property_and_no_tagging_right(kind: str) -> None:
    stack = cdk.Stack(new_app(), "TestStack")
    BUILDS[kind](stack, ingestion_mode="ALL")
    template = template_of(stack)

    assert TAGS_SEEN[kind][0](template) is None
    assert statements_allowing(template, TAG_RESOURCE) == []


@both
def test_tags_of_can_leave_the_jobs_out_by_resource_type(kind: str) -> None:
    app = new_app()
    stack = cdk.Stack(app, "TestStack")
    export = BUILDS[kind](stack, ingestion_mode="ALL")
    cdk.Tags.of(app).add("cost-center", "42")
    cdk.Tags.of(app).add("owner", "recs", exclude_resource_types=[_resource_type(export)])

    template = template_of(stack)

    assert TAGS_SEEN[kind][0](template) == tag_list(kind, {"cost-center": "42"})


def _resource_type(export: Construct) -> str:
    return (
        RESOURCE_TYPE
        if isinstance(export, DatasetExportJob)
        else ("Custom::PersonalizeExportSchedule")
    )


@both
def test_a_tag_personalize_refuses_is_left_off_the_jobs_with_a_warning(kind: str) -> None:
    app = new_app()
    stack = cdk.Stack(app, "TestStack")
    export = BUILDS[kind](stack, ingestion_mode="ALL")
    cdk.Tags.of(app).add("aws:cost-center", "42")
    cdk.Tags.of(app).add("team", "recs")

    template = template_of(stack)

    assert TAGS_SEEN[kind][0](template) == tag_list(kind, {"team": "recs"})
    (warning,) = warnings_with(stack, TAG_NOT_APPLIED)
    assert "the tag 'aws:cost-center' applied with Tags.of(...) is not set on the export jobs" in (
        warning
    )
    assert "tags key 'aws:cost-center' starts with 'aws:'" in warning
    # The bucket keeps it: only the jobs leave it out.
    assert "aws:cost-center" in json.dumps(template["Resources"])
    stack2 = cdk.Stack(new_app(), "TestStack")
    export = BUILDS[kind](stack2, ingestion_mode="ALL")
    acknowledge_with_annotations(export, TAG_NOT_APPLIED)
    cdk.Tags.of(stack2).add("aws:cost-center", "42")
    assert warnings_with(stack2, TAG_NOT_APPLIED) == []


# --- item 5 through a deploy: the stand-in's job has the tags, and tagging needs the right -------


class TagCheckingStandIn(PersonalizeStandIn):
    """The stand-in, refusing a Create that carries tags unless the caller may TagResource.

    Creating with tags needs personalize:TagResource besides CreateDatasetExportJob (shared
    NOTES.md, Permissions, from Personalize's developer guide and the Service Authorization
    Reference); how IAM words the refusal is the stand-in's CALLER_DENIED (quoted there). The
    caller's rights are read from its policy in the template (caller_actions)."""

    caller_actions: frozenset[str] = frozenset()

    def _dispatch(self, operation: str, body: dict[str, Any]) -> dict[str, Any]:
        if (
            operation == "CreateDatasetExportJob"
            and body.get("tags")
            and TAG_RESOURCE not in self.caller_actions
        ):
            message = CALLER_DENIED.format(
                principal="handler",
                operation="TagResource",
                resource=f" on resource: {self.job_arn(str(body.get('jobName')))}",
            )
            raise ServiceError("AccessDeniedException", message)
        return super()._dispatch(operation, body)


@pytest.fixture
def tag_checking_standin(monkeypatch: pytest.MonkeyPatch) -> Iterator[TagCheckingStandIn]:
    with TagCheckingStandIn() as started:
        server = typing.cast(TagCheckingStandIn, started)
        monkeypatch.setenv("AWS_ENDPOINT_URL_PERSONALIZE", server.endpoint_url)
        monkeypatch.setenv("AWS_ENDPOINT_URL_SFN", server.endpoint_url)
        for name, value in {
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_DEFAULT_REGION": server.region,
            "AWS_MAX_ATTEMPTS": "1",
            "AWS_CONFIG_FILE": "/dev/null",
            "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
        }.items():
            monkeypatch.setenv(name, value)
        monkeypatch.delenv("AWS_PROFILE", raising=False)
        yield server


def handler_actions(template: dict[str, Any]) -> frozenset[str]:
    """What the handler's role allows, from its policy in the template."""
    actions: set[str] = set()
    for key, res in template["Resources"].items():
        if res["Type"] == "AWS::IAM::Policy" and key.startswith(
            "PersonalizeExportProviderHandlerRole"
        ):
            for statement in res["Properties"]["PolicyDocument"]["Statement"]:
                action = statement["Action"]
                actions.update([action] if isinstance(action, str) else action)
    return frozenset(actions)


def deploy_tagged_job(
    tmp_path: Path, standin: TagCheckingStandIn, edit: Callable[[dict[str, Any]], None]
) -> tuple[Any, str]:
    app = new_app(tmp_path / "cdk.out")
    stack = cdk.Stack(app, "Tagged")
    a_job(stack, ingestion_mode="ALL")
    cdk.Tags.of(app).add("cost-center", "42")
    deployment = Deployment(Path(app.synth().directory), "Tagged", FakeClock())
    edit(deployment.template)
    standin.caller_actions = handler_actions(deployment.template)
    (export,) = deployment.custom_resources()
    with contextlib.ExitStack() as stack_of_contexts:
        handler = stack_of_contexts.enter_context(deployment.handler())
        return deployment.create(handler, export), export


def test_a_deploy_creates_the_job_with_the_tags_of_the_app(
    tmp_path: Path, tag_checking_standin: TagCheckingStandIn
) -> None:
    outcome, _ = deploy_tagged_job(tmp_path, tag_checking_standin, lambda template: None)

    assert outcome.ok, outcome.reason
    client = boto3.client("personalize")
    (job_arn,) = tag_checking_standin.jobs
    listed = client.list_tags_for_resource(resourceArn=job_arn)["tags"]
    assert listed == [{"tagKey": "cost-center", "tagValue": "42"}]


def test_the_stand_in_refuses_tags_from_a_handler_without_the_tagging_right(
    tmp_path: Path, tag_checking_standin: TagCheckingStandIn
) -> None:
    def drop_tagging(template: dict[str, Any]) -> None:
        for res in template["Resources"].values():
            if res["Type"] == "AWS::IAM::Policy":
                document = res["Properties"]["PolicyDocument"]
                document["Statement"] = [
                    s for s in document["Statement"] if s["Action"] != TAG_RESOURCE
                ]

    outcome, _ = deploy_tagged_job(tmp_path, tag_checking_standin, drop_tagging)

    assert not outcome.ok
    assert "is not authorized to perform: personalize:TagResource" in outcome.reason
    assert tag_checking_standin.jobs == {}


# --- item 6: the public surface is importable --------------------------------------------------

PUBLIC_HOMES = ("aws_cdk", "constructs", "builtins", "collections", "typing", "enum")


def annotated_types(cls: type) -> dict[str, Any]:
    """Every public attribute's, property's and method's annotated types, by member name."""
    found: dict[str, Any] = {
        name: hint for name, hint in typing.get_type_hints(cls).items() if not name.startswith("_")
    }
    for name, member in inspect.getmembers(cls):
        if name.startswith("_"):
            continue
        if isinstance(member, property) and member.fget is not None:
            found[name] = typing.get_type_hints(member.fget).get("return")
        elif inspect.isfunction(member) and member.__module__.startswith("personalize_export"):
            found[name] = tuple(typing.get_type_hints(member).values())
    return found


def leaf_types(hint: Any) -> Iterator[Any]:
    if isinstance(hint, tuple):
        for item in hint:
            yield from leaf_types(item)
    elif isinstance(hint, types.UnionType) or typing.get_origin(hint) is not None:
        origin = typing.get_origin(hint)
        if (
            origin is not None
            and not isinstance(hint, types.UnionType)
            and origin is not typing.Union
        ):
            yield origin
        for argument in typing.get_args(hint):
            yield from leaf_types(argument)
    elif hint is not None and hint is not type(None):
        yield hint


def importable_publicly(kind: Any) -> bool:
    module = getattr(kind, "__module__", "")
    name = getattr(kind, "__qualname__", "")
    if module.startswith("personalize_export"):
        return getattr(personalize_export, name, None) is kind
    if module.split(".")[0] not in PUBLIC_HOMES:
        return False
    return getattr(importlib.import_module(module), name, None) is kind


@pytest.mark.parametrize("construct", [DatasetExportJob, DatasetExportSchedule])
def test_every_public_member_is_typed_with_something_importable(construct: type) -> None:
    members = annotated_types(construct)
    assert {"poller", "bucket", "role", "grant_read", "on_success"} <= set(members)
    hidden = {
        f"{name}: {kind!r}"
        for name, hint in members.items()
        for kind in leaf_types(hint)
        if not importable_publicly(kind)
    }
    assert hidden == set()


@both
def test_every_public_attribute_an_export_sets_is_annotated(kind: str) -> None:
    stack = cdk.Stack(new_app(), "TestStack")
    export = BUILDS[kind](stack, ingestion_mode="ALL")
    set_by_init = {name for name in vars(export) if not name.startswith("_")}
    assert set_by_init <= set(typing.get_type_hints(type(export)))


def poller_actions(template: dict[str, Any]) -> frozenset[str]:
    """What the export poller's state machine role allows, from its policy in the template."""
    actions: set[str] = set()
    for key, res in template["Resources"].items():
        if res["Type"] == "AWS::IAM::Policy" and key.startswith(
            "PersonalizeExportPollerStateMachineRole"
        ):
            for statement in res["Properties"]["PolicyDocument"]["Statement"]:
                action = statement["Action"]
                actions.update([action] if isinstance(action, str) else action)
    return frozenset(actions)


def test_a_scheduled_run_creates_its_job_with_the_tags_of_the_app(
    tmp_path: Path, tag_checking_standin: TagCheckingStandIn
) -> None:
    app = new_app(tmp_path / "cdk.out")
    stack = cdk.Stack(app, "TaggedRuns")
    a_schedule(stack, ingestion_mode="ALL", tags={"team": "recs"})
    cdk.Tags.of(app).add("cost-center", "42")
    deployment = HarnessDeployment(
        Path(app.synth().directory), "TaggedRuns", standin=tag_checking_standin
    )
    tag_checking_standin.caller_actions = poller_actions(deployment.template)
    assert deployment.create_stack().ok
    runs = Scheduler(deployment)
    (schedule,) = runs.schedules()
    (scheduled,) = runs.occurrences(schedule, datetime.datetime.now(datetime.UTC), 1)

    assert runs.run(schedule, scheduled)["status"] == "SUCCEEDED"

    (job,) = tag_checking_standin.jobs.values()
    assert job.tags == [
        {"tagKey": "cost-center", "tagValue": "42"},
        {"tagKey": "team", "tagValue": "recs"},
    ]


@both
def test_tagging_granted_by_tags_of_alone_is_acknowledged_for_cdk_nag(
    tmp_path: Path, kind: str
) -> None:
    app = new_app(tmp_path / "cdk.out")
    cdk.Validations.of(app).add_plugins(cdk_nag.AwsSolutionsChecks(app))
    BUILDS[kind](cdk.Stack(app, "Tagged"), ingestion_mode="ALL")
    cdk.Tags.of(app).add("cost-center", "42")

    app.synth()  # raises on any unacknowledged finding, TagResource on '*' included


def test_scope_and_id_given_by_keyword_are_checked_the_same() -> None:
    stack = cdk.Stack(new_app(), "TestStack")
    with pytest.raises(TypeError, match=r"DatasetExportJob at 'TestStack/Export' .*\n.*timeout"):
        DatasetExportJob(scope=stack, construct_id="Export", dataset_arn=DATASET, timeout=3600)  # type: ignore[arg-type]


@both
def test_more_than_200_tags_in_all_is_an_error(kind: str) -> None:
    app = new_app()
    stack = cdk.Stack(app, "TestStack")
    export = BUILDS[kind](
        stack, ingestion_mode="ALL", tags={f"given{index}": "x" for index in range(60)}
    )
    for index in range(150):
        cdk.Tags.of(app).add(f"app{index}", "x", include_resource_types=[_resource_type(export)])

    with pytest.raises(RuntimeError) as raised:
        app.synth()

    assert (
        "ERROR TestStack/Export: tags (with those from Tags.of) has 210 entries; an export job "
        "takes at most 200"
    ) in str(raised.value)
