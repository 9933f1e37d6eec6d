"""The handler asset as synthesized: its zipped size, what it contains, its cold import time."""

from __future__ import annotations

import ast
import io
import json
import statistics
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from personalize_export.runtime.export_job.contract import ON_EVENT_ENTRY

REPO = Path(__file__).resolve().parent.parent
HANDLER_SOURCE = REPO / "lambda"
HANDLER_MODULE = ON_EVENT_ENTRY.rsplit(".", 1)[0]
# In the Lambda runtime, not in the asset.
RUNTIME_PACKAGES = frozenset({"boto3", "botocore"})

# Run with -I -B: no user site or cwd on sys.path, and no .pyc written, as in Lambda's read-only
# /var/task (the asset ships no .pyc, so every cold start compiles our modules).
IMPORT_PROBE = """
import importlib, json, sys, time
sys.path.insert(0, sys.argv[1])
start = time.perf_counter()
import boto3, botocore.config, botocore.exceptions
sdk_done = time.perf_counter()
importlib.import_module(sys.argv[2])
print(json.dumps({"sdk_s": sdk_done - start, "ours_s": time.perf_counter() - sdk_done}))
"""


@dataclass(frozen=True)
class AssetReport:
    """The handler asset: its files, sizes and the packages it imports."""

    directory: Path
    files: list[str]
    unzipped_bytes: int
    zipped_bytes: int
    unexpected_files: list[str]
    third_party_imports: list[str]

    @property
    def only_our_code(self) -> bool:
        return not self.unexpected_files and set(self.third_party_imports) <= RUNTIME_PACKAGES


@dataclass(frozen=True)
class ColdImport:
    """Fresh-process import of the handler module: medians over runs, in seconds."""

    total_s: float
    sdk_s: float
    ours_s: float
    runs: int


def handler_asset_dir(assembly: Path, stack: str) -> Path:
    """The asset folder of the function whose handler is our onEvent entry point."""
    template = json.loads((assembly / f"{stack}.template.json").read_text())
    for resource in template["Resources"].values():
        properties = resource.get("Properties", {})
        if resource["Type"] == "AWS::Lambda::Function" and properties["Handler"] == ON_EVENT_ENTRY:
            return assembly / f"asset.{properties['Code']['S3Key'].removesuffix('.zip')}"
    raise LookupError(f"no function runs {ON_EVENT_ENTRY} in {stack}")


def files_under(directory: Path) -> list[str]:
    return sorted(
        path.relative_to(directory).as_posix() for path in directory.rglob("*") if path.is_file()
    )


def our_handler_files() -> set[str]:
    """The .py files of the handler package in the repository (what the asset should hold)."""
    return {name for name in files_under(HANDLER_SOURCE) if name.endswith(".py")}


def zipped_size(directory: Path, files: list[str]) -> int:
    """Bytes of a deflate zip of the folder, as uploaded for a Lambda function."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name in files:
            archive.write(directory / name, arcname=name)
    return len(buffer.getvalue())


def imported_packages(source: str) -> set[str]:
    """Top-level packages imported at run time (imports under `if TYPE_CHECKING:` skipped)."""
    found: set[str] = set()
    pending: list[ast.AST] = [ast.parse(source)]
    while pending:
        node = pending.pop()
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            pending.extend(node.orelse)
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
        pending.extend(ast.iter_child_nodes(node))
    return found


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def third_party_imports(directory: Path, files: list[str]) -> list[str]:
    """Imported packages that are neither the standard library nor the asset's own."""
    local = {name.split("/")[0].removesuffix(".py") for name in files}
    imported: set[str] = set()
    for name in files:
        if name.endswith(".py"):
            imported |= imported_packages((directory / name).read_text())
    return sorted(imported - set(sys.stdlib_module_names) - local - {"__future__"})


def asset_report(assembly: Path, stack: str) -> AssetReport:
    directory = handler_asset_dir(assembly, stack)
    files = files_under(directory)
    return AssetReport(
        directory=directory,
        files=files,
        unzipped_bytes=sum((directory / name).stat().st_size for name in files),
        zipped_bytes=zipped_size(directory, files),
        unexpected_files=sorted(set(files) - our_handler_files()),
        third_party_imports=third_party_imports(directory, files),
    )


def import_once(asset_dir: Path) -> dict[str, float]:
    command = [sys.executable, "-I", "-B", "-c", IMPORT_PROBE, str(asset_dir), HANDLER_MODULE]
    finished = subprocess.run(command, capture_output=True, text=True, check=True)
    timing: dict[str, Any] = json.loads(finished.stdout)
    return {key: float(value) for key, value in timing.items()}


def cold_import(asset_dir: Path, runs: int) -> ColdImport:
    """Median of `runs` fresh-process imports of the handler module from the asset folder."""
    samples = [import_once(asset_dir) for _ in range(runs)]
    return ColdImport(
        total_s=statistics.median(s["sdk_s"] + s["ours_s"] for s in samples),
        sdk_s=statistics.median(s["sdk_s"] for s in samples),
        ours_s=statistics.median(s["ours_s"] for s in samples),
        runs=runs,
    )
