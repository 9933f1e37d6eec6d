"""Tests of the Personalize stand-in, driven through real boto3 clients."""

from __future__ import annotations

import json
import threading
import urllib.request
from collections.abc import Iterator
from datetime import datetime
from typing import Any
from urllib.error import HTTPError

import pytest
from botocore.exceptions import ClientError, ConnectionClosedError, EndpointConnectionError
from personalize_standin import (
    ACTIVE,
    FAILED,
    IN_PROGRESS,
    PENDING,
    Call,
    PersonalizeStandIn,
)

DATASET = "arn:aws:personalize:us-east-1:123456789012:dataset/dg/INTERACTIONS"
OTHER_DATASET = "arn:aws:personalize:us-east-1:123456789012:dataset/dg/ITEMS"
ROLE = "arn:aws:iam::123456789012:role/PersonalizeExport"
S3_PATH = "s3://bucket/exports/"
KMS_KEY = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
CREATE = "CreateDatasetExportJob"
DESCRIBE = "DescribeDatasetExportJob"
LIST = "ListDatasetExportJobs"


@pytest.fixture
def standin() -> Iterator[PersonalizeStandIn]:
    with PersonalizeStandIn() as running:
        yield running


@pytest.fixture
def client(standin: PersonalizeStandIn) -> Any:
    return standin.client()


@pytest.fixture
def raw_client(standin: PersonalizeStandIn) -> Any:
    return standin.client(parameter_validation=False)


def create_args(name: str = "export-1", **overrides: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "jobName": name,
        "datasetArn": DATASET,
        "roleArn": ROLE,
        "jobOutput": {"s3DataDestination": {"path": S3_PATH}},
    }
    args.update(overrides)
    return args


def error_of(excinfo: pytest.ExceptionInfo[ClientError]) -> tuple[str, int, str]:
    response = excinfo.value.response
    status = response["ResponseMetadata"]["HTTPStatusCode"]
    return response["Error"]["Code"], status, response["Error"]["Message"]


def describe(client: Any, arn: str) -> dict[str, Any]:
    job: dict[str, Any] = client.describe_dataset_export_job(datasetExportJobArn=arn)[
        "datasetExportJob"
    ]
    return job


def statuses(client: Any, arn: str, polls: int) -> list[str]:
    return [describe(client, arn)["status"] for _ in range(polls)]


def tags(count: int) -> list[dict[str, str]]:
    return [{"tagKey": f"k{index}", "tagValue": "v"} for index in range(count)]


# --- CreateDatasetExportJob ----------------------------------------------------------------------


def test_create_returns_arn_built_from_name_and_job_starts_pending(
    standin: PersonalizeStandIn, client: Any
) -> None:
    arn = client.create_dataset_export_job(**create_args("my_job-1"))["datasetExportJobArn"]
    assert arn == "arn:aws:personalize:us-east-1:123456789012:dataset-export-job/my_job-1"
    assert standin.jobs[arn].status == PENDING


def test_arn_uses_partition_region_and_account() -> None:
    with PersonalizeStandIn(account="210987654321", region="cn-north-1", partition="aws-cn") as s:
        arn = s.client().create_dataset_export_job(**create_args("x"))["datasetExportJobArn"]
    assert arn == "arn:aws-cn:personalize:cn-north-1:210987654321:dataset-export-job/x"


def test_describe_returns_every_field(client: Any) -> None:
    job_output = {"s3DataDestination": {"path": S3_PATH, "kmsKeyArn": KMS_KEY}}
    arn = client.create_dataset_export_job(
        **create_args(ingestionMode="BULK", jobOutput=job_output)
    )["datasetExportJobArn"]
    job = describe(client, arn)
    assert {k: v for k, v in job.items() if not k.endswith("DateTime")} == {
        "jobName": "export-1",
        "datasetExportJobArn": arn,
        "datasetArn": DATASET,
        "ingestionMode": "BULK",
        "roleArn": ROLE,
        "status": IN_PROGRESS,
        "jobOutput": job_output,
    }
    assert isinstance(job["creationDateTime"], datetime)
    assert job["lastUpdatedDateTime"] >= job["creationDateTime"]


def test_ingestion_mode_defaults_to_put(client: Any) -> None:
    arn = client.create_dataset_export_job(**create_args())["datasetExportJobArn"]
    assert describe(client, arn)["ingestionMode"] == "PUT"


def test_duplicate_name_is_rejected_whatever_the_other_parameters(
    standin: PersonalizeStandIn, client: Any
) -> None:
    arn = client.create_dataset_export_job(**create_args("dup"))["datasetExportJobArn"]
    other = create_args("dup", datasetArn=OTHER_DATASET, ingestionMode="ALL")
    with pytest.raises(ClientError) as excinfo:
        client.create_dataset_export_job(**other)
    assert error_of(excinfo) == (
        "ResourceAlreadyExistsException",
        400,
        "Dataset export job dup already exists",
    )
    assert standin.jobs[arn].dataset_arn == DATASET


