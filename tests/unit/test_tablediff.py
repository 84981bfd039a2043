"""What `status --watch` marks as changed between two redraws (core/tablediff.py), on tables."""

from __future__ import annotations

import pytest

from agentmesh.core.tablediff import count_changes, diff_rows
from agentmesh.core.vocab import RowChange as C

BEFORE = [["a", "alive", "3s"], ["b", "alive", "9s"], ["c", "alive", "1s"]]


@pytest.mark.parametrize(("after", "expected"), [
    # only the volatile column (index 2) ticked: nothing changed
    ([["a", "alive", "4s"], ["b", "alive", "10s"], ["c", "alive", "2s"]],
     [(C.SAME, "a", set()), (C.SAME, "b", set()), (C.SAME, "c", set())]),
    # b died, d is new, c is gone (listed after the rows that are there)
    ([["a", "alive", "4s"], ["b", "DEAD", "10s"], ["d", "alive", "0s"]],
     [(C.SAME, "a", set()), (C.CHANGED, "b", {1}), (C.NEW, "d", set()), (C.GONE, "c", set())]),
    # the order of rows is not a change
    ([["c", "alive", "1s"], ["a", "alive", "3s"], ["b", "alive", "9s"]],
     [(C.SAME, "c", set()), (C.SAME, "a", set()), (C.SAME, "b", set())]),
    ([], [(C.GONE, "a", set()), (C.GONE, "b", set()), (C.GONE, "c", set())]),
])
def test_rows_are_marked_against_the_last_redraw(after, expected):
    diffs = diff_rows(BEFORE, after, volatile={2})
    assert [(d.change, d.cells[0], set(d.changed)) for d in diffs] == expected
    assert count_changes(diffs) == sum(1 for change, _, _ in expected if change is not C.SAME)


def test_the_first_redraw_marks_nothing():
    diffs = diff_rows(None, BEFORE, volatile={2})
    assert [d.change for d in diffs] == [C.SAME] * 3 and count_changes(diffs) == 0


def test_a_first_cell_seen_twice_is_told_apart_by_its_rank():
    before = [["#7", "x (legacy lock)"], ["#7", "y"]]
    diffs = diff_rows(before, [["#7", "x (legacy lock)"], ["#7", "z"]])
    assert [(d.change, set(d.changed)) for d in diffs] == [(C.SAME, set()), (C.CHANGED, {1})]


def test_a_volatile_column_still_shows_its_new_value():
    [row] = diff_rows([["a", "3s"]], [["a", "4s"]], volatile={1})
    assert row.cells == ["a", "4s"] and row.change is C.SAME
