"""A deploy of one export whose job takes T minutes, through tests/deploy_sim.py.

The real handler runs from the synthesized asset against the Personalize stand-in. The stand-in is
subclassed here so that a job turns ACTIVE at a simulated time rather than after a number of
Describe calls. Each T is run at several phases (how far past a poll the job turns ACTIVE), so the
worst detection delay is observed, not assumed.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from personalize_export.poller import POLLER_ID
from personalize_export.provider import PROVIDER_ID
from personalize_export.runtime.export_job.contract import RESOURCE_TYPE, Prop, WaitMode

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from deploy_sim import DeployFailedError, Deployment, FakeClock, Handler, Waiter
from personalize_standin import ACTIVE, IN_PROGRESS, PersonalizeStandIn, Reply

CREATE = "CreateDatasetExportJob"
DESCRIBE = "DescribeDatasetExportJob"
# Polls alone never move a job on: only the simulated clock does.
NEVER = 10**9


class TimedStandIn(PersonalizeStandIn):
    """Jobs are IN_PROGRESS from creation and turn ACTIVE `job_seconds` later on the clock."""

    def __init__(self, clock: FakeClock, job_seconds: float) -> None:
        super().__init__(polls_per_state=NEVER)
        self.clock = clock
        # Not the base class's job_seconds (left None): this subclass moves jobs on itself.
        self.active_after_s = job_seconds
        self.created_at: dict[str, float] = {}

    def handle(self, target: str, raw_body: bytes, caller: str = "") -> Reply:
        self._finish_due_jobs()
        reply = super().handle(target, raw_body, caller)
        self._start_new_jobs()
        return reply

    def _start_new_jobs(self) -> None:
        for arn, job in self.jobs.items():
            if arn not in self.created_at:
                self.created_at[arn] = self.clock.now
                job.status = IN_PROGRESS

    def _finish_due_jobs(self) -> None:
        for arn, job in self.jobs.items():
            if self.clock.now >= self.created_at[arn] + self.active_after_s:
                job.status = ACTIVE

    def active_at(self) -> float:
        (created,) = self.created_at.values()
        return created + self.active_after_s


@dataclass(frozen=True)
class PollRun:
    """One simulated deploy of one export."""

    job_seconds: float
    completed: bool
    creates: int
    describes: int
    on_event_calls: int
    is_complete_calls: int
    first_poll_after_s: float
    detection_delay_s: float | None
    deploy_seconds: float


@dataclass(frozen=True)
class PollSummary:
    """The runs of one job duration, across phases."""

    minutes: int
    runs: list[PollRun]

    @property
    def worst(self) -> PollRun:
        """The run with the most calls (the job turned ACTIVE just after a poll)."""
        return max(self.runs, key=lambda run: (run.describes, run.is_complete_calls))

    @property
    def all_completed(self) -> bool:
        return all(run.completed for run in self.runs)

    @property
    def worst_delay_s(self) -> float | None:
        delays = [run.detection_delay_s for run in self.runs if run.detection_delay_s is not None]
        return max(delays) if delays else None


@contextlib.contextmanager
def aimed_at(standin: PersonalizeStandIn) -> Iterator[None]:
    """boto3's default endpoint resolution pointed at the stand-in, restored afterwards."""
    settings = {
        "AWS_ENDPOINT_URL_PERSONALIZE": standin.endpoint_url,
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": standin.region,
        "AWS_MAX_ATTEMPTS": "1",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    }
    saved = {name: os.environ.get(name) for name in [*settings, "AWS_PROFILE"]}
    os.environ.update(settings)
    os.environ.pop("AWS_PROFILE", None)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


Invocation = tuple[str, float]  # entry point, simulated time


def counted(
    function: Callable[[dict[str, Any], object], dict[str, Any]],
    name: str,
    clock: FakeClock,
    invocations: list[Invocation],
) -> Callable[[dict[str, Any], object], dict[str, Any]]:
    """The entry point, recording each call and the simulated time it was made at."""

    def wrapper(event: dict[str, Any], context: object) -> dict[str, Any]:
        invocations.append((name, clock.now))
        return function(event, context)

    return wrapper


def deploy_once(assembly: Path, stack: str, job_seconds: float) -> PollRun:
    """Deploy the stack with a job that takes `job_seconds` of simulated time."""
    clock = FakeClock()
    deployment = Deployment(assembly, stack, clock)
    invocations: list[Invocation] = []
    standin = TimedStandIn(clock, job_seconds)
    with standin, aimed_at(standin):
        with deployment.handler() as handler, contextlib.redirect_stdout(io.StringIO()):
            started = clock.now
            completed = _deploy(deployment, _counting(handler, clock, invocations))
        operations = standin.operations()
        delay = clock.now - standin.active_at() if completed else None
    names = [name for name, _ in invocations]
    return PollRun(
        job_seconds=job_seconds,
        completed=completed,
        creates=operations.count(CREATE),
        describes=operations.count(DESCRIBE),
        on_event_calls=names.count("on_event"),
        is_complete_calls=names.count("is_complete"),
        first_poll_after_s=_first_poll_after(invocations),
        detection_delay_s=delay,
        deploy_seconds=clock.now - started,
    )


def _first_poll_after(invocations: list[Invocation]) -> float:
    """Simulated seconds from onEvent to the first isComplete."""
    on_event = next(at for name, at in invocations if name == "on_event")
    return next(at for name, at in invocations if name == "is_complete") - on_event


