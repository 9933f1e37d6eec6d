"""The deploy harness: a synthesized stack deployed with the real parts AWS runs.

Between CloudFormation and our handler, everything here is the real thing: the Provider
framework's JavaScript from the cdk.out asset run by Node 24 with AWS SDK v3, the waiter state
machine's DefinitionString run by moto's Step Functions interpreter, our handler from its asset.
What stands in: CloudFormation itself (this module), Lambda's Invoke API (lambda_service.py),
the ResponseURL (responses.py), Personalize (personalize_standin.py), and virtual time (clock.py).

CloudFormation's side, as its documentation describes it:
- resources start once everything they reference (Ref, Fn::GetAtt, Fn::Sub, DependsOn) is done,
  independent ones concurrently;
- custom resources get Create/Update/Delete events with every scalar stringified, through the
  ServiceToken function invoked asynchronously, and wait for the ResponseURL up to their
  ServiceTimeout; a response of 4096 bytes or more fails the resource;
- an Update whose answer names another physical id is a replacement: the old one gets a Delete
  once the whole stack update succeeded; a failed update rolls every updated resource back;
- a stack Delete deletes resources in reverse dependency order.
The resolution of intrinsics, event shapes and single-resource operations come from deploy_sim,
whose simulated framework (`run`) this class replaces with the real one.
"""

from __future__ import annotations

import atexit
import concurrent.futures
import contextlib
import itertools
import json
import os
import re
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import boto3
import botocore.endpoint
import certifi
from deploy_sim import (
    ACCOUNT,
    CREATE_FAILED_MARKER,
    IAM_KINDS,
    REGION,
    DeployFailedError,
    Deployment,
    FakeClock,
    Handler,
    Outcome,
    Template,
)
from moto.events.models import EventPattern
from personalize_standin import PersonalizeStandIn

from harness.clock import VirtualClock
from harness.lambda_service import FunctionError, FunctionSpec, LambdaService
from harness.responses import Response, ResponseEndpoint
from harness.stepfunctions import SfnEndpoint, StepFunctions

REPO = Path(__file__).resolve().parents[2]
DEFAULT_SERVICE_TIMEOUT = 3600
NO_RESPONSE = (
    "CloudFormation did not receive a response from your Custom Resource. Please check your "
    "logs for requestId [{request_id}]."
)
_DEPLOYMENTS = itertools.count(1)
WAIT_HANDLE = "AWS::CloudFormation::WaitConditionHandle"
WAIT_CONDITION = "AWS::CloudFormation::WaitCondition"
WAIT_FAILED = "WaitCondition received failed message: '{reason}' for uniqueId: {unique_id}"
WAIT_TIMED_OUT = "WaitCondition timed out. Received {received} conditions when expecting {count}"
SSM_PARAMETER = "AWS::SSM::Parameter"


class Harness:
    """The long-lived parts, started once per test session: clock, endpoints, interpreter."""

    _instance: Harness | None = None
    _lock = threading.Lock()

    @classmethod
    def get(cls) -> Harness:
        with cls._lock:
            if cls._instance is None:
                cls._instance = cls()
                atexit.register(cls._instance.stop)
            return cls._instance

    def __init__(self) -> None:
        self.clock = VirtualClock()
        self._folder = tempfile.TemporaryDirectory(prefix="deploy-harness-")
        self.responses = ResponseEndpoint(self.clock, Path(self._folder.name))
        self.step_functions = StepFunctions(self.clock, REGION).start()
        self.sfn_endpoint = SfnEndpoint(self.step_functions)
        self.lambdas = LambdaService(self.clock, {}).start()
        self.lambdas.node_environment.update(self._node_environment())
        os.environ["AWS_ENDPOINT_URL_LAMBDA"] = self.lambdas.endpoint_url
        # Python functions run in this process: trust the harness's HTTPS endpoint too (the
        # WaitCondition signal), besides the usual public CAs.
        os.environ["SSL_CERT_FILE"] = str(self._ca_bundle())
        # botocore's retry back-off: a call is retried at once. It runs deep inside synchronous
        # calls (a task waits on the framework, which waits on our handler), whose callers count
        # as busy, so no wait on the clock could ever end; a few seconds matter nothing to a
        # 30-second poll.
        botocore.endpoint.time = _NoBackOff(time)  # type: ignore[attr-defined]

    def _ca_bundle(self) -> Path:
        bundle = Path(self._folder.name) / "ca-bundle.pem"
        bundle.write_text(
            Path(certifi.where()).read_text() + self.responses.certificate.read_text()
        )
        return bundle

    def _node_environment(self) -> dict[str, str]:
        return {
            "PATH": os.environ.get("PATH", ""),
            "HOME": os.environ.get("HOME", "/tmp"),
            "NODE_PATH": str(REPO / "node_modules"),
            "NODE_EXTRA_CA_CERTS": str(self.responses.certificate),
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_ENDPOINT_URL_SFN": self.sfn_endpoint.endpoint_url,
            "AWS_ENDPOINT_URL_LAMBDA": self.lambdas.endpoint_url,
        }

    def stop(self) -> None:
        self.lambdas.stop()
        self.sfn_endpoint.stop()
        self.responses.stop()
        self.step_functions.stop()
        self._folder.cleanup()