INVALID_CREATES = [
    pytest.param({"jobName": "j" * 64}, "jobName", id="name-too-long"),
    pytest.param({"jobName": "-job"}, "jobName", id="name-leading-dash"),
    pytest.param({"jobName": "job.1"}, "jobName", id="name-dot-not-full-match"),
    pytest.param({"jobName": "jöb"}, "jobName", id="name-non-ascii"),
    pytest.param({"datasetArn": "arn:aws:s3:::bucket"}, "datasetArn", id="dataset-pattern"),
    pytest.param({"datasetArn": DATASET + "x" * 200}, "datasetArn", id="dataset-too-long"),
    pytest.param({"ingestionMode": "FULL"}, "ingestionMode", id="ingestion-enum"),
    pytest.param({"roleArn": "arn:aws:iam::123456789012:user/u"}, "roleArn", id="role-user"),
    pytest.param({"roleArn": "arn:aws:iam::12345:role/r"}, "roleArn", id="role-account"),
    pytest.param({"roleArn": ROLE + "x" * 220}, "roleArn", id="role-too-long"),
    pytest.param(
        {"jobOutput": {"s3DataDestination": {"path": "bucket/prefix"}}},
        "jobOutput.s3DataDestination.path",
        id="path-no-scheme",
    ),
    pytest.param(
        {"jobOutput": {"s3DataDestination": {"path": "ftp://bucket/prefix"}}},
        "jobOutput.s3DataDestination.path",
        id="path-ftp",
    ),
    pytest.param(
        {"jobOutput": {"s3DataDestination": {"path": "s3://" + "b" * 252}}},
        "jobOutput.s3DataDestination.path",
        id="path-too-long",
    ),
    pytest.param(
        {
            "jobOutput": {
                "s3DataDestination": {
                    "path": S3_PATH,
                    "kmsKeyArn": "arn:aws:kms:us-east-1:123456789012:alias/mine",
                }
            }
        },
        "jobOutput.s3DataDestination.kmsKeyArn",
        id="kms-alias",
    ),
    pytest.param(
        {"jobOutput": {"s3DataDestination": {"path": S3_PATH, "kmsKeyArn": KMS_KEY + "k" * 2000}}},
        "jobOutput.s3DataDestination.kmsKeyArn",
        id="kms-too-long",
    ),
    pytest.param({"tags": tags(201)}, "'tags'", id="too-many-tags"),
    pytest.param({"tags": [{"tagKey": "k" * 129, "tagValue": ""}]}, "tagKey", id="key-long"),
    pytest.param({"tags": [{"tagKey": "a#b", "tagValue": ""}]}, "tagKey", id="key-pattern"),
    pytest.param({"tags": [{"tagKey": "aws:owner", "tagValue": ""}]}, "tagKey", id="key-aws"),
    pytest.param({"tags": [{"tagKey": "AWS:owner", "tagValue": ""}]}, "tagKey", id="key-AWS"),
    pytest.param({"tags": [{"tagKey": "k", "tagValue": "v" * 257}]}, "tagValue", id="value-long"),
    pytest.param({"tags": [{"tagKey": "k", "tagValue": "a!"}]}, "tagValue", id="value-pattern"),
]


@pytest.mark.parametrize(("overrides", "field"), INVALID_CREATES)
def test_create_validation(
    standin: PersonalizeStandIn, client: Any, overrides: dict[str, Any], field: str
) -> None:
    with pytest.raises(ClientError) as excinfo:
        client.create_dataset_export_job(**create_args(**overrides))
    code, status, message = error_of(excinfo)
    assert (code, status) == ("InvalidInputException", 400)
    assert message.startswith("1 validation error detected: Value ")
    assert field in message
    assert standin.jobs == {}


MISSING_FIELDS = [
    pytest.param({"jobName": None}, "'jobName'", id="jobName"),
    pytest.param({"jobName": ""}, "'jobName'", id="jobName-empty"),
    pytest.param({"datasetArn": None}, "'datasetArn'", id="datasetArn"),
    pytest.param({"roleArn": None}, "'roleArn'", id="roleArn"),
    pytest.param({"jobOutput": None}, "'jobOutput'", id="jobOutput"),
    pytest.param({"jobOutput": {}}, "'jobOutput.s3DataDestination'", id="s3DataDestination"),
    pytest.param(
        {"jobOutput": {"s3DataDestination": {}}}, "'jobOutput.s3DataDestination.path'", id="path"
    ),
    pytest.param({"tags": [{"tagKey": "k"}]}, "'tags.1.member.tagValue'", id="tagValue"),
]


