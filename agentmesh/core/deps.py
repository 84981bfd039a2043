"""Dependencies between issues: the tree `issue deps` prints, the cycles claim-task blocks, task lists.

An issue depends on the issues its body names in `Depends on #N` / `Blocked by #N` and in unchecked
task-list items `- [ ] #N` (core/select.py parses them; the same rules decide eligibility). Issues
that depend on each other in a cycle can never start: `find_cycles` finds them (the strongly
connected components of the graph), and claim-task labels them blocked with one comment naming the
cycle, so they do not wait silently. Pure: the callers fetch the issues.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from agentmesh.core.digest import sha256
from agentmesh.core.model import Issue
from agentmesh.core.pattern import LazyPattern
from agentmesh.core.select import dependencies

MAX_MARKER_MEMBERS = 100  # characters of member numbers a cycle's marker spells out; more are hashed
_TASK = LazyPattern(r"^[ \t]*[-*+][ \t]+\[[ xX]\][ \t]+#([1-9][0-9]{0,9})(?![0-9])", re.MULTILINE)


# --- cycles -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cycle:
    """Issues that depend on each other: `members` (sorted) is a strongly connected component,
    `path` one cycle through its lowest member, starting and ending there."""

    members: tuple[int, ...]
    path: tuple[int, ...]

    @property
    def marker(self) -> str:
        """The comment marker (core/markers.py) naming this cycle: the same members, the same marker."""
        spelled = "-".join(str(n) for n in self.members)
        if len(spelled) <= MAX_MARKER_MEMBERS:
            return f"cycle/{spelled}"
        return f"cycle/{self.members[0]}-{len(self.members)}-{sha256(spelled.encode()).hexdigest()[:16]}"

    def __str__(self) -> str:
        return " -> ".join(f"#{n}" for n in self.path)

    def to_json(self) -> dict[str, Any]:
        return {"members": list(self.members), "path": list(self.path)}


def find_cycles(graph: Mapping[int, Iterable[int]]) -> list[Cycle]:
    """Every cycle of `graph` (issue -> the issues it depends on), one per strongly connected
    component, lowest member first. Edges to issues outside the graph are ignored: a closed or
    unknown dependency is no cycle."""
    edges = {n: sorted({d for d in deps if d in graph}) for n, deps in graph.items()}
    cycles = [sorted(c) for c in _components(edges) if len(c) > 1 or c[0] in edges[c[0]]]
    return sorted((Cycle(tuple(c), _path(c, edges)) for c in cycles), key=lambda c: c.members)


def _components(edges: Mapping[int, Sequence[int]]) -> list[list[int]]:
    """The strongly connected components (Tarjan's algorithm, iterative: no recursion limit for a
    hostile backlog)."""
    index: dict[int, int] = {}
    low: dict[int, int] = {}
    stack: list[int] = []
    on_stack: set[int] = set()
    components: list[list[int]] = []
    for start in sorted(edges):
        if start in index:
            continue
        work = [(start, 0)]
        while work:
            node, i = work.pop()
            if i == 0:
                index[node] = low[node] = len(index)
                stack.append(node)
                on_stack.add(node)
            if i < len(edges[node]):
                work.append((node, i + 1))
                nxt = edges[node][i]
                if nxt not in index:
                    work.append((nxt, 0))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            if work:  # done with `node`: its parent is next on the work stack
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                cut = stack.index(node)
                components.append(stack[cut:])
                on_stack.difference_update(stack[cut:])
                del stack[cut:]
    return components


def _path(component: Sequence[int], edges: Mapping[int, Sequence[int]]) -> tuple[int, ...]:
    """The shortest cycle through the component's lowest member (breadth first, lowest numbers first)."""
    start, inside = component[0], set(component)
    came_from: dict[int, int] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for nxt in edges[node]:
                if nxt == start:
                    path = [start, node]
                    while path[-1] != start:
                        path.append(came_from[path[-1]])
                    return (start, *reversed(path[1:-1]), start) if node != start else (start, start)
                if nxt in inside and nxt not in came_from:
                    came_from[nxt] = node
                    following.append(nxt)
        frontier = following
    raise AssertionError(f"no cycle through #{start}: not a strongly connected component")  # pragma: no cover


def open_graph(issues: Iterable[Issue], depends: Mapping[int, Collection[int]] | None = None) -> dict[int, set[int]]:
    """The dependency graph among open issues: only an open dependency can keep an issue waiting.
    `depends`: number -> `dependencies(issue)`, when the caller computed them already."""
    listed = [i for i in issues if i.state == "open"]
    numbers = {i.number for i in listed}
    return {i.number: set(dependencies(i) if depends is None or i.number not in depends else depends[i.number])
            & numbers for i in listed}


