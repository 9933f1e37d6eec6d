"""The deploy harness itself: the demo app through the real framework, CloudFormation's order
and concurrency, and handlers broken on purpose failing with the framework's own messages."""

from __future__ import annotations

import json
import shutil
import ssl
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import aws_cdk as cdk
import pytest
from conftest import HANDLER_ACCESS_KEY, new_app
from harness.cloudformation import Harness, HarnessDeployment
from harness.responses import TOO_LONG
from local_server import LocalServer
from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker
from personalize_standin import ACTIVE, PersonalizeStandIn

from personalize_export import DatasetExportJob
from personalize_export.runtime.export_job.contract import IS_COMPLETE_ENTRY

DATASET = "arn:aws:personalize:us-east-1:123456789012:dataset/dg/INTERACTIONS"
CREATE = "CreateDatasetExportJob"
DESCRIBE = "DescribeDatasetExportJob"


def synthesized(tmp_path: Path, exports: int = 1) -> Path:
    app = new_app(tmp_path / "cdk.out")
    stack = cdk.Stack(app, "Harness")
    for index in range(exports):
        DatasetExportJob(
            stack, f"Export{index}", dataset_arn=DATASET, timeout=cdk.Duration.minutes(5)
        )
    return Path(app.synth().directory)


def test_demo_app_deploys_through_the_real_framework(
    demo_assembly: Path, standin: PersonalizeStandIn
) -> None:
    standin.progress_caller = HANDLER_ACCESS_KEY
    deployment = HarnessDeployment(demo_assembly, "PersonalizeExportDemo", standin=standin)

    outputs = deployment.deploy()

    (job,) = standin.jobs.values()
    assert job.status == ACTIVE
    assert sorted(outputs.values()) == sorted(
        [job.dataset_export_job_arn, job.job_output["s3DataDestination"]["path"]]
    )
    assert standin.answers(HANDLER_ACCESS_KEY) == [CREATE, DESCRIBE, DESCRIBE]
    deployment.settle()
    (event,) = [e for e in deployment.harness.step_functions.events if job.job_name in e["Detail"]]
    assert json.loads(event["Detail"])["status"] == ACTIVE
    invoked = {call.function for call in deployment.harness.lambdas.invocations}
    for handler in ("framework.onEvent", "framework.isComplete"):
        assert deployment.function_names(handler) & invoked, f"{handler} never ran"


def test_independent_exports_start_together_as_cloudformation_creates_them(
    tmp_path: Path, standin: PersonalizeStandIn
) -> None:
    standin.progress_caller = HANDLER_ACCESS_KEY
    deployment = HarnessDeployment(synthesized(tmp_path, exports=3), "Harness", standin=standin)
    started = deployment.harness.clock.time()

    result = deployment.create_stack()

    assert result.ok, result.reason()
    operations = standin.answers(HANDLER_ACCESS_KEY)
    creates = [index for index, name in enumerate(operations) if name == CREATE]
    describes = [index for index, name in enumerate(operations) if name == DESCRIBE]
    # One after the other, the third Create would follow two jobs' worth of polls (4 describes).
    assert len(creates) == 3 and creates[-1] < describes[3]
    # All three waited through the same 30 s poll, not one after the other.
    assert deployment.harness.clock.time() - started == 30


def test_stack_delete_deletes_every_export_and_leaves_the_jobs(
    tmp_path: Path, standin: PersonalizeStandIn
) -> None:
    deployment = HarnessDeployment(synthesized(tmp_path, exports=2), "Harness", standin=standin)
    assert deployment.create_stack().ok
    jobs_before = dict(standin.jobs)

    result = deployment.delete_stack()

    assert result.ok and len(result.outcomes) == 2
    assert standin.jobs == jobs_before
    assert all(job.status == ACTIVE for job in standin.jobs.values())


def broken(assembly: Path, tmp_path: Path, wrapper: str) -> Path:
    """A copy of the assembly whose handler asset wraps is_complete with `wrapper`."""
    copy = tmp_path / "broken.out"
    shutil.copytree(assembly, copy, symlinks=False)
    module = IS_COMPLETE_ENTRY.rsplit(".", 1)[0].replace(".", "/") + ".py"
    (handler_file,) = copy.glob(f"asset.*/{module}")
    with handler_file.open("a") as source:
        source.write("\n\n_real_is_complete = is_complete\n\n\n" + wrapper)
    return copy