@pytest.mark.parametrize(("overrides", "field"), MISSING_FIELDS)
def test_create_requires_fields_server_side(
    raw_client: Any, overrides: dict[str, Any], field: str
) -> None:
    args = {k: v for k, v in create_args(**overrides).items() if v is not None}
    with pytest.raises(ClientError) as excinfo:
        raw_client.create_dataset_export_job(**args)
    code, _, message = error_of(excinfo)
    assert code == "InvalidInputException"
    assert field in message


def test_all_violations_are_reported_together(client: Any) -> None:
    with pytest.raises(ClientError) as excinfo:
        client.create_dataset_export_job(**create_args("-x", roleArn="role"))
    message = error_of(excinfo)[2]
    assert message.startswith("2 validation errors detected: ")
    assert "'jobName'" in message
    assert "'roleArn'" in message


VALID_EDGES = [
    pytest.param({"jobName": "j" * 63}, id="name-63"),
    pytest.param({"jobName": "0_a-B"}, id="name-digit-underscore"),
    pytest.param({"datasetArn": "arn:aws-cn:personalize:cn-north-1:1:dataset/x"}, id="aws-cn"),
    pytest.param({"roleArn": "arn:aws-us-gov:iam::123456789012:role/a/b+c=d,e.f@g"}, id="role"),
    pytest.param({"jobOutput": {"s3DataDestination": {"path": "https://b/p"}}}, id="https"),
    pytest.param(
        {
            "jobOutput": {
                "s3DataDestination": {
                    "path": S3_PATH,
                    "kmsKeyArn": "arn:aws-us-gov:kms:us-gov-west-1:123456789012:key/k",
                }
            }
        },
        id="kms-gov",
    ),
    pytest.param({"tags": tags(200)}, id="200-tags"),
    pytest.param({"tags": [{"tagKey": "Größe ü 日本 ٣", "tagValue": ""}]}, id="unicode-tags"),
    pytest.param({"tags": [{"tagKey": "a_.:/=+-@", "tagValue": "x" * 256}]}, id="tag-symbols"),
    pytest.param({"tags": [{"tagKey": "awsome", "tagValue": "aws:ok"}]}, id="aws-not-prefix"),
]


@pytest.mark.parametrize("overrides", VALID_EDGES)
def test_create_accepts_valid_edge_values(
    standin: PersonalizeStandIn, client: Any, overrides: dict[str, Any]
) -> None:
    arn = client.create_dataset_export_job(**create_args(**overrides))["datasetExportJobArn"]
    assert arn in standin.jobs


def test_unknown_dataset_is_not_found_when_datasets_are_declared(
    standin: PersonalizeStandIn, client: Any
) -> None:
    standin.datasets = {DATASET}
    client.create_dataset_export_job(**create_args("known"))
    with pytest.raises(ClientError) as excinfo:
        client.create_dataset_export_job(**create_args("unknown", datasetArn=OTHER_DATASET))
    assert error_of(excinfo) == (
        "ResourceNotFoundException",
        400,
        f"Could not find resource with ARN {OTHER_DATASET}",
    )
    assert list(standin.jobs) == [standin.job_arn("known")]


# --- DescribeDatasetExportJob --------------------------------------------------------------------


def test_describe_advances_then_returns(standin: PersonalizeStandIn, client: Any) -> None:
    arn = client.create_dataset_export_job(**create_args())["datasetExportJobArn"]
    assert statuses(client, arn, 3) == [IN_PROGRESS, ACTIVE, ACTIVE]
    assert standin.jobs[arn].polls == 3
    assert "failureReason" not in describe(client, arn)


def test_polls_per_state_slows_progression() -> None:
    with PersonalizeStandIn(polls_per_state=2) as standin:
        client = standin.client()
        arn = client.create_dataset_export_job(**create_args())["datasetExportJobArn"]
        assert statuses(client, arn, 5) == [PENDING, IN_PROGRESS, IN_PROGRESS, ACTIVE, ACTIVE]


def test_polls_per_state_must_be_positive() -> None:
    with pytest.raises(ValueError, match="polls_per_state"):
        PersonalizeStandIn(polls_per_state=0)


def test_status_change_updates_last_updated_time(standin: PersonalizeStandIn, client: Any) -> None:
    arn = client.create_dataset_export_job(**create_args())["datasetExportJobArn"]
    standin.jobs[arn].last_updated_date_time -= 60
    before = standin.jobs[arn].last_updated_date_time
    job = describe(client, arn)
    assert job["lastUpdatedDateTime"].timestamp() > before + 30


