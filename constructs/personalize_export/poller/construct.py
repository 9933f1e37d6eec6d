"""The construct: one export poller per stack (`ExportPoller.of`), its state machine and log
group, the signal function the workflow calls, and the grants the exports and schedules add."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from personalize_export.acknowledgments import acknowledge_poller
from personalize_export.poller.parts import POLLER_ID
from personalize_export.poller.workflow import definition
from personalize_export.provider import HANDLER_RUNTIME, handler_code
from personalize_export.runtime.export_job.contract import SIGNAL_ENTRY


class ExportPoller(Construct):
    """The stack's poller state machine and its signal function, shared by every export."""

    @classmethod
    def of(cls, scope: Construct) -> ExportPoller:
        stack = Stack.of(scope)
        existing = stack.node.try_find_child(POLLER_ID)
        if isinstance(existing, ExportPoller):
            return existing
        return cls(stack, POLLER_ID)

    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        self._buses: list[str] = []
        self._start_granted = False
        self._parameters: list[str] = []
        self.signal_function = self._signal_function()
        self.state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            definition_body=sfn.DefinitionBody.from_chainable(
                definition(
                    self,
                    signal_function=self.signal_function,
                    buses=self._buses,
                    parameters=self._parameters,
                )
            ),
            state_machine_type=sfn.StateMachineType.STANDARD,
            tracing_enabled=True,
            logs=sfn.LogOptions(
                destination=self._log_group("Logs"),
                level=sfn.LogLevel.ALL,
                include_execution_data=False,
            ),
        )

        acknowledge_poller(self)

    @property
    def state_machine_arn(self) -> str:
        return self.state_machine.state_machine_arn

    def grant_start(self, role: iam.IRole) -> None:
        """Let the handler start executions (once per stack)."""
        if self._start_granted:
            return
        self._start_granted = True
        self.state_machine.grant_start_execution(role)

    def grant_publish(self, bus_arn: str) -> None:
        """Let the poller put completion events on this bus."""
        if bus_arn not in self._buses:
            self._buses.append(bus_arn)

    def grant_latest(self, parameter_arn: str) -> None:
        """Let the poller record the latest good output path in this SSM parameter."""
        if parameter_arn not in self._parameters:
            self._parameters.append(parameter_arn)

    def _signal_function(self) -> lambda_.Function:
        log_group = self._log_group("SignalLogs")
        role = iam.Role(
            self,
            "SignalRole",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description="Signals a CloudFormation WaitCondition when an export job ends",
        )
        log_group.grant_write(role)
        return lambda_.Function(
            self,
            "Signal",
            runtime=HANDLER_RUNTIME,
            architecture=lambda_.Architecture.ARM_64,
            handler=SIGNAL_ENTRY,
            code=handler_code(),
            role=role,
            timeout=Duration.seconds(30),
            memory_size=128,
            log_group=log_group,
            description="Personalize export poller: signals a WaitCondition's presigned URL",
        )

    def _log_group(self, construct_id: str) -> logs.LogGroup:
        return logs.LogGroup(
            self,
            construct_id,
            retention=logs.RetentionDays.ONE_YEAR,
            removal_policy=RemovalPolicy.RETAIN,
        )
