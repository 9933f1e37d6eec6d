"""Every event CloudFormation and the Provider framework send, with the faults Personalize can
answer, run through the deploy simulation: the handler from the synthesized asset, driven as the
framework drives it, against the stand-in.

Each row of SCENARIOS: what CloudFormation does (event), what the stand-in does wrong (faults),
what the framework answers (outcome, physical id, Reason fragments) and the exact Personalize
calls made (as PersonalizeStandIn.answers() shows them: "Operation" or "Operation:ErrorCode").
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from conftest import Synth, cached_synth, new_app
from deploy_sim import (
    CREATE_FAILED_MARKER,
    Deployment,
    FakeClock,
    Handler,
    Outcome,
    read_template,
)
from personalize_standin import ACTIVE, IN_PROGRESS, PersonalizeStandIn

from personalize_export.dataset_export_job import DatasetExportJob
from personalize_export.runtime.export_job.contract import RESOURCE_TYPE, Attr
from personalize_export.runtime.export_job.request import ExportRequest, job_name_for

STACK = "Sim"
DATASET = "arn:aws:personalize:us-east-1:123456789012:dataset/dg/INTERACTIONS"
OTHER_DATASET = "arn:aws:personalize:us-east-1:123456789012:dataset/dg/ITEMS"
OTHER_ROLE = "arn:aws:iam::123456789012:role/ExistingPersonalizeRole"
JOB_ARN_PREFIX = "arn:aws:personalize:us-east-1:123456789012:dataset-export-job/"
TIMEOUT_MINUTES = 5
# Polls until the deadline: one at once, then one every 30 s until TIMEOUT_MINUTES have passed.
POLLS_TO_DEADLINE = TIMEOUT_MINUTES * 2 + 1

C = "CreateDatasetExportJob"
D = "DescribeDatasetExportJob"


def refused(operation: str, code: str) -> str:
    return f"{operation}:{code}"


THROTTLED = "ThrottlingException"
NOT_FOUND = "ResourceNotFoundException"
EXISTS = "ResourceAlreadyExistsException"
IN_USE = "ResourceInUseException"
LIMIT = "LimitExceededException"
DENIED = "AccessDeniedException"
INVALID = "InvalidInputException"

# --- the app -------------------------------------------------------------------------------------

Options = dict[str, Any]


def build(app: cdk.App, options: Options) -> None:
    stack = cdk.Stack(app, STACK)
    DatasetExportJob(
        stack,
        "Export",
        dataset_arn=options.get("dataset", DATASET),
        ingestion_mode=options.get("mode", "PUT"),
        job_name=options.get("job_name"),
        output_prefix=options.get("prefix"),
        run_id=options.get("run_id"),
        tags=options.get("tags"),
        timeout=cdk.Duration.minutes(options.get("timeout", TIMEOUT_MINUTES)),
        encryption_key=kms.Key(stack, "Key") if options.get("kms") else None,
        role=iam.Role.from_role_arn(stack, "Role", OTHER_ROLE) if options.get("role") else None,
    )


Faults = Callable[[PersonalizeStandIn], None]


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    """Synthesize each variant of the app once per module (what deployment_of does, cached)."""
    return cached_synth(tmp_path_factory, build)


@dataclass
class World:
    """A stack deployed in the simulation: its deployment, handler and the stand-in."""

    standin: PersonalizeStandIn
    synth: Synth
    stack: contextlib.ExitStack
    faults: Faults = field(default=lambda standin: None)
    deployment: Deployment = field(init=False)
    handler: Handler = field(init=False)
    before: str = ""

    def start(self, **options: Any) -> World:
        self.deployment = Deployment(self.synth(**options), STACK, FakeClock())
        self.handler = self.stack.enter_context(self.deployment.handler())
        return self

    def begin(self) -> World:
        """The scenario's event begins: the stand-in starts misbehaving as the row says."""
        self.faults(self.standin)
        return self

    @property
    def export(self) -> str:
        (logical_id,) = self.deployment.custom_resources()
        return logical_id

    def create(self) -> Outcome:
        return self.deployment.create(self.handler, self.export)

    def deployed(self, **options: Any) -> World:
        """Created with these options; the calls log then starts empty."""
        self.start(**options)
        outcome = self.create()
        assert outcome.ok, outcome.reason
        self.before = outcome.physical_id
        self.standin.calls.clear()
        return self.begin()

    def update(self, **options: Any) -> Outcome:
        template = read_template(self.synth(**options), STACK)
        return self.deployment.update(self.handler, template, self.export)

    def run(self, event: dict[str, Any]) -> Outcome:
        return self.deployment.run(self.handler, event)

    def create_event(self) -> dict[str, Any]:
        properties = self.deployment.resolved_properties(self.export)
        return self.deployment.event("Create", self.export, properties)