def test_fail_next_job_fails_only_the_next_job(client: Any, standin: PersonalizeStandIn) -> None:
    standin.fail_next_job("Insufficient privileges on the bucket")
    failed = client.create_dataset_export_job(**create_args("a"))["datasetExportJobArn"]
    healthy = client.create_dataset_export_job(**create_args("b"))["datasetExportJobArn"]
    assert statuses(client, failed, 2) == [IN_PROGRESS, FAILED]
    assert describe(client, failed)["failureReason"] == "Insufficient privileges on the bucket"
    assert statuses(client, healthy, 2) == [IN_PROGRESS, ACTIVE]


def test_never_finish_next_job(client: Any, standin: PersonalizeStandIn) -> None:
    standin.never_finish_next_job()
    stuck = client.create_dataset_export_job(**create_args("a"))["datasetExportJobArn"]
    healthy = client.create_dataset_export_job(**create_args("b"))["datasetExportJobArn"]
    assert set(statuses(client, stuck, 10)[1:]) == {IN_PROGRESS}
    assert statuses(client, healthy, 2)[-1] == ACTIVE


def test_describe_unknown_job_is_not_found(client: Any, standin: PersonalizeStandIn) -> None:
    arn = standin.job_arn("missing")
    with pytest.raises(ClientError) as excinfo:
        describe(client, arn)
    assert error_of(excinfo) == (
        "ResourceNotFoundException",
        400,
        f"Could not find resource with ARN {arn}",
    )


def test_describe_validates_the_arn(client: Any) -> None:
    with pytest.raises(ClientError) as excinfo:
        describe(client, "not-an-arn")
    code, _, message = error_of(excinfo)
    assert code == "InvalidInputException"
    assert "'datasetExportJobArn'" in message


# --- ListDatasetExportJobs and ListTagsForResource -----------------------------------------------


def test_list_paginates_in_creation_order(client: Any) -> None:
    names = [f"job-{index}" for index in range(5)]
    for name in names:
        client.create_dataset_export_job(**create_args(name))
    pages = []
    kwargs: dict[str, Any] = {"maxResults": 2}
    while True:
        page = client.list_dataset_export_jobs(**kwargs)
        pages.append([job["jobName"] for job in page["datasetExportJobs"]])
        if "nextToken" not in page:
            break
        kwargs["nextToken"] = page["nextToken"]
    assert pages == [names[:2], names[2:4], names[4:]]


def test_list_works_with_the_boto3_paginator(client: Any) -> None:
    for index in range(3):
        client.create_dataset_export_job(**create_args(f"job-{index}"))
    paginator = client.get_paginator("list_dataset_export_jobs")
    pages = list(paginator.paginate(PaginationConfig={"PageSize": 1}))
    assert [len(page["datasetExportJobs"]) for page in pages] == [1, 1, 1]


def test_list_filters_by_dataset_and_returns_summaries(
    client: Any, standin: PersonalizeStandIn
) -> None:
    standin.fail_next_job("boom")
    arn = client.create_dataset_export_job(**create_args("a"))["datasetExportJobArn"]
    client.create_dataset_export_job(**create_args("b", datasetArn=OTHER_DATASET))
    statuses(client, arn, 2)
    summaries = client.list_dataset_export_jobs(datasetArn=DATASET)["datasetExportJobs"]
    assert len(summaries) == 1
    assert set(summaries[0]) == {
        "datasetExportJobArn",
        "jobName",
        "status",
        "creationDateTime",
        "lastUpdatedDateTime",
        "failureReason",
    }
    assert (summaries[0]["status"], summaries[0]["failureReason"]) == (FAILED, "boom")


def test_list_does_not_advance_jobs(client: Any) -> None:
    client.create_dataset_export_job(**create_args())
    client.list_dataset_export_jobs()
    assert client.list_dataset_export_jobs()["datasetExportJobs"][0]["status"] == PENDING


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"maxResults": 101}, "InvalidInputException"),
        ({"nextToken": "garbage"}, "InvalidNextTokenException"),
        ({"datasetArn": "arn:aws:s3:::b"}, "InvalidInputException"),
    ],
)
def test_list_rejects_bad_arguments(client: Any, kwargs: dict[str, Any], code: str) -> None:
    with pytest.raises(ClientError) as excinfo:
        client.list_dataset_export_jobs(**kwargs)
    assert error_of(excinfo)[:2] == (code, 400)


