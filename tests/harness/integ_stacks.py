"""The integ apps (integ/) through the deploy harness: a test stack, then its assertion stack.

What the harness adds for them, beyond the library's own resources:
- plain resources in moto: S3 buckets, SQS queues (Ref is the queue URL), EventBridge rules with
  their targets (moto delivers a matching PutEvents entry to an SQS target);
- Personalize's dataset group, schema and dataset by name; a dataset's import job loads its CSV
  from (moto's) S3 into the stand-in, which writes it out when an export turns ACTIVE;
- aws-cdk-lib's BucketDeployment: its source asset's files put into the bucket (its own
  function, a Python runtime running the AWS CLI, is not run);
- integ-tests-alpha's assertion resources (`Custom::DeployAssert@...`) run for real: their
  Node.js handler from the cdk.out asset with AWS SDK v3, its waiter state machine in moto's
  interpreter; `Fn::GetStackOutput` reads the test stack's outputs.
The S3 auto-delete resources run only on Delete and are not run.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import boto3.session
from deploy_sim import ACCOUNT, PARTITION, REGION, Outcome
from personalize_standin import PersonalizeStandIn
from standin_exports import bulk

from harness.cloudformation import HarnessDeployment
from harness.moto_server import MotoServer

ASSERTION_PREFIX = "Custom::DeployAssert@"
BUCKET_DEPLOYMENT = "Custom::CDKBucketDeployment"
BUCKET = "AWS::S3::Bucket"
QUEUE = "AWS::SQS::Queue"
RULE = "AWS::Events::Rule"
DATASET = "AWS::Personalize::Dataset"
SCHEMA = "AWS::Personalize::Schema"
RESULTS_PREFIX = "AssertionResults"
StackOutputs = dict[str, dict[str, Any]]


def moto_client(service: str) -> Any:
    """A client of moto's in-process backends (mock_aws is active while the harness runs)."""
    session = boto3.session.Session(
        region_name=REGION, aws_access_key_id="test", aws_secret_access_key="test"
    )
    return cast(Any, session).client(service)