def unsettled(cycles: Iterable[Cycle], issues: Mapping[int, Issue], blocked: str) -> list[Cycle]:
    """The cycles with a member not labelled `blocked` yet. The label goes on after the comments, so a
    cycle whose members all carry it needs nothing more (and costs no comment listing per tick)."""
    return [c for c in cycles if any(blocked not in issues[n].labels for n in c.members if n in issues)]


def cycle_keeper(cycle: Cycle, ring: Sequence[str], alive: Collection[str]) -> str | None:
    """The one agent that blocks `cycle`: every agent that sees the same ring and the same living agents
    picks the same one, so two racing agents do not both comment. Spread by the cycle's lowest issue."""
    living = [name for name in dict.fromkeys(ring) if name in alive]
    return living[cycle.members[0] % len(living)] if living else None


def cycle_comment(cycle: Cycle, *, agent: str) -> str:
    """The comment on each issue of a cycle (only numbers: no forge text)."""
    also = sorted(set(cycle.members) - set(cycle.path))
    more = f" (also in it: {', '.join(f'#{n}' for n in also)})" if also else ""
    return (f"agentmesh: `{agent}` found a dependency cycle: {cycle}{more}. None of these issues can start "
            "while it lasts, so each is labelled blocked. Remove one of the dependencies (`Depends on`, "
            "`Blocked by` or an unchecked `- [ ] #N` task), then remove the blocked label.")


# --- the tree --------------------------------------------------------------------------------------


class Mark(StrEnum):
    """Why a node of the tree is not expanded."""

    CYCLE = "cycle"  # an ancestor again
    SHOWN = "shown above"  # expanded earlier in the tree
    MISSING = "not found"
    LIMIT = "not read"  # beyond the lookup limit


@dataclass(frozen=True)
class DepNode:
    number: int
    issue: Issue | None
    children: tuple[DepNode, ...] = ()
    mark: Mark | None = None

    @property
    def state(self) -> str:
        return self.issue.state if self.issue is not None else "unknown"

    def to_json(self) -> dict[str, Any]:
        return {"issue": self.number, "title": self.issue.title if self.issue else None, "state": self.state,
                "mark": str(self.mark) if self.mark else None,
                "depends_on": [child.to_json() for child in self.children]}


def dependency_tree(root: int, issues: Mapping[int, Issue], *, missing: Collection[int] = ()) -> DepNode:
    """The tree of what `root` waits for, depth first in number order. Each issue is expanded once; a
    dependency on an ancestor is marked a cycle; `issues` lacking a number marks it not found when it is
    in `missing`, not read otherwise."""
    expanded: set[int] = set()

    def node(number: int, ancestors: tuple[int, ...]) -> DepNode:
        issue = issues.get(number)
        if issue is None:
            return DepNode(number, None, mark=Mark.MISSING if number in missing else Mark.LIMIT)
        if number in ancestors:
            return DepNode(number, issue, mark=Mark.CYCLE)
        if number in expanded:
            return DepNode(number, issue, mark=Mark.SHOWN)
        expanded.add(number)
        inner = (*ancestors, number)
        return DepNode(number, issue, tuple(node(n, inner) for n in sorted(dependencies(issue))))

    return node(root, ())  # recursion as deep as the longest chain read, which the caller bounds


def tree_lines(tree: DepNode, title: Any) -> list[str]:
    """The tree drawn with box characters; `title(issue)` renders a title for the terminal."""
    def label(n: DepNode) -> str:
        text = f"#{n.number}" + (f" {title(n.issue)}" if n.issue is not None else "") + f" [{n.state}]"
        return text + (f" ({n.mark})" if n.mark else "")

    lines = [label(tree)]

    def walk(n: DepNode, prefix: str) -> None:
        for i, child in enumerate(n.children):
            last = i == len(n.children) - 1
            lines.append(prefix + ("└── " if last else "├── ") + label(child))
            walk(child, prefix + ("    " if last else "│   "))

    walk(tree, "")
    return lines


# --- task lists --------------------------------------------------------------------------------------


def task_numbers(body: str) -> set[int]:
    """Numbers in task-list items `- [ ] #N` and `- [x] #N`, checked or not."""
    return {int(n) for n in _TASK.findall(body or "")}


def with_tasks(body: str, numbers: Iterable[int]) -> str:
    """`body` with an unchecked task-list item `- [ ] #N` appended for each number not in a task yet."""
    listed = task_numbers(body)
    new = [n for n in dict.fromkeys(numbers) if n not in listed]
    if not new:
        return body
    head = body.rstrip("\n")
    if not head:
        separator = ""
    elif _TASK.search(head.splitlines()[-1]):
        separator = "\n"  # the last line is a task: the list goes on
    else:
        separator = "\n\n"
    return head + separator + "\n".join(f"- [ ] #{n}" for n in new) + "\n"