def test_tags_round_trip(client: Any, standin: PersonalizeStandIn) -> None:
    job_tags = [{"tagKey": "team", "tagValue": "recs"}, {"tagKey": "empty", "tagValue": ""}]
    tagged = client.create_dataset_export_job(**create_args("a", tags=job_tags))
    untagged = client.create_dataset_export_job(**create_args("b"))
    listed = client.list_tags_for_resource(resourceArn=tagged["datasetExportJobArn"])
    assert listed["tags"] == job_tags
    assert client.list_tags_for_resource(resourceArn=untagged["datasetExportJobArn"])["tags"] == []
    assert "tags" not in describe(client, tagged["datasetExportJobArn"])
    with pytest.raises(ClientError) as excinfo:
        client.list_tags_for_resource(resourceArn=standin.job_arn("missing"))
    assert error_of(excinfo)[0] == "ResourceNotFoundException"


# --- fault injection -----------------------------------------------------------------------------


def test_throttle_next_only_hits_the_named_operation(
    client: Any, standin: PersonalizeStandIn
) -> None:
    standin.throttle_next(2, operation=DESCRIBE)
    arn = client.create_dataset_export_job(**create_args())["datasetExportJobArn"]
    for _ in range(2):
        with pytest.raises(ClientError) as excinfo:
            describe(client, arn)
        assert error_of(excinfo) == ("ThrottlingException", 400, "Rate exceeded")
    assert describe(client, arn)["status"] == IN_PROGRESS


@pytest.mark.parametrize(
    ("status", "code"), [(500, "InternalFailure"), (503, "ServiceUnavailable")]
)
def test_server_error_next(
    client: Any, standin: PersonalizeStandIn, status: int, code: str
) -> None:
    standin.server_error_next(status=status)
    with pytest.raises(ClientError) as excinfo:
        client.list_dataset_export_jobs()
    assert error_of(excinfo)[:2] == (code, status)
    assert client.list_dataset_export_jobs()["datasetExportJobs"] == []
    assert standin.operations() == [LIST, LIST]


def test_injected_errors_are_consumed_in_fifo_order(
    client: Any, standin: PersonalizeStandIn
) -> None:
    standin.inject_error("LimitExceededException", operation=CREATE, message="too many")
    standin.inject_error("AccessDeniedException", message="first any")
    standin.inject_error("ResourceInUseException", message="second any")
    with pytest.raises(ClientError) as first:
        client.list_dataset_export_jobs()
    with pytest.raises(ClientError) as second:
        client.create_dataset_export_job(**create_args())
    with pytest.raises(ClientError) as third:
        client.create_dataset_export_job(**create_args())
    assert [error_of(e)[::2] for e in (first, second, third)] == [
        ("AccessDeniedException", "first any"),
        ("LimitExceededException", "too many"),
        ("ResourceInUseException", "second any"),
    ]
    assert client.create_dataset_export_job(**create_args())["datasetExportJobArn"]


def test_faulted_create_has_no_effect(client: Any, standin: PersonalizeStandIn) -> None:
    standin.inject_error("TooManyTagsException", operation=CREATE)
    with pytest.raises(ClientError):
        client.create_dataset_export_job(**create_args())
    assert standin.jobs == {}


def test_take_effect_applies_the_call_before_failing(
    client: Any, standin: PersonalizeStandIn
) -> None:
    standin.inject_error("InternalFailure", status=500, operation=CREATE, take_effect=True)
    with pytest.raises(ClientError) as lost:
        client.create_dataset_export_job(**create_args())
    with pytest.raises(ClientError) as retried:
        client.create_dataset_export_job(**create_args())
    assert error_of(lost)[:2] == ("InternalFailure", 500)
    assert error_of(retried)[0] == "ResourceAlreadyExistsException"
    assert list(standin.jobs) == [standin.job_arn("export-1")]


@pytest.mark.parametrize("take_effect", [False, True])
def test_dropped_connection_raises_connection_closed(
    client: Any, standin: PersonalizeStandIn, take_effect: bool
) -> None:
    standin.drop_connection_next(operation=CREATE, take_effect=take_effect)
    with pytest.raises(ConnectionClosedError):
        client.create_dataset_export_job(**create_args())
    assert list(standin.jobs) == ([standin.job_arn("export-1")] if take_effect else [])
    assert client.list_dataset_export_jobs()["datasetExportJobs"] is not None
    assert standin.answers() == [f"{CREATE}:DROPPED", LIST]


@pytest.mark.parametrize("code", ["ResourceInUseException", "LimitExceededException"])
def test_refusals_by_code_have_no_effect(
    client: Any, standin: PersonalizeStandIn, code: str
) -> None:
    standin.inject_error(code, operation=CREATE, count=2)
    for _ in range(2):
        with pytest.raises(ClientError) as excinfo:
            client.create_dataset_export_job(**create_args())
        assert error_of(excinfo)[:2] == (code, 400)
    client.create_dataset_export_job(**create_args())
    assert standin.answers() == [f"{CREATE}:{code}", f"{CREATE}:{code}", CREATE]


