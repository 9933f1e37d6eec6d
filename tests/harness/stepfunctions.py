"""Step Functions for the harness: moto's interpreter (ported from LocalStack's), in-process.

State machines run from the template's DefinitionString. Task states call AWS through boto3;
moto passes calls to loopback endpoints through, so the standard AWS_ENDPOINT_URL_* settings
send them to the local Lambda endpoint and the Personalize stand-in.

Harness patches (never product code), each for a place where moto reads real time:
- an execution is an actor of the virtual clock from StartExecution until it ends;
- the states run in a thread that is an actor, and the state machine's TimeoutSeconds is a wait
  on the virtual clock (moto joins that thread in real time);
- StartExecution returns once the execution's thread has built the environment moto's
  StopExecution acts on (a stop that came sooner would fail inside moto; on AWS it just works);
- Retry intervals (`retrier_decl.time.sleep`) and Wait states (`WaitFunction._wait_interval`)
  sleep on the virtual clock.
And where moto's port differs from Step Functions:
- aws-sdk parameters and results are converted PascalCase <-> camelCase with botocore's model, and
  a parameter whose name is not the model's member name in PascalCase is refused, at any depth,
  when the state machine is created (literal names) and when the task runs (names from the input);
- errors are named as `error_naming` says: MODELLED (the default, Step Functions' documented rule:
  an error the API model declares for the operation is `<Service>.<Code>`, any other is the SDK's
  generic `<Service>.<Service>Exception` with the code only in the Cause) or BY_CODE (every error
  by its code: what the product must survive too, since AWS does not document the rule for
  Personalize's unmodelled errors);
- PutEvents entries EventBridge rejects are not delivered, and `reject_events(n)` rejects the next
  n entries as EventBridge may (FailedEntryCount); `events` holds only accepted entries.
The Provider framework's JavaScript reaches StartExecution over HTTP (AWS SDK v3, JSON 1.0
protocol) through `SfnEndpoint`; an execution started without a name gets a UUID as Step
Functions gives it (moto 5.2.5 would name every one "None").
"""

from __future__ import annotations

import datetime
import functools
import json
import os
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler
from typing import Any, cast

import boto3
import botocore.session
from botocore.exceptions import ClientError
from local_server import LocalServer
from moto import mock_aws
from moto.core.config import DefaultConfig
from moto.events.models import EventsBackend
from moto.stepfunctions.parser.asl.component.common.path import result_path
from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
from moto.stepfunctions.parser.asl.component.eval_component import EvalComponent
from moto.stepfunctions.parser.asl.component.program.program import Program
from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
    state_task_service_aws_sdk as aws_sdk,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
    state_task_service_lambda,
)
from moto.stepfunctions.parser.asl.component.state.wait.wait_function.wait_function import (
    WaitFunction,
)
from moto.stepfunctions.parser.asl.utils import boto_client, json_path
from moto.stepfunctions.parser.backend import execution_worker

from harness.clock import ClockModule, VirtualClock

# Every loopback endpoint is ours (Lambda, Personalize stand-in): moto lets those calls through.
PASSTHROUGH_URLS = [r"https?://127\.0\.0\.1(:\d+)?/.*", r"https?://localhost(:\d+)?/.*"]
MOTO_CONFIG: DefaultConfig = {
    "stepfunctions": {"execute_state_machine": True},
    # Leave the test's credentials alone: the stand-in tells the handler's calls by their key.
    "core": {"passthrough": {"urls": PASSTHROUGH_URLS, "services": []}, "mock_credentials": False},
}
# moto answers calls to the service's real host name; our own calls name it so no
# AWS_ENDPOINT_URL_SFN setting (the framework's) sends them back to SfnEndpoint.
SFN_HOST = "https://states.{region}.amazonaws.com"
SFN_TARGET_PREFIX = "AWSStepFunctions."
NEVER = 10.0**12
# How the harness names task errors (see the module docstring).
MODELLED = "modelled"
BY_CODE = "by-code"
# Step Functions' names for the services our workflows call (<Service>.<Error>).
SERVICE_ERROR_NAMES = {"personalize": "Personalize", "eventbridge": "EventBridge", "ssm": "Ssm"}