@dataclass(frozen=True)
class StackResult:
    """A stack operation: whether it succeeded, and each custom resource's last outcome."""

    ok: bool
    outcomes: dict[str, Outcome]
    failed: str = ""
    rollback: dict[str, Outcome] = field(default_factory=dict)

    def reason(self) -> str:
        return self.outcomes[self.failed].reason if self.failed else ""


class HarnessDeployment(Deployment):
    """One stack of a cloud assembly, deployed through the harness against the stand-in."""

    def __init__(
        self,
        assembly_dir: Path,
        stack_name: str,
        *,
        standin: PersonalizeStandIn | None = None,
    ) -> None:
        self.harness = Harness.get()
        self.harness.step_functions.stop_all_executions()
        self._first_event = len(self.harness.step_functions.events)
        super().__init__(assembly_dir, stack_name, _OnTheHarnessClock(self.harness.clock))
        self.standin = standin
        if standin is not None:
            self.watch_iam(standin)  # IAM's lag, measured in virtual time
        # The handler runs in this process: its hand-over to the poller reaches moto.
        os.environ["AWS_ENDPOINT_URL_SFN"] = self.harness.sfn_endpoint.endpoint_url
        self.unique = f"{stack_name[:12]}-{next(_DEPLOYMENTS)}"
        self._state = threading.RLock()
        self._provisioned: set[str] = set()

    # --- time and the stand-in ------------------------------------------------------------

    @property
    def now(self) -> float:
        return self.harness.clock.time()

    # --- provisioning plain resources -----------------------------------------------------

    @contextlib.contextmanager
    def handler(self) -> Iterator[Handler]:
        """Provision every plain resource (functions, state machines), in dependency order."""
        for logical_id in self.creation_order():
            if logical_id not in self.custom_resources() and not self._is_foreign(logical_id):
                self.provision(logical_id)
        yield Handler(self._refused, self._refused, {})

    @staticmethod
    def _refused(event: dict[str, Any], context: object) -> dict[str, Any]:
        raise AssertionError("the harness runs the handler through the real framework only")

    def provision(self, logical_id: str) -> None:
        """Create a plain resource: functions and state machines for real, others by name."""
        with self._state:
            if logical_id in self._provisioned:
                return
            self._provisioned.add(logical_id)
        resource = self.template["Resources"][logical_id]
        kind = resource["Type"]
        if kind == "AWS::Lambda::Function":
            self._deploy_function(logical_id, resource["Properties"])
        elif kind == "AWS::StepFunctions::StateMachine":
            self._create_state_machine(logical_id, resource["Properties"])
        elif kind == WAIT_HANDLE:
            self.physical_ids[logical_id] = self.harness.responses.new_handle(self.unique)
        elif kind == SSM_PARAMETER:
            self._put_parameter(logical_id, resource["Properties"])
        else:
            self._ref(logical_id)
        if kind in IAM_KINDS and self.iam is not None:
            self._announce(self._iam_arns(logical_id))  # the stand-in learns IAM's lag

    def _deploy_function(self, logical_id: str, properties: dict[str, Any]) -> None:
        runtime = str(properties.get("Runtime", ""))
        if not runtime.startswith(("python", "nodejs")):
            return
        variables = self.resolve(properties.get("Environment", {}).get("Variables", {}))
        spec = FunctionSpec(
            name=self._ref(logical_id),
            arn=str(self._get_att([logical_id, "Arn"])),
            runtime=runtime,
            handler=str(properties["Handler"]),
            asset_dir=self._asset_dir({"Properties": properties}),
            environment={key: str(value) for key, value in variables.items()},
            timeout_seconds=int(properties.get("Timeout", 3)),
        )
        self.harness.lambdas.register(spec)

    def _create_state_machine(self, logical_id: str, properties: dict[str, Any]) -> None:
        definition = properties.get("DefinitionString")
        if definition is None:
            definition = json.dumps(self.resolve(properties["Definition"]))
        arn = self.harness.step_functions.create_state_machine(
            name=self._ref(logical_id)[:80],
            definition=str(self.resolve(definition)),
            role_arn=str(self.resolve(properties["RoleArn"])),
        )
        self.physical_ids[logical_id] = arn

    def _put_parameter(self, logical_id: str, properties: dict[str, Any]) -> None:
        """An SSM parameter in moto's SSM (the workflows read and write it there)."""
        ssm = boto3.client(
            "ssm", region_name=REGION, aws_access_key_id="test", aws_secret_access_key="test"
        )
        ssm.put_parameter(
            Name=self._ref(logical_id),
            Value=str(self.resolve(properties["Value"])),
            Type=str(properties.get("Type", "String")),
            Overwrite=True,
        )

    def function_names(self, handler: str) -> set[str]:
        """The deployed names of the template's functions with this Handler."""
        return {
            self._ref(key)
            for key, resource in self.template["Resources"].items()
            if resource.get("Properties", {}).get("Handler") == handler
        }

    def _is_foreign(self, logical_id: str) -> bool:
        """A custom resource whose provider the harness doesn't run (not ours)."""
        resource = self.template["Resources"][logical_id]
        return resource["Type"].startswith("Custom::") and logical_id not in self.custom_resources()

    # --- the template's graph -------------------------------------------------------------

    def dependencies(self, logical_id: str) -> set[str]:
        resource = self.template["Resources"][logical_id]
        depends = resource.get("DependsOn", [])
        found = set([depends] if isinstance(depends, str) else depends)
        text = json.dumps(resource.get("Properties", {}))
        found |= set(re.findall(r'"Ref": "([A-Za-z0-9]+)"', text))
        found |= set(re.findall(r'"Fn::GetAtt": \["([A-Za-z0-9]+)"', text))
        found |= set(re.findall(r"\$\{([A-Za-z0-9]+)[.}]", text))
        return found & set(self.template["Resources"]) - {logical_id}

    def creation_order(self) -> list[str]:
        order: list[str] = []
        done: set[str] = set()

        def visit(logical_id: str) -> None:
            if logical_id in done:
                return
            done.add(logical_id)
            for dependency in sorted(self.dependencies(logical_id)):
                visit(dependency)
            order.append(logical_id)

        for logical_id in self.template["Resources"]:
            visit(logical_id)
        return order

    # --- custom resources through the real framework ----------------------------------------

    def run(self, handler: Handler, event: dict[str, Any], max_polls: int | None = None) -> Outcome:
        """Send one event to the ServiceToken function and wait for its ResponseURL."""
        clock = self.harness.clock
        properties = event["ResourceProperties"]
        timeout = float(properties.get("ServiceTimeout") or DEFAULT_SERVICE_TIMEOUT)
        with clock.actor():
            sleeper = clock.sleeper(timeout)
            sent = {**event, "ResponseURL": self.harness.responses.new_url(sleeper, self.unique)}
            with self.harness.lambdas.recording() as invocations:
                self.harness.lambdas.invoke_async(str(event["ServiceToken"]), sent)
                response = clock.wait(sleeper)
        if not isinstance(response, Response):
            no_answer = NO_RESPONSE.format(request_id=event["RequestId"])
            return Outcome("FAILED", str(event.get("PhysicalResourceId", "")), reason=no_answer)
        polls = sum(1 for call in invocations if self._is_user_poll(call.function, event))
        return Outcome(
            response.status,
            response.physical_id,
            response.data if response.status == "SUCCESS" else {},
            reason=response.reason if response.status == "FAILED" else "",
            polls=polls,
            message=handler_message(response.reason) if response.status == "FAILED" else "",
        )

    def _is_user_poll(self, function: str, event: dict[str, Any]) -> bool:
        return function == self._ref(self._user_function_id("USER_IS_COMPLETE_FUNCTION_ARN"))

    def deliver_and_lose(self, handler: Handler, event: dict[str, Any]) -> None:
        """The user onEvent runs, then the framework dies before answering."""
        user_on_event = str(
            self._get_att([self._user_function_id("USER_ON_EVENT_FUNCTION_ARN"), "Arn"])
        )
        with contextlib.suppress(FunctionError):
            self.harness.lambdas.invoke(user_on_event, json.loads(json.dumps(event)))

    def published(self) -> list[dict[str, Any]]:
        """Every event put on any bus since this deployment began, as EventBridge delivers them."""
        return [
            {
                "source": entry.get("Source"),
                "detail-type": entry.get("DetailType"),
                "detail": json.loads(entry.get("Detail") or "{}"),
                "account": ACCOUNT,
                "region": REGION,
                "event-bus-name": entry.get("EventBusName") or "default",
                "resources": list(entry.get("Resources") or []),
            }
            for entry in self.harness.step_functions.events[self._first_event :]
        ]

    def rules_matching(self, event: dict[str, Any]) -> list[str]:
        """The stack's AWS::Events::Rule resources whose bus and pattern match an event."""
        matching = []
        for key, resource in self.template["Resources"].items():
            if resource["Type"] != "AWS::Events::Rule":
                continue
            properties = self.resolve(resource["Properties"])
            bus = str(properties.get("EventBusName") or "default").rsplit("/", 1)[-1]
            pattern = EventPattern.load(json.dumps(properties["EventPattern"]))
            if bus == event["event-bus-name"] and pattern.matches_event(cast(Any, event)):
                matching.append(key)
        return matching

    def settle(self) -> None:
        """Run virtual time on until every execution (the poller's too) has ended."""
        self.harness.clock.wait_until_idle()

    # --- whole-stack operations, as CloudFormation runs them --------------------------------

    def deploy(
        self, handler: Handler | None = None, max_polls: int | None = None
    ) -> dict[str, Any]:
        """Create the stack; return its outputs (raises DeployFailedError if it rolls back)."""
        result = self.create_stack()
        if not result.ok:
            raise DeployFailedError(result.failed, result.outcomes[result.failed])
        return self.outputs()

    def create_stack(self) -> StackResult:
        outcomes: dict[str, Outcome] = {}

        def create_one(logical_id: str) -> bool:
            outcome = self.create_resource(logical_id)
            if outcome is None:
                return True
            outcomes[logical_id] = outcome
            return outcome.ok

        failed = self._in_dependency_order(list(self.template["Resources"]), create_one)
        return StackResult(not failed, outcomes, failed)

    def create_resource(self, logical_id: str) -> Outcome | None:
        """Create one resource; an Outcome for those that can fail (custom, WaitCondition)."""
        if logical_id in self.custom_resources():
            return self.create(Handler(self._refused, self._refused, {}), logical_id)
        if self.template["Resources"][logical_id]["Type"] == WAIT_CONDITION:
            return self.wait_condition(logical_id)
        if not self._is_foreign(logical_id):
            self.provision(logical_id)
        return None

    def wait_condition(self, logical_id: str) -> Outcome:
        """Wait for the handle's signals up to Timeout, as CloudFormation does on Create."""
        properties = self.template["Resources"][logical_id]["Properties"]
        url = str(self.resolve(properties["Handle"]))
        count = int(properties.get("Count", 1))
        result = self.harness.responses.wait_condition(url, count, float(properties["Timeout"]))
        self.physical_ids[logical_id] = f"{url.split('?')[0]}#{logical_id}"
        if result is None:
            received = len(self.harness.responses.signals(url))
            reason = WAIT_TIMED_OUT.format(received=received, count=count)
            return Outcome("FAILED", self.physical_ids[logical_id], reason=reason)
        if result["Status"] == "FAILURE":
            reason = WAIT_FAILED.format(reason=result.get("Reason"), unique_id=result["UniqueId"])
            return Outcome("FAILED", self.physical_ids[logical_id], reason=reason)
        # Fn::GetAtt Data is a JSON object (not a string): UniqueId -> Data.
        data = {key: signal.get("Data") for key, signal in result["Signals"].items()}
        self.attributes[logical_id] = {"Data": data}
        return Outcome("SUCCESS", self.physical_ids[logical_id], {"Data": data})

    def _resource_attribute(self, logical_id: str, attribute: str) -> Any:
        if logical_id in self.attributes and attribute in self.attributes[logical_id]:
            return self.attributes[logical_id][attribute]
        return super()._resource_attribute(logical_id, attribute)

    def update_stack(self, template: Template) -> StackResult:
        """Update the stack as CloudFormation does.

        New resources are created, changed ones updated (custom resources get an Update event),
        in dependency order. After success, replaced and removed custom resources get their
        Delete. After a failure, every custom resource updated so far gets an Update back to its
        old properties and new custom resources are deleted (the rollback).
        """
        old_template, old_ids = self.template, dict(self.physical_ids)
        old_properties = {key: self.properties[key] for key in self.properties}
        self.template = template
        added = [key for key in template["Resources"] if key not in old_template["Resources"]]
        # A custom resource is updated when its resolved properties change (a value it reads
        # from another resource may change without its template changing): checked in turn.
        changed = [
            key
            for key in template["Resources"]
            if key not in added
            and (
                key in self.custom_resources()
                or template["Resources"][key].get("Properties")
                != old_template["Resources"][key].get("Properties")
            )
        ]
        outcomes: dict[str, Outcome] = {}

        def update_one(logical_id: str) -> bool:
            if logical_id in added:
                outcome = self.create_resource(logical_id)
            elif logical_id in self.custom_resources():
                if self.resolved_properties(logical_id) == old_properties.get(logical_id):
                    return True
                outcome = self._update_custom(logical_id, old_ids, old_properties)
            else:
                self._provisioned.discard(logical_id)
                outcome = self.create_resource(logical_id)
            if outcome is not None:
                outcomes[logical_id] = outcome
            return outcome is None or outcome.ok

        failed = self._in_dependency_order(added + changed, update_one)
        if failed:
            rollback = self._roll_back(old_template, outcomes, added, old_properties)
            return StackResult(False, outcomes, failed, rollback)
        self._clean_up(old_template, old_ids, old_properties, changed)
        return StackResult(True, outcomes)

    def _update_custom(
        self, logical_id: str, old_ids: dict[str, str], old_properties: dict[str, Any]
    ) -> Outcome:
        event = self.event(
            "Update",
            logical_id,
            self.resolved_properties(logical_id),
            physical_id=old_ids[logical_id],
            old_properties=old_properties[logical_id],
        )
        outcome = self.run(Handler(self._refused, self._refused, {}), event)
        self._record(logical_id, event, outcome)
        if not outcome.ok:
            self.attempted[logical_id] = event["ResourceProperties"]
            # CloudFormation keeps the id even from a FAILED answer (aws/aws-cdk#13527).
            self.physical_ids[logical_id] = outcome.physical_id or old_ids[logical_id]
        return outcome

    def _roll_back(
        self,
        old_template: Template,
        outcomes: dict[str, Outcome],
        added: list[str],
        old_properties: dict[str, Any],
    ) -> dict[str, Outcome]:
        custom = [key for key in outcomes if key in self.custom_resources()]
        self.template = old_template
        rollback: dict[str, Outcome] = {}

        def undo(logical_id: str) -> bool:
            if logical_id in added:
                rollback[logical_id] = self.delete(
                    Handler(self._refused, self._refused, {}), logical_id
                )
            else:
                rollback[logical_id] = self._undo_update(logical_id, old_properties[logical_id])
            return True

        self._in_dependency_order(custom, undo, reverse=True)
        return rollback

    def _undo_update(self, logical_id: str, old_properties: dict[str, Any]) -> Outcome:
        """CloudFormation's rollback: an Update back to the last good properties, from those it
        tried (the failed update's, or the succeeded one's when a later resource failed)."""
        tried = self.attempted.get(logical_id) or self.properties[logical_id]
        event = self.event(
            "Update",
            logical_id,
            old_properties,
            physical_id=self.physical_ids[logical_id],
            old_properties=tried,
        )
        outcome = self.run(Handler(self._refused, self._refused, {}), event)
        self._record(logical_id, event, outcome)
        return outcome

    def _clean_up(
        self,
        old_template: Template,
        old_ids: dict[str, str],
        old_properties: dict[str, Any],
        changed: list[str],
    ) -> None:
        replaced = [
            key
            for key in changed
            if key in self.custom_resources() and self.physical_ids[key] != old_ids[key]
        ]
        removed = [
            key
            for key in old_template["Resources"]
            if key not in self.template["Resources"] and key in old_properties
        ]
        self._concurrently(
            replaced + removed,
            lambda key: self._cleanup(key, old_ids[key], old_properties[key]),
        )

    def _cleanup(self, logical_id: str, old_id: str, old_properties: dict[str, Any]) -> bool:
        event = self.event("Delete", logical_id, old_properties, physical_id=old_id)
        outcome = self.run(Handler(self._refused, self._refused, {}), event)
        assert outcome.ok, f"cleanup Delete of replaced {old_id} failed: {outcome.reason}"
        return True

    def delete_stack(self) -> StackResult:
        """Delete every custom resource, dependents first, concurrently where independent."""
        outcomes: dict[str, Outcome] = {}
        created = [key for key in self.custom_resources() if key in self.physical_ids]

        def delete_one(logical_id: str) -> bool:
            outcome = self.delete(Handler(self._refused, self._refused, {}), logical_id)
            outcomes[logical_id] = outcome
            return outcome.ok

        failed = self._in_dependency_order(created, delete_one, reverse=True)
        return StackResult(not failed, outcomes, failed)

    def _in_dependency_order(
        self, keys: list[str], work: Callable[[str], bool], *, reverse: bool = False
    ) -> str:
        """Run `work` on each key once its dependencies (dependents if reverse) are done.

        Independent keys run concurrently. Returns the first key that failed, or "".
        """
        among = set(keys)
        waits_for = {key: self._related(key, among, reverse) for key in keys}
        done: set[str] = set()
        failed = ""
        with concurrent.futures.ThreadPoolExecutor(max_workers=32) as pool:
            running: dict[concurrent.futures.Future[bool], str] = {}
            while len(done) < len(keys) and not failed:
                for key in keys:
                    ready = waits_for[key] <= done
                    if key not in done and key not in running.values() and ready:
                        running[pool.submit(self._as_actor, work, key)] = key
                if not running:
                    raise AssertionError(f"dependency cycle among {sorted(among - done)}")
                finished, _ = concurrent.futures.wait(
                    running, return_when=concurrent.futures.FIRST_COMPLETED
                )
                for future in finished:
                    key = running.pop(future)
                    done.add(key)
                    if not future.result() and not failed:
                        failed = key
            concurrent.futures.wait(running)
        return failed

    def _related(self, key: str, among: set[str], reverse: bool) -> set[str]:
        if not reverse:
            return self._transitive(key) & among
        return {other for other in among if key in self._transitive(other)}

    def _transitive(self, key: str) -> set[str]:
        seen: set[str] = set()
        stack = [key]
        while stack:
            for dependency in self.dependencies(stack.pop()):
                if dependency not in seen:
                    seen.add(dependency)
                    stack.append(dependency)
        return seen

    def _as_actor(self, work: Callable[[str], bool], key: str) -> bool:
        with self.harness.clock.actor():
            return work(key)

    def _concurrently(self, keys: list[str], work: Callable[[str], bool]) -> None:
        with concurrent.futures.ThreadPoolExecutor(max_workers=32) as pool:
            for future in [pool.submit(self._as_actor, work, key) for key in keys]:
                future.result()

    def event(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        with self._state:
            return super().event(*args, **kwargs)


class _OnTheHarnessClock(FakeClock):
    """deploy_sim's clock, reading the harness's virtual time (which only the harness moves)."""

    def __init__(self, clock: VirtualClock) -> None:
        self._clock = clock

    @property
    def now(self) -> float:  # type: ignore[override]
        return self._clock.time()

    def time(self) -> float:
        return self._clock.time()

    def advance(self, seconds: float) -> None:
        raise AssertionError("virtual time moves only when every party of the deploy waits")


class _NoBackOff:
    """`time` as botocore.endpoint sees it: sleep returns at once."""

    def __init__(self, real: Any) -> None:
        self._real = real

    def sleep(self, seconds: float) -> None:
        return None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


def handler_message(reason: str) -> str:
    """The handler's own message inside the framework's Reason ("Error: <message>...Logs: ...")."""
    return reason.removeprefix("Error: ").split("\n\nLogs: ", 1)[0]


__all__ = ["CREATE_FAILED_MARKER", "Harness", "HarnessDeployment", "StackResult"]