def test_answers_name_the_error_of_each_call(client: Any, standin: PersonalizeStandIn) -> None:
    standin.server_error_next(operation=DESCRIBE, status=503)
    arn = client.create_dataset_export_job(**create_args())["datasetExportJobArn"]
    with pytest.raises(ClientError):
        describe(client, arn)
    with pytest.raises(ClientError):
        client.create_dataset_export_job(**create_args())
    assert standin.answers() == [
        CREATE,
        f"{DESCRIBE}:ServiceUnavailable",
        f"{CREATE}:ResourceAlreadyExistsException",
    ]


def test_seed_job_is_describable_and_not_logged(client: Any, standin: PersonalizeStandIn) -> None:
    arn = standin.seed_job("old", OTHER_DATASET, "s3://elsewhere/", ingestion_mode="ALL")
    job = describe(client, arn)
    assert (job["datasetArn"], job["ingestionMode"], job["status"]) == (
        OTHER_DATASET,
        "ALL",
        ACTIVE,
    )
    assert job["jobOutput"] == {"s3DataDestination": {"path": "s3://elsewhere/"}}
    assert standin.operations() == [DESCRIBE]


def test_reset_faults_drops_errors_and_outcomes(client: Any, standin: PersonalizeStandIn) -> None:
    standin.throttle_next(5)
    standin.fail_next_job("boom")
    standin.never_finish_next_job()
    standin.reset_faults()
    arn = client.create_dataset_export_job(**create_args())["datasetExportJobArn"]
    assert statuses(client, arn, 2) == [IN_PROGRESS, ACTIVE]


# --- calls log, protocol and lifecycle -----------------------------------------------------------


def test_calls_log_every_request_including_faulted_ones(
    client: Any, standin: PersonalizeStandIn
) -> None:
    standin.throttle_next(operation=DESCRIBE)
    arn = client.create_dataset_export_job(**create_args())["datasetExportJobArn"]
    with pytest.raises(ClientError):
        describe(client, arn)
    describe(client, arn)
    assert standin.operations() == [CREATE, DESCRIBE, DESCRIBE]
    assert standin.calls[0] == Call(CREATE, create_args())
    assert standin.calls[1].body == {"datasetExportJobArn": arn}
    with pytest.raises(AttributeError):
        standin.calls[0].operation = "x"  # type: ignore[misc]


def post(standin: PersonalizeStandIn, target: str, body: bytes) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(
        standin.endpoint_url, data=body, headers={"X-Amz-Target": target}, method="POST"
    )
    try:
        with urllib.request.urlopen(request) as response:
            return response.status, json.loads(response.read())
    except HTTPError as error:
        return error.code, json.loads(error.read())


def test_unknown_operation_and_bad_json(standin: PersonalizeStandIn) -> None:
    unknown = post(standin, "AmazonPersonalize.DeleteDatasetExportJob", b"{}")
    bad_json = post(standin, f"AmazonPersonalize.{CREATE}", b"{not json")
    assert (unknown[0], unknown[1]["__type"]) == (400, "UnknownOperationException")
    assert (bad_json[0], bad_json[1]["__type"]) == (400, "SerializationException")
    assert standin.operations() == ["DeleteDatasetExportJob", CREATE]


