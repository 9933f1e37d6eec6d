"""IAM settling: the first IAM_SETTLING_SECONDS of a deploy that created or changed the access an
export needs (role, bucket policy, key policy).

IAM changes take seconds to minutes to reach Personalize. While they settle, a refusal for access
is retried like throttling, and a job failing for access is started again under the next derived
name, up to MAX_JOB_ATTEMPTS jobs. This module decides both, and words the failure when access
is still refused once the window has closed.

The clock comes from the caller (the handler's `time.time`), so that whatever stands in for the
handler's time (a test's clock, the deploy harness's virtual clock) rules the window too.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from . import personalize as api
from .contract import IAM_SETTLING_SECONDS, MAX_JOB_ATTEMPTS, SETTLING_FIELD
from .failures import FAILED, ExportJobError, Tried, ended_in_failure, listed
from .request import Event, ExportRequest, changes_access, job_arn_for, job_name_for

Clock = Callable[[], float]


@dataclass(frozen=True)
class Settling:
    """Until when (epoch seconds) access refusals and failures are taken for IAM's propagation
    delay; 0 when this event created or changed nothing the export needs access to."""

    until: float = 0.0
    clock: Clock = field(default=time.time, compare=False)

    @classmethod
    def starting_now(cls, event: Event, clock: Clock) -> Settling:
        return cls(clock() + IAM_SETTLING_SECONDS if changes_access(event) else 0.0, clock)

    @classmethod
    def of(cls, event: Event, clock: Clock) -> Settling:
        return cls(float(event.get(SETTLING_FIELD) or 0), clock)

    @property
    def applies(self) -> bool:
        return self.until > 0

    def is_open(self) -> bool:
        return self.applies and self.clock() < self.until

    def elapsed(self) -> int:
        return int(self.clock() - (self.until - IAM_SETTLING_SECONDS))

    def excuses(self, error: Exception) -> bool:
        """Whether a refused call is taken for IAM still settling, and tried again later."""
        return api.is_access_refusal(error) and self.is_open()


# An event that created or changed nothing the export needs access to.
NOT_SETTLING = Settling()


def still_refused(request: ExportRequest, settling: Settling, tried: tuple[Tried, ...]) -> str:
    """What a refusal for access that outlasted the settling window adds to the message."""
    jobs = listed(tried) if tried else "No export job was started."
    return (
        f"Still refused {settling.elapsed()} s after this deploy created or changed the access "
        f"the export needs (refusals for access are retried for {IAM_SETTLING_SECONDS} s: IAM "
        f"changes take time to reach every service). The export passes role {request.role_arn}. "
        f"{jobs}"
    )


def next_attempt(
    request: ExportRequest,
    event: Event,
    settling: Settling,
    tried: tuple[Tried, ...],
    first: str,
) -> str:
    """The job to follow after one failed: the next derived name, if it may be started again."""
    last = tried[-1]
    retried = (
        settling.applies
        and api.is_about_access(last.reason)
        and not request.job_name
        and len(tried) < MAX_JOB_ATTEMPTS
        # Only this event's own chain: not a job an Update adopted or rolled back to.
        and first == job_arn_for(event, job_name_for(request, event))
    )
    if not retried:
        raise ExportJobError(failure_message(request, tried, settling), last.job_arn, tried)
    # The poll's log line shows the job followed and every failed job before it (jobsTried).
    return job_arn_for(event, job_name_for(request, event, attempt=len(tried)))


def failure_message(request: ExportRequest, tried: tuple[Tried, ...], settling: Settling) -> str:
    """The last job's failure, every job tried before it, and what to do."""
    last = tried[-1]
    about_access = settling.applies and api.is_about_access(last.reason)
    if len(tried) == 1 and not about_access:
        return f"Export job {last.job_arn} ended in {FAILED}: {last.reason}"
    message = ended_in_failure(tried)
    if not about_access:
        return message
    return f"{message} {access_advice(request, tried, settling)}"


def access_advice(request: ExportRequest, tried: tuple[Tried, ...], settling: Settling) -> str:
    """Why jobs failing for access after this deploy changed it were not, or no longer, retried."""
    if request.job_name:
        return (
            f"The job used role {request.role_arn}. Its job_name {request.job_name!r} is fixed, "
            "so it can't be started again (job names are unique, and jobs can be neither "
            "restarted nor deleted). This deploy created or changed the access the export needs, "
            "and IAM changes take time to reach Personalize: deploy again with a new job_name, or "
            "leave job_name unset so that a job failing for access in the first "
            f"{IAM_SETTLING_SECONDS} s is started again under a new name."
        )
    return (
        f"Personalize could not use role {request.role_arn}, the bucket policy or the key policy "
        f"for any of the {len(tried)} job(s) started in the {settling.elapsed()} s since this "
        f"deploy changed them (IAM changes reach every service within seconds to minutes; a job "
        f"failing for access is started again up to {MAX_JOB_ATTEMPTS - 1} times in the first "
        f"{IAM_SETTLING_SECONDS} s). Check the role's trust policy and permissions, the bucket "
        "policy and the key policy, then deploy again."
    )