class StepFunctions:
    """moto's Step Functions backend with the interpreter, on the harness's virtual clock."""

    def __init__(self, clock: VirtualClock, region: str) -> None:
        self.clock = clock
        self.region = region
        self._mock = mock_aws(config=MOTO_CONFIG)
        self._restore: list[Callable[[], None]] = []
        self.events: list[dict[str, Any]] = []
        self.error_naming = MODELLED
        self.rejected_events: list[dict[str, Any]] = []
        self._entries_to_reject = 0

    def start(self) -> StepFunctions:
        self._mock.start()
        self._patch_time()
        self._patch_aws_sdk_integrations()
        self._reuse_clients()
        self._parse_paths_once()
        self._capture_events()
        self.client = boto3.client(
            "stepfunctions",
            region_name=self.region,
            endpoint_url=SFN_HOST.format(region=self.region),
            aws_access_key_id="test",
            aws_secret_access_key="test",
        )
        return self

    def stop(self) -> None:
        for restore in reversed(self._restore):
            restore()
        self._mock.stop()

    def _patch(self, target: Any, name: str, value: Any) -> None:
        """Replace `target.name` until stop()."""
        original = getattr(target, name)
        setattr(target, name, value)
        self._restore.append(lambda: setattr(target, name, original))

    def _patch_time(self) -> None:
        clock = self.clock
        self._patch(retrier_decl, "time", ClockModule(clock, getattr(retrier_decl, "time")))  # noqa: B009

        def wait_on_clock(self: WaitFunction, env: Any, wait_seconds: int) -> None:
            if wait_seconds > 0:
                clock.sleep(wait_seconds)

        self._patch(WaitFunction, "_wait_interval", wait_on_clock)

        worker = execution_worker.ExecutionWorker
        real_start = worker.start

        def start_as_actor(self: Any) -> None:
            run = self._execution_logic
            build_environment = self._get_evaluation_environment
            stoppable = threading.Event()

            def environment() -> Any:
                self.env = build_environment()
                stoppable.set()
                return self.env

            def logic() -> None:
                with clock.actor():
                    try:
                        run()
                    finally:
                        stoppable.set()  # a definition moto can't parse never builds one

            self._get_evaluation_environment = environment
            self._execution_logic = logic
            real_start(self)  # type: ignore[no-untyped-call]
            stoppable.wait()

        self._patch(worker, "start", start_as_actor)

        def eval_on_clock(self: Program, env: Any) -> None:
            # moto runs the states in a thread of their own, joined with the state machine's
            # TimeoutSeconds in real time: run them as an actor, wait for them on the clock.
            timeout = self.timeout_seconds.timeout_seconds if self.timeout_seconds else None
            env.next_state_name = self.start_at.start_at_name
            with clock.actor():
                done = clock.sleeper(float(timeout) if timeout else NEVER)
                running = threading.Event()

                def states() -> None:
                    with clock.actor():
                        running.set()
                        try:
                            EvalComponent.eval(self, env)
                        finally:
                            clock.wake_early(done, True)

                threading.Thread(target=states, daemon=True).start()
                running.wait()
                if not clock.wait(done):
                    env.set_timed_out()

        self._patch(Program, "eval", eval_on_clock)

    def _reuse_clients(self) -> None:
        """moto builds a new boto3 client for every task call: reuse one per service and region
        (only speed changes: the clients are configured alike)."""
        made: dict[tuple[str, str, str], Any] = {}
        lock = threading.Lock()
        build = boto_client.boto_client_for

        def client_for(region: str, service: str, state_credentials: Any = None) -> Any:
            with lock:
                # Each test's stand-in listens elsewhere: a client per endpoint too.
                key = (region, service, os.environ.get(f"AWS_ENDPOINT_URL_{service.upper()}", ""))
                if key not in made:
                    made[key] = build(region=region, service=service)
                return made[key]

        for module in (aws_sdk, lambda_eval_utils):
            self._patch(module, "boto_client_for", client_for)

    def _parse_paths_once(self) -> None:
        """moto parses a JSONPath (building a new yacc parser) each time a state reads one:
        parse each path once (only speed changes: a parsed path holds no state of a run)."""
        for module in (json_path, result_path):
            self._patch(module, "parse", functools.lru_cache(maxsize=None)(module.parse))

    def _patch_aws_sdk_integrations(self) -> None:
        """Convert aws-sdk task parameters and results as Step Functions does, check parameter
        names as it does, and name errors as `error_naming` says.

        moto 5.2.5's port leaves `_normalise_parameters`/`_normalise_response` empty (LocalStack's
        original converts with the service model), so PascalCase parameters never reach the API.
        """
        task = aws_sdk.StateTaskServiceAwsSdk
        harness = self
        real_from_error = task._from_error

        def parameters(self: Any, parameters: dict[str, Any], *args: Any) -> None:
            shape = _operation(self).input_shape
            as_written = {MOTO_RENAMED.get(key, key): value for key, value in parameters.items()}
            problems = parameter_name_problems(as_written, shape)
            if problems:
                raise ParameterNameError(problems)
            self._to_boto_request(parameters, shape)

        def response(self: Any, response: Any, *args: Any) -> None:
            self._from_boto_response(response, _operation(self).output_shape)
            _isoformat_datetimes(response)

        def from_error(self: Any, env: Any, ex: Exception) -> Any:
            if isinstance(ex, ClientError):
                name, cause = harness.error_name(self, ex)
                return self._get_task_failure_event(env=env, error=name, cause=cause)
            return real_from_error(self, env=env, ex=ex)

        self._patch(task, "_normalise_parameters", parameters)
        self._patch(task, "_normalise_response", response)
        self._patch(task, "_from_error", from_error)
        self._name_lambda_errors()
        # Step Functions calls EventBridge "eventbridge" (aws-sdk:eventbridge:putEvents);
        # boto3 calls it "events".
        overrides = task._SERVICE_NAME_SFN_TO_BOTO_OVERRIDES
        self._patch(
            task, "_SERVICE_NAME_SFN_TO_BOTO_OVERRIDES", {**overrides, "eventbridge": "events"}
        )

    def _name_lambda_errors(self) -> None:
        """lambda:invoke errors by the same rule: Invoke's modelled errors by their code, any
        other as the SDK's generic Lambda.AWSLambdaException."""
        lambda_task = state_task_service_lambda.StateTaskServiceLambda
        by_code = lambda_task._error_cause_from_client_error
        invoke = _model_operation("lambda", "invoke")
        harness = self

        def error_cause(client_error: ClientError) -> tuple[str, str]:
            name, cause = by_code(client_error)
            code = str(client_error.response["Error"].get("Code", ""))
            modelled = code in {shape.name for shape in invoke.error_shapes}
            if harness.error_naming == BY_CODE or modelled:
                return name, cause
            return "Lambda.AWSLambdaException", cause

        self._patch(lambda_task, "_error_cause_from_client_error", staticmethod(error_cause))

    def error_name(self, task: Any, error: ClientError) -> tuple[str, str]:
        """The task's error name and Cause, as `error_naming` says."""
        service = str(task.resource.api_name)
        named = SERVICE_ERROR_NAMES.get(service.lower(), service)
        code = str(error.response["Error"].get("Code", ""))
        modelled = code in {shape.name for shape in _operation(task).error_shapes}
        name = f"{named}.{code}" if self.error_naming == BY_CODE or modelled else f"{named}.{named}"
        if not name.endswith("Exception"):
            name += "Exception"
        metadata = error.response.get("ResponseMetadata", {})
        cause = (
            f"{error.response['Error'].get('Message', '')} (Service: {named}, Status Code: "
            f"{metadata.get('HTTPStatusCode', 400)}, Error Code: {code}, Request ID: "
            f"{metadata.get('RequestId', '')})"
        )
        return name, cause

    def reject_events(self, count: int) -> None:
        """EventBridge rejects the next `count` PutEvents entries (FailedEntryCount)."""
        self._entries_to_reject += count

    def _capture_events(self) -> None:
        """Keep every PutEvents entry EventBridge accepted (moto delivers only to a few target
        kinds); reject entries when asked, as EventBridge may: 200, FailedEntryCount."""
        real_put = EventsBackend.put_events
        harness = self

        def put_events(backend: EventsBackend, events: list[dict[str, Any]]) -> Any:
            answers: list[dict[str, Any]] = []
            for event in events:
                if harness._entries_to_reject > 0:
                    harness._entries_to_reject -= 1
                    harness.rejected_events.append(_plain(event))
                    answers.append(dict(REJECTED_ENTRY))
                    continue
                (answer,) = real_put(backend, [event])
                if "EventId" in answer:
                    harness.events.append(_plain(event))
                answers.append(answer)
            return answers

        self._patch(EventsBackend, "put_events", put_events)

    def create_state_machine(self, name: str, definition: str, role_arn: str) -> str:
        """Create (or, for a name deployed before, replace) a state machine; its ARN.

        As Step Functions does, a definition whose aws-sdk task names a parameter the API
        model doesn't know is refused (SCHEMA_VALIDATION_FAILED)."""
        problems = definition_parameter_problems(json.loads(definition))
        if problems:
            raise ParameterNameError(problems)
        definition = moto_readable(definition)
        for machine in self.client.list_state_machines()["stateMachines"]:
            if machine["name"] == name:
                self.client.delete_state_machine(stateMachineArn=machine["stateMachineArn"])
        answer = self.client.create_state_machine(
            name=name, definition=definition, roleArn=role_arn
        )
        return str(answer["stateMachineArn"])

    def call(self, operation: str, body: dict[str, Any]) -> dict[str, Any]:
        """One SFN API call in the wire's JSON shape (member names are boto3's parameters)."""
        if operation == "StartExecution" and not body.get("name"):
            body = {**body, "name": str(uuid.uuid4())}
        # The generic call botocore makes for every operation: the wire's members are its names.
        answer = cast(Any, self.client)._make_api_call(operation, body)
        answer.pop("ResponseMetadata", None)
        return cast(dict[str, Any], answer)

    def stop_all_executions(self) -> None:
        """Stop every running execution (an earlier test's poller, say): a clean account."""
        for machine in self.client.list_state_machines()["stateMachines"]:
            for execution in self.executions(machine["stateMachineArn"]):
                if execution["status"] == "RUNNING":
                    self.client.stop_execution(executionArn=execution["executionArn"])

    def executions(self, state_machine_arn: str) -> list[dict[str, Any]]:
        pages = self.client.get_paginator("list_executions").paginate(
            stateMachineArn=state_machine_arn
        )
        return [dict(execution) for page in pages for execution in page["executions"]]

    def describe_execution(self, execution_arn: str) -> dict[str, Any]:
        return dict(self.client.describe_execution(executionArn=execution_arn))


