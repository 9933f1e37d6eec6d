"""The handler's functions against the stand-in, through the handler's own boto3 client."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    EndpointConnectionError,
    NoCredentialsError,
    ParamValidationError,
    ReadTimeoutError,
)
from deploy_sim import CREATE_FAILED_MARKER, STACK_ID, FakeClock
from personalize_standin import ACTIVE, IN_PROGRESS, PersonalizeStandIn

from personalize_export.runtime.export_job import handler
from personalize_export.runtime.export_job import personalize as api
from personalize_export.runtime.export_job.contract import (
    DEADLINE_FIELD,
    IAM_SETTLING_SECONDS,
    JOB_NAME_MAX_LENGTH,
    JOB_NAME_PATTERN,
    MAX_MESSAGE_BYTES,
    SETTLING_FIELD,
    Attr,
    Prop,
)
from personalize_export.runtime.export_job.request import ExportRequest, job_name_for

DATASET = "arn:aws:personalize:us-east-1:123456789012:dataset/dg/INTERACTIONS"
ROLE = "arn:aws:iam::123456789012:role/PersonalizeExport"
PATH = "s3://bucket/exports/"
RESPONSE_URL = "https://cloudformation-custom-resource-response.example/presigned?sig=secret"
CREATE = "CreateDatasetExportJob"
DESCRIBE = "DescribeDatasetExportJob"


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(handler, "time", fake)
    return fake


@pytest.fixture
def live(standin: PersonalizeStandIn, clock: FakeClock) -> Iterator[PersonalizeStandIn]:
    """The stand-in, reached through the handler's own client (fresh, from the environment)."""
    api.use_client(None)
    yield standin
    api.use_client(None)


def properties(**overrides: Any) -> dict[str, Any]:
    props: dict[str, Any] = {
        "ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:framework-onEvent",
        Prop.DATASET_ARN: DATASET,
        Prop.INGESTION_MODE: "BULK",
        Prop.ROLE_ARN: ROLE,
        Prop.OUTPUT_PATH: PATH,
        Prop.JOB_NAME_PREFIX: "Stack-Export",
        Prop.TIMEOUT_SECONDS: "300",
    }
    props.update(overrides)
    return props


def event(request_type: str = "Create", **fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "RequestType": request_type,
        "ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:framework-onEvent",
        "ResponseURL": RESPONSE_URL,
        "StackId": STACK_ID,
        "RequestId": "11111111-2222-3333-4444-555555555555",
        "LogicalResourceId": "Export1234ABCD",
        "ResourceType": "Custom::PersonalizeDatasetExportJob",
        "ResourceProperties": properties(),
    }
    base.update(fields)
    return base


def poll_event(start: dict[str, Any], answer: dict[str, Any]) -> dict[str, Any]:
    """What the framework hands isComplete: the event with onEvent's answer merged in."""
    merged: dict[str, Any] = json.loads(json.dumps({**start, **answer}))
    return merged


# --- create → poll → ACTIVE ----------------------------------------------------------------------


def test_create_then_polls_until_active_with_every_attribute(
    live: PersonalizeStandIn, clock: FakeClock
) -> None:
    start = event()
    answer = handler.on_event(start)
    (arn,) = live.jobs
    assert answer["PhysicalResourceId"] == arn
    assert answer[DEADLINE_FIELD] == str(int(clock.time()) + 300)

    polls = [handler.is_complete(poll_event(start, answer)) for _ in range(2)]

    assert polls[0] == {"IsComplete": False}
    assert polls[1] == {
        "IsComplete": True,
        "Data": {
            Attr.JOB_ARN: arn,
            Attr.JOB_NAME: arn.rsplit("/", 1)[1],
            Attr.OUTPUT_PATH: PATH,
            Attr.STATUS: ACTIVE,
            Attr.DATASET_ARN: DATASET,
            Attr.INGESTION_MODE: "BULK",
        },
    }
    assert live.operations() == [CREATE, DESCRIBE, DESCRIBE]
    body = live.calls[0].body
    assert body["jobOutput"] == {"s3DataDestination": {"path": PATH}}
    assert (body["ingestionMode"], body["roleArn"]) == ("BULK", ROLE)


