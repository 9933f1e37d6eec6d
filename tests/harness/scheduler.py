"""EventBridge Scheduler for the harness: fires a deployed AWS::Scheduler::Schedule's target.

moto does not run schedules. Here a schedule's target is invoked as Scheduler invokes it: the
Target's Input (resolved as CloudFormation would) with Scheduler's context attributes
substituted in the text (`<aws.scheduler.scheduled-time>` as `2026-11-29T02:00:00Z`, UTC,
`<aws.scheduler.execution-id>`, `<aws.scheduler.attempt-number>`, `<aws.scheduler.schedule-arn>`),
sent to the target: StartExecution on a state machine (without a name, as Scheduler's
templated Step Functions target does), Invoke on a Lambda function. A DISABLED schedule fires
nothing. A run is due at its scheduled time on the harness's virtual clock: `fire` waits for it
there (other executions go on meanwhile), so a day between two runs passes in no real time.

`occurrences` lists a schedule's next scheduled times from its expression and time zone
(cron with numbers, names, `*`, `?`, ranges, lists and steps; rate; at), for tests that run
the schedule as deployed rather than times of their own.
"""

from __future__ import annotations

import datetime
import itertools
import json
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from deploy_sim import ACCOUNT, REGION

from harness.cloudformation import HarnessDeployment

SCHEDULE = "AWS::Scheduler::Schedule"
SCHEDULED_TIME = "<aws.scheduler.scheduled-time>"
EXECUTION_ID = "<aws.scheduler.execution-id>"
ATTEMPT_NUMBER = "<aws.scheduler.attempt-number>"
SCHEDULE_ARN = "<aws.scheduler.schedule-arn>"
ENDED = ("SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED")
# An execution of the poller takes seconds of real time; a stuck one fails the test instead.
REAL_TIME_LIMIT_SECONDS = 60.0
UTC = datetime.UTC


class ScheduleDisabledError(RuntimeError):
    """Scheduler invokes nothing for a schedule whose State is DISABLED."""


@dataclass(frozen=True)
class Invocation:
    """One invocation of a schedule's target, as Scheduler made it."""

    schedule: str
    scheduled_time: datetime.datetime
    execution_id: str
    attempt: int
    input: str
    execution_arn: str


class Scheduler:
    """The schedules of one deployed stack, fired on the harness's virtual clock."""

    def __init__(self, deployment: HarnessDeployment) -> None:
        self.deployment = deployment
        self.harness = deployment.harness
        self.invocations: list[Invocation] = []

    def schedules(self) -> list[str]:
        """The logical ids of the stack's schedules."""
        resources = self.deployment.template["Resources"]
        return [key for key, resource in resources.items() if resource["Type"] == SCHEDULE]

    def properties(self, logical_id: str) -> dict[str, Any]:
        resolved: dict[str, Any] = self.deployment.resolve(
            self.deployment.template["Resources"][logical_id]["Properties"]
        )
        return resolved

    def schedule_arn(self, logical_id: str) -> str:
        group = self.properties(logical_id).get("GroupName", "default")
        name = self.deployment.physical_ids.get(logical_id) or logical_id
        return f"arn:aws:scheduler:{REGION}:{ACCOUNT}:schedule/{group}/{name}"

    def fire(
        self,
        logical_id: str,
        scheduled_time: datetime.datetime,
        *,
        attempt: int = 1,
        execution_id: str | None = None,
    ) -> Invocation:
        """Invoke the schedule's target for this scheduled time, once it is due on the clock.

        A retried invocation of the same run: the same scheduled time (and execution id), a
        later attempt number.
        """
        properties = self.properties(logical_id)
        if properties.get("State", "ENABLED") == "DISABLED":
            raise ScheduleDisabledError(f"{logical_id} is DISABLED: Scheduler invokes nothing")
        target = properties["Target"]
        invocation_id = execution_id or uuid.uuid4().hex[:16]
        text = self.context_filled(
            str(target.get("Input", "{}")), logical_id, scheduled_time, invocation_id, attempt
        )
        clock = self.harness.clock
        with clock.actor():
            clock.sleep(max(0.0, scheduled_time.timestamp() - clock.time()))
            arn = self._invoke(str(target["Arn"]), text)
        invocation = Invocation(logical_id, scheduled_time, invocation_id, attempt, text, arn)
        self.invocations.append(invocation)
        return invocation

    def context_filled(
        self,
        text: str,
        logical_id: str,
        scheduled_time: datetime.datetime,
        execution_id: str,
        attempt: int,
    ) -> str:
        """The Input as Scheduler sends it: its context attributes replaced in the text."""
        values = {
            SCHEDULED_TIME: scheduled_time.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            EXECUTION_ID: execution_id,
            ATTEMPT_NUMBER: str(attempt),
            SCHEDULE_ARN: self.schedule_arn(logical_id),
        }
        for placeholder, value in values.items():
            text = text.replace(placeholder, value)
        json.loads(text)  # Scheduler sends what the template holds: it must stay JSON
        return text

    def _invoke(self, target_arn: str, text: str) -> str:
        if ":states:" in target_arn and ":stateMachine:" in target_arn:
            answer = self.harness.step_functions.call(
                "StartExecution", {"stateMachineArn": target_arn, "input": text}
            )
            return str(answer["executionArn"])
        if ":lambda:" in target_arn:
            self.harness.lambdas.invoke_async(target_arn, json.loads(text))
            return ""
        raise NotImplementedError(f"the harness fires state machines and functions: {target_arn}")

    def wait(self, invocation: Invocation | str) -> dict[str, Any]:
        """The execution once it ended (polled in real time; the clock runs on meanwhile)."""
        arn = invocation if isinstance(invocation, str) else invocation.execution_arn
        deadline = time.monotonic() + REAL_TIME_LIMIT_SECONDS
        while time.monotonic() < deadline:
            execution = self.harness.step_functions.describe_execution(arn)
            if execution["status"] in ENDED:
                return execution
            time.sleep(0.01)
        raise TimeoutError(f"{arn} still running after {REAL_TIME_LIMIT_SECONDS} s of real time")

    def run(self, logical_id: str, scheduled_time: datetime.datetime) -> dict[str, Any]:
        """Fire one run and wait for its execution to end."""
        return self.wait(self.fire(logical_id, scheduled_time))

    def history(self, invocation: Invocation | str) -> list[dict[str, Any]]:
        arn = invocation if isinstance(invocation, str) else invocation.execution_arn
        client = self.harness.step_functions.client
        events = client.get_execution_history(executionArn=arn)["events"]
        return [dict(event) for event in events]

    def occurrences(
        self, logical_id: str, after: datetime.datetime, count: int
    ) -> list[datetime.datetime]:
        """The schedule's next `count` scheduled times after `after` (in UTC)."""
        properties = self.properties(logical_id)
        zone = ZoneInfo(str(properties.get("ScheduleExpressionTimezone") or "UTC"))
        expression = str(properties["ScheduleExpression"])
        return list(itertools.islice(scheduled_times(expression, zone, after), count))


