"""Tests run in the locked environment, and the pinned CDK CLI can read what we synthesize."""

from __future__ import annotations

import json
import re
from importlib import metadata

from conftest import REPO
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name as canonical
from packaging.version import Version

LOCK = REPO / "constraints.txt"
REQUIREMENT_FILES = ("requirements.txt", "requirements-dev.txt")
# pip comes with the venv; the library itself is installed from the checkout.
NOT_LOCKED = {"pip", "personalize-export"}


def lock_lines() -> list[str]:
    return [line for line in LOCK.read_text().splitlines() if line and line[0] != "#"]


def locked_versions() -> dict[str, str]:
    pins = (Requirement(line) for line in lock_lines())
    return {canonical(pin.name): str(pin.specifier).removeprefix("==") for pin in pins}


def requirements(file_name: str) -> list[Requirement]:
    lines = (line.strip() for line in (REPO / file_name).read_text().splitlines())
    return [Requirement(line) for line in lines if line and line[0] not in "#-"]


def test_every_locked_package_is_installed_at_its_locked_version() -> None:
    drifted = {}
    for name, version in locked_versions().items():
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            installed = "missing"
        if installed != version:
            drifted[name] = f"locked {version}, installed {installed}"
    assert not drifted, f"run `make setup` (or `make lock` after changing requirements): {drifted}"


def test_every_installed_package_is_locked() -> None:
    installed = {canonical(d.metadata["Name"]) for d in metadata.distributions()}
    unlocked = installed - set(locked_versions()) - NOT_LOCKED
    assert not unlocked, f"installed but not in constraints.txt (run `make lock`): {unlocked}"


def test_the_lock_agrees_with_every_requirement() -> None:
    locked = locked_versions()
    disagreeing = [
        f"{file_name}: {requirement} vs locked {locked.get(canonical(requirement.name))}"
        for file_name in REQUIREMENT_FILES
        for requirement in requirements(file_name)
        if canonical(requirement.name) not in locked
        or not requirement.specifier.contains(locked[canonical(requirement.name)])
    ]
    assert not disagreeing, "run `make lock`: " + "; ".join(disagreeing)


def test_the_requirement_files_are_read_whole() -> None:
    names = {canonical(r.name) for file_name in REQUIREMENT_FILES for r in requirements(file_name)}
    assert {"aws-cdk-lib", "aws-cdk-cloud-assembly-schema", "packaging", "moto"} <= names


def test_the_pinned_cli_meets_the_minimum_every_assembly_asks_for() -> None:
    package_lock = json.loads((REPO / "package-lock.json").read_text())
    cli = Version(package_lock["packages"]["node_modules/aws-cdk"]["version"])
    manifests = sorted((REPO / "integ").glob("*.snapshot/*.json"))
    minimums = {
        path.relative_to(REPO).as_posix(): Version(minimum)
        for path in manifests
        if (minimum := json.loads(path.read_text()).get("minimumCliVersion"))
    }
    assemblies = {p.relative_to(REPO).as_posix() for p in manifests if p.name == "manifest.json"}
    assert assemblies and assemblies <= set(minimums)
    too_new = {path: str(minimum) for path, minimum in minimums.items() if minimum > cli}
    assert not too_new, f"package-lock.json has aws-cdk {cli}; these ask for more: {too_new}"


def test_the_lock_holds_only_exact_pins() -> None:
    lines = lock_lines()
    assert lines and all(re.fullmatch(r"[A-Za-z0-9_.-]+==[^\s=<>~!,;]+", line) for line in lines)
    assert not {canonical(line.split("==")[0]) for line in lines} & NOT_LOCKED
