"""The repository layout keeps working: no shadowed `constructs`, handler found via the package."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import constructs
from aws_cdk import Stack
from conftest import REPO

from personalize_export import DatasetExportJob
from personalize_export.provider import handler_asset_path
from personalize_export.runtime.export_job import contract, handler


def test_constructs_is_the_library_not_our_source_root() -> None:
    assert not (REPO / "constructs" / "__init__.py").exists()
    library = Path(constructs.__file__).resolve()
    assert REPO / "constructs" not in library.parents
    assert issubclass(Stack, constructs.Construct)
    assert issubclass(DatasetExportJob, constructs.Construct)


def test_handler_asset_is_found_through_the_package_from_any_directory(tmp_path: Path) -> None:
    code = "from personalize_export.provider import handler_asset_path; print(handler_asset_path())"
    found = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True
    ).stdout.strip()
    assert Path(found) == Path(handler_asset_path())
    entry = Path(found) / "export_job" / "handler.py"
    assert (
        entry.resolve().read_text() == (REPO / "lambda" / "export_job" / "handler.py").read_text()
    )


def test_the_handler_reads_the_constants_the_construct_reads() -> None:
    assert vars(handler)["Attr"] is contract.Attr
    module_file = Path(contract.__file__).resolve()
    assert module_file == (REPO / "lambda" / "export_job" / "contract.py").resolve()
    entries = {contract.ON_EVENT_ENTRY, contract.IS_COMPLETE_ENTRY}
    for entry in entries:
        module, function = entry.rsplit(".", 1)
        assert module == "export_job.handler"
        assert callable(getattr(handler, function))
