"""Fail the grouped tests when `--dist loadgroup` silently ignores their xdist_group.

pytest-xdist 3.8 tells its scheduler a test's group by appending ``@group`` to the node id;
pytest 9.2 no longer lets it (pytest-dev/pytest-xdist#1386), and every group is then split
across workers, each paying the group's shared setup (the wheel, the integ apps) again. A
worker can't stop the run with a readable message (xdist reports only a crash), so each grouped
test fails with one instead.
"""

from __future__ import annotations

from collections.abc import Iterable
from importlib.metadata import version
from typing import Protocol

import pytest

GROUPS_LOST = pytest.StashKey[str]()


class Marked(Protocol):
    """What the check reads of a collected test."""

    @property
    def nodeid(self) -> str: ...

    def iter_markers(self, name: str | None = None) -> Iterable[pytest.Mark]: ...


def group_suffix(item: Marked) -> str:
    """The suffix pytest-xdist 3.8 gives a grouped test's node id ("" for no group)."""
    names = {
        str(mark.args[0] if mark.args else mark.kwargs.get("name", "default"))
        for mark in item.iter_markers("xdist_group")
    }
    return f"@{'_'.join(sorted(names))}" if names else ""


def ungrouped(items: Iterable[Marked]) -> list[str]:
    """The node ids of grouped tests whose group xdist could not record."""
    return [
        item.nodeid
        for item in items
        if (suffix := group_suffix(item)) and not item.nodeid.endswith(suffix)
    ]


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Set by pytest-xdist in its workers only, when the run asked for --dist loadgroup.
    if not getattr(config.option, "loadgroup", False):
        return
    lost = ungrouped(items)
    if lost:
        config.stash[GROUPS_LOST] = (
            f"--dist loadgroup dropped the xdist_group of {len(lost)} tests (first: {lost[0]}) "
            f"with pytest {version('pytest')} and pytest-xdist {version('pytest-xdist')}: "
            "pinned in requirements-dev.txt because pytest 9.2 breaks the grouping "
            "(pytest-dev/pytest-xdist#1386); run `make setup`, or check how this xdist groups"
        )


def pytest_runtest_setup(item: pytest.Item) -> None:
    message = item.config.stash.get(GROUPS_LOST, None)
    if message and group_suffix(item):
        pytest.fail(message, pytrace=False)
