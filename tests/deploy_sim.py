"""A deploy of a synthesized app, simulated the way CloudFormation and the CDK Provider framework
run it, with the handler loaded from the synthesized Lambda asset and talking to the stand-in.

What is simulated (NOTES.md, aws-cdk custom-resources framework):
- every scalar property reaches the handler as a string;
- onEvent's result (PhysicalResourceId, Data and any other field) is merged into each isComplete
  event; isComplete runs at once, then is retried every IntervalSeconds at most MaxAttempts times,
  as the waiter state machine in the template says ("Operation timed out" after that); an exception
  in either handler fails the resource at once, and `Data` with IsComplete false is refused;
- a failure's Reason is built as framework.js does (includeStackTraces): "Error: " + the handler's
  message + the log group + the framework's stack frames;
- Delete may not change the PhysicalResourceId; a Create failing in onEvent is answered with the
  framework's CREATE_FAILED marker and the Delete that follows it never reaches the handler (one
  failing in isComplete keeps the id onEvent returned);
- an Update that returns a new PhysicalResourceId is a replacement: a Delete for the old id follows;
- the response to CloudFormation (JSON, UTF-8, as Node writes it) must stay under 4096 bytes;
- a failed Update keeps the physical id, and CloudFormation's rollback sends the resource an Update
  back to its last good properties (roll_back_update);
- isComplete's final answer may name another PhysicalResourceId: framework.js answers
  CloudFormation with {...event, ...isCompleteResult}, so that id wins.
Other resources get plausible physical ids, so every Ref, Fn::GetAtt and Fn::Join resolves.

IAM's lag (opt-in, watch_iam): the deployment tells a watcher (the stand-in) when it creates or
changes each role (AWS::IAM::Role, and every role an AWS::IAM::Policy or ManagedPolicy attaches to),
bucket policy (AWS::S3::BucketPolicy, as the bucket's ARN) and key (AWS::KMS::Key, whose policy is
in it), at the FakeClock's time, and which role the handler's calls come from.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import json
import os
import re
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol

from personalize_export.runtime.export_job.contract import RESOURCE_TYPE, RESULT_RESOURCE_TYPE

OUR_RESOURCE_TYPES = (RESOURCE_TYPE, RESULT_RESOURCE_TYPE)

ACCOUNT = "123456789012"
REGION = "us-east-1"
PARTITION = "aws"
STACK_GUID = "5f2c0e3a-0000-4000-8000-0123456789ab"
STACK_ID = f"arn:{PARTITION}:cloudformation:{REGION}:{ACCOUNT}:stack/Sim/{STACK_GUID}"
CREATE_FAILED_MARKER = "AWSCDK::CustomResourceProviderFramework::CREATE_FAILED"
MAX_RESPONSE_BYTES = 4096
# Names CloudFormation generates for buckets, functions, roles... are at most 63 characters here.
GENERATED_NAME_MAX_LENGTH = 63
# What V8 appends to an Error thrown in framework.js's invokeUserFunction (minified, one line).
FRAMEWORK_STACK = (
    "\n    at invokeUserFunction (/var/task/framework.js:1:3183)"
    "\n    at process.processTicksAndRejections (node:internal/process/task_queues:105:5)"
    "\n    at async {handler} (/var/task/framework.js:1:2405)"
    "\n    at async /var/task/cfn-response.js:1:1834"
)

Template = dict[str, Any]

# The resources whose creation or change IAM takes time to propagate.
ROLE = "AWS::IAM::Role"
POLICIES = ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy")
BUCKET_POLICY = "AWS::S3::BucketPolicy"
KEY = "AWS::KMS::Key"
IAM_KINDS = (ROLE, *POLICIES, BUCKET_POLICY, KEY)


class IamWatcher(Protocol):
    """What the deployment tells about IAM (PersonalizeStandIn implements it)."""

    clock: Callable[[], float]
    caller_role_arn: str | None

    def iam_changed(self, arn: str, at: float | None = None) -> None: ...


class FakeClock:
    """Stands in for the handler's `time` module: the simulated waiter moves it forward."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start

    def time(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Handler:
    """The onEvent and isComplete entry points, imported from the Lambda asset."""

    on_event: Callable[[dict[str, Any], object], dict[str, Any]]
    is_complete: Callable[[dict[str, Any], object], dict[str, Any]]
    modules: dict[str, ModuleType]


@dataclass
class Outcome:
    """What the framework answered CloudFormation for one event."""

    status: str
    physical_id: str
    data: dict[str, Any] = field(default_factory=dict)
    reason: str = ""
    polls: int = 0
    # The handler's own error message (the Reason wraps it in the framework's text).
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "SUCCESS"


@dataclass
class Waiter:
    interval_seconds: int
    max_attempts: int


def stringify(value: Any) -> Any:
    """CloudFormation hands custom resources every scalar as a string."""
    if isinstance(value, dict):
        return {key: stringify(item) for key, item in value.items()}
    if isinstance(value, list):
        return [stringify(item) for item in value]
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@contextmanager
def asset_handler(
    asset_dir: Path,
    on_event: str,
    is_complete: str,
    clock: FakeClock,
    environment: Mapping[str, str] | None = None,
) -> Iterator[Handler]:
    """Import the handler as Lambda does: the asset's root on sys.path, entry points by name,
    the function's Environment in os.environ."""
    saved_environment = {key: os.environ.get(key) for key in environment or {}}
    os.environ.update(environment or {})
    package = on_event.split(".")[0]
    saved = {name: mod for name, mod in sys.modules.items() if name.split(".")[0] == package}
    for name in saved:
        del sys.modules[name]
    sys.path.insert(0, str(asset_dir))
    try:
        handler = Handler(
            on_event=_entry(on_event),
            is_complete=_entry(is_complete),
            modules={
                name: mod for name, mod in sys.modules.items() if name.split(".")[0] == package
            },
        )
        for module in handler.modules.values():
            if getattr(module, "time", None) is time:
                module.time = clock  # type: ignore[attr-defined]
        yield handler
    finally:
        sys.path.remove(str(asset_dir))
        for name in [n for n in sys.modules if n.split(".")[0] == package]:
            del sys.modules[name]
        sys.modules.update(saved)
        for key, value in saved_environment.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _entry(dotted: str) -> Callable[[dict[str, Any], object], dict[str, Any]]:
    module_name, function_name = dotted.rsplit(".", 1)
    function: Callable[[dict[str, Any], object], dict[str, Any]] = getattr(
        importlib.import_module(module_name), function_name
    )
    return function


def read_template(assembly_dir: Path, stack_name: str) -> Template:
    """A stack's template from a cloud assembly (for an update to another synthesized version)."""
    template: Template = json.loads((assembly_dir / f"{stack_name}.template.json").read_text())
    return template


class Deployment:
    """One stack of a synthesized cloud assembly, deployed against the stand-in."""

    def __init__(self, assembly_dir: Path, stack_name: str, clock: FakeClock) -> None:
        self.assembly_dir = assembly_dir
        self.stack_name = stack_name
        self.clock = clock
        self.template = self._read_template(stack_name)
        self.physical_ids: dict[str, str] = {}
        self.attributes: dict[str, dict[str, Any]] = {}
        self.properties: dict[str, dict[str, Any]] = {}
        self.outcomes: list[tuple[str, str, Outcome]] = []
        self.attempted: dict[str, dict[str, Any]] = {}
        self.iam: IamWatcher | None = None
        self._requests = 0

    # --- the template ---------------------------------------------------------------------

    def _read_template(self, stack_name: str) -> Template:
        return read_template(self.assembly_dir, stack_name)

    def custom_resources(self, template: Template | None = None) -> list[str]:
        resources = (template or self.template)["Resources"]
        return [key for key, res in resources.items() if res["Type"] in OUR_RESOURCE_TYPES]

    def waiter(self) -> Waiter:
        definition = json.dumps(self._resources_of_type("AWS::StepFunctions::StateMachine")[0])
        interval = re.search(r'\\"IntervalSeconds\\":(\d+)', definition)
        attempts = re.search(r'\\"MaxAttempts\\":(\d+)', definition)
        assert interval and attempts, "the Provider's waiter state machine was not found"
        return Waiter(int(interval.group(1)), int(attempts.group(1)))

    def handler(self) -> AbstractContextManager[Handler]:
        """The onEvent/isComplete pair the stack's Provider invokes, from its synthesized asset."""
        on_event = self._user_function("USER_ON_EVENT_FUNCTION_ARN")
        is_complete = self._user_function("USER_IS_COMPLETE_FUNCTION_ARN")
        asset = self._asset_dir(on_event)
        assert asset == self._asset_dir(is_complete)
        return asset_handler(
            asset,
            on_event["Properties"]["Handler"],
            is_complete["Properties"]["Handler"],
            self.clock,
            environment=self._environment(on_event),
        )

    def _environment(self, function: Template) -> dict[str, str]:
        """A function's Environment, resolved, as Lambda sets it."""
        variables = function["Properties"].get("Environment", {}).get("Variables", {})
        return {key: str(self.resolve(value)) for key, value in variables.items()}

    def _user_function(self, variable: str) -> Template:
        """Our function, found through the framework function that calls it."""
        function: Template = self.template["Resources"][self._user_function_id(variable)]
        return function

    def _user_function_id(self, variable: str) -> str:
        for resource in self.template["Resources"].values():
            env = resource.get("Properties", {}).get("Environment", {}).get("Variables", {})
            if variable in env:
                return str(env[variable]["Fn::GetAtt"][0])
        raise AssertionError(f"no Provider framework function sets {variable}")

    def _asset_dir(self, function: Template) -> Path:
        key = function["Properties"]["Code"]["S3Key"]
        return self.assembly_dir / f"asset.{key.removesuffix('.zip')}"

    def _resources_of_type(self, kind: str) -> list[Template]:
        return [res for res in self.template["Resources"].values() if res["Type"] == kind]

    # --- IAM's lag -----------------------------------------------------------------------------

    def watch_iam(self, watcher: IamWatcher) -> None:
        """Tell `watcher` of every IAM change this deployment makes; it reads the FakeClock."""
        self.iam = watcher
        watcher.clock = self.clock.time

    def announce_iam_changes(self, logical_ids: list[str] | None = None) -> list[str]:
        """Tell the watcher these resources (default: every IAM one) changed now; return ARNs."""
        resources = self.template["Resources"]
        if logical_ids is None:
            logical_ids = [key for key, res in resources.items() if res["Type"] in IAM_KINDS]
        return self._announce([arn for key in logical_ids for arn in self._iam_arns(key)])

    def _announce(self, arns: list[str]) -> list[str]:
        if self.iam is None:
            return []
        changed = sorted(set(arns))
        for arn in changed:
            self.iam.iam_changed(arn, self.clock.time())
        if self._has_provider():
            self.iam.caller_role_arn = self.handler_role_arn()
        return changed

    def _has_provider(self) -> bool:
        """Whether the stack has our Provider (a stack of schedules only has none)."""
        try:
            self._user_function_id("USER_ON_EVENT_FUNCTION_ARN")
        except AssertionError:
            return False
        return True

    def handler_role_arn(self) -> str:
        """The role the Provider's user functions (onEvent, isComplete) run as."""
        roles = {
            str(self.resolve(self._user_function(variable)["Properties"]["Role"]))
            for variable in _FUNCTION_VARIABLES.values()
        }
        (role,) = roles
        return role

    def _iam_arns(self, logical_id: str) -> list[str]:
        resource = self.template["Resources"][logical_id]
        kind, properties = resource["Type"], resource.get("Properties", {})
        if kind in (ROLE, KEY):
            return [str(self._resource_attribute(logical_id, "Arn"))]
        if kind in POLICIES:
            return [
                f"arn:{PARTITION}:iam::{ACCOUNT}:role/{self.resolve(role)}"
                for role in properties.get("Roles", [])
            ]
        if kind == BUCKET_POLICY:
            return [f"arn:{PARTITION}:s3:::{self.resolve(properties['Bucket'])}"]
        return []

    def _iam_changes_since(self, old: Template) -> list[str]:
        """ARNs of the IAM resources the current template adds or changes since `old`, and of the
        roles a removed policy was attached to."""
        before, after = old["Resources"], self.template["Resources"]
        arns = [
            arn
            for key, res in after.items()
            if res["Type"] in IAM_KINDS and before.get(key) != res
            for arn in self._iam_arns(key)
        ]
        current, self.template = self.template, old
        try:
            for key, res in before.items():
                if res["Type"] in POLICIES and key not in after:
                    arns += self._iam_arns(key)
        finally:
            self.template = current
        return arns

    # --- CloudFormation's side --------------------------------------------------------------

    def deploy(self, handler: Handler, max_polls: int | None = None) -> dict[str, Any]:
        """Create every resource; return the resolved stack outputs (raises if a create fails)."""
        for logical_id in self.template["Resources"]:
            if logical_id not in self.custom_resources():
                self._assign_physical_id(logical_id)
        self.announce_iam_changes()
        for logical_id in self.custom_resources():
            outcome = self.create(handler, logical_id, max_polls=max_polls)
            if not outcome.ok:
                raise DeployFailedError(logical_id, outcome)
        return self.outputs()

    def create(self, handler: Handler, logical_id: str, **kwargs: Any) -> Outcome:
        properties = self.resolved_properties(logical_id)
        event = self.event("Create", logical_id, properties)
        outcome = self.run(handler, event, **kwargs)
        self._record(logical_id, event, outcome)
        return outcome

    def update(
        self, handler: Handler, template: Template, logical_id: str, **kwargs: Any
    ) -> Outcome:
        """Send an Update with the new template's properties; a new id means a replacement.

        IAM resources the new template adds or changes are updated first (as their dependents'
        Update follows them), and announced to the IAM watcher."""
        old_properties = self.properties[logical_id]
        old_template = self.template
        self.template = template
        if self.iam is not None:
            self._announce(self._iam_changes_since(old_template))
        properties = self.resolved_properties(logical_id)
        event = self.event(
            "Update",
            logical_id,
            properties,
            physical_id=self.physical_ids[logical_id],
            old_properties=old_properties,
        )
        return self._update(handler, event, **kwargs)

    def roll_back_update(self, handler: Handler, logical_id: str, **kwargs: Any) -> Outcome:
        """CloudFormation undoing a failed update: an Update back to the last good properties."""
        event = self.event(
            "Update",
            logical_id,
            self.properties[logical_id],
            physical_id=self.physical_ids[logical_id],
            old_properties=self.attempted[logical_id],
        )
        return self._update(handler, event, **kwargs)

    def _update(self, handler: Handler, event: dict[str, Any], **kwargs: Any) -> Outcome:
        logical_id = event["LogicalResourceId"]
        old_id = event["PhysicalResourceId"]
        outcome = self.run(handler, event, **kwargs)
        self._record(logical_id, event, outcome)
        if not outcome.ok:
            self.attempted[logical_id] = event["ResourceProperties"]
            # CloudFormation takes the id even from a FAILED answer (aws/aws-cdk#13527): one that
            # failed in isComplete names the new job, and the rollback Update is sent for that.
            self.physical_ids[logical_id] = outcome.physical_id or old_id
        elif outcome.physical_id != old_id:
            old_properties = event["OldResourceProperties"]
            cleanup = self.event("Delete", logical_id, old_properties, physical_id=old_id)
            delete = self.run(handler, cleanup)
            assert delete.ok, f"cleanup Delete of replaced {old_id} failed: {delete.reason}"
        return outcome

    def delete(self, handler: Handler, logical_id: str) -> Outcome:
        event = self.event(
            "Delete",
            logical_id,
            self.properties[logical_id],
            physical_id=self.physical_ids[logical_id],
        )
        return self.run(handler, event)

    def event(
        self,
        request_type: str,
        logical_id: str,
        properties: dict[str, Any],
        *,
        physical_id: str | None = None,
        old_properties: dict[str, Any] | None = None,
        request_id: str | None = None,
    ) -> dict[str, Any]:
        self._requests += 1
        event: dict[str, Any] = {
            "RequestType": request_type,
            "ServiceToken": properties.get("ServiceToken", ""),
            "ResponseURL": "https://cloudformation-custom-resource-response.example/presigned",
            "StackId": STACK_ID,
            "RequestId": request_id or str(uuid.UUID(int=self._requests)),
            "LogicalResourceId": logical_id,
            "ResourceType": self.template["Resources"][logical_id]["Type"],
            "ResourceProperties": properties,
        }
        if physical_id is not None:
            event["PhysicalResourceId"] = physical_id
        if old_properties is not None:
            event["OldResourceProperties"] = old_properties
        return event

    def _record(self, logical_id: str, event: dict[str, Any], outcome: Outcome) -> None:
        self.outcomes.append((event["RequestType"], logical_id, outcome))
        if outcome.ok:
            self.physical_ids[logical_id] = outcome.physical_id
            self.attributes[logical_id] = outcome.data
            self.properties[logical_id] = event["ResourceProperties"]

    # --- the Provider framework's side --------------------------------------------------------

    def deliver_and_lose(self, handler: Handler, event: dict[str, Any]) -> None:
        """onEvent runs, then the framework dies before answering (CloudFormation redelivers)."""
        with contextlib.suppress(Exception):
            handler.on_event(json.loads(json.dumps(event)), None)

    def run(self, handler: Handler, event: dict[str, Any], max_polls: int | None = None) -> Outcome:
        """The framework's onEvent → isComplete loop for one CloudFormation event.

        max_polls caps the number of isComplete calls (default: the waiter's 1 + MaxAttempts).
        """
        if event["RequestType"] == "Delete" and event["PhysicalResourceId"] == CREATE_FAILED_MARKER:
            return Outcome("SUCCESS", CREATE_FAILED_MARKER)
        try:
            result = handler.on_event(json.loads(json.dumps(event)), None)
        except Exception as error:  # the framework turns any exception into FAILED
            return self._failed(event, error, "onEvent")
        physical_id = str(
            result.get("PhysicalResourceId")
            or event.get("PhysicalResourceId")
            or event["RequestId"]
        )
        if event["RequestType"] == "Delete" and physical_id != event["PhysicalResourceId"]:
            return Outcome("FAILED", physical_id, reason="DELETE: cannot change the physical id")
        waiter = self.waiter()
        poll_event = {**event, **result, "PhysicalResourceId": physical_id}
        polls = min(max_polls or waiter.max_attempts + 1, waiter.max_attempts + 1)
        for poll in range(1, polls + 1):
            if poll > 1:
                self.clock.advance(waiter.interval_seconds)
            try:
                answer = handler.is_complete(json.loads(json.dumps(poll_event)), None)
            except Exception as error:
                return self._failed(poll_event, error, "isComplete", polls=poll)
            if answer.get("IsComplete"):
                data = {**result.get("Data", {}), **answer.get("Data", {})}
                final_id = str(answer.get("PhysicalResourceId") or physical_id)
                return self._respond(Outcome("SUCCESS", final_id, data, polls=poll), event)
            if answer.get("Data"):
                refused = ValueError('"Data" is not allowed if "IsComplete" is "False"')
                return self._failed(poll_event, refused, "isComplete", polls=poll)
        timed_out = Outcome("FAILED", self._failed_id(poll_event), reason="Operation timed out")
        timed_out.polls = polls
        return self._respond(timed_out, poll_event)

    def _failed(
        self, event: dict[str, Any], error: Exception, stage: str, polls: int = 0
    ) -> Outcome:
        message = str(error)
        function = self._ref(self._user_function_id(_FUNCTION_VARIABLES[stage]))
        reason = f"Error: {message}\n\nLogs: /aws/lambda/{function}\n" + FRAMEWORK_STACK.format(
            handler=stage
        )
        outcome = Outcome("FAILED", self._failed_id(event), reason=reason, message=message)
        outcome.polls = polls
        return self._respond(outcome, event)

    @staticmethod
    def _failed_id(event: dict[str, Any]) -> str:
        """As cfn-response.js: the event's id (isComplete events carry onEvent's), else the marker.

        So a Create that fails in isComplete reports the job ARN, and CloudFormation's rollback
        sends a Delete for it; only a Create failing in onEvent gets the CREATE_FAILED marker.
        """
        if event.get("PhysicalResourceId"):
            return str(event["PhysicalResourceId"])
        return CREATE_FAILED_MARKER if event["RequestType"] == "Create" else ""

    def _respond(self, outcome: Outcome, event: dict[str, Any]) -> Outcome:
        response = {
            "Status": outcome.status,
            "Reason": outcome.reason,
            "StackId": event["StackId"],
            "RequestId": event["RequestId"],
            "LogicalResourceId": event["LogicalResourceId"],
            "PhysicalResourceId": outcome.physical_id,
            "Data": outcome.data,
        }
        size = len(json.dumps(response, ensure_ascii=False).encode())
        assert size < MAX_RESPONSE_BYTES, f"response of {size} bytes: CloudFormation refuses it"
        return outcome

    # --- resolving the template -----------------------------------------------------------------

    def resolved_properties(self, logical_id: str) -> dict[str, Any]:
        properties = self.template["Resources"][logical_id]["Properties"]
        resolved: dict[str, Any] = stringify(self.resolve(properties))
        return resolved

    def outputs(self) -> dict[str, Any]:
        return {
            key: self.resolve(output["Value"])
            for key, output in self.template.get("Outputs", {}).items()
        }

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self.resolve(item) for item in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, argument),) = value.items()
            intrinsic = self._intrinsics().get(key)
            if intrinsic is not None:
                return intrinsic(argument)
        return {key: self.resolve(item) for key, item in value.items()}

    def _intrinsics(self) -> Mapping[str, Callable[[Any], Any]]:
        return {
            "Ref": self._ref,
            "Fn::GetAtt": self._get_att,
            "Fn::Join": lambda arg: str(arg[0]).join(str(self.resolve(p)) for p in arg[1]),
            "Fn::Select": lambda arg: self.resolve(arg[1])[int(arg[0])],
            "Fn::Split": lambda arg: str(self.resolve(arg[1])).split(arg[0]),
            "Fn::Sub": self._sub,
        }

    def _ref(self, name: str) -> str:
        pseudo = {
            "AWS::Partition": PARTITION,
            "AWS::Region": REGION,
            "AWS::AccountId": ACCOUNT,
            "AWS::StackName": self.stack_name,
            "AWS::StackId": STACK_ID,
            "AWS::URLSuffix": "amazonaws.com",
        }
        if name in pseudo:
            return pseudo[name]
        return self.physical_ids.get(name) or self._assign_physical_id(name)

    def _sub(self, argument: Any) -> str:
        text = argument if isinstance(argument, str) else argument[0]
        return re.sub(r"\$\{([^}]+)\}", lambda m: str(self._ref(m.group(1))), text)

    def _get_att(self, argument: list[str]) -> Any:
        logical_id, attribute = argument
        if logical_id in self.custom_resources():
            if logical_id not in self.attributes:
                raise KeyError(f"{logical_id} has no attributes yet: it was not deployed")
            data = self.attributes[logical_id]
            if attribute not in data:
                raise KeyError(f"CustomResource attribute error: no {attribute} in {sorted(data)}")
            return data[attribute]
        return self._resource_attribute(logical_id, attribute)

    def _assign_physical_id(self, logical_id: str) -> str:
        kind = self.template["Resources"].get(logical_id, {}).get("Type", "")
        name = generated_name(self.stack_name, logical_id)
        if kind == "AWS::KMS::Key":
            name = str(uuid.uuid5(uuid.NAMESPACE_DNS, logical_id))
        self.physical_ids[logical_id] = name
        return name

    def _resource_attribute(self, logical_id: str, attribute: str) -> str:
        kind = self.template["Resources"][logical_id]["Type"]
        name = self._ref(logical_id)
        arns = {
            ("AWS::S3::Bucket", "Arn"): f"arn:{PARTITION}:s3:::{name}",
            ("AWS::IAM::Role", "Arn"): f"arn:{PARTITION}:iam::{ACCOUNT}:role/{name}",
            ("AWS::KMS::Key", "Arn"): f"arn:{PARTITION}:kms:{REGION}:{ACCOUNT}:key/{name}",
            ("AWS::Lambda::Function", "Arn"): (
                f"arn:{PARTITION}:lambda:{REGION}:{ACCOUNT}:function:{name}"
            ),
            ("AWS::Personalize::Dataset", "DatasetArn"): (
                f"arn:{PARTITION}:personalize:{REGION}:{ACCOUNT}:dataset/{name}/INTERACTIONS"
            ),
        }
        default = f"arn:{PARTITION}:sim:{REGION}:{ACCOUNT}:{logical_id}/{attribute}"
        return arns.get((kind, attribute), default)


_FUNCTION_VARIABLES = {
    "onEvent": "USER_ON_EVENT_FUNCTION_ARN",
    "isComplete": "USER_IS_COMPLETE_FUNCTION_ARN",
}


class DeployFailedError(AssertionError):
    def __init__(self, logical_id: str, outcome: Outcome) -> None:
        super().__init__(f"{logical_id}: {outcome.status}: {outcome.reason}")
        self.outcome = outcome


def generated_name(stack_name: str, logical_id: str) -> str:
    """A name CloudFormation generates: unique per resource, at most 63 characters (a cut name
    ends in a hash of the whole, as CloudFormation's end in a random suffix)."""
    whole = f"{stack_name}-{logical_id}".lower()
    if len(whole) <= GENERATED_NAME_MAX_LENGTH:
        return whole
    digest = hashlib.sha256(whole.encode()).hexdigest()[:8]
    return f"{whole[: GENERATED_NAME_MAX_LENGTH - 9]}-{digest}"
