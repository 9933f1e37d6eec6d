"""Synthesize the integ apps and keep or check their snapshots, offline, as integ-runner would.

    python integ/snapshot.py            # check: exit 1 and show what differs
    python integ/snapshot.py --update   # rewrite every integ/<app>.snapshot/

Why not integ-runner itself: @aws-cdk/integ-runner 2.197.10 (the newest on npm) bundles a
toolkit that reads cloud assembly schema 53 at most, and aws-cdk-lib 2.275.0 writes 55, so every
integ-runner run stops with AssemblyVersionMismatch (see docs/integration-tests.md). This does
what its snapshot check does: run ``python3 <app>`` with CDK_OUTDIR and the context, keep each
stack's template in ``<app>.snapshot/``, and compare templates with asset hashes ignored.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import difflib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

INTEG_DIR = Path(__file__).resolve().parent
REPO = INTEG_DIR.parent
APP_PATTERN = re.compile(r"^integ_.*\.py$")  # integ-runner's default for Python
# Asset hashes (64 hex digits) change with any byte of an asset: integ-runner ignores them
# unless told diffAssets, and so does this.
ASSET_HASH = re.compile(r"[0-9a-f]{64}")
# integ-tests-alpha salts every assertion call with the synth time (so each deploy runs it
# again): not a change of the test.
SALT = re.compile(r'"salt": "\d+"')
KEPT = ("*.template.json", "manifest.json", "integ.json")
# What the CDK CLI adds to cdk.json's context when it runs an app.
CLI_CONTEXT = {
    "aws:cdk:enable-path-metadata": True,
    "aws:cdk:enable-asset-metadata": True,
    "aws:cdk:version-reporting": False,
}


def apps() -> list[Path]:
    return sorted(path for path in INTEG_DIR.iterdir() if APP_PATTERN.match(path.name))


def snapshot_dir(app: Path) -> Path:
    return app.with_name(app.name + ".snapshot")


def context() -> dict[str, Any]:
    cdk_json = json.loads((REPO / "cdk.json").read_text())
    return {**cdk_json["context"], **CLI_CONTEXT}


def synthesize(app: Path, outdir: Path) -> Path:
    """Run the app as the CDK CLI runs it (its folder as the working directory)."""
    environment = {
        **os.environ,
        "CDK_OUTDIR": str(outdir),
        "CDK_CONTEXT_JSON": json.dumps(context()),
    }
    subprocess.run(
        [sys.executable, app.name],
        cwd=app.parent,
        env=environment,
        check=True,
        capture_output=True,
        text=True,
    )
    return outdir


def synthesize_all(folder: Path) -> dict[Path, Path]:
    """Every integ app, synthesized concurrently (each is a process of its own) under folder."""
    with concurrent.futures.ThreadPoolExecutor() as pool:
        futures = {app: pool.submit(synthesize, app, folder / app.stem) for app in apps()}
        return {app: future.result() for app, future in futures.items()}


def kept_files(assembly: Path) -> Iterator[Path]:
    for pattern in KEPT:
        yield from sorted(assembly.glob(pattern))


def normalized(path: Path) -> str:
    document = json.loads(path.read_text())
    text = ASSET_HASH.sub("<asset hash>", json.dumps(document, indent=1, sort_keys=True))
    return SALT.sub('"salt": "<synth time>"', text)


def differences(snapshot: Path, assembly: Path) -> list[str]:
    """Each template (or kept file) that differs, is new or is gone, with a short diff."""
    found: list[str] = []
    before = {path.name: path for path in kept_files(snapshot)} if snapshot.is_dir() else {}
    after = {path.name: path for path in kept_files(assembly)}
    for name in sorted(before.keys() | after.keys()):
        if name not in before:
            found.append(f"{name}: not in the snapshot {snapshot.name}")
        elif name not in after:
            found.append(f"{name}: in the snapshot {snapshot.name}, not synthesized any more")
        elif normalized(before[name]) != normalized(after[name]):
            diff = difflib.unified_diff(
                normalized(before[name]).splitlines(),
                normalized(after[name]).splitlines(),
                f"{snapshot.name}/{name}",
                f"synthesized/{name}",
                lineterm="",
                n=1,
            )
            found.append(f"{name} changed:\n" + "\n".join(list(diff)[:40]))
    return found


def update(app: Path, assembly: Path) -> None:
    target = snapshot_dir(app)
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir()
    for path in kept_files(assembly):
        document = json.loads(path.read_text())
        (target / path.name).write_text(json.dumps(document, indent=1, sort_keys=True) + "\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--update", action="store_true", help="rewrite the snapshots")
    update_all = parser.parse_args().update
    failed = False
    with tempfile.TemporaryDirectory(prefix="integ-synth-") as folder:
        assemblies = synthesize_all(Path(folder))
        for app, assembly in assemblies.items():
            if update_all:
                update(app, assembly)
                print(f"UPDATED  {app.name}")
                continue
            found = differences(snapshot_dir(app), assembly)
            failed = failed or bool(found)
            print(f"{'CHANGED' if found else 'OK':8} {app.name}")
            for difference in found:
                print("  " + difference.replace("\n", "\n  "))
    if failed:
        print("Snapshots differ: if the change is meant, run `make integ-snapshot` and commit.")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