def test_every_answer_is_json_with_string_data(live: PersonalizeStandIn) -> None:
    start = event(ResourceProperties=properties(Tags=[{"tagKey": "team", "tagValue": "ml"}]))
    answers = [handler.on_event(start)]
    answers += [handler.is_complete(poll_event(start, answers[0])) for _ in range(2)]
    for answer in answers:
        assert json.loads(json.dumps(answer)) == answer
    assert all(isinstance(value, str) for value in answers[-1]["Data"].values())
    (job,) = live.jobs.values()
    assert job.tags == [{"tagKey": "team", "tagValue": "ml"}]


def test_missing_timeout_sets_no_deadline_of_its_own(
    live: PersonalizeStandIn, clock: FakeClock
) -> None:
    live.never_finish_next_job()
    props = {k: v for k, v in properties().items() if k != Prop.TIMEOUT_SECONDS}
    start = event(ResourceProperties=props)
    answer = handler.on_event(start)
    assert DEADLINE_FIELD not in answer
    clock.advance(10 * 3600)
    assert handler.is_complete(poll_event(start, answer)) == {"IsComplete": False}


@pytest.mark.parametrize(("asked", "waited"), [(600, 600), (3300, 3300), (7200, 3300)])
def test_deadline_is_the_timeout_capped_inside_cloudformation_s_hour(
    live: PersonalizeStandIn, clock: FakeClock, asked: int, waited: int
) -> None:
    live.never_finish_next_job()
    start = event(ResourceProperties=properties(TimeoutSeconds=str(asked)))
    answer = handler.on_event(start)
    clock.advance(waited - 1)
    assert handler.is_complete(poll_event(start, answer)) == {"IsComplete": False}
    clock.advance(1)
    with pytest.raises(handler.ExportJobError) as excinfo:
        handler.is_complete(poll_event(start, answer))
    message = str(excinfo.value)
    assert f"was not ACTIVE within the {waited} s timeout (last status: {IN_PROGRESS})" in message
    assert "goes on running in Personalize" in message
    assert answer["PhysicalResourceId"] in message
    cut = f"The timeout asked for ({asked} s) was cut to 3300 s: CloudFormation waits at most"
    assert (cut in message) is (asked > waited)


def test_ingestion_mode_and_path_are_normalized_as_the_service_sees_them(
    live: PersonalizeStandIn,
) -> None:
    start = event(
        ResourceProperties=properties(IngestionMode=" all ", OutputPath="s3://bucket/exports")
    )
    handler.on_event(start)
    (job,) = live.jobs.values()
    assert (job.ingestion_mode, job.job_output["s3DataDestination"]["path"]) == ("ALL", PATH)


# --- derived job names ---------------------------------------------------------------------------

NAME_SOURCES = [
    pytest.param("Export1234ABCD", "", id="logical-id"),
    pytest.param("Export1234ABCD", "My-Stack-Nested-Export", id="prefix"),
    pytest.param("E", "-_leading-dashes", id="leading-dashes"),
    pytest.param("E", "with spaces/and.dots:colons", id="illegal-chars"),
    pytest.param("E", "日本語の名前", id="non-ascii-only"),
    pytest.param("E", "x" * 200, id="long-prefix"),
    pytest.param("E", "a" * 51 + "-" + "b" * 30, id="cut-at-dash"),
    pytest.param("0digit", "", id="digit-start"),
    pytest.param("_" * 5, "", id="underscores-only"),
]


@pytest.mark.parametrize(("logical_id", "prefix"), NAME_SOURCES)
def test_derived_names_are_valid_and_accepted(
    live: PersonalizeStandIn, logical_id: str, prefix: str
) -> None:
    start = event(LogicalResourceId=logical_id, ResourceProperties=properties(JobNamePrefix=prefix))
    name = job_name_for(ExportRequest.from_properties(start["ResourceProperties"]), start)
    assert re.fullmatch(JOB_NAME_PATTERN, name, re.ASCII)
    assert len(name) <= JOB_NAME_MAX_LENGTH
    assert handler.on_event(start)["PhysicalResourceId"] == live.job_arn(name)
    assert live.answers() == [CREATE]


def test_derived_names_are_the_same_for_a_retry_and_unique_otherwise() -> None:
    request = ExportRequest.from_properties(properties())
    variants = [
        event(),
        event(RequestId="11111111-2222-3333-4444-555555555556"),
        event(LogicalResourceId="Export1234ABCE"),
        event(StackId=STACK_ID.replace("Sim", "Other")),
    ]
    names = [job_name_for(request, variant) for variant in variants]
    assert len(set(names)) == len(names)
    assert job_name_for(request, event()) == names[0]


