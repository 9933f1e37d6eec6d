"""Lambda's retries of asynchronous invocations, in the harness and through a deploy.

CloudFormation invokes a custom resource's ServiceToken function asynchronously; Lambda runs a
failed Event invocation (function error, crash, timeout) twice more, one and then two minutes
later, with the same event (AWS Lambda developer guide, "How Lambda handles errors and retries
with asynchronous invocation"). A framework invocation that crashed after our handler started the
job is run again with the same RequestId: the handler derives the same job name, finds the job
(ResourceAlreadyExists) and adopts it, so no second job is started.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from conftest import HANDLER_ACCESS_KEY, new_app
from harness.clock import VirtualClock
from harness.cloudformation import HarnessDeployment
from harness.lambda_service import (
    ASYNC_RETRY_DELAYS,
    FunctionSpec,
    Invocation,
    LambdaService,
    node_binary,
)
from personalize_standin import ACTIVE, PersonalizeStandIn

from personalize_export import DatasetExportJob
from personalize_export.runtime.export_job.contract import ON_EVENT_ENTRY

DATASET = "arn:aws:personalize:us-east-1:123456789012:dataset/dg/INTERACTIONS"
CREATE = "CreateDatasetExportJob"
ALREADY_EXISTS = f"{CREATE}:ResourceAlreadyExistsException"
FRAMEWORK_ON_EVENT = "framework.onEvent"

PYTHON_FUNCTIONS = """\
import time

calls = {"flaky": 0}


def fails(event, context):
    raise RuntimeError("boom " + event["RequestId"])


def sleeps(event, context):
    time.sleep(10)
    return {"slept": True}


def succeeds(event, context):
    return {"ok": event["RequestId"]}


def flaky(event, context):
    calls["flaky"] += 1
    if calls["flaky"] == 1:
        raise RuntimeError("first try fails")
    return {"try": calls["flaky"]}
