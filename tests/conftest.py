"""Shared fixtures: apps built with cdk.json's context, the Personalize stand-in, deploys."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from deploy_sim import Deployment, FakeClock
from personalize_standin import PersonalizeStandIn

# Fails the grouped tests when `--dist loadgroup` can't group them (see its docstring).
pytest_plugins = ["xdist_groups"]

REPO = Path(__file__).resolve().parent.parent
# The credentials the handler runs with in tests (moto's Step Functions tasks use others).
HANDLER_ACCESS_KEY = "test"


# What the CDK CLI adds to cdk.json's context on `cdk synth` (versionReporting is off in cdk.json).
CLI_CONTEXT = {
    "aws:cdk:enable-path-metadata": True,
    "aws:cdk:enable-asset-metadata": True,
    "aws:cdk:version-reporting": False,
}


def path_without_the_venv() -> str:
    """PATH as a user's shell has it when the venv is not activated."""
    venv_bin = str(Path(sys.executable).parent)
    return os.pathsep.join(p for p in os.environ.get("PATH", "").split(os.pathsep) if p != venv_bin)


def cdk_json_context() -> dict[str, Any]:
    """What `cdk synth` passes the app: cdk.json's context and the CLI's own switches."""
    context: dict[str, Any] = json.loads((REPO / "cdk.json").read_text())["context"]
    return {**context, **CLI_CONTEXT}


def new_app(outdir: Path | None = None, **context: Any) -> cdk.App:
    return cdk.App(
        context={**cdk_json_context(), **context},
        outdir=str(outdir) if outdir else None,
    )


def template_of(stack: cdk.Stack) -> dict[str, Any]:
    return dict(cdk.assertions.Template.from_stack(stack).to_json())


@pytest.fixture
def app(tmp_path: Path) -> cdk.App:
    return new_app(tmp_path / "cdk.out")


@pytest.fixture
def stack(app: cdk.App) -> cdk.Stack:
    return cdk.Stack(app, "TestStack")


@pytest.fixture
def standin(monkeypatch: pytest.MonkeyPatch) -> Iterator[PersonalizeStandIn]:
    """A running stand-in; boto3's default endpoint resolution points at it."""
    with PersonalizeStandIn() as server:
        monkeypatch.setenv("AWS_ENDPOINT_URL_PERSONALIZE", server.endpoint_url)
        # The handler hands jobs to the export poller: the stand-in records StartExecution.
        monkeypatch.setenv("AWS_ENDPOINT_URL_SFN", server.endpoint_url)
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", HANDLER_ACCESS_KEY)
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
        monkeypatch.setenv("AWS_DEFAULT_REGION", server.region)
        monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
        monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")
        monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        monkeypatch.delenv("AWS_PROFILE", raising=False)
        yield server


@pytest.fixture(scope="session")
def demo_assembly(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo app as `cdk synth` builds it with no context, synthesized once per test process.

    Shared by every test that deploys or reads the default demo: read it, never change it.
    """
    import app as demo_app  # the repository's app.py (pythonpath "."), imported only when needed

    app = new_app(tmp_path_factory.mktemp("demo.out"))
    demo_app.build(app)
    return Path(app.synth().directory)


DeploymentFactory = Callable[[cdk.App, str], Deployment]
Synth = Callable[..., Path]


def cached_synth(
    tmp_path_factory: pytest.TempPathFactory, build: Callable[[cdk.App, dict[str, Any]], None]
) -> Synth:
    """Synthesize each variant of an app (its build options) once, for a module-scoped fixture."""
    assemblies: dict[str, Path] = {}

    def synthesize(**options: Any) -> Path:
        key = json.dumps(options, sort_keys=True)
        if key not in assemblies:
            app = new_app(tmp_path_factory.mktemp("cdk.out"))
            build(app, options)
            assemblies[key] = Path(app.synth().directory)
        return assemblies[key]

    return synthesize


@pytest.fixture
def deployment_of() -> DeploymentFactory:
    """Synthesize an app and return a simulated deployment of one of its stacks."""

    def build(app: cdk.App, stack_name: str) -> Deployment:
        assembly = app.synth()
        return Deployment(Path(assembly.directory), stack_name, FakeClock())

    return build