class IntegDeployment(HarnessDeployment):
    """One stack of an integ app; stacks deployed before it answer its Fn::GetStackOutput."""

    def __init__(
        self,
        assembly_dir: Path,
        stack_name: str,
        *,
        standin: PersonalizeStandIn,
        deployed: StackOutputs | None = None,
    ) -> None:
        super().__init__(assembly_dir, stack_name, standin=standin)
        self.deployed = deployed or {}
        self.personalize = standin

    # --- which resources run ---------------------------------------------------------------

    def custom_resources(self, template: dict[str, Any] | None = None) -> list[str]:
        resources = (template or self.template)["Resources"]
        assertions = [
            key for key, res in resources.items() if res["Type"].startswith(ASSERTION_PREFIX)
        ]
        return [*super().custom_resources(template), *assertions]

    def _is_user_poll(self, function: str, event: dict[str, Any]) -> bool:
        if not super().custom_resources():  # the assertion stack has no Provider
            return False
        return super()._is_user_poll(function, event)

    def create_resource(self, logical_id: str) -> Outcome | None:
        if self.template["Resources"][logical_id]["Type"] == BUCKET_DEPLOYMENT:
            self._upload_source_asset(logical_id)
            return None
        return super().create_resource(logical_id)

    def provision(self, logical_id: str) -> None:
        kind = self.template["Resources"][logical_id]["Type"]
        extra = {BUCKET: self._create_bucket, QUEUE: self._create_queue, RULE: self._put_rule}
        if kind in extra:
            with self._state:
                if logical_id in self._provisioned:
                    return
                self._provisioned.add(logical_id)
            extra[kind](logical_id)
            return
        super().provision(logical_id)
        if kind == DATASET:
            self._import_dataset(logical_id)

    def _asset_dir(self, function: dict[str, Any]) -> Path:
        """A prebundled asset (integ-tests-alpha's handler) keeps its `.bundle` folder name."""
        folder = super()._asset_dir(function)
        bundled = folder.with_name(folder.name + ".bundle")
        return bundled if not folder.exists() and bundled.exists() else folder

    # --- plain resources in moto -------------------------------------------------------------

    def _create_bucket(self, logical_id: str) -> None:
        moto_client("s3").create_bucket(Bucket=self._ref(logical_id))

    def _create_queue(self, logical_id: str) -> None:
        """Ref is the queue's URL at the endpoint its readers call (moto's server), as AWS's
        URL is at SQS's: AWS SDK v3 sends a call to the queue URL's host."""
        name = self._queue_name(logical_id)
        moto_client("sqs").create_queue(QueueName=name)
        self.physical_ids[logical_id] = f"{MotoServer.get().endpoint_url}/{ACCOUNT}/{name}"

    def _queue_name(self, logical_id: str) -> str:
        return f"{self.stack_name}-{logical_id}"[:80]

    def _put_rule(self, logical_id: str) -> None:
        properties = self.resolve(self.template["Resources"][logical_id]["Properties"])
        events = moto_client("events")
        name = self._ref(logical_id)
        bus = str(properties.get("EventBusName") or "default")
        events.put_rule(
            Name=name,
            EventBusName=bus,
            EventPattern=json.dumps(properties["EventPattern"]),
            State=properties.get("State", "ENABLED"),
        )
        targets = [{"Id": target["Id"], "Arn": target["Arn"]} for target in properties["Targets"]]
        events.put_targets(Rule=name, EventBusName=bus, Targets=targets)

    def _upload_source_asset(self, logical_id: str) -> None:
        """BucketDeployment's effect: the source asset's files under the destination prefix."""
        properties = self.resolve(self.template["Resources"][logical_id]["Properties"])
        s3 = moto_client("s3")
        for key in properties["SourceObjectKeys"]:
            source = self.assembly_dir / f"asset.{key.removesuffix('.zip')}"
            for path in sorted(source.rglob("*")):
                if path.is_file():
                    s3.put_object(
                        Bucket=properties["DestinationBucketName"],
                        Key=properties.get("DestinationBucketKeyPrefix", "")
                        + path.relative_to(source).as_posix(),
                        Body=path.read_bytes(),
                    )

    def _import_dataset(self, logical_id: str) -> None:
        """The dataset's import job: its CSV, read from S3, becomes the stand-in's data."""
        template = self.template["Resources"]
        properties = template[logical_id]["Properties"]
        schema_id = properties["SchemaArn"]["Fn::GetAtt"][0]
        schema = template[schema_id]["Properties"]["Schema"]
        job = properties.get("DatasetImportJob")
        if job is None:
            return
        location = str(self.resolve(job["DataSource"]["DataLocation"]))
        bucket, key = location.removeprefix("s3://").split("/", 1)
        body = moto_client("s3").get_object(Bucket=bucket, Key=key)["Body"].read().decode()
        records = [bulk(row) for row in csv.DictReader(io.StringIO(body))]
        arn = str(self._get_att([logical_id, "DatasetArn"]))
        self.personalize.hold_dataset(arn, schema, records)

    # --- references ---------------------------------------------------------------------------

    def _resource_attribute(self, logical_id: str, attribute: str) -> Any:
        kind = self.template["Resources"][logical_id]["Type"]
        if (kind, attribute) == (QUEUE, "Arn"):
            name = self._queue_name(logical_id)
            return f"arn:{PARTITION}:sqs:{REGION}:{ACCOUNT}:{name}"
        if (kind, attribute) == (QUEUE, "QueueName"):
            return self._queue_name(logical_id)
        return super()._resource_attribute(logical_id, attribute)

    def _intrinsics(self) -> Any:
        return {
            **super()._intrinsics(),
            "Fn::Join": self._join,
            "Fn::GetStackOutput": self._stack_output,
        }

    def _join(self, argument: list[Any]) -> str:
        """Fn::Join's list may itself be a function (Fn::Split, Fn::GetAZs...), as CloudFormation
        allows."""
        delimiter, values = argument
        items = self.resolve(values)
        return str(delimiter).join(str(self.resolve(item)) for item in items)

    def _stack_output(self, argument: dict[str, Any]) -> Any:
        stack = str(self.resolve(argument["StackName"]))
        return self.deployed[stack][str(self.resolve(argument["OutputName"]))]

    # --- results --------------------------------------------------------------------------------

    def assertion_results(self) -> dict[str, dict[str, Any]]:
        """Each AssertionResults output, parsed as integ-runner parses it."""
        return {
            key: json.loads(value) if isinstance(value, str) else value
            for key, value in self.outputs().items()
            if key.startswith(RESULTS_PREFIX)
        }


@dataclass
class IntegRun:
    """An integ app deployed through the harness: both stacks and what each returned."""

    test: IntegDeployment
    assertions: IntegDeployment
    failed: str = ""
    reason: str = ""

    def results(self) -> dict[str, dict[str, Any]]:
        return self.assertions.assertion_results()


def deploy_integ(
    assembly_dir: Path, standin: PersonalizeStandIn, *, node_environment: dict[str, str]
) -> IntegRun:
    """Deploy the app's test stack, then its assertion stack, as `cdk deploy --all` orders them."""
    manifest = json.loads((assembly_dir / "integ.json").read_text())
    (case,) = manifest["testCases"].values()
    (stack_name,) = case["stacks"]
    test = IntegDeployment(assembly_dir, stack_name, standin=standin)
    created = test.create_stack()
    assert created.ok, f"{stack_name}: {created.failed}: {created.reason()}"
    test.settle()
    outputs = {stack_name: test.outputs()}
    with _node_endpoints(test, node_environment):
        assertions = IntegDeployment(
            assembly_dir, case["assertionStackName"], standin=standin, deployed=outputs
        )
        result = assertions.create_stack()
    return IntegRun(test, assertions, result.failed, result.reason())


@contextlib.contextmanager
def _node_endpoints(deployment: HarnessDeployment, extra: dict[str, str]) -> Iterator[None]:
    """The Node functions' endpoints: moto's server for S3/SQS/SSM, the stand-in's, the test's."""
    environment = deployment.harness.lambdas.node_environment
    saved = dict(environment)
    environment.update({**MotoServer.get().environment(), **extra})
    try:
        yield
    finally:
        environment.clear()
        environment.update(saved)