DATA_WHILE_INCOMPLETE = """def is_complete(event, context=None):
    return {"IsComplete": False, "Data": {"Early": "yes"}}
"""

HUGE_RESPONSE = """def is_complete(event, context=None):
    answer = _real_is_complete(event, context)
    if answer.get("IsComplete"):
        answer["Data"]["Padding"] = "x" * 5000
    return answer
"""


def test_data_with_is_complete_false_fails_with_the_framework_s_own_message(
    tmp_path: Path, standin: PersonalizeStandIn
) -> None:
    assembly = broken(synthesized(tmp_path), tmp_path, DATA_WHILE_INCOMPLETE)
    deployment = HarnessDeployment(assembly, "Harness", standin=standin)

    result = deployment.create_stack()

    assert not result.ok
    assert result.reason().startswith('Error: "Data" is not allowed if "IsComplete" is "False"')
    assert "framework.js" in result.reason()


def test_a_response_over_4096_bytes_fails_the_resource(
    tmp_path: Path, standin: PersonalizeStandIn
) -> None:
    assembly = broken(synthesized(tmp_path), tmp_path, HUGE_RESPONSE)
    deployment = HarnessDeployment(assembly, "Harness", standin=standin)

    result = deployment.create_stack()

    assert not result.ok
    assert result.reason() == TOO_LONG
    assert len(standin.jobs) == 1


def test_a_harmless_wrapper_deploys_so_the_breakage_is_the_wrappers(
    tmp_path: Path, standin: PersonalizeStandIn
) -> None:
    passthrough = "def is_complete(event, context=None):\n    return _real_is_complete(event)\n"
    assembly = broken(synthesized(tmp_path), tmp_path, passthrough)
    deployment = HarnessDeployment(assembly, "Harness", standin=standin)
    assert deployment.create_stack().ok


def wait_condition_stack(tmp_path: Path) -> HarnessDeployment:
    app = new_app(tmp_path / "cdk.out")
    stack = cdk.Stack(app, "Waits")
    handle = cdk.CfnWaitConditionHandle(stack, "Handle")
    cdk.CfnWaitCondition(stack, "Done", handle=handle.ref, timeout="43200")
    return HarnessDeployment(Path(app.synth().directory), "Waits")


def signal(url: str, body: dict[str, str], content_type: str | None = "") -> int:
    """PUT a signal as CloudFormation's example does (curl -X PUT -H 'Content-Type:')."""
    headers = {} if content_type is None else {"Content-Type": content_type}
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), method="PUT", headers=headers
    )
    context = ssl.create_default_context(cafile=str(Harness.get().responses.certificate))
    try:
        with urllib.request.urlopen(request, context=context) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return error.code


def handle_url(deployment: HarnessDeployment) -> str:
    with deployment.handler():
        return deployment.physical_ids["Handle"]


def test_a_wait_condition_completes_on_a_signal_sent_with_an_empty_content_type(
    tmp_path: Path,
) -> None:
    deployment = wait_condition_stack(tmp_path)
    url = handle_url(deployment)
    success = {"Status": "SUCCESS", "UniqueId": "job", "Data": "arn:x", "Reason": "done"}

    assert signal(url, success, content_type="application/x-www-form-urlencoded") == 403
    assert signal(url, success) == 200
    assert signal(url, {**success, "Data": "ignored, same UniqueId"}) == 200
    result = deployment.create_stack()

    assert result.ok
    assert deployment.resolve({"Fn::GetAtt": ["Done", "Data"]}) == {"job": "arn:x"}


def test_a_failure_signal_fails_the_wait_condition_with_cloudformation_s_message(
    tmp_path: Path,
) -> None:
    deployment = wait_condition_stack(tmp_path)
    url = handle_url(deployment)
    failure = {"Status": "FAILURE", "UniqueId": "job", "Data": "", "Reason": "it broke"}

    assert signal(url, failure) == 200
    result = deployment.create_stack()

    assert not result.ok
    assert result.reason() == "WaitCondition received failed message: 'it broke' for uniqueId: job"


