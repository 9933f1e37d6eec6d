"""The check that `--dist loadgroup` really grouped the grouped tests (tests/xdist_groups.py)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from xdist_groups import group_suffix, ungrouped


@dataclass
class Collected:
    nodeid: str
    marks: list[pytest.Mark] = field(default_factory=list)

    def iter_markers(self, name: str | None = None) -> Iterator[pytest.Mark]:
        return (mark for mark in self.marks if name is None or mark.name == name)


def group(name: str) -> pytest.Mark:
    return pytest.mark.xdist_group(name).mark


def test_a_test_without_a_group_needs_no_suffix() -> None:
    assert ungrouped([Collected("tests/test_a.py::test_x[1@2]")]) == []


def test_a_grouped_test_with_its_suffix_is_grouped() -> None:
    item = Collected("tests/test_a.py::test_x[1]@packaging", [group("packaging")])

    assert group_suffix(item) == "@packaging"
    assert ungrouped([item]) == []


def test_a_grouped_test_without_its_suffix_is_reported() -> None:
    lost = Collected("tests/test_a.py::test_x[a@b]", [group("integ")])

    assert ungrouped([lost]) == ["tests/test_a.py::test_x[a@b]"]


def test_two_groups_join_as_xdist_joins_them() -> None:
    item = Collected(
        "tests/test_a.py::test_x@integ_packaging", [group("packaging"), group("integ")]
    )

    assert group_suffix(item) == "@integ_packaging"
    assert ungrouped([item]) == []
    assert ungrouped([Collected("tests/test_a.py::test_x@integ", item.marks)]) != []


def test_this_run_s_own_grouped_tests_carry_their_group(request: pytest.FixtureRequest) -> None:
    """The check's premise on this pytest and xdist: in a loadgroup worker, a grouped test's node
    id ends with its group; in any other run nothing is appended."""
    (grouped,) = [item for item in request.session.items if item.name.startswith(GROUPED_NAME)]
    if getattr(request.config.option, "loadgroup", False):
        assert grouped.nodeid.endswith("@xdist-groups-check")
    else:
        assert group_suffix(grouped) == "@xdist-groups-check"
        assert not grouped.nodeid.endswith("@xdist-groups-check")


GROUPED_NAME = "test_a_grouped_test_is_collected"


@pytest.mark.xdist_group("xdist-groups-check")
def test_a_grouped_test_is_collected() -> None:
    assert test_a_grouped_test_is_collected.__name__ == GROUPED_NAME