@pytest.fixture
def world(standin: PersonalizeStandIn, synth: Synth) -> Iterator[World]:
    with contextlib.ExitStack() as stack:
        yield World(standin, synth, stack)


# --- events --------------------------------------------------------------------------------------

Event = Callable[[World], Outcome]


def create(world: World) -> Outcome:
    return world.start().begin().create()


def create_twice(world: World) -> Outcome:
    """The same Create delivered twice (same RequestId): both answers name the one job."""
    event = world.start().begin().create_event()
    first = world.run(event)
    second = world.run(event)
    assert first.ok and first.physical_id == second.physical_id
    return second


def create_lost_then_redelivered(world: World) -> Outcome:
    """onEvent created the job, the framework died before answering; the Create comes again."""
    event = world.start().begin().create_event()
    world.deployment.deliver_and_lose(world.handler, event)
    return world.run(event)


def create_over_job(*, same_export: bool) -> Event:
    """A job of the name this Create derives exists already: ours from a try, or someone else's."""

    def run(world: World) -> Outcome:
        event = world.start().begin().create_event()
        request = ExportRequest.from_properties(event["ResourceProperties"])
        world.standin.seed_job(
            job_name_for(request, event),
            request.dataset_arn if same_export else OTHER_DATASET,
            request.output_path,
            role_arn=request.role_arn,
        )
        return world.run(event)

    return run


def create_with_dataset_unknown(world: World) -> Outcome:
    world.standin.datasets = {OTHER_DATASET}
    return create(world)


def update_to(**options: Any) -> Event:
    """Deployed with the base options, then updated to these."""
    return update_from_to({}, options)


def update_from_to(before: Options, after: Options) -> Event:
    def run(world: World) -> Outcome:
        return world.deployed(**before).update(**after)

    return run


def update_unchanged_but_stringified_differently(world: World) -> Outcome:
    """CloudFormation's old properties spell the same export differently (case, slash, order)."""
    world.deployed(tags={"b": "2", "a": "1"})
    new = world.deployment.resolved_properties(world.export)
    old = dict(reversed(list(new.items())))
    old.update(
        IngestionMode=new["IngestionMode"].lower(),
        OutputPath=new["OutputPath"].rstrip("/"),
        DatasetArn=f" {new['DatasetArn']} ",
        Tags=list(reversed(new["Tags"])),
        TimeoutSeconds="3300",
        ServiceTimeout="3600",
    )
    event = world.deployment.event(
        "Update", world.export, new, physical_id=world.before, old_properties=old
    )
    return world.run(event)


def update_twice(world: World) -> Outcome:
    """The same Update delivered twice (same RequestId): one new job, one new id."""
    world.deployed()
    properties = world.deployment.resolved_properties(world.export)
    event = world.deployment.event(
        "Update",
        world.export,
        {**properties, "IngestionMode": "ALL"},
        physical_id=world.before,
        old_properties=properties,
    )
    first = world.run(event)
    second = world.run(event)
    assert first.ok and first.physical_id == second.physical_id
    return second


def rolled_back(update: Event) -> Event:
    """An update that fails, then CloudFormation's rollback Update to the last good properties."""

    def run(world: World) -> Outcome:
        failed = update(world)
        assert not failed.ok
        return world.deployment.roll_back_update(world.handler, world.export)

    return run