def test_concurrent_creates_with_one_name_succeed_once(standin: PersonalizeStandIn) -> None:
    clients = [standin.client() for _ in range(8)]
    outcomes: list[str] = []

    def create(client: Any) -> None:
        try:
            client.create_dataset_export_job(**create_args("race"))
            outcomes.append("created")
        except ClientError as error:
            outcomes.append(error.response["Error"]["Code"])

    threads = [threading.Thread(target=create, args=(c,)) for c in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["ResourceAlreadyExistsException"] * 7 + ["created"]


def test_stop_closes_the_endpoint() -> None:
    standin = PersonalizeStandIn().start()
    client = standin.client()
    assert client.list_dataset_export_jobs()["datasetExportJobs"] == []
    standin.stop()
    standin.stop()
    with pytest.raises(EndpointConnectionError):
        client.list_dataset_export_jobs()
    with pytest.raises(RuntimeError):
        _ = standin.endpoint_url


# --- IAM's lag -----------------------------------------------------------------------------------

HANDLER_ROLE = "arn:aws:iam::123456789012:role/Stack-HandlerRole"
BUCKET = "arn:aws:s3:::bucket"
KMS_OUTPUT = {"s3DataDestination": {"path": S3_PATH, "kmsKeyArn": KMS_KEY}}


class VirtualClock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class TimeOnly:
    def time(self) -> float:
        return 9.0


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


@pytest.fixture
def lagging(clock: VirtualClock) -> Iterator[PersonalizeStandIn]:
    with PersonalizeStandIn(iam_lag_seconds=30, clock=clock) as running:
        yield running


def test_the_clock_dates_jobs_and_changes(lagging: PersonalizeStandIn, clock: VirtualClock) -> None:
    client = lagging.client()
    arn = client.create_dataset_export_job(**create_args())["datasetExportJobArn"]
    clock.now += 42
    job = describe(client, arn)
    assert job["creationDateTime"].timestamp() == 1_800_000_000.0
    assert job["lastUpdatedDateTime"].timestamp() == 1_800_000_042.0
    lagging.iam_changed(ROLE)
    lagging.iam_changed(BUCKET, at=5.0)
    assert lagging.iam_changes == {ROLE: 1_800_000_042.0, BUCKET: 5.0}
    lagging.clock = lambda: 7.0
    assert lagging.now() == 7.0
    lagging.clock = TimeOnly()  # an object with time(), as bench/'s FakeClock
    assert lagging.now() == 9.0
    lagging.iam_changed(KMS_KEY)
    assert lagging.iam_changes[KMS_KEY] == 9.0


def test_changes_mean_nothing_without_a_lag(standin: PersonalizeStandIn, client: Any) -> None:
    assert standin.iam_lag_seconds == 0.0
    standin.caller_role_arn = HANDLER_ROLE
    for arn in (HANDLER_ROLE, ROLE, BUCKET, KMS_KEY):
        standin.iam_changed(arn)
    arn = client.create_dataset_export_job(**create_args(jobOutput=KMS_OUTPUT))[
        "datasetExportJobArn"
    ]
    assert statuses(client, arn, 2) == [IN_PROGRESS, ACTIVE]


def test_a_young_caller_role_is_refused_every_call_until_the_lag_passes(
    lagging: PersonalizeStandIn, clock: VirtualClock
) -> None:
    client = lagging.client()
    lagging.caller_role_arn = HANDLER_ROLE
    lagging.iam_changed(HANDLER_ROLE)
    clock.now += 29.9
    with pytest.raises(ClientError) as excinfo:
        client.create_dataset_export_job(**create_args())
    assert error_of(excinfo) == (
        "AccessDeniedException",
        400,
        "User: arn:aws:sts::123456789012:assumed-role/Stack-HandlerRole/handler is not authorized"
        " to perform: personalize:CreateDatasetExportJob on resource: "
        "arn:aws:personalize:us-east-1:123456789012:dataset-export-job/export-1",
    )
    with pytest.raises(ClientError) as excinfo:
        describe(client, lagging.job_arn("export-1"))
    assert "personalize:DescribeDatasetExportJob on resource: arn:" in error_of(excinfo)[2]
    assert lagging.jobs == {}
    clock.now += 0.1
    arn = client.create_dataset_export_job(**create_args())["datasetExportJobArn"]
    assert statuses(client, arn, 2) == [IN_PROGRESS, ACTIVE]
    assert lagging.answers() == [
        f"{CREATE}:AccessDeniedException",
        f"{DESCRIBE}:AccessDeniedException",
        CREATE,
        DESCRIBE,
        DESCRIBE,
    ]


def test_the_caller_may_see_another_lag(lagging: PersonalizeStandIn, clock: VirtualClock) -> None:
    client = lagging.client()
    lagging.caller_role_arn = HANDLER_ROLE
    lagging.caller_lag_seconds = 0
    lagging.iam_changed(HANDLER_ROLE)
    lagging.iam_changed(ROLE)
    arn = client.create_dataset_export_job(**create_args())["datasetExportJobArn"]
    assert statuses(client, arn, 2) == [IN_PROGRESS, FAILED]


ROLE_REASON = (
    "Failed to create a dataset export job for INTERACTIONS dataset. Insufficient privileges: "
    f"Amazon Personalize could not assume role {ROLE}. Make sure the role exists and trusts "
    "personalize.amazonaws.com."
)
BUCKET_REASON = (
    "Failed to create a dataset export job for INTERACTIONS dataset. Insufficient privileges for "
    "accessing data in Amazon S3."
)
KEY_REASON = (
    "Failed to create a dataset export job for INTERACTIONS dataset. Insufficient privileges for "
    f"using the AWS KMS key {KMS_KEY}. Make sure the key policy allows Amazon Personalize and the "
    "role to use it."
)


@pytest.mark.parametrize(
    ("changed", "reason"),
    [(ROLE, ROLE_REASON), (BUCKET, BUCKET_REASON), (KMS_KEY, KEY_REASON)],
    ids=["role", "bucket-policy", "key-policy"],
)
def test_a_job_using_a_young_role_bucket_or_key_fails_for_access(
    lagging: PersonalizeStandIn, clock: VirtualClock, changed: str, reason: str
) -> None:
    client = lagging.client()
    lagging.iam_changed(changed)
    failed = client.create_dataset_export_job(**create_args("a", jobOutput=KMS_OUTPUT))
    assert statuses(client, failed["datasetExportJobArn"], 2) == [IN_PROGRESS, FAILED]
    assert describe(client, failed["datasetExportJobArn"])["failureReason"] == reason
    clock.now += 30
    healthy = client.create_dataset_export_job(**create_args("b", jobOutput=KMS_OUTPUT))
    assert statuses(client, healthy["datasetExportJobArn"], 2) == [IN_PROGRESS, ACTIVE]


def test_a_young_key_matters_only_to_jobs_that_use_it(lagging: PersonalizeStandIn) -> None:
    client = lagging.client()
    lagging.iam_changed(KMS_KEY)
    arn = client.create_dataset_export_job(**create_args())["datasetExportJobArn"]
    assert statuses(client, arn, 2) == [IN_PROGRESS, ACTIVE]


def test_access_checked_at_create_refuses_with_the_import_api_s_wording(
    clock: VirtualClock,
) -> None:
    with PersonalizeStandIn(iam_lag_seconds=30, clock=clock) as standin:
        standin.access_checked_at_create = True
        client = standin.client()
        standin.iam_changed(BUCKET)
        with pytest.raises(ClientError) as excinfo:
            client.create_dataset_export_job(**create_args())
        assert error_of(excinfo) == (
            "InvalidInputException",
            400,
            "Insufficient privileges for accessing data in S3. Please look at "
            "https://docs.aws.amazon.com/personalize/latest/dg/granting-personalize-s3-access.html"
            "#attach-bucket-policy and fix bucket policy on bucket.",
        )
        assert standin.jobs == {}


def test_a_queued_outcome_waits_for_a_job_that_runs(
    lagging: PersonalizeStandIn, clock: VirtualClock
) -> None:
    client = lagging.client()
    lagging.fail_next_job("no data to export")
    lagging.iam_changed(ROLE)
    young = client.create_dataset_export_job(**create_args("a"))["datasetExportJobArn"]
    clock.now += 60
    later = client.create_dataset_export_job(**create_args("b"))["datasetExportJobArn"]
    assert describe(client, young)["status"] == IN_PROGRESS
    assert statuses(client, young, 1) == [FAILED]
    assert describe(client, young)["failureReason"] == ROLE_REASON
    assert statuses(client, later, 2) == [IN_PROGRESS, FAILED]
    assert describe(client, later)["failureReason"] == "no data to export"


def test_the_job_limit_refuses_creates_beyond_it_until_a_job_ends(
    standin: PersonalizeStandIn, client: Any
) -> None:
    standin.max_jobs_in_progress = 2
    arns = [
        client.create_dataset_export_job(**create_args(f"job-{n}"))["datasetExportJobArn"]
        for n in range(2)
    ]

    with pytest.raises(ClientError) as refused:
        client.create_dataset_export_job(**create_args("job-2"))
    assert refused.value.response["Error"]["Code"] == "LimitExceededException"
    for _ in range(2):
        client.describe_dataset_export_job(datasetExportJobArn=arns[0])
    client.create_dataset_export_job(**create_args("job-2"))
    assert standin.most_jobs_in_progress == 2


def test_every_nth_request_is_throttled(standin: PersonalizeStandIn, client: Any) -> None:
    standin.throttle_every = 3
    arn = client.create_dataset_export_job(**create_args("job"))["datasetExportJobArn"]
    client.describe_dataset_export_job(datasetExportJobArn=arn)

    with pytest.raises(ClientError) as throttled:
        client.describe_dataset_export_job(datasetExportJobArn=arn)
    assert throttled.value.response["Error"]["Code"] == "ThrottlingException"
    assert standin.answers()[-1] == "DescribeDatasetExportJob:ThrottlingException"


def test_a_job_with_a_duration_ends_by_the_clock_not_by_describes() -> None:
    now = [1000.0]
    with PersonalizeStandIn(clock=lambda: now[0]) as timed:
        timed.job_seconds = 3600
        timed_client = timed.client()
        arn = timed_client.create_dataset_export_job(**create_args())["datasetExportJobArn"]

        def status() -> str:
            job = timed_client.describe_dataset_export_job(datasetExportJobArn=arn)
            return str(job["datasetExportJob"]["status"])

        assert [status(), status()] == [PENDING, PENDING]
        now[0] += 360
        assert status() == IN_PROGRESS
        now[0] += 3239
        assert status() == IN_PROGRESS
        now[0] += 1
        assert status() == ACTIVE
