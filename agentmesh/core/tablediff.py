"""What changed in a table between two redraws of `status --watch`, on plain rows of text.

A row is known by its first cell (the agent, the issue, the PR, the budget scope), with a count for a
first cell seen twice. Cells in `volatile` columns (ages and leases, which tick every redraw) are shown
as they are but never count as a change: a change is something a sibling or a human did.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

from agentmesh.core.vocab import RowChange


@dataclass(frozen=True)
class RowDiff:
    change: RowChange
    cells: list[str]
    changed: frozenset[int] = frozenset()  # the indexes of the cells that differ (CHANGED rows only)


def _keyed(rows: Sequence[Sequence[str]]) -> dict[tuple[str, int], list[str]]:
    seen: dict[str, int] = {}
    keyed = {}
    for row in rows:
        first = row[0] if row else ""
        seen[first] = seen.get(first, -1) + 1
        keyed[(first, seen[first])] = list(row)
    return keyed


def diff_rows(before: Sequence[Sequence[str]] | None, after: Sequence[Sequence[str]],
              volatile: Collection[int] = ()) -> list[RowDiff]:
    """The rows of `after`, each marked against `before` (None: the first redraw, nothing is marked), then the
    rows of `before` that are gone."""
    if before is None:
        return [RowDiff(RowChange.SAME, list(row)) for row in after]
    old, new = _keyed(before), _keyed(after)
    out = []
    for key, row in new.items():
        was = old.get(key)
        if was is None:
            out.append(RowDiff(RowChange.NEW, row))
            continue
        changed = frozenset(i for i, cell in enumerate(row)
                            if i not in volatile and (i >= len(was) or was[i] != cell))
        out.append(RowDiff(RowChange.CHANGED if changed else RowChange.SAME, row, changed))
    out += [RowDiff(RowChange.GONE, row) for key, row in old.items() if key not in new]
    return out


def count_changes(diffs: Sequence[RowDiff]) -> int:
    return sum(1 for d in diffs if d.change is not RowChange.SAME)