def delete(world: World) -> Outcome:
    world.deployed()
    return world.deployment.delete(world.handler, world.export)


def delete_of(physical_id: str) -> Event:
    def run(world: World) -> Outcome:
        world.deployed()
        world.before = physical_id
        properties = world.deployment.properties[world.export]
        event = world.deployment.event("Delete", world.export, properties, physical_id=physical_id)
        return world.run(event)

    return run


def delete_after_failed_create(*, in_on_event: bool) -> Event:
    """CloudFormation's rollback Delete, with the id the framework answered the failure with."""

    def run(world: World) -> Outcome:
        # Failures for access are retried while IAM settles (test_iam_lag.py): these are not.
        if in_on_event:
            world.standin.inject_error(INVALID, operation=C)
        else:
            world.standin.fail_next_job("no data to export")
        failed = world.start().create()
        assert not failed.ok
        world.standin.calls.clear()
        world.begin()
        world.before = failed.physical_id
        properties = world.deployment.resolved_properties(world.export)
        event = world.deployment.event(
            "Delete", world.export, properties, physical_id=failed.physical_id
        )
        return world.run(event)

    return run


# --- faults --------------------------------------------------------------------------------------


def no_faults(standin: PersonalizeStandIn) -> None:
    pass


def error(code: str, count: int = 1, operation: str = C, **kwargs: Any) -> Faults:
    def inject(standin: PersonalizeStandIn) -> None:
        standin.inject_error(code, count=count, operation=operation, **kwargs)

    return inject


def dropped_after_create(standin: PersonalizeStandIn) -> None:
    standin.drop_connection_next(operation=C, take_effect=True)


def dropped(operation: str) -> Faults:
    return lambda standin: standin.drop_connection_next(operation=operation)


def job_fails(reason: str) -> Faults:
    return lambda standin: standin.fail_next_job(reason)


def never_finishes(standin: PersonalizeStandIn) -> None:
    standin.never_finish_next_job()


def everything_throttled(standin: PersonalizeStandIn) -> None:
    standin.throttle_next(100)


# --- the table -----------------------------------------------------------------------------------

NEW_JOB = "a new job's ARN"
JOB_ARN = "the ARN of the job it tried (started or not)"
BEFORE = "the id before the event"
MARKER = "the framework's CREATE_FAILED marker"

LONG_REASON = "Le rôle n'a pas accès au compartiment «exports» — 日本語のエラー. " * 200
CLIENT_REASON = 'Insufficient privileges for "s3://bucket/exports/": check the bucket policy.'


@dataclass(frozen=True)
class Scenario:
    event: Event
    faults: Faults = no_faults
    outcome: str = "SUCCESS"
    calls: tuple[str, ...] = ()
    physical_id: str = NEW_JOB
    jobs: int = 1
    reason: tuple[str, ...] = ()
    data: bool = True


def row(scenario_id: str, scenario: Scenario) -> Any:
    return pytest.param(scenario, id=scenario_id)


def create_refused_then_started(scenario_id: str, code: str, *, times: int, **kwargs: Any) -> Any:
    """Create refused `times` times: every poll finds no job and tries again, then it runs."""
    retries = (refused(D, NOT_FOUND), refused(C, code)) * (times - 1)
    calls = (refused(C, code), *retries, refused(D, NOT_FOUND), C, D, D)
    return row(scenario_id, Scenario(create, error(code, count=times, **kwargs), calls=calls))


