"""The lifecycle table of test_lifecycle.py, run through the deploy harness: each event reaches
the handler through the Provider framework's own JavaScript (Node 24, AWS SDK v3), its waiter
state machine runs in moto's Step Functions interpreter, and CloudFormation's answer arrives at
the ResponseURL over HTTPS. Same rows, same expected Personalize calls and outcomes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from conftest import HANDLER_ACCESS_KEY, Synth
from harness.cloudformation import HarnessDeployment
from personalize_standin import PersonalizeStandIn
from test_lifecycle import (
    SCENARIOS,
    STACK,
    Scenario,
    World,
    check_scenario,
    synth,
)

__all__ = ["synth"]  # the module-scoped fixture, shared with test_lifecycle


@dataclass
class HarnessWorld(World):
    """test_lifecycle's World, deployed through the harness instead of the simulation."""

    def start(self, **options: Any) -> HarnessWorld:
        self.deployment = HarnessDeployment(self.synth(**options), STACK, standin=self.standin)
        self.handler = self.stack.enter_context(self.deployment.handler())
        return self


@pytest.fixture
def world(standin: PersonalizeStandIn, synth: Synth) -> Iterator[World]:
    # The export poller watches each job too (for the completion event): the table is about the
    # handler's calls, so only those count, and only those move a job on.
    standin.progress_caller = HANDLER_ACCESS_KEY
    with contextlib.ExitStack() as stack:
        yield HarnessWorld(standin, synth, stack)


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_scenario_through_the_real_framework(world: World, scenario: Scenario) -> None:
    world.faults = scenario.faults
    outcome = scenario.event(world)
    check_scenario(world, scenario, outcome, world.standin.answers(HANDLER_ACCESS_KEY))
