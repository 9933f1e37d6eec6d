"""The demo app, synthesized as `cdk synth` does and deployed against the stand-in."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO, DeploymentFactory, new_app
from deploy_sim import GENERATED_NAME_MAX_LENGTH, Deployment, FakeClock, generated_name
from personalize_standin import PersonalizeStandIn

import app as demo_app
from personalize_export.runtime.export_job.contract import RESOURCE_TYPE, Attr

STACK = "PersonalizeExportDemo"
EXISTING_DATASET = "arn:aws:personalize:us-east-1:123456789012:dataset/shop/INTERACTIONS"


def test_demo_deploy_reaches_active_with_both_outputs(
    demo_assembly: Path, standin: PersonalizeStandIn
) -> None:
    deployment = Deployment(demo_assembly, STACK, FakeClock())

    with deployment.handler() as handler:
        outputs = deployment.deploy(handler)

    (job,) = standin.jobs.values()
    assert job.status == "ACTIVE"
    assert job.ingestion_mode == "ALL"
    assert job.dataset_arn.endswith(":dataset/personalizeexportdemo-interactions/INTERACTIONS")
    job_arn_key = next(key for key in outputs if key.startswith("ExportJobArn"))
    path_key = next(key for key in outputs if key.startswith("ExportOutputPath"))
    assert outputs[job_arn_key] == job.dataset_export_job_arn
    bucket = deployment.physical_ids[_logical_id(deployment.template, "AWS::S3::Bucket", "Export")]
    assert outputs[path_key] == f"s3://{bucket}/PersonalizeExportDemo/Export/"
    assert job.job_output == {"s3DataDestination": {"path": outputs[path_key]}}
    assert standin.operations() == [
        "CreateDatasetExportJob",
        "DescribeDatasetExportJob",
        "DescribeDatasetExportJob",
    ]


def test_existing_dataset_is_exported_without_a_demo_dataset(
    tmp_path: Path, standin: PersonalizeStandIn, deployment_of: DeploymentFactory
) -> None:
    app = new_app(tmp_path / "cdk.out", dataset_arn=EXISTING_DATASET)
    demo_app.build(app)
    deployment = deployment_of(app, STACK)
    kinds = {res["Type"] for res in deployment.template["Resources"].values()}
    assert not kinds & {"AWS::Personalize::Dataset", "AWS::Personalize::DatasetGroup"}

    with deployment.handler() as handler:
        outputs = deployment.deploy(handler)

    (job,) = standin.jobs.values()
    assert job.dataset_arn == EXISTING_DATASET
    assert job.dataset_export_job_arn in outputs.values()


def test_every_attribute_the_stack_reads_is_one_the_handler_returns(
    demo_assembly: Path, standin: PersonalizeStandIn
) -> None:
    deployment = Deployment(demo_assembly, STACK, FakeClock())
    (custom,) = deployment.custom_resources()
    getatt = rf'"Fn::GetAtt": \["{custom}", "(\w+)"\]'
    read = set(re.findall(getatt, json.dumps(deployment.template)))

    with deployment.handler() as handler:
        deployment.deploy(handler)

    assert read and read <= set(deployment.attributes[custom])
    assert set(deployment.attributes[custom]) == {
        value for name, value in vars(Attr).items() if name.isupper()
    }


def _logical_id(template: dict[str, Any], kind: str, prefix: str) -> str:
    return next(
        str(key)
        for key, res in template["Resources"].items()
        if res["Type"] == kind and key.startswith(prefix)
    )


def test_demo_template_has_one_export_resource(demo_assembly: Path) -> None:
    template = json.loads((demo_assembly / f"{STACK}.template.json").read_text())
    kinds = [res["Type"] for res in template["Resources"].values()]
    assert kinds.count(RESOURCE_TYPE) == 1
    assert (REPO / "demo" / "data" / "interactions.csv").is_file()


@pytest.mark.parametrize("mode", ["ALL"])
def test_demo_exports_with_ingestion_mode_all(tmp_path: Path, mode: str) -> None:
    app = new_app(tmp_path / "cdk.out")
    stack = demo_app.build(app)
    assert stack.export.ingestion_mode == mode


def test_generated_names_stay_unique_and_within_63_characters() -> None:
    stack = "PersonalizeExportIntegScheduleDefaultTestDeployAssert1A2B3C4D"
    ids = [f"CustomResourceProviderframework{kind}0A1B2C3D" for kind in ("onEvent", "isComplete")]

    names = [generated_name(stack, logical_id) for logical_id in ids]

    assert len(set(names)) == 2
    assert all(len(name) <= GENERATED_NAME_MAX_LENGTH for name in names)
    assert generated_name("Demo", "Bucket1") == "demo-bucket1"
