"""The one Provider per stack that every DatasetExportJob in that stack shares."""

from __future__ import annotations

from importlib.resources import files

from aws_cdk import Duration, RemovalPolicy, Stack, SymlinkFollowMode
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import custom_resources as cr
from constructs import Construct

from personalize_export.acknowledgments import acknowledge_provider_framework
from personalize_export.runtime.export_job.contract import (
    CLOUDFORMATION_MAX_WAIT_SECONDS,
    IS_COMPLETE_ENTRY,
    ON_EVENT_ENTRY,
    POLLER_ARN_ENV,
)

PROVIDER_ID = "PersonalizeExportProvider"
POLL_INTERVAL = Duration.seconds(30)
# CloudFormation waits at most one hour for a custom resource, whatever the waiter is told.
CLOUDFORMATION_MAX_WAIT = Duration.seconds(CLOUDFORMATION_MAX_WAIT_SECONDS)
# One call may make three Personalize requests, each retried by botocore: a Lambda timeout would
# fail the resource where a slow answer should only be another poll.
HANDLER_TIMEOUT = Duration.minutes(3)
HANDLER_RUNTIME = lambda_.Runtime.PYTHON_3_14
ASSET_EXCLUDES = ["__pycache__", "*.pyc"]


def handler_asset_path() -> str:
    """The handler's folder, found through the installed package, never the working directory."""
    return str(files("personalize_export.runtime"))


def handler_code() -> lambda_.Code:
    """The one asset every function of ours runs from (the same files give the same asset)."""
    return lambda_.Code.from_asset(
        handler_asset_path(),
        exclude=ASSET_EXCLUDES,
        # An editable install links the handler's files: bundle what they point to.
        follow_symlinks=SymlinkFollowMode.ALWAYS,
    )


class ExportJobProvider(Construct):
    """Two small Python functions (onEvent, isComplete) behind one custom-resources Provider."""

    @classmethod
    def of(cls, scope: Construct) -> ExportJobProvider:
        stack = Stack.of(scope)
        existing = stack.node.try_find_child(PROVIDER_ID)
        if isinstance(existing, ExportJobProvider):
            return existing
        return cls(stack, PROVIDER_ID)

    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        log_group = self._log_group("HandlerLogs")
        self.handler_role = self._lambda_role(
            "HandlerRole", "Runs Personalize dataset export jobs for this stack's DatasetExportJobs"
        )
        log_group.grant_write(self.handler_role)
        code = handler_code()
        self.on_event_function = self._function("OnEvent", ON_EVENT_ENTRY, code, log_group)
        self.is_complete_function = self._function("IsComplete", IS_COMPLETE_ENTRY, code, log_group)
        # Our own roles for the framework's functions: no AWS managed policy, logs to our group.
        on_event_role = self._lambda_role("FrameworkOnEventRole", "Provider framework: onEvent")
        waiter_role = self._lambda_role(
            "FrameworkWaiterRole", "Provider framework: isComplete, onTimeout"
        )
        for role in (on_event_role, waiter_role):
            log_group.grant_write(role)
        self.provider = cr.Provider(
            self,
            "Provider",
            on_event_handler=self.on_event_function,
            is_complete_handler=self.is_complete_function,
            query_interval=POLL_INTERVAL,
            total_timeout=CLOUDFORMATION_MAX_WAIT,
            framework_on_event_role=on_event_role,
            framework_complete_and_timeout_role=waiter_role,
            log_group=log_group,
            disable_waiter_state_machine_logging=False,
            waiter_state_machine_log_options=cr.LogOptions(
                destination=self._log_group("WaiterLogs"),
                level=sfn.LogLevel.ALL,
                # Execution data repeats the request CloudFormation sent; keep it out of the log.
                include_execution_data=False,
            ),
        )
        acknowledge_provider_framework(
            self.provider,
            user_handlers=[self.on_event_function, self.is_complete_function],
            framework_roles=[on_event_role, waiter_role],
        )

    def hand_jobs_to(self, poller_arn: str) -> None:
        """Tell the handler which state machine watches its jobs (the stack's export poller)."""
        for function in (self.on_event_function, self.is_complete_function):
            function.add_environment(POLLER_ARN_ENV, poller_arn)

    @property
    def service_token(self) -> str:
        return self.provider.service_token

    def _log_group(self, construct_id: str) -> logs.LogGroup:
        return logs.LogGroup(
            self,
            construct_id,
            retention=logs.RetentionDays.ONE_YEAR,
            removal_policy=RemovalPolicy.RETAIN,
        )

    def _lambda_role(self, construct_id: str, description: str) -> iam.Role:
        return iam.Role(
            self,
            construct_id,
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=description,
        )

    def _function(
        self, construct_id: str, entry: str, code: lambda_.Code, log_group: logs.ILogGroup
    ) -> lambda_.Function:
        return lambda_.Function(
            self,
            construct_id,
            runtime=HANDLER_RUNTIME,
            architecture=lambda_.Architecture.ARM_64,
            handler=entry,
            code=code,
            role=self.handler_role,
            timeout=HANDLER_TIMEOUT,
            memory_size=256,
            log_group=log_group,
            description=f"Personalize dataset export job custom resource: {construct_id}",
        )
