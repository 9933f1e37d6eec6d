"""Every example in the README runs, and the README stays a user's page.

The Python examples are executed here (the first one also by test_packaging, against the wheel in
a fresh venv); the shell commands are run as written, except `make test`, which is what CI runs,
and the install commands, which test_packaging runs in fresh venvs.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import aws_cdk as cdk
import pytest
from conftest import REPO, new_app, path_without_the_venv

from personalize_export import DatasetExportJob

README = REPO / "README.md"
DOCS = REPO / "docs"
MAX_README_LINES = 350
FENCE = re.compile(r"```(\w+)\n(.*?)```", re.DOTALL)
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")
CDK_CLI = re.compile(r"aws-cdk@(\d+\.\d+\.\d+)")
# Run elsewhere: pip install and make wheel (test_packaging, in fresh venvs), make test (it is CI).
NOT_RUN_HERE = ("pip install", "make wheel", "make test", "bash .ci/run", "make bench")


def blocks(language: str) -> list[str]:
    return [body for lang, body in FENCE.findall(README.read_text()) if lang == language]


def python_examples() -> list[str]:
    return blocks("python")


def shell_commands() -> list[str]:
    commands = []
    for block in blocks("bash"):
        for line in block.splitlines():
            command = line.split("#", 1)[0].strip()
            if command and not command.startswith(NOT_RUN_HERE):
                commands.append(command)
    return commands


def _env(tmp_path: Path, path: str) -> dict[str, str]:
    return {**os.environ, "PATH": path, "CDK_OUTDIR": str(tmp_path / "cdk.out")}


def _run(argv: list[str], *, cwd: Path, env: dict[str, str]) -> None:
    result = subprocess.run(
        argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=900, check=False
    )
    assert result.returncode == 0, result.stderr[-3000:]


def test_readme_opens_with_the_two_commands() -> None:
    first = blocks("bash")[0].splitlines()
    assert [line.split("#")[0].strip() for line in first] == ["make synth", "make test"]


def test_readme_has_examples_to_run() -> None:
    assert python_examples()
    assert shell_commands()


@pytest.mark.parametrize("index", range(len(python_examples())))
def test_python_example_synthesizes(index: int, tmp_path: Path) -> None:
    script = tmp_path / "example.py"
    script.write_text(python_examples()[index])
    # jsii needs Node: a user has their own; here it is the venv's Node 24.
    with_node = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    _run([sys.executable, str(script)], cwd=tmp_path, env=_env(tmp_path, with_node))
    assert list((tmp_path / "cdk.out").glob("*.template.json"))


@pytest.mark.parametrize("command", shell_commands())
def test_shell_command_works(command: str, tmp_path: Path) -> None:
    argv = shlex.split(command)
    if argv[0].endswith("npx"):
        argv = [*argv, "--no-notices", "-o", str(tmp_path / "cdk.out")]
    _run(argv, cwd=REPO, env=_env(tmp_path, path_without_the_venv()))
    out = tmp_path / "cdk.out" if argv[0].endswith("npx") else REPO / "cdk.out"
    assert (out / "PersonalizeExportDemo.template.json").is_file()


def test_readme_shows_the_synth_error_the_construct_raises() -> None:
    (shown,) = blocks("text")
    stack = cdk.Stack(new_app(), "MyStack")
    with pytest.raises(ValueError) as raised:
        DatasetExportJob(
            stack,
            "Export",
            dataset_arn="arn:aws:personalize:us-east-1:123456789012:dataset/shop/INTERACTIONS",
            job_name="nightly export",
            ingestion_mode="all",
        )
    assert str(raised.value) == shown.strip()


def test_readme_is_a_users_page_under_the_line_limit() -> None:
    lines = README.read_text().splitlines()
    assert len(lines) < MAX_README_LINES
    headings = [line for line in lines if line.startswith("## ")]
    assert headings[0] == "## Quickstart"
    assert "## Query the export with Athena" in headings


def test_every_relative_link_in_the_readme_and_docs_resolves() -> None:
    pages = [README, *sorted(DOCS.glob("*.md"))]
    broken = [
        f"{page.relative_to(REPO)}: {target}"
        for page in pages
        for target in LINK.findall(page.read_text())
        if "://" not in target and not (page.parent / target).exists()
    ]
    assert pages[1:], "docs/ holds the pages the README links to"
    assert not broken


def test_docs_keep_the_sections_other_pages_point_to() -> None:
    testing = (DOCS / "testing.md").read_text()
    assert testing.startswith("# What the tests prove, and what only AWS can")
    assert "## Run the integration tests on your account" in testing


def test_readme_names_the_pinned_cdk_cli() -> None:
    pinned = json.loads((REPO / "package.json").read_text())["devDependencies"]["aws-cdk"]
    named = set(CDK_CLI.findall(README.read_text()))
    assert named == {pinned}
