"""Virtual time for a whole deploy: every waiting party sleeps on one clock, which jumps ahead
only when nobody is working.

Actors are the threads that take part in a deploy (CloudFormation's resource workers, Lambda
invocations, Step Functions executions). An actor is busy from `actor()` until it leaves, except
while it sleeps on this clock. When no actor is busy, the clock jumps to the earliest wake-up
time and wakes the sleepers due then: an hour of 30-second polls takes as long as the calls do.

A thread blocked in a call to another actor (an HTTP request to the Lambda endpoint, say) stays
busy, so time never moves while a request is in flight.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

START = 1_800_000_000.0
# A leaked actor would freeze time for good: fail loudly instead of hanging the suite.
REAL_TIME_SAFETY_SECONDS = 300.0


class ClockStuckError(RuntimeError):
    """Nothing woke a sleeper within the real-time safety limit."""


@dataclass(order=True)
class Sleeper:
    """One wait on the clock; `wake_early` ends it before its time with a value."""

    wake_at: float
    order: int
    woken: threading.Event = field(default_factory=threading.Event, compare=False)
    value: Any = field(default=None, compare=False)
    early: bool = field(default=False, compare=False)


class VirtualClock:
    """A shared virtual clock; `time()` and `sleep()` stand in for the `time` module's."""

    def __init__(self, start: float = START) -> None:
        self.now = start
        self._busy = 0
        self._sleepers: list[Sleeper] = []
        self._order = itertools.count()
        self._condition = threading.Condition()
        self._local = threading.local()
        self._driver = threading.Thread(target=self._drive, name="virtual-clock", daemon=True)
        self._driver.start()

    def time(self) -> float:
        return self.now

    @contextmanager
    def actor(self) -> Iterator[None]:
        """The calling thread works for the deploy until the block ends."""
        outermost = self.actor_depth() == 0
        if outermost:
            with self._condition:
                self._busy += 1
        self._local.depth = self.actor_depth() + 1
        try:
            yield
        finally:
            self._local.depth -= 1
            if outermost:
                with self._condition:
                    self._busy -= 1
                    self._condition.notify_all()

    def actor_depth(self) -> int:
        return int(getattr(self._local, "depth", 0))

    def sleep(self, seconds: float) -> None:
        """Wait `seconds` of virtual time; a thread outside the deploy sleeps in real time."""
        if self.actor_depth():
            self.wait(self.sleeper(seconds))
        else:
            time.sleep(seconds)

    def sleeper(self, seconds: float) -> Sleeper:
        """A wait that can be ended early with `wake_early`; start it with `wait`."""
        with self._condition:
            return Sleeper(self.now + max(0.0, seconds), next(self._order))

    def wait(self, sleeper: Sleeper) -> Any:
        """Block until the sleeper's time comes or it is woken early; returns the early value."""
        with self._condition:
            if not sleeper.woken.is_set():
                heapq.heappush(self._sleepers, sleeper)
                self._busy -= 1
                self._condition.notify_all()
        if not sleeper.woken.wait(REAL_TIME_SAFETY_SECONDS):
            raise ClockStuckError(f"no wake-up within {REAL_TIME_SAFETY_SECONDS} s of real time")
        return sleeper.value

    def wake_early(self, sleeper: Sleeper, value: Any = None) -> bool:
        """End a wait now (a response arrived); False if it had already ended."""
        with self._condition:
            if sleeper.woken.is_set():
                return False
            sleeper.value, sleeper.early = value, True
            if sleeper in self._sleepers:
                self._sleepers.remove(sleeper)
                heapq.heapify(self._sleepers)
                self._busy += 1
            sleeper.woken.set()
            self._condition.notify_all()
            return True

    def wait_until_idle(self, real_seconds: float = REAL_TIME_SAFETY_SECONDS) -> None:
        """Let time run until nothing works or waits any more (executions ended, say)."""
        with self._condition:
            idle = self._condition.wait_for(
                lambda: self._busy == 0 and not self._sleepers, timeout=real_seconds
            )
        if not idle:
            raise ClockStuckError(f"still busy after {real_seconds} s of real time")

    def _drive(self) -> None:
        with self._condition:
            while True:
                self._condition.wait_for(lambda: self._busy == 0 and bool(self._sleepers))
                self.now = max(self.now, self._sleepers[0].wake_at)
                while self._sleepers and self._sleepers[0].wake_at <= self.now:
                    due = heapq.heappop(self._sleepers)
                    self._busy += 1
                    due.woken.set()


class ClockModule:
    """What a module sees as `time` once the harness points it at the virtual clock."""

    def __init__(self, clock: VirtualClock, real: Any) -> None:
        self._clock = clock
        self._real = real

    def time(self) -> float:
        return self._clock.time()

    def sleep(self, seconds: float) -> None:
        self._clock.sleep(seconds)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)
