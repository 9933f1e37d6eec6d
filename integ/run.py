"""Deploy each integ app on your account, check its assertions, destroy it (``make integ``).

    make integ                      # every integ_*.py
    make integ INTEG=integ_export   # one of them

Credentials and region come from the environment as for any AWS CLI (AWS_PROFILE,
AWS_ACCESS_KEY_ID..., AWS_REGION): without them this stops before anything runs. Each app is
deployed with the project's CDK CLI (``npx cdk deploy --all``: the test stack, then its
assertion stack, whose custom resources make the asserted calls), its ``AssertionResults*``
outputs are read as integ-runner reads them, and ``npx cdk destroy --all`` deletes everything
it created, whatever the result.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import boto3
from snapshot import REPO, apps

NO_CREDENTIALS = (
    "make integ: no AWS credentials found. It deploys real stacks on your account: set "
    "AWS_PROFILE (or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY) and AWS_REGION, then run it again "
    "(see docs/integration-tests.md). Nothing was deployed."
)
NO_REGION = (
    "make integ: no AWS region set. Set AWS_REGION (or a profile's region) to a region where "
    "Amazon Personalize is available, then run it again. Nothing was deployed."
)
RESULTS_PREFIX = "AssertionResults"


def account_problem() -> str:
    session = boto3.Session()
    if session.get_credentials() is None:
        return NO_CREDENTIALS
    if not session.region_name:
        return NO_REGION
    return ""


def cdk(*arguments: str) -> subprocess.CompletedProcess[str]:
    print("+ npx cdk " + " ".join(arguments), flush=True)
    return subprocess.run(["npx", "cdk", *arguments], cwd=REPO, text=True, check=False)


def failed_assertions(outputs: dict[str, dict[str, str]]) -> list[str]:
    """Each assertion output whose result is a failure, with its message (integ-runner's rule)."""
    failures: list[str] = []
    for stack, values in outputs.items():
        for key, value in values.items():
            if not key.startswith(RESULTS_PREFIX):
                continue
            result = json.loads(value) if value.startswith("{") else {"status": value}
            if result.get("status") == "fail":
                failures.append(f"{stack}.{key}: {result.get('message', value)}")
    return failures


def run_one(app: Path) -> bool:
    command = f"python3 {app.relative_to(REPO)}"
    with tempfile.TemporaryDirectory(prefix="integ-") as folder:
        outputs_file = Path(folder) / "outputs.json"
        try:
            deployed = cdk(
                "deploy",
                "--app",
                command,
                "--all",
                "--require-approval",
                "never",
                "--outputs-file",
                str(outputs_file),
                "--output",
                str(Path(folder) / "cdk.out"),
            )
            outputs = json.loads(outputs_file.read_text()) if outputs_file.exists() else {}
            failures = failed_assertions(outputs)
        finally:
            destroyed = cdk(
                "destroy",
                "--app",
                command,
                "--all",
                "--force",
                "--output",
                str(Path(folder) / "cdk.out.destroy"),
            )
    for failure in failures:
        print(f"FAILED assertion {failure}")
    ok = deployed.returncode == 0 and not failures
    print(
        f"{'PASS' if ok else 'FAIL'} {app.name}"
        + (
            ""
            if destroyed.returncode == 0
            else " (destroy failed: delete its stacks in the CloudFormation console)"
        )
    )
    return ok and destroyed.returncode == 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tests", nargs="*", help="app names (integ_export...); default: all")
    chosen = {name.removesuffix(".py") for name in parser.parse_args().tests}
    problem = account_problem()
    if problem:
        print(problem, file=sys.stderr)
        return 2
    selected = [app for app in apps() if not chosen or app.stem in chosen]
    results = [run_one(app) for app in selected]
    return 0 if selected and all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
