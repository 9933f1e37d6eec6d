"""How the poller's tasks retry: a budget per Personalize call, the errors no retry mends, and
the short retry of the calls made after the job ended (EventBridge, SSM)."""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Duration
from aws_cdk import aws_stepfunctions as sfn

# A job of this name exists: a scheduled run's job was started by an earlier invocation.
ALREADY_EXISTS = "Personalize.ResourceAlreadyExistsException"
# Errors time can't mend: the operation's own modelled errors for a bad request or a missing
# resource. Step Functions names an error <Service>.<Name> only when the API model declares it
# for the operation; every other one (throttling, 5xx, AccessDenied) arrives as
# Personalize.PersonalizeException with the code only in the Cause, or, should AWS ever name it by
# its code, as that: so everything else is retried until the budget is spent.
DESCRIBE_FATAL_ERRORS = [
    "Personalize.InvalidInputException",
    "Personalize.ResourceNotFoundException",
]
CREATE_FATAL_ERRORS = [
    ALREADY_EXISTS,
    "Personalize.InvalidInputException",
    "Personalize.ResourceNotFoundException",
    "Personalize.TooManyTagsException",
]


@dataclass(frozen=True)
class RetryBudget:
    """A task's Retry for every error but the fatal ones: interval, back-off and attempts."""

    interval_seconds: int
    backoff_rate: float
    max_attempts: int
    max_delay_seconds: int

    def total_seconds(self) -> float:
        """How long consecutive failures are retried before the task gives up."""
        return sum(
            min(self.interval_seconds * self.backoff_rate**attempt, self.max_delay_seconds)
            for attempt in range(self.max_attempts)
        )

    def apply(self, task: sfn.TaskStateBase, fatal: list[str]) -> None:
        task.add_retry(errors=fatal, max_attempts=0)
        task.add_retry(
            errors=[sfn.Errors.ALL],
            interval=Duration.seconds(self.interval_seconds),
            backoff_rate=self.backoff_rate,
            max_attempts=self.max_attempts,
            max_delay=Duration.seconds(self.max_delay_seconds),
        )


# A Describe rides out about 75 minutes of consecutive failures (an hour's storm included);
# a Create about 80 (a busy dataset, the job limit, throttling).
DESCRIBE_RETRY = RetryBudget(
    interval_seconds=5, backoff_rate=2, max_attempts=20, max_delay_seconds=300
)
CREATE_RETRY = RetryBudget(
    interval_seconds=60, backoff_rate=1.5, max_attempts=12, max_delay_seconds=600
)


def retry_briefly(task: sfn.TaskStateBase, *, max_attempts: int) -> None:
    """Every error, 5 seconds apart and doubling."""
    task.add_retry(
        errors=[sfn.Errors.ALL],
        interval=Duration.seconds(5),
        backoff_rate=2,
        max_attempts=max_attempts,
    )
