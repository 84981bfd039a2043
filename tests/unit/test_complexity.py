"""The runs stay readable: each run method is observe -> plan -> apply, under complexity 10
(issue 12; the whole package is held to 12 by ruff's C901)."""

from __future__ import annotations

import ast
import inspect
import textwrap

import pytest

from agentmesh.agent.claim_task import ClaimTask
from agentmesh.agent.monitor import Monitor
from agentmesh.core.pulls import plan_own_pull


def complexity(source: str) -> int:
    """McCabe's number as ruff's C901 counts it: 1 + one per if, loop, except clause, match case and
    comprehension loop (boolean operators and conditional expressions do not count)."""
    branches = (ast.If, ast.For, ast.AsyncFor, ast.While, ast.ExceptHandler, ast.match_case, ast.comprehension)
    return 1 + sum(isinstance(node, branches) for node in ast.walk(ast.parse(textwrap.dedent(source))))


@pytest.mark.parametrize("function", [ClaimTask.run, ClaimTask.plan, Monitor.run, Monitor.observe_own,
                                      plan_own_pull])
def test_run_methods_stay_simple(function):
    assert complexity(inspect.getsource(function)) < 10


def test_the_count_sees_branches():
    source = "def f(x):\n    if x and y:\n        for i in x:\n            pass\n    return [a for a in x if a]\n"
    assert complexity(source) == 1 + 1 + 1 + 1