def _operation(task: Any) -> Any:
    return _model_operation(task._get_boto_service_name(), task.resource.api_action)


def _isoformat_datetimes(value: Any) -> None:
    items = value.items() if isinstance(value, dict) else enumerate(value)
    for key, item in list(items):
        if isinstance(item, datetime.datetime):
            value[key] = item.isoformat()
        elif isinstance(item, dict | list):
            _isoformat_datetimes(item)


REJECTED_ENTRY = {"ErrorCode": "InternalFailure", "ErrorMessage": "Injected rejection"}
AWS_SDK_RESOURCE = "arn:aws:states:::aws-sdk:"
# moto_readable's one rename, undone before a task's parameter names are checked.
MOTO_RENAMED = {"roleArn": "RoleArn"}


def _plain(event: dict[str, Any]) -> dict[str, Any]:
    return cast(dict[str, Any], json.loads(json.dumps(event, default=str)))


class ParameterNameError(ValueError):
    """An aws-sdk task parameter named other than the API model's member, in PascalCase."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("SCHEMA_VALIDATION_FAILED: " + "; ".join(problems))


def parameter_name_problems(value: Any, shape: Any, path: str = "") -> list[str]:
    """Every name in `value` that is not a member of `shape` in PascalCase, at any depth."""
    if shape is None:
        return []
    if shape.type_name == "structure" and isinstance(value, dict):
        return _structure_problems(value, shape, path)
    if shape.type_name == "list" and isinstance(value, list):
        return [
            problem
            for index, item in enumerate(value)
            for problem in parameter_name_problems(item, shape.member, f"{path}[{index}]")
        ]
    if shape.type_name == "map" and isinstance(value, dict):
        return [
            problem
            for key, item in value.items()
            for problem in parameter_name_problems(item, shape.value, f"{path}.{key}")
        ]
    return []


def _structure_problems(value: dict[str, Any], shape: Any, path: str) -> list[str]:
    members = {_pascal(name): member for name, member in shape.members.items()}
    problems: list[str] = []
    for key, item in value.items():
        name = key.removesuffix(".$")
        where = f"{path}.{name}" if path else name
        if name not in members:
            problems.append(f"The field {where!r} is not supported by Step Functions")
        elif not key.endswith(".$"):
            problems.extend(parameter_name_problems(item, members[name], where))
    return problems


def _pascal(name: str) -> str:
    return name[:1].upper() + name[1:]


def definition_parameter_problems(definition: dict[str, Any]) -> list[str]:
    """Parameter-name problems of every aws-sdk task in a state machine definition."""
    problems: list[str] = []
    for state_name, state in _all_states(definition):
        resource = str(state.get("Resource", ""))
        if state.get("Type") != "Task" or not resource.startswith(AWS_SDK_RESOURCE):
            continue
        service, action = resource.removeprefix(AWS_SDK_RESOURCE).split(":")[:2]
        shape = _model_operation(service, action).input_shape
        for problem in parameter_name_problems(state.get("Parameters", {}), shape):
            problems.append(f"{problem} at /States/{state_name}/Parameters")
    return problems


def moto_readable(definition: str) -> str:
    """The definition as moto 5.2.5's ASL parser reads it the way Step Functions does.

    Its lexer takes "RoleArn.$" for the keyword of a Task's Credentials wherever it stands, so
    a Parameters binding of that name becomes a literal string and the request fails
    ('RoleArn.$'). Its aws-sdk tasks match request members whatever their case, so
    "roleArn.$" asks for the same member and parses as a binding. Nothing else changes.
    """
    document = json.loads(definition)
    for state in _states(document):
        parameters = state.get("Parameters")
        if isinstance(parameters, dict) and "RoleArn.$" in parameters:
            state["Parameters"] = {
                ("roleArn.$" if key == "RoleArn.$" else key): value
                for key, value in parameters.items()
            }
    return json.dumps(document)


def _states(machine: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every state, those of Parallel branches and Map processors included."""
    for state in machine.get("States", {}).values():
        yield state
        for branch in state.get("Branches", []):
            yield from _states(branch)
        for key in ("ItemProcessor", "Iterator"):
            if isinstance(state.get(key), dict):
                yield from _states(state[key])


