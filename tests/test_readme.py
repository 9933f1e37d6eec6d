"""Every example in the README runs.

The Python examples are executed here (the first one also by test_packaging, against the wheel in
a fresh venv); the shell commands are run as written, except `make test`, which is what CI runs.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import aws_cdk as cdk
import pytest
from conftest import REPO, new_app

from personalize_export import DatasetExportJob

README = REPO / "README.md"
FENCE = re.compile(r"```(\w+)\n(.*?)```", re.DOTALL)
# Run elsewhere: pip install (test_packaging installs the built wheel), make test (it is CI).
NOT_RUN_HERE = ("pip install", "make test", "bash .ci/run", "make bench")


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


def _env(tmp_path: Path) -> dict[str, str]:
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    return {**os.environ, "PATH": path, "CDK_OUTDIR": str(tmp_path / "cdk.out")}


def _run(argv: list[str], *, cwd: Path, tmp_path: Path) -> None:
    result = subprocess.run(
        argv, cwd=cwd, env=_env(tmp_path), capture_output=True, text=True, timeout=900, check=False
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
    _run([sys.executable, str(script)], cwd=tmp_path, tmp_path=tmp_path)
    assert list((tmp_path / "cdk.out").glob("*.template.json"))


@pytest.mark.parametrize("command", shell_commands())
def test_shell_command_works(command: str, tmp_path: Path) -> None:
    argv = shlex.split(command)
    if argv[0].endswith("npx"):
        argv = [*argv, "--no-notices", "-o", str(tmp_path / "cdk.out")]
    _run(argv, cwd=REPO, tmp_path=tmp_path)
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