def test_an_unsignalled_wait_condition_times_out_in_virtual_time(tmp_path: Path) -> None:
    deployment = wait_condition_stack(tmp_path)
    started = deployment.harness.clock.time()

    result = deployment.create_stack()

    assert not result.ok
    assert result.reason() == "WaitCondition timed out. Received 0 conditions when expecting 1"
    assert deployment.harness.clock.time() - started == 43200


def test_a_first_demo_deploy_rides_out_a_30_s_iam_lag_through_the_real_framework(
    demo_assembly: Path, standin: PersonalizeStandIn
) -> None:
    """Issue 12 through the harness: every role and policy the stack creates is unusable for 30 s
    (by the handler and by Personalize); the deploy succeeds with at most one extra job."""
    standin.iam_lag_seconds = 30
    deployment = HarnessDeployment(demo_assembly, "PersonalizeExportDemo", standin=standin)

    outputs = deployment.deploy()

    caller = str(standin.caller_role_arn).rpartition("/")[2]
    (logical_id,) = [key for key, name in deployment.physical_ids.items() if name == caller]
    assert logical_id.startswith("PersonalizeExportProviderHandlerRole")
    assert len(standin.jobs) <= 2
    active = [job for job in standin.jobs.values() if job.status == ACTIVE]
    assert [job.dataset_export_job_arn for job in active] == [
        value for key, value in outputs.items() if key.startswith("ExportJobArn")
    ]
    refused = [
        a for a in standin.answers(HANDLER_ACCESS_KEY) if a.endswith("AccessDeniedException")
    ]
    assert refused, "the lag was never felt"


def test_a_first_demo_deploy_under_a_10_minute_lag_fails_naming_the_role(
    demo_assembly: Path, standin: PersonalizeStandIn
) -> None:
    standin.iam_lag_seconds = 600
    deployment = HarnessDeployment(demo_assembly, "PersonalizeExportDemo", standin=standin)

    result = deployment.create_stack()

    assert not result.ok
    assert "AccessDeniedException" in result.reason()
    assert "personalizeexportdemo-exportservicerole" in result.reason()
    assert "No export job was started" in result.reason()


@pytest.mark.parametrize(
    ("error", "printed"), [(BrokenPipeError(32, "Broken pipe"), False), (KeyError("x"), True)]
)
def test_local_servers_print_errors_but_not_callers_that_hung_up(
    error: Exception, printed: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    server = LocalServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    try:
        try:
            raise error
        except Exception:
            server.handle_error(None, ("127.0.0.1", 1))
    finally:
        server.server_close()

    assert (type(error).__name__ in capsys.readouterr().err) is printed


def test_an_execution_stopped_as_soon_as_it_started_is_aborted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    harness = Harness.get()
    parse, stop = ExecutionWorker._get_evaluation_entrypoint, ExecutionWorker.stop
    stopped_before_it_could_be: list[bool] = []

    def slow_to_parse(worker: ExecutionWorker) -> object:
        time.sleep(1)  # real time: whoever stops it sooner finds nothing to stop in moto
        return parse(worker)

    def recording_stop(worker: ExecutionWorker, **details: object) -> None:
        stopped_before_it_could_be.append(worker.env is None)
        stop(worker, **details)  # type: ignore[arg-type]

    monkeypatch.setattr(ExecutionWorker, "_get_evaluation_entrypoint", slow_to_parse)
    monkeypatch.setattr(ExecutionWorker, "stop", recording_stop)
    hold = {"StartAt": "Hold", "States": {"Hold": {"Type": "Wait", "Seconds": 3600, "End": True}}}
    machine = harness.step_functions.create_state_machine(
        "stopped-at-once", json.dumps(hold), "arn:aws:iam::123456789012:role/sfn"
    )
    with harness.clock.actor():  # no virtual time passes: the Wait state can't end by itself
        started = harness.step_functions.call("StartExecution", {"stateMachineArn": machine})
        harness.step_functions.stop_all_executions()
    harness.clock.wait_until_idle()

    assert stopped_before_it_could_be == [False]
    assert harness.step_functions.describe_execution(started["executionArn"])["status"] == "ABORTED"