SCENARIOS = [
    # 1. Create, retried Create, adoption.
    row("create", Scenario(create, calls=(C, D, D))),
    row(
        "create-delivered-twice", Scenario(create_twice, calls=(C, D, D, refused(C, EXISTS), D, D))
    ),
    row(
        "create-lost-after-create-then-redelivered",
        Scenario(create_lost_then_redelivered, calls=(C, refused(C, EXISTS), D, D)),
    ),
    row(
        "create-answered-500-after-taking-effect",
        Scenario(
            create,
            error("InternalFailure", status=500, take_effect=True),
            calls=(refused(C, "InternalFailure"), D, D),
        ),
    ),
    row(
        "create-connection-dropped-after-taking-effect",
        Scenario(create, dropped_after_create, calls=(refused(C, "DROPPED"), D, D)),
    ),
    row(
        "create-name-held-by-same-export-is-adopted",
        Scenario(create_over_job(same_export=True), calls=(refused(C, EXISTS), D, D)),
    ),
    row(
        "create-name-held-by-another-export-fails",
        Scenario(
            create_over_job(same_export=False),
            outcome="FAILED",
            calls=(refused(C, EXISTS), D),
            physical_id=MARKER,
            reason=("already exists", f"DatasetArn is '{OTHER_DATASET}', not '{DATASET}'"),
        ),
    ),
    row(
        "create-name-held-by-another-export-checked-on-poll",
        Scenario(
            create_over_job(same_export=False),
            error(THROTTLED, operation=D),
            outcome="FAILED",
            calls=(refused(C, EXISTS), refused(D, THROTTLED), D),
            physical_id=JOB_ARN,
            reason=("already exists", f"DatasetArn is '{OTHER_DATASET}'"),
        ),
    ),
    # 4. Transient refusals: retried on every poll until the deadline, beyond botocore's few tries.
    create_refused_then_started("create-throttled-5-times", THROTTLED, times=5),
    create_refused_then_started("create-dataset-busy-3-times", IN_USE, times=3),
    create_refused_then_started("create-limit-exceeded-twice", LIMIT, times=2),
    create_refused_then_started("create-503-twice", "ServiceUnavailable", times=2, status=503),
    row(
        "create-dataset-busy-until-the-deadline",
        Scenario(
            create,
            error(IN_USE, count=100),
            outcome="FAILED",
            calls=(refused(C, IN_USE), *(refused(D, NOT_FOUND), refused(C, IN_USE)) * 11),
            physical_id=JOB_ARN,
            jobs=0,
            reason=(
                "could not be started within the 300 s timeout",
                "last with ResourceInUseException",
                "the dataset is busy",
                "No export job was started",
            ),
        ),
    ),
    row(
        "describe-throttled-4-times",
        Scenario(
            create,
            error(THROTTLED, count=4, operation=D),
            calls=(C, *[refused(D, THROTTLED)] * 4, D, D),
        ),
    ),
    row(
        "describe-connection-dropped",
        Scenario(create, dropped(D), calls=(C, refused(D, "DROPPED"), D, D)),
    ),
    row(
        "create-connection-dropped-before-taking-effect",
        Scenario(create, dropped(C), calls=(refused(C, "DROPPED"), refused(D, NOT_FOUND), C, D, D)),
    ),
    row(
        "describe-500-twice",
        Scenario(
            create,
            error("InternalFailure", count=2, operation=D, status=500),
            calls=(C, refused(D, "InternalFailure"), refused(D, "InternalFailure"), D, D),
        ),
    ),
    # Refusals for access while IAM settles (a Create's first minutes) are retried like throttling.
    row(
        "create-access-denied-while-iam-settles",
        Scenario(
            create,
            error(DENIED, status=403),
            calls=(refused(C, DENIED), refused(D, NOT_FOUND), C, D, D),
        ),
    ),
    # 4. Permanent errors fail at once, naming the cause and what to check.
    row(
        "create-invalid-input",
        Scenario(
            create,
            error(INVALID),
            outcome="FAILED",
            calls=(refused(C, INVALID),),
            physical_id=MARKER,
            jobs=0,
            reason=("InvalidInputException", "check the DatasetExportJob settings"),
        ),
    ),
    row(
        "create-dataset-not-found",
        Scenario(
            create_with_dataset_unknown,
            outcome="FAILED",
            calls=(refused(C, NOT_FOUND),),
            physical_id=MARKER,
            jobs=0,
            reason=(DATASET, "check that the dataset ARN names an existing dataset"),
        ),
    ),
    row(
        "describe-access-denied-while-iam-settles",
        Scenario(
            create,
            error(DENIED, operation=D, status=403),
            calls=(C, refused(D, DENIED), refused(C, EXISTS), D, D),
        ),
    ),
    # 6. CREATE FAILED carries failureReason verbatim (trimmed only to fit) and the job ARN.
    row(
        "job-fails",
        Scenario(
            create,
            job_fails('No "PUT" data in the dataset: export "BULK" or "ALL".'),
            outcome="FAILED",
            calls=(C, D, D),
            physical_id=JOB_ARN,
            reason=(
                'ended in CREATE FAILED: No "PUT" data in the dataset: export "BULK" or "ALL".\n',
                JOB_ARN_PREFIX,
            ),
        ),
    ),
    # A job failing for access while IAM settles is started again; the new job is the resource.
    row(
        "job-fails-for-access-is-started-again",
        Scenario(
            create,
            job_fails(CLIENT_REASON),
            calls=(C, D, D, refused(D, NOT_FOUND), C, D, D, D, D),
            jobs=2,
        ),
    ),
    row(
        "job-fails-with-a-huge-multibyte-reason",
        Scenario(
            create,
            job_fails(LONG_REASON),
            outcome="FAILED",
            calls=(C, D, D),
            physical_id=JOB_ARN,
            reason=(f"ended in CREATE FAILED: {LONG_REASON[:1200]}", "...\n", JOB_ARN_PREFIX),
        ),
    ),
    # 5. The deadline.
    row(
        "job-never-finishes",
        Scenario(
            create,
            never_finishes,
            outcome="FAILED",
            calls=(C, *[D] * POLLS_TO_DEADLINE),
            physical_id=JOB_ARN,
            reason=(
                "was not ACTIVE within the 300 s timeout",
                f"last status: {IN_PROGRESS}",
                "goes on running in Personalize",
                "CloudFormation waits at most one hour",
                JOB_ARN_PREFIX,
            ),
        ),
    ),
    # 2. Update.
    row("update-unchanged", Scenario(update_to(), calls=(D,), physical_id=BEFORE)),
    row(
        "update-unchanged-stringified-differently",
        Scenario(update_unchanged_but_stringified_differently, calls=(D,), physical_id=BEFORE),
    ),
    row(
        "update-tags-only",
        Scenario(update_to(tags={"team": "ml"}), calls=(D,), physical_id=BEFORE),
    ),
    row("update-timeout-only", Scenario(update_to(timeout=20), calls=(D,), physical_id=BEFORE)),
    row("update-mode", Scenario(update_to(mode="ALL"), calls=(D, C, D, D), jobs=2)),
    row("update-path", Scenario(update_to(prefix="elsewhere/"), calls=(D, C, D, D), jobs=2)),
    row("update-dataset", Scenario(update_to(dataset=OTHER_DATASET), calls=(D, C, D, D), jobs=2)),
    row("update-kms-key", Scenario(update_to(kms=True), calls=(D, C, D, D), jobs=2)),
    row("update-role", Scenario(update_to(role=True), calls=(D, C, D, D), jobs=2)),
    row("update-run-id-added", Scenario(update_to(run_id="1"), calls=(D, C, D, D), jobs=2)),
    row(
        "update-run-id-changed",
        Scenario(update_from_to({"run_id": "1"}, {"run_id": "2"}), calls=(D, C, D, D), jobs=2),
    ),
    row(
        "update-delivered-twice",
        Scenario(update_twice, calls=(D, C, D, D, D, refused(C, EXISTS), D, D), jobs=2),
    ),
    row(
        "update-create-throttled",
        Scenario(
            update_to(mode="ALL"),
            error(THROTTLED),
            calls=(D, refused(C, THROTTLED), refused(D, NOT_FOUND), C, D, D),
            jobs=2,
        ),
    ),
    row(
        "update-job-name-renamed",
        Scenario(
            update_from_to({"job_name": "nightly"}, {"job_name": "weekly"}),
            calls=(D, C, D, D),
            jobs=2,
        ),
    ),
    row(
        "update-job-name-unchanged-settings-changed",
        Scenario(
            update_from_to({"job_name": "nightly"}, {"job_name": "nightly", "mode": "ALL"}),
            outcome="FAILED",
            calls=(D,),
            physical_id=BEFORE,
            reason=(
                f"{JOB_ARN_PREFIX}nightly already exists",
                "IngestionMode is 'PUT', not 'ALL'",
                "set a new job_name",
            ),
        ),
    ),
    # Rollback of a failed update: CloudFormation sends an Update back to the old properties.
    row(
        "rollback-of-update-refused-in-onevent",
        Scenario(
            rolled_back(update_to(mode="ALL")),
            error(DENIED, status=403),
            calls=(D, refused(C, DENIED), D, D),
            physical_id=BEFORE,
        ),
    ),
    row(
        "rollback-of-update-whose-job-failed",
        Scenario(
            rolled_back(update_to(mode="ALL")),
            job_fails("no data to export"),
            calls=(D, C, D, D, D, C, D, D),
            jobs=3,
        ),
    ),
    row(
        "rollback-of-job-name-conflict",
        Scenario(
            rolled_back(update_from_to({"job_name": "nightly"}, {"job_name": "nightly", "kms": 1})),
            calls=(D, D, D),
            physical_id=BEFORE,
        ),
    ),
    # 3. Delete: always succeeds, never changes the id, removes nothing.
    row("delete", Scenario(delete, calls=(), physical_id=BEFORE, data=False)),
    row(
        "delete-while-personalize-throttles-everything",
        Scenario(delete, everything_throttled, calls=(), physical_id=BEFORE, data=False),
    ),
    row(
        "delete-of-an-id-never-returned",
        Scenario(
            delete_of("2024/01/01/[$LATEST]0123abcd"), calls=(), physical_id=BEFORE, data=False
        ),
    ),
    row(
        "delete-of-the-create-failed-marker",
        Scenario(delete_of(CREATE_FAILED_MARKER), calls=(), physical_id=BEFORE, data=False),
    ),
    row(
        "delete-after-create-failed-in-onevent",
        Scenario(
            delete_after_failed_create(in_on_event=True),
            calls=(),
            physical_id=BEFORE,
            jobs=0,
            data=False,
        ),
    ),
    row(
        "delete-after-create-failed-in-iscomplete",
        Scenario(
            delete_after_failed_create(in_on_event=False), calls=(), physical_id=BEFORE, data=False
        ),
    ),
]


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_scenario(world: World, scenario: Scenario) -> None:
    world.faults = scenario.faults
    outcome = scenario.event(world)
    check_scenario(world, scenario, outcome, world.standin.answers())