"""

NODE_FUNCTION = """\
exports.fails = async (event) => {
  throw new Error("boom " + event.RequestId);
};
"""


# --- the Invoke endpoint alone ------------------------------------------------------------


@pytest.fixture
def lambdas() -> Iterator[LambdaService]:
    service = LambdaService(VirtualClock(), {"PATH": str(Path(node_binary()).parent)}).start()
    try:
        yield service
    finally:
        service.stop()


def register(service: LambdaService, tmp_path: Path, runtime: str, handler: str) -> str:
    asset = tmp_path / "asset"
    asset.mkdir(exist_ok=True)
    (asset / "functions.py").write_text(PYTHON_FUNCTIONS)
    (asset / "functions.js").write_text(NODE_FUNCTION)
    name = f"{runtime}-{handler.replace('.', '-')}"
    arn = f"arn:aws:lambda:us-east-1:123456789012:function:{name}"
    service.register(FunctionSpec(name, arn, runtime, handler, asset, {}, timeout_seconds=3))
    return arn


def run_async(service: LambdaService, arn: str) -> list[Invocation]:
    with service.recording() as invocations:
        service.invoke_async(arn, {"RequestId": "request-1"})
        service.clock.wait_until_idle()
    return invocations


def schedule(invocations: list[Invocation]) -> list[float]:
    first = invocations[0].started_at
    return [call.started_at - first for call in invocations]


@pytest.mark.parametrize("runtime", ["python3.12", "nodejs22.x"])
def test_a_failing_event_invocation_runs_twice_more_one_then_two_minutes_later(
    lambdas: LambdaService, tmp_path: Path, runtime: str
) -> None:
    arn = register(lambdas, tmp_path, runtime, "functions.fails")

    invocations = run_async(lambdas, arn)

    assert [call.attempt for call in invocations] == [0, 1, 2]
    assert schedule(invocations) == [0, 60, 180]
    # Every attempt carries the same event, and fails as the function's runtime reports it.
    assert {json.dumps(call.event) for call in invocations} == {'{"RequestId": "request-1"}'}
    assert all("boom request-1" in str(call.error) for call in invocations)


def test_a_timed_out_event_invocation_is_retried_like_an_error(
    lambdas: LambdaService, tmp_path: Path
) -> None:
    arn = register(lambdas, tmp_path, "python3.12", "functions.sleeps")

    invocations = run_async(lambdas, arn)

    assert [call.attempt for call in invocations] == [0, 1, 2]
    assert {str((call.error or {}).get("errorMessage")) for call in invocations} == {
        "Task timed out after 3.00 seconds"
    }


def test_a_successful_event_invocation_runs_once(lambdas: LambdaService, tmp_path: Path) -> None:
    arn = register(lambdas, tmp_path, "python3.12", "functions.succeeds")

    invocations = run_async(lambdas, arn)

    assert [(call.attempt, call.result) for call in invocations] == [(0, {"ok": "request-1"})]


def test_retries_stop_at_the_first_success(lambdas: LambdaService, tmp_path: Path) -> None:
    arn = register(lambdas, tmp_path, "python3.12", "functions.flaky")

    invocations = run_async(lambdas, arn)

    assert [call.attempt for call in invocations] == [0, 1]
    assert invocations[1].result == {"try": 2}
    assert schedule(invocations) == [0, 60]


def test_a_synchronous_invocation_is_never_retried(lambdas: LambdaService, tmp_path: Path) -> None:
    arn = register(lambdas, tmp_path, "python3.12", "functions.fails")

    with lambdas.recording() as invocations, pytest.raises(Exception, match="boom"):
        lambdas.invoke(arn, {"RequestId": "request-1"})
    lambdas.clock.wait_until_idle()

    assert len(invocations) == 1


# --- through a deploy: the Provider framework's onEvent crashes once ------------------------


def synthesized(tmp_path: Path, *, wait_for_completion: bool) -> Path:
    app = new_app(tmp_path / "cdk.out")
    stack = cdk.Stack(app, "Retries")
    waiting: dict[str, Any] = (
        {"timeout": cdk.Duration.minutes(5)}
        if wait_for_completion
        else {"wait_for_completion": False}
    )
    DatasetExportJob(stack, "Export", dataset_arn=DATASET, **waiting)
    return Path(app.synth().directory)


@pytest.fixture(params=[True, False], ids=["waits", "no-wait"])
def deployment(
    request: pytest.FixtureRequest, tmp_path: Path, standin: PersonalizeStandIn
) -> HarnessDeployment:
    standin.progress_caller = HANDLER_ACCESS_KEY
    assembly = synthesized(tmp_path, wait_for_completion=bool(request.param))
    deployment = HarnessDeployment(assembly, "Retries", standin=standin)
    with deployment.handler():
        pass  # functions and state machines in place, so a crash can be planned on them
    return deployment


def only(names: set[str]) -> str:
    (name,) = names
    return name


def calls_of(
    deployment: HarnessDeployment, handler: str, invocations: list[Invocation]
) -> list[Invocation]:
    name = only(deployment.function_names(handler))
    return [call for call in invocations if call.function == name]


@pytest.mark.parametrize("crashes", [1, 2])
def test_a_framework_crash_after_the_job_started_is_retried_and_starts_no_second_job(
    deployment: HarnessDeployment, standin: PersonalizeStandIn, crashes: int
) -> None:
    lambdas = deployment.harness.lambdas
    framework = only(deployment.function_names(FRAMEWORK_ON_EVENT))
    our_on_event = only(deployment.function_names(ON_EVENT_ENTRY))

    with (
        lambdas.recording() as invocations,
        lambdas.crash(framework, when_returned=our_on_event, times=crashes) as crash,
    ):
        outputs = deployment.deploy()
        deployment.settle()

    assert crash.times == 0, "a planned crash never happened"
    (job,) = standin.jobs.values()
    assert job.status == ACTIVE
    assert job.dataset_export_job_arn in outputs.values()
    framework_calls = calls_of(deployment, FRAMEWORK_ON_EVENT, invocations)
    assert [call.attempt for call in framework_calls] == list(range(crashes + 1))
    assert [(call.error or {}).get("errorType") for call in framework_calls] == [
        *["Runtime.ExitError"] * crashes,
        None,
    ]
    assert schedule(framework_calls) == [0, 60, 180][: crashes + 1]
    # Each retry carried the same request: our onEvent ran again with the same RequestId,
    # found the job by its derived name and adopted it.
    ours = calls_of(deployment, ON_EVENT_ENTRY, invocations)
    assert len(ours) == crashes + 1
    assert len({call.event["RequestId"] for call in ours}) == 1
    assert {call.result["PhysicalResourceId"] for call in ours} == {job.dataset_export_job_arn}
    assert standin.answers(HANDLER_ACCESS_KEY).count(CREATE) == 1
    assert standin.answers(HANDLER_ACCESS_KEY).count(ALREADY_EXISTS) == crashes
    # One job, one completion event.
    completion = [e for e in deployment.published() if e["detail"].get("status") == ACTIVE]
    assert len(completion) == 1


def test_a_framework_crashing_on_every_attempt_loses_the_response_but_starts_one_job(
    deployment: HarnessDeployment, standin: PersonalizeStandIn
) -> None:
    """Lambda gives up after the third attempt: CloudFormation hears nothing and times out."""
    lambdas = deployment.harness.lambdas
    framework = only(deployment.function_names(FRAMEWORK_ON_EVENT))
    our_on_event = only(deployment.function_names(ON_EVENT_ENTRY))

    with (
        lambdas.recording() as invocations,
        lambdas.crash(framework, when_returned=our_on_event, times=3),
    ):
        result = deployment.create_stack()

    assert not result.ok
    assert "did not receive a response" in result.reason()
    assert len(calls_of(deployment, FRAMEWORK_ON_EVENT, invocations)) == 3
    assert len(standin.jobs) == 1


def test_without_lambda_s_retries_the_same_crash_loses_the_response(
    deployment: HarnessDeployment, standin: PersonalizeStandIn
) -> None:
    """The control: the deploy above succeeds because of the retry, not by chance."""
    lambdas = deployment.harness.lambdas
    framework = only(deployment.function_names(FRAMEWORK_ON_EVENT))
    our_on_event = only(deployment.function_names(ON_EVENT_ENTRY))
    lambdas.async_retry_delays = ()
    try:
        with lambdas.crash(framework, when_returned=our_on_event):
            result = deployment.create_stack()
    finally:
        lambdas.async_retry_delays = ASYNC_RETRY_DELAYS

    assert not result.ok
    assert "did not receive a response" in result.reason()
    assert len(standin.jobs) == 1