def test_a_user_job_name_is_used_as_given(live: PersonalizeStandIn) -> None:
    start = event(ResourceProperties=properties(JobName="nightly"))
    assert handler.on_event(start)["PhysicalResourceId"] == live.job_arn("nightly")


# --- errors --------------------------------------------------------------------------------------


def client_error(code: str, status: int = 400, message: str = "m") -> ClientError:
    response: Any = {
        "Error": {"Code": code, "Message": message},
        "ResponseMetadata": {"HTTPStatusCode": status},
    }
    return ClientError(response, CREATE)


CLASSIFIED = [
    pytest.param(client_error("ThrottlingException"), True, id="throttling"),
    pytest.param(client_error("TooManyRequestsException", 429), True, id="429"),
    pytest.param(client_error("InternalFailure", 500), True, id="500"),
    pytest.param(client_error("ServiceUnavailable", 503), True, id="503"),
    pytest.param(client_error("SomethingNew", 502), True, id="any-5xx"),
    pytest.param(client_error("ResourceInUseException"), True, id="in-use"),
    pytest.param(client_error("LimitExceededException"), True, id="limit"),
    pytest.param(ConnectionClosedError(endpoint_url="http://x"), True, id="connection-closed"),
    pytest.param(EndpointConnectionError(endpoint_url="http://x"), True, id="no-endpoint"),
    pytest.param(ReadTimeoutError(endpoint_url="http://x"), True, id="read-timeout"),
    pytest.param(client_error("InvalidInputException"), False, id="invalid-input"),
    pytest.param(client_error("ResourceNotFoundException", 404), False, id="not-found"),
    pytest.param(client_error("AccessDeniedException", 403), False, id="access-denied"),
    pytest.param(client_error("TooManyTagsException"), False, id="too-many-tags"),
    pytest.param(ParamValidationError(report="bad"), False, id="param-validation"),
    pytest.param(NoCredentialsError(), False, id="no-credentials"),
]


@pytest.mark.parametrize(("error", "transient"), CLASSIFIED)
def test_errors_are_classified(error: Exception, transient: bool) -> None:
    assert api.is_transient(error) is transient


ROLE_DENIED = (
    "User: arn:aws:sts::123456789012:assumed-role/HandlerRole/fn is not authorized to perform: "
    "personalize:CreateDatasetExportJob on resource: arn:aws:personalize:us-east-1:123456789012:"
    "dataset-export-job/x"
)
ACCESS_REFUSALS = [
    pytest.param(client_error("AccessDeniedException", 400, ROLE_DENIED), True, id="denied"),
    pytest.param(client_error("AccessDenied", 403), True, id="denied-s3-style"),
    pytest.param(
        client_error("InvalidInputException", 400, "Insufficient privileges for accessing data"),
        True,
        id="invalid-input-privileges",
    ),
    pytest.param(
        client_error("InvalidInputException", 400, "Could not assume role arn:aws:iam::1:role/r"),
        True,
        id="invalid-input-assume-role",
    ),
    pytest.param(
        client_error("InvalidInputException", 400, "1 validation error detected: Value 'x'"),
        False,
        id="invalid-input-validation",
    ),
    pytest.param(client_error("ThrottlingException"), False, id="throttling"),
    pytest.param(client_error("ResourceNotFoundException", 404, "no permission"), False, id="nf"),
]


@pytest.mark.parametrize(("error", "refusal"), ACCESS_REFUSALS)
def test_access_refusals_are_recognized(error: Exception, refusal: bool) -> None:
    assert api.is_access_refusal(error) is refusal


def test_client_side_validation_fails_at_once_with_a_hint(live: PersonalizeStandIn) -> None:
    bad_tags = properties(Tags=[{"tagKey": "", "tagValue": "v"}])
    with pytest.raises(handler.ExportJobError) as excinfo:
        handler.on_event(event(ResourceProperties=bad_tags))
    assert "Parameter validation failed" in str(excinfo.value)
    assert "check the DatasetExportJob settings" in str(excinfo.value)
    assert live.calls == []


def test_onevent_throttled_is_deferred_and_the_poll_starts_the_job(
    live: PersonalizeStandIn,
) -> None:
    live.throttle_next(operation=CREATE)
    start = event()
    answer = handler.on_event(start)
    assert live.jobs == {}
    assert handler.is_complete(poll_event(start, answer)) == {"IsComplete": False}
    assert list(live.jobs) == [answer["PhysicalResourceId"]]
    assert live.answers() == [
        f"{CREATE}:ThrottlingException",
        f"{DESCRIBE}:ResourceNotFoundException",
        CREATE,
    ]