def check_scenario(world: World, scenario: Scenario, outcome: Outcome, calls: list[str]) -> None:
    """The row's outcome, Personalize calls, jobs, reason, physical id and data."""
    assert outcome.status == scenario.outcome, outcome.reason
    assert tuple(calls) == scenario.calls
    assert len(world.standin.jobs) == scenario.jobs
    for fragment in scenario.reason:
        assert fragment in outcome.reason
    check_physical_id(world, outcome, scenario.physical_id)
    if outcome.ok and scenario.data:
        assert outcome.data[Attr.JOB_ARN] == outcome.physical_id
        assert outcome.data[Attr.STATUS] == ACTIVE
    else:
        assert outcome.data == {}


def check_physical_id(world: World, outcome: Outcome, expected: str) -> None:
    if expected == BEFORE:
        assert outcome.physical_id == world.before
    elif expected == MARKER:
        assert outcome.physical_id == CREATE_FAILED_MARKER
    else:
        assert outcome.physical_id.startswith(JOB_ARN_PREFIX)
        assert outcome.physical_id != world.before
        if expected == NEW_JOB:
            assert outcome.physical_id in world.standin.jobs


# --- around the table ----------------------------------------------------------------------------


def test_update_leaves_the_old_job_alone_and_deletes_nothing(world: World) -> None:
    world.deployed()
    old_job = world.standin.jobs[world.before]
    outcome = world.update(mode="ALL")  # the simulation then sends Delete for the old id
    assert outcome.ok and outcome.physical_id != world.before
    assert world.standin.jobs[world.before] is old_job
    assert (old_job.status, old_job.ingestion_mode) == (ACTIVE, "PUT")
    new_job = world.standin.jobs[outcome.physical_id]
    assert new_job.ingestion_mode == "ALL"
    assert new_job.job_output == old_job.job_output
    assert {call.body.get("datasetExportJobArn") for call in world.standin.calls} <= {
        world.before,
        outcome.physical_id,
        None,
    }


