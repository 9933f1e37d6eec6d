"""Integ test: the Glue table over an export, queried with Athena (a real account only).

The sample dataset is exported with IngestionMode.ALL and ``table=TableOptions(schema=...)``.
Asserts, after the stack is created: Athena's ``SELECT count(*)`` over the table the construct
made finishes SUCCEEDED, and counts at least one row. Together these settle what only an account
can: the table's columns, SerDe and header skip read the files Personalize writes, and
``grant_query`` gives a reader all it needs (the assertion function queries with it alone, plus
Athena's own results bucket).

Athena's query engine has no offline stand-in: tests/test_integ.py checks this app's snapshot,
not its deploy (ACCOUNT_ONLY there).
"""

from __future__ import annotations

from aws_cdk import App, Duration, Stack, Token
from aws_cdk import aws_iam as iam
from aws_cdk.integ_tests_alpha import AssertionsProvider, ExpectedResult, IntegTest, Match
from sample_dataset import (
    INTERACTIONS_SCHEMA,
    SampleDataset,
    disposable_bucket,
    leave_nothing_behind,
)

from personalize_export import DatasetExportJob, IngestionMode, TableOptions

STACK = "PersonalizeExportIntegAthena"
OUTPUT_PREFIX = "integ/athena/"
RESULTS_PREFIX = "athena-results/"
COUNT_COLUMN = "exported_rows"
# A count Athena returns as text: a whole number, not 0.
NOT_ZERO = "^[1-9][0-9]*$"


class AthenaStack(Stack):
    def __init__(self, scope: App) -> None:
        super().__init__(scope, STACK, description="personalize-export integ test: Athena")
        leave_nothing_behind(self)
        dataset = SampleDataset(self, "Sample")
        self.bucket = disposable_bucket(self, "Exports")
        self.results = disposable_bucket(self, "QueryResults")
        self.export = DatasetExportJob(
            self,
            "Export",
            dataset_arn=dataset.dataset_arn,
            ingestion_mode=IngestionMode.ALL,
            bucket=self.bucket,
            output_prefix=OUTPUT_PREFIX,
            table=TableOptions(schema=INTERACTIONS_SCHEMA),
        )

    @property
    def query(self) -> str:
        table = self.export.table
        assert table is not None  # table= is given above
        database = table.database.database_name
        return f'SELECT count(*) AS {COUNT_COLUMN} FROM "{database}"."{table.table_name}"'


class _ProviderRole(iam.ArnPrincipal):
    """The assertion function's role as a grantee: what the library grants it lands in the
    provider's own policy, which is in place before any assertion call runs (a separate
    iam.Policy would not be ordered before them)."""

    def __init__(self, provider: AssertionsProvider) -> None:
        super().__init__(Token.as_string(provider.handler_role_arn))
        self._provider = provider

    @property
    def principal_account(self) -> str | None:
        # Same account as the table's bucket: the grant stays on the role, off the bucket policy.
        return Stack.of(self._provider).account

    def add_to_principal_policy(
        self, statement: iam.PolicyStatement
    ) -> iam.AddToPrincipalPolicyResult:
        self._provider.add_to_role_policy(statement.to_statement_json())
        return iam.AddToPrincipalPolicyResult(
            statement_added=True, policy_dependable=self._provider
        )


def allow_the_query(stack: AthenaStack, provider: AssertionsProvider) -> None:
    """The library's grant_query and Athena's results bucket (Athena writes the results with
    the caller's rights, GetQueryResults reads them back). The athena: actions themselves
    integ-tests grants each call from its name."""
    reader = _ProviderRole(provider)
    stack.export.grant_query(reader)
    stack.results.grant_read_write(reader)


def build(app: App) -> IntegTest:
    stack = AthenaStack(app)
    integ = IntegTest(app, "Athena", test_cases=[stack], diff_assets=False)
    start = integ.assertions.aws_api_call(
        "Athena",
        "startQueryExecution",
        {
            "QueryString": stack.query,
            "ResultConfiguration": {
                "OutputLocation": f"s3://{stack.results.bucket_name}/{RESULTS_PREFIX}"
            },
        },
    )
    allow_the_query(stack, start.provider)
    query_id = start.get_att_string("QueryExecutionId")
    finished = integ.assertions.aws_api_call(
        "Athena", "getQueryExecution", {"QueryExecutionId": query_id}
    )
    finished.expect(
        ExpectedResult.object_like({"QueryExecution": {"Status": {"State": "SUCCEEDED"}}})
    )
    finished.wait_for_assertions(total_timeout=Duration.minutes(5), interval=Duration.seconds(10))
    results = integ.assertions.aws_api_call(
        "Athena", "getQueryResults", {"QueryExecutionId": query_id}
    )
    # Row 0 is the column names, row 1 the count.
    results.expect(
        ExpectedResult.object_like(
            {
                "ResultSet": {
                    "Rows": [
                        {"Data": [{"VarCharValue": COUNT_COLUMN}]},
                        {"Data": [{"VarCharValue": Match.string_like_regexp(NOT_ZERO)}]},
                    ]
                }
            }
        )
    )
    start.next(finished).next(results)
    return integ


if __name__ == "__main__":
    app = App()
    build(app)
    app.synth()