# --- IAM settling (issue 12) ---------------------------------------------------------------------

ACCESS_REASON = "Insufficient privileges for accessing data in Amazon S3."


def polls(start: dict[str, Any], answer: dict[str, Any], count: int) -> list[dict[str, Any]]:
    return [handler.is_complete(poll_event(start, answer)) for _ in range(count)]


def test_create_access_denied_is_retried_while_iam_settles_then_fails_as_today(
    live: PersonalizeStandIn, clock: FakeClock
) -> None:
    live.inject_error("AccessDeniedException", count=100, operation=CREATE, message=ROLE_DENIED)
    start = event()
    answer = handler.on_event(start)
    assert answer[SETTLING_FIELD] == str(int(clock.time()) + IAM_SETTLING_SECONDS)
    for _ in range(IAM_SETTLING_SECONDS // 30):
        assert handler.is_complete(poll_event(start, answer)) == {"IsComplete": False}
        clock.advance(30)
    with pytest.raises(handler.ExportJobError) as excinfo:
        handler.is_complete(poll_event(start, answer))
    message = str(excinfo.value)
    arn = answer["PhysicalResourceId"]
    assert message.startswith(f"Could not start export job {arn}: An error occurred ")
    assert ROLE_DENIED in message
    assert api.HINTS["AccessDeniedException"] in message
    assert f"Still refused {IAM_SETTLING_SECONDS} s after this deploy" in message
    assert f"The export passes role {ROLE}." in message
    assert message.endswith("No export job was started.")
    assert live.jobs == {}


def test_an_update_that_changes_no_access_gets_no_settling_window(
    live: PersonalizeStandIn,
) -> None:
    live.inject_error("AccessDeniedException", operation=CREATE, message=ROLE_DENIED)
    old = properties()
    start = event(
        "Update",
        PhysicalResourceId=live.job_arn("Stack-Export-0123456789"),
        ResourceProperties=properties(IngestionMode="ALL"),
        OldResourceProperties=old,
    )
    with pytest.raises(handler.ExportJobError, match="AccessDeniedException") as excinfo:
        handler.on_event(start)
    assert "Still refused" not in str(excinfo.value)


@pytest.mark.parametrize(
    "changed",
    [
        {Prop.OUTPUT_PATH: "s3://bucket/elsewhere/"},
        {Prop.ROLE_ARN: "arn:aws:iam::123456789012:role/Other"},
        {Prop.KMS_KEY_ARN: "arn:aws:kms:us-east-1:123456789012:key/k"},
    ],
)
def test_an_update_of_role_path_or_key_settles_like_a_create(
    live: PersonalizeStandIn, clock: FakeClock, changed: dict[str, str]
) -> None:
    start = event(
        "Update",
        PhysicalResourceId=live.job_arn("Stack-Export-0123456789"),
        ResourceProperties=properties(**changed),
        OldResourceProperties=properties(),
    )
    live.seed_job("Stack-Export-0123456789", DATASET, PATH, role_arn=ROLE, ingestion_mode="BULK")
    live.inject_error("AccessDeniedException", operation=CREATE, message=ROLE_DENIED)
    answer = handler.on_event(start)
    assert answer[SETTLING_FIELD] == str(int(clock.time()) + IAM_SETTLING_SECONDS)
    assert polls(start, answer, 3)[-1]["IsComplete"] is True
    assert live.answers()[-5:] == [
        f"{CREATE}:AccessDeniedException",
        f"{DESCRIBE}:ResourceNotFoundException",
        CREATE,
        DESCRIBE,
        DESCRIBE,
    ]


def test_a_job_failing_for_access_is_started_again_and_becomes_the_resource(
    live: PersonalizeStandIn, capsys: pytest.CaptureFixture[str]
) -> None:
    live.fail_next_job(ACCESS_REASON)
    start = event()
    answer = handler.on_event(start)
    first = answer["PhysicalResourceId"]
    answers = polls(start, answer, 4)
    second = live.job_arn(job_name_for(ExportRequest.from_properties(properties()), start, 1))
    assert list(live.jobs) == [first, second]
    assert [a["IsComplete"] for a in answers] == [False, False, False, True]
    assert answers[-1]["PhysicalResourceId"] == second
    assert answers[-1]["Data"][Attr.JOB_ARN] == second
    assert second.rsplit("/", 1)[1].startswith("Stack-Export-")
    lines = log_lines(capsys)
    assert lines[-1]["jobArn"] == second
    assert lines[-1]["jobsTried"] == [{"jobArn": first, "failureReason": ACCESS_REASON}]


def test_at_most_three_jobs_and_the_failure_lists_every_one(
    live: PersonalizeStandIn, capsys: pytest.CaptureFixture[str]
) -> None:
    long_reason = ACCESS_REASON + " 権限がありません。" * 200
    for _ in range(4):
        live.fail_next_job(long_reason)
    start = event()
    answer = handler.on_event(start)
    with pytest.raises(handler.ExportJobError) as excinfo:
        polls(start, answer, 10)
    message = str(excinfo.value)
    assert len(live.jobs) == 3
    first, second, third = live.jobs
    assert message.startswith(f"Export job {third} ended in CREATE FAILED: {ACCESS_REASON}")
    assert f"Jobs tried before it: 1) {first}: {ACCESS_REASON}" in message
    assert f"; 2) {second}: {ACCESS_REASON}" in message
    assert f"Personalize could not use role {ROLE}" in message
    assert "any of the 3 job(s)" in message
    assert len(json.dumps(message, ensure_ascii=False).encode()) - 2 <= MAX_MESSAGE_BYTES
    (failed,) = [line for line in log_lines(capsys) if line["status"] == "FAILED"]
    assert [job["jobArn"] for job in failed["jobsTried"]] == [first, second, third]


def test_a_job_failing_for_another_reason_is_not_started_again(live: PersonalizeStandIn) -> None:
    live.fail_next_job("Dataset has no data to export.")
    start = event()
    answer = handler.on_event(start)
    with pytest.raises(handler.ExportJobError) as excinfo:
        polls(start, answer, 2)
    assert str(excinfo.value) == (
        f"Export job {answer['PhysicalResourceId']} ended in CREATE FAILED: "
        "Dataset has no data to export."
    )
    assert len(live.jobs) == 1


def test_a_fixed_job_name_never_gets_a_second_job(live: PersonalizeStandIn) -> None:
    live.fail_next_job(ACCESS_REASON)
    start = event(ResourceProperties=properties(JobName="nightly"))
    answer = handler.on_event(start)
    with pytest.raises(handler.ExportJobError) as excinfo:
        polls(start, answer, 3)
    message = str(excinfo.value)
    assert list(live.jobs) == [live.job_arn("nightly")]
    assert message.startswith(f"Export job {live.job_arn('nightly')} ended in CREATE FAILED: ")
    assert "job_name 'nightly' is fixed, so it can't be started again" in message
    assert "deploy again with a new job_name, or leave job_name unset" in message


def test_no_job_is_started_again_once_iam_has_settled(
    live: PersonalizeStandIn, clock: FakeClock
) -> None:
    live.fail_next_job(ACCESS_REASON)
    start = event(ResourceProperties=properties(TimeoutSeconds="3300"))
    answer = handler.on_event(start)
    clock.advance(IAM_SETTLING_SECONDS)
    with pytest.raises(handler.ExportJobError, match="Check the role's trust policy"):
        polls(start, answer, 2)
    assert len(live.jobs) == 1


def test_a_job_started_while_iam_settled_is_followed_after_the_window(
    live: PersonalizeStandIn, clock: FakeClock
) -> None:
    live.fail_next_job(ACCESS_REASON)
    live.never_finish_next_job()
    start = event(ResourceProperties=properties(TimeoutSeconds="3300"))
    answer = handler.on_event(start)
    assert polls(start, answer, 2) == [{"IsComplete": False}] * 2  # the second job is started
    clock.advance(IAM_SETTLING_SECONDS + 30)
    assert polls(start, answer, 1) == [{"IsComplete": False}]
    with pytest.raises(handler.ExportJobError) as excinfo:
        clock.advance(3300)
        polls(start, answer, 1)
    second = list(live.jobs)[1]
    message = str(excinfo.value)
    assert message.startswith(f"Export job {second} was not ACTIVE within the 3300 s timeout")
    # ACCESS_REASON ends with its own full stop: the list adds none.
    assert message.endswith(
        f"Jobs tried before it: 1) {answer['PhysicalResourceId']}: {ACCESS_REASON}"
    )
    assert len(live.jobs) == 2


# --- Delete --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "physical_id",
    [
        "arn:aws:personalize:us-east-1:123456789012:dataset-export-job/Stack-Export-0123456789",
        CREATE_FAILED_MARKER,
        "2024/01/01/[$LATEST]0123456789abcdef",
    ],
)
def test_delete_keeps_the_id_and_calls_nothing(live: PersonalizeStandIn, physical_id: str) -> None:
    start = event("Delete", PhysicalResourceId=physical_id, ResourceProperties={})
    answer = handler.on_event(start)
    assert answer == {"PhysicalResourceId": physical_id}
    assert handler.is_complete(poll_event(start, answer)) == {"IsComplete": True}
    assert live.calls == []