def scheduled_times(
    expression: str, zone: ZoneInfo, after: datetime.datetime
) -> Iterator[datetime.datetime]:
    """Every time the expression names after `after`, in UTC."""
    if match := re.fullmatch(r"at\((.+)\)", expression):
        moment = datetime.datetime.fromisoformat(match[1]).replace(tzinfo=zone).astimezone(UTC)
        if moment > after:
            yield moment
        return
    if match := re.fullmatch(r"rate\((\d+) (minute|hour|day)s?\)", expression):
        step = datetime.timedelta(**{f"{match[2]}s": int(match[1])})
        moment = after
        while True:
            moment += step
            yield moment
    match = re.fullmatch(r"cron\((.+)\)", expression)
    if match is None:
        raise ValueError(f"not a schedule expression: {expression}")
    yield from _cron_times(_CronSpec.parse(match[1]), zone, after)


_MONTHS = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
_WEEKDAYS = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"]
# minutes, hours, day-of-month, month, day-of-week, year: (low, high, names)
_BOUNDS: tuple[tuple[int, int, list[str]], ...] = (
    (0, 59, []),
    (0, 23, []),
    (1, 31, []),
    (1, 12, _MONTHS),
    (1, 7, _WEEKDAYS),
    (1970, 2199, []),
)


@dataclass(frozen=True)
class _CronSpec:
    """The values each of the six fields allows (None: any, for '*' and '?')."""

    fields: tuple[frozenset[int] | None, ...]

    @classmethod
    def parse(cls, text: str) -> _CronSpec:
        parts = text.split()
        if len(parts) != len(_BOUNDS):
            raise ValueError(f"cron needs {len(_BOUNDS)} fields: {text}")
        fields = zip(parts, _BOUNDS, strict=True)
        return cls(tuple(_field(part, *bounds) for part, bounds in fields))

    def matches(self, local: datetime.datetime) -> bool:
        weekday = local.isoweekday() % 7 + 1  # SUN=1 ... SAT=7
        values = (local.minute, local.hour, local.day, local.month, weekday, local.year)
        pairs = zip(self.fields, values, strict=True)
        return all(allowed is None or value in allowed for allowed, value in pairs)


def _field(text: str, low: int, high: int, names: list[str]) -> frozenset[int] | None:
    if text in ("*", "?"):
        return None
    allowed: set[int] = set()
    for item in text.split(","):
        base, _, step = item.partition("/")
        if re.search(r"[LW#]", base):
            raise NotImplementedError(f"the harness's cron has no L, W or #: {text}")
        if base == "*":
            first, last = low, high
        else:
            bounds = [_value(bound, low, names) for bound in base.split("-")]
            first, last = bounds[0], bounds[-1] if "-" in base or not step else high
        allowed.update(range(first, last + 1, int(step or 1)))
    return frozenset(allowed)


def _value(text: str, low: int, names: list[str]) -> int:
    if text.upper() in names:
        return names.index(text.upper()) + low
    return int(text)


def _cron_times(
    spec: _CronSpec, zone: ZoneInfo, after: datetime.datetime
) -> Iterator[datetime.datetime]:
    """Minute by minute in UTC, matched in local time, as Scheduler keeps DST: a local time
    the clocks skip never comes, one they repeat comes once. An hour that can't match is
    skipped whole."""
    moment = after.astimezone(UTC).replace(second=0, microsecond=0) + datetime.timedelta(minutes=1)
    limit = moment + datetime.timedelta(days=366 * 5)
    while moment < limit:
        local = moment.astimezone(zone)
        hours = spec.fields[1]
        if hours is not None and local.hour not in hours:
            moment += datetime.timedelta(minutes=60 - local.minute)
            continue
        if spec.matches(local) and not local.fold:  # once when DST repeats an hour
            yield moment
        moment += datetime.timedelta(minutes=1)