def _all_states(definition: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for name, state in definition.get("States", {}).items():
        yield name, state
        for branch in state.get("Branches", []):
            yield from _all_states(branch)
        processor = state.get("ItemProcessor") or state.get("Iterator")
        if processor:
            yield from _all_states(processor)


def _model_operation(service: str, action: str) -> Any:
    boto_name = {"eventbridge": "events", "sfn": "stepfunctions"}.get(service, service)
    return _service_model(boto_name).operation_model(action[0].upper() + action[1:])


@functools.cache
def _service_model(boto_name: str) -> Any:
    """Loaded once per process: a new session per task parsed the model's JSON on every call."""
    return botocore.session.get_session().get_service_model(boto_name)


class SfnEndpoint:
    """The Step Functions API over HTTP (JSON 1.0), for the framework's AWS SDK v3 client."""

    def __init__(self, step_functions: StepFunctions) -> None:
        self.step_functions = step_functions
        self._server = _Server(self)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    @property
    def endpoint_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime.datetime):
        return value.timestamp()
    raise TypeError(type(value).__name__)


@contextmanager
def _answering(handler: BaseHTTPRequestHandler) -> Iterator[None]:
    try:
        yield
    except Exception as error:  # answered as the service's error document, as AWS does
        code = getattr(error, "response", {}).get("Error", {}).get("Code", type(error).__name__)
        body = json.dumps({"__type": code, "message": str(error)}).encode()
        handler.send_response(400)
        handler.send_header("Content-Type", "application/x-amz-json-1.0")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)


class _Server(LocalServer):
    def __init__(self, endpoint: SfnEndpoint) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.endpoint = endpoint


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        endpoint = cast(_Server, self.server).endpoint
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        operation = self.headers.get("X-Amz-Target", "").removeprefix(SFN_TARGET_PREFIX)
        with _answering(self):
            answer = endpoint.step_functions.call(operation, json.loads(raw or b"{}"))
            body = json.dumps(answer, default=_json_default).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/x-amz-json-1.0")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""