# --- failure messages ----------------------------------------------------------------------------

TEXTS = [
    pytest.param("a", id="ascii"),
    pytest.param("é", id="2-byte"),
    pytest.param("日", id="3-byte"),
    pytest.param("😀", id="4-byte"),
    pytest.param('"', id="escaped-quote"),
    pytest.param("\x01", id="control-char"),
    pytest.param("ab日😀\n", id="mixed"),
]


@pytest.mark.parametrize("unit", TEXTS)
def test_trim_keeps_a_prefix_that_fits_as_json(unit: str) -> None:
    text = unit * 5000
    trimmed = handler.trim_utf8(text, MAX_MESSAGE_BYTES)
    assert trimmed.endswith(handler.ELLIPSIS)
    assert text.startswith(trimmed.removesuffix(handler.ELLIPSIS))
    encoded = json.dumps(trimmed, ensure_ascii=False).encode()
    assert MAX_MESSAGE_BYTES - 12 < len(encoded) - 2 <= MAX_MESSAGE_BYTES


def test_trim_leaves_a_message_that_fits_alone() -> None:
    text = "日" * (MAX_MESSAGE_BYTES // 3)
    assert handler.trim_utf8(text, MAX_MESSAGE_BYTES) == text


def test_failure_reason_is_verbatim_after_the_job_arn(live: PersonalizeStandIn) -> None:
    reason = 'No data for "PUT" in dataset "INTERACTIONS" — import some, or export "BULK".'
    live.fail_next_job(reason)
    start = event()
    answer = handler.on_event(start)
    assert handler.is_complete(poll_event(start, answer)) == {"IsComplete": False}
    with pytest.raises(handler.ExportJobError) as excinfo:
        handler.is_complete(poll_event(start, answer))
    arn = answer["PhysicalResourceId"]
    assert str(excinfo.value) == f"Export job {arn} ended in CREATE FAILED: {reason}"


# --- logs ----------------------------------------------------------------------------------------


def log_lines(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    out = capsys.readouterr().out
    assert "ResponseURL" not in out
    assert RESPONSE_URL.split("?")[0] not in out
    # Only the handler's lines: under pytest-xdist a worker's earlier harness test may leave a
    # poller execution whose signal step (in this process) still prints its own line.
    lines = [json.loads(line) for line in out.splitlines()]
    return [line for line in lines if "handler" in line]


def test_one_json_line_per_call_with_job_and_status(
    live: PersonalizeStandIn, capsys: pytest.CaptureFixture[str]
) -> None:
    start = event()
    answer = handler.on_event(start)
    handler.is_complete(poll_event(start, answer))
    handler.is_complete(poll_event(start, answer))
    arn = answer["PhysicalResourceId"]
    common = {"requestType": "Create", "logicalResourceId": "Export1234ABCD", "jobArn": arn}
    lines = log_lines(capsys)
    assert [{key: line[key] for key in common} for line in lines] == [common] * 3
    assert [(line["handler"], line["status"]) for line in lines] == [
        ("onEvent", "STARTED"),
        ("isComplete", IN_PROGRESS),
        ("isComplete", ACTIVE),
    ]


def test_a_failure_is_logged_once_with_its_error(
    live: PersonalizeStandIn, capsys: pytest.CaptureFixture[str]
) -> None:
    # A Create's AccessDeniedException is retried while IAM settles: an Update that changes no
    # access fails at once.
    live.inject_error("AccessDeniedException", status=403, operation=CREATE)
    old = properties()
    with pytest.raises(handler.ExportJobError):
        handler.on_event(
            event(
                "Update",
                PhysicalResourceId=live.job_arn("Stack-Export-0123456789"),
                ResourceProperties=properties(IngestionMode="ALL"),
                OldResourceProperties=old,
            )
        )
    (line,) = log_lines(capsys)
    assert line["status"] == "FAILED"
    assert "AccessDeniedException" in line["error"]
    assert line["jobArn"].startswith("arn:aws:personalize:us-east-1:123456789012:dataset-export")