def _counting(handler: Handler, clock: FakeClock, invocations: list[Invocation]) -> Handler:
    return Handler(
        on_event=counted(handler.on_event, "on_event", clock, invocations),
        is_complete=counted(handler.is_complete, "is_complete", clock, invocations),
        modules=handler.modules,
    )


def _deploy(deployment: Deployment, handler: Handler) -> bool:
    try:
        deployment.deploy(handler)
    except DeployFailedError:
        return False
    return True


def phases_for(interval_s: int, tiny: bool) -> list[float]:
    """When past a poll the job turns ACTIVE: on a poll, just after, mid-way, just before."""
    if tiny:
        return [0.001]
    return [0.0, 0.001, interval_s / 2, interval_s - 0.001]


def simulate(assembly: Path, stack: str, minutes: list[int], *, tiny: bool) -> list[PollSummary]:
    phases = phases_for(waiter_of(assembly, stack).interval_seconds, tiny)
    return [
        PollSummary(duration, [deploy_once(assembly, stack, duration * 60 + p) for p in phases])
        for duration in minutes
    ]


def waiter_of(assembly: Path, stack: str) -> Waiter:
    """The Provider's waiter settings, as the template gives them."""
    return Deployment(assembly, stack, FakeClock()).waiter()


def handler_timeout_of(assembly: Path, stack: str) -> int:
    """How long the handler waits for ACTIVE (the TimeoutSeconds property of the export)."""
    deployment = Deployment(assembly, stack, FakeClock())
    (logical_id,) = deployment.custom_resources()
    properties = deployment.template["Resources"][logical_id]["Properties"]
    return int(properties[Prop.TIMEOUT_SECONDS])


# --- the long-running modes: costs per hour of waiting, read from the template ----------------

LAMBDA_INVOKE = "lambda:invoke"
DESCRIBE_ACTION = "aws-sdk:personalize:describeDatasetExportJob"


@dataclass(frozen=True)
class WaiterLoop:
    """The Provider's waiter: one isComplete task state retried every interval."""

    interval_s: int
    max_attempts: int
    states_per_poll: int  # each retry of the task state is one state transition
    lambda_calls_per_poll: int  # isComplete, relayed by framework-isComplete


@dataclass(frozen=True)
class PollerLoop:
    """The export poller's loop while a job runs: from its Wait state back to it."""

    wait_s: int
    states: tuple[str, ...]
    lambda_states: int  # states in the loop that invoke a Lambda function
    describe_states: int  # states in the loop that call DescribeDatasetExportJob

    @property
    def loops_per_hour(self) -> float:
        return 3600 / self.wait_s


def state_machine_definition(template: dict[str, Any], logical_id_prefix: str) -> dict[str, Any]:
    """The definition of the state machine whose logical id starts with the prefix.

    DefinitionString is an Fn::Join of JSON text and tokens; every token stands inside a JSON
    string (an ARN), so each is replaced by a placeholder before parsing.
    """
    (resource,) = [
        resource
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == "AWS::StepFunctions::StateMachine"
        and logical_id.startswith(logical_id_prefix)
    ]
    definition = resource["Properties"]["DefinitionString"]
    if isinstance(definition, dict):
        _, parts = definition["Fn::Join"]
        definition = "".join(part if isinstance(part, str) else "TOKEN" for part in parts)
    parsed: dict[str, Any] = json.loads(definition)
    return parsed


def waiter_loop(template: dict[str, Any]) -> WaiterLoop:
    definition = state_machine_definition(template, PROVIDER_ID)
    task = definition["States"][definition["StartAt"]]
    (retry,) = task["Retry"]
    return WaiterLoop(
        interval_s=int(retry["IntervalSeconds"]),
        max_attempts=int(retry["MaxAttempts"]),
        states_per_poll=1,
        lambda_calls_per_poll=2,
    )


# The poller's Wait of the first hour (and of a waiting deploy); after it, a watch nobody waits
# for loops through SlowWait (SLOW_POLL_SECONDS) instead.
FAST_WAIT = "Wait"


def poller_loop(template: dict[str, Any]) -> PollerLoop:
    """Follow the poller from its fast Wait state (Next, or a Choice's Default) back to it."""
    states: dict[str, Any] = state_machine_definition(template, POLLER_ID)["States"]
    wait_name = FAST_WAIT
    loop = [wait_name]
    current = states[wait_name]["Next"]
    while current != wait_name:
        if current in loop or len(loop) > len(states):
            raise ValueError(f"the poller's loop does not return to {wait_name}: {loop}")
        loop.append(current)
        state = states[current]
        current = state["Default"] if state["Type"] == "Choice" else state["Next"]
    resources = [json.dumps(states[name].get("Resource", "")) for name in loop]
    return PollerLoop(
        wait_s=int(states[wait_name]["Seconds"]),
        states=tuple(loop),
        lambda_states=sum(LAMBDA_INVOKE in resource for resource in resources),
        describe_states=sum(DESCRIBE_ACTION in resource for resource in resources),
    )


def wait_modes(template: dict[str, Any]) -> list[str]:
    """The WaitMode of every export in the template (absent: the custom resource waits)."""
    return [
        str(resource["Properties"].get(Prop.WAIT_MODE) or WaitMode.RESOURCE)
        for resource in template["Resources"].values()
        if resource["Type"] == RESOURCE_TYPE
    ]