def test_failed_reason_fits_the_response_and_keeps_multibyte_characters_whole(
    world: World,
) -> None:
    world.standin.fail_next_job(LONG_REASON)
    outcome = create(world)
    assert not outcome.ok
    reason = outcome.message.removeprefix(
        f"Export job {outcome.physical_id} ended in CREATE FAILED: "
    )
    assert reason.endswith("...")
    assert LONG_REASON.startswith(reason.removesuffix("..."))
    assert len(reason.encode()) > 1500


def test_default_timeout_fails_with_our_message_before_the_waiter_gives_up(
    standin: PersonalizeStandIn, synth: Synth
) -> None:
    deployment = Deployment(synth(timeout=55), STACK, FakeClock())
    waiter = deployment.waiter()
    standin.never_finish_next_job()
    with deployment.handler() as handler:
        (logical_id,) = deployment.custom_resources()
        outcome = deployment.create(handler, logical_id)
    assert outcome.status == "FAILED"
    assert "was not ACTIVE within the 3300 s timeout" in outcome.reason
    assert outcome.polls == 3300 // waiter.interval_seconds + 1 < waiter.max_attempts + 1


def test_logs_one_json_line_per_event_and_poll_without_the_response_url(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    world.start()
    capsys.readouterr()
    outcome = world.create()
    out = capsys.readouterr().out
    assert "ResponseURL" not in out
    assert "cloudformation-custom-resource-response" not in out
    lines = [json.loads(line) for line in out.splitlines()]
    assert len(lines) == 1 + outcome.polls
    for line in lines:
        assert line["requestType"] == "Create"
        assert line["logicalResourceId"] == world.export
        assert line["jobArn"] == outcome.physical_id
    assert [line["status"] for line in lines] == ["STARTED", IN_PROGRESS, ACTIVE]


# --- the timeout in the template (the construct's side of point 5) -------------------------------


def custom_resource_properties(template: dict[str, Any]) -> dict[str, Any]:
    (resource,) = [r for r in template["Resources"].values() if r["Type"] == RESOURCE_TYPE]
    properties: dict[str, Any] = resource["Properties"]
    return properties


@pytest.mark.parametrize("minutes", [0.5, 10, 55])
def test_timeout_maps_onto_the_deadline_service_timeout_and_waiter(
    synth: Synth, minutes: float
) -> None:
    deployment = Deployment(synth(timeout=minutes), STACK, FakeClock())
    properties = custom_resource_properties(deployment.template)
    waiter = deployment.waiter()
    seconds = int(minutes * 60)
    assert properties["TimeoutSeconds"] == str(seconds)
    assert int(properties["ServiceTimeout"]) == seconds + 300
    # The handler's deadline ends the wait first; CloudFormation's, then the waiter's, follow.
    assert seconds < int(properties["ServiceTimeout"]) <= 3600
    assert waiter.max_attempts * waiter.interval_seconds == 3600


@pytest.mark.parametrize("minutes", [721, 1440])
def test_a_timeout_beyond_a_wait_condition_s_12_hours_is_refused_with_the_reason(
    tmp_path: Path, minutes: int
) -> None:
    app = new_app(tmp_path / "cdk.out")
    with pytest.raises(ValueError, match=r"a WaitCondition waits at most 43200 s \(12 hours\)"):
        build(app, {"timeout": minutes})
