"""core/deps.py on tables: cycles, who blocks them, the tree `issue deps` prints, growing task lists."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agentmesh.core.deps import (
    Cycle,
    Mark,
    cycle_comment,
    cycle_keeper,
    dependency_tree,
    find_cycles,
    open_graph,
    task_numbers,
    tree_lines,
    unsettled,
    with_tasks,
)
from agentmesh.core.markers import marker_text
from agentmesh.core.model import Issue


def issue(number: int, body: str = "", state: str = "open", labels: tuple[str, ...] = (), title: str = "") -> Issue:
    return Issue(number=number, title=title or f"issue {number}", body=body, state=state, labels=labels)


@pytest.mark.parametrize(("graph", "cycles"), [
    ({}, []),
    ({1: [2], 2: [3], 3: []}, []),  # a chain
    ({1: [2, 3], 2: [4], 3: [4], 4: []}, []),  # a diamond is no cycle
    ({1: [2], 2: [1]}, [((1, 2), (1, 2, 1))]),
    ({1: [1]}, [((1,), (1, 1))]),  # a self-loop
    ({3: [1], 1: [2], 2: [3]}, [((1, 2, 3), (1, 2, 3, 1))]),
    ({1: [2], 2: [1], 3: [4], 4: [3], 5: [1, 3]}, [((1, 2), (1, 2, 1)), ((3, 4), (3, 4, 3))]),  # two, and a waiter
    ({1: [2], 2: [3, 1], 3: [1]}, [((1, 2, 3), (1, 2, 1))]),  # shortest cycle through the lowest member
    ({1: [9], 2: [1]}, []),  # an edge out of the graph (closed, unknown) is no cycle
    ({1: [5], 5: [7], 7: [5]}, [((5, 7), (5, 7, 5))]),  # #1 waits on a cycle without being in it
])
def test_find_cycles(graph, cycles):
    assert [(c.members, c.path) for c in find_cycles(graph)] == cycles


def test_a_long_chain_needs_no_recursion():
    chain = {n: [n + 1] for n in range(1, 5000)} | {5000: [1]}
    [cycle] = find_cycles(chain)
    assert cycle.members == tuple(range(1, 5001)) and cycle.path[0] == cycle.path[-1] == 1


@given(st.dictionaries(st.integers(1, 12), st.lists(st.integers(1, 12), max_size=4), max_size=12))
def test_cycles_are_exactly_the_nodes_that_reach_themselves(graph):
    edges = {n: {d for d in deps if d in graph} for n, deps in graph.items()}

    def reach(start):
        seen, todo = set(), list(edges[start])
        while todo:
            n = todo.pop()
            if n not in seen:
                seen.add(n)
                todo += edges[n]
        return seen

    cycles = find_cycles(graph)
    assert {n for c in cycles for n in c.members} == {n for n in edges if n in reach(n)}
    for c in cycles:  # a member set is closed under mutual reachability, and the path is a real cycle in it
        assert all(m in reach(n) for n in c.members for m in c.members)
        assert c.path[0] == c.path[-1] == c.members[0] and set(c.path) <= set(c.members)
        assert all(b in edges[a] for a, b in zip(c.path, c.path[1:]))


def test_the_graph_is_among_open_issues_from_depends_on_and_open_tasks():
    issues = [issue(1, "Depends on #2"), issue(2, "- [ ] #1\n- [x] #3"), issue(3, "blocked by #1", state="closed"),
              issue(4, "Depends on #4 and #99")]
    assert open_graph(issues) == {1: {2}, 2: {1}, 4: set()}
    assert [c.members for c in find_cycles(open_graph(issues))] == [(1, 2)]


def test_a_cycle_is_settled_once_every_member_is_labelled_blocked():
    cycle = Cycle((1, 2), (1, 2, 1))
    half = {1: issue(1, labels=("agentmesh:blocked",)), 2: issue(2)}
    both = {n: issue(n, labels=("agentmesh:blocked",)) for n in (1, 2)}
    assert unsettled([cycle], half, "agentmesh:blocked") == [cycle]
    assert unsettled([cycle], both, "agentmesh:blocked") == []


@pytest.mark.parametrize(("members", "ring", "alive", "keeper"), [
    ((1, 2), ["ada", "bob"], {"ada", "bob"}, "bob"),  # 1 % 2
    ((2, 3), ["ada", "bob"], {"ada", "bob"}, "ada"),
    ((1, 2), ["ada", "bob"], {"ada"}, "ada"),  # only the living keep
    ((1, 2), ["ada", "bob", "ada"], {"ada", "bob"}, "bob"),
    ((1, 2), [], {"ada"}, None),
    ((1, 2), ["ada"], set(), None),
])
def test_one_keeper_per_cycle(members, ring, alive, keeper):
    assert cycle_keeper(Cycle(members, (*members, members[0])), ring, alive) == keeper


def test_the_marker_names_the_members_and_stays_a_valid_marker():
    assert Cycle((1, 2), (1, 2, 1)).marker == "cycle/1-2"
    big = Cycle(tuple(range(1000, 1100)), (1000, 1001, 1000))
    marker_text(big.marker)  # raises on an invalid or too long marker
    assert big.marker.startswith("cycle/1000-100-")
    text = cycle_comment(Cycle((1, 2, 3), (1, 2, 1)), agent="ada")
    assert "#1 -> #2 -> #1" in text and "also in it: #3" in text


def test_the_tree_marks_states_cycles_repeats_and_missing_issues():
    issues = {1: issue(1, "Depends on #2, #3 and #9\n- [ ] #4", title="root"), 2: issue(2, "Depends on #4"),
              3: issue(3, "Depends on #1", state="closed"), 4: issue(4, "- [x] #1")}
    tree = dependency_tree(1, issues, missing={9})
    assert tree_lines(tree, lambda i: i.title) == [
        "#1 root [open]",
        "├── #2 issue 2 [open]",
        "│   └── #4 issue 4 [open]",
        "├── #3 issue 3 [closed]",
        "│   └── #1 root [open] (cycle)",
        "├── #4 issue 4 [open] (shown above)",
        "└── #9 [unknown] (not found)",
    ]
    data = tree.to_json()
    assert data["depends_on"][1]["depends_on"][0] == {"issue": 1, "title": "root", "state": "open", "mark": "cycle",
                                                      "depends_on": []}
    assert dependency_tree(1, {1: issue(1, "Depends on #5")}).children[0].mark == Mark.LIMIT


@pytest.mark.parametrize(("body", "add", "after"), [
    ("", [3], "- [ ] #3\n"),
    ("Parent.", [3, 4], "Parent.\n\n- [ ] #3\n- [ ] #4\n"),
    ("Parent.\n\n- [x] #3\n", [3, 4], "Parent.\n\n- [x] #3\n- [ ] #4\n"),  # checked counts as listed
    ("- [ ] #3", [3], "- [ ] #3"),  # nothing to add: unchanged
    ("see #3", [3, 3], "see #3\n\n- [ ] #3\n"),  # a mention is no task
])
def test_task_lists_grow(body, add, after):
    assert with_tasks(body, add) == after
    assert set(add) <= task_numbers(after)
