"""Every module lives in a layer, and imports only point down: cli -> ops -> agent -> {forge, memory,
refs} -> git -> host -> core (docs/design/architecture.md).

Imports are resolved from the source: relative ones, ones inside functions and ones under
TYPE_CHECKING all count, because each is a dependency a reader has to know about.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import agentmesh

PACKAGE = Path(agentmesh.__file__).parent
BELOW = ("core",)
# what each layer may import besides itself; the top package (`agentmesh`: the version) is open to all
ALLOWED: dict[str, set[str]] = {
    "core": set(),
    "host": {"core"},
    "git": {"host", "core"},
    "refs": {"git", "host", "core"},
    "memory": {"git", "host", "core"},
    "forge": {"git", "host", "core"},
    "agent": {"forge", "memory", "refs", "git", "host", "core"},
    "ops": {"agent", "forge", "memory", "refs", "git", "host", "core"},
    "cli": {"ops", "agent", "forge", "memory", "refs", "git", "host", "core"},
}
TOP_LEVEL_FILES = {"__init__.py", "__main__.py"}


def module_name(path: Path, root: Path = PACKAGE) -> str:
    parts = ["agentmesh", *path.relative_to(root).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(source: str, module: str, *, is_package: bool) -> list[str]:
    """Every agentmesh module `module` imports, anywhere in its body, relative imports resolved."""
    found = []
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.append(target)
            # `from agentmesh import files` names a module, not an attribute
            found += [f"{target}.{alias.name}" for alias in node.names
                      if (PACKAGE.parent / (target.replace(".", "/") + f"/{alias.name}.py")).exists()
                      or (PACKAGE.parent / (target.replace(".", "/") + f"/{alias.name}")).is_dir()]
    return [name for name in found if name == "agentmesh" or name.startswith("agentmesh.")]


def layer_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in ALLOWED else None


def all_modules(root: Path = PACKAGE) -> dict[str, list[str]]:
    graph = {}
    for path in sorted(root.rglob("*.py")):
        name = module_name(path, root)
        graph[name] = imports_of(path.read_text(), name, is_package=path.name == "__init__.py")
    return graph


def back_arrows(graph: dict[str, list[str]]) -> list[str]:
    bad = []
    for module, targets in graph.items():
        source = layer_of(module)
        for target in targets:
            if target == "agentmesh" or (target == "agentmesh.__main__" and module == "agentmesh"):
                continue
            goal = layer_of(target)
            if source is None:
                if module != "agentmesh.__main__" or goal != "cli":
                    bad.append(f"{module} (outside any layer) imports {target}")
            elif goal is None:
                bad.append(f"{module} imports {target}, which is outside any layer")
            elif goal != source and goal not in ALLOWED[source]:
                bad.append(f"{module} ({source}) imports {target} ({goal})")
    return bad


def cycles(graph: dict[str, list[str]]) -> list[list[str]]:
    """Import cycles between modules (a package's `__init__` counts as the package)."""
    edges = {m: sorted({t for t in ts if t in graph and t != m}) for m, ts in graph.items()}
    found, state, stack = [], {}, []

    def visit(node: str) -> None:
        state[node] = "open"
        stack.append(node)
        for nxt in edges[node]:
            if state.get(nxt) == "open":
                found.append([*stack[stack.index(nxt):], nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = "done"

    for node in edges:
        if node not in state:
            visit(node)
    return found


def test_every_module_is_in_a_layer():
    outside = [p.name for p in PACKAGE.glob("*.py") if p.name not in TOP_LEVEL_FILES]
    outside += [p.name for p in PACKAGE.iterdir() if p.is_dir() and p.name not in ALLOWED
                and p.name != "__pycache__"]
    assert outside == []


def test_imports_only_point_down():
    assert back_arrows(all_modules()) == []


def test_no_import_cycles():
    assert cycles(all_modules()) == []


@pytest.mark.parametrize("module, source, target", [
    ("agentmesh/agent/base.py", "from agentmesh.ops.hostlock import host_lock\n", "ops"),
    ("agentmesh/memory/lessons.py", "def f():\n    from ..agent.mesh import Mesh\n", "agent"),
    ("agentmesh/forge/__init__.py",
     "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from agentmesh.agent.mesh import Mesh\n", "agent"),
    ("agentmesh/core/x.py", "from agentmesh import host\n", "host"),
    ("agentmesh/core/x.py", "from .. import refs\n", "refs"),
    ("agentmesh/git/x.py", "from agentmesh.forge.base import Forge\n", "forge"),
    ("agentmesh/refs/x.py", "from agentmesh.memory.journal import Journal\n", "memory"),
])
def test_the_layer_check_catches_back_arrows(tmp_path, module, source, target):
    """The session-3 back-arrows (agent -> ops, memory -> the wiring object, forge -> the wiring object)
    and others of their kind, written the ways Python allows."""
    path = PACKAGE.parent / module
    name = module_name(path)
    graph = {name: imports_of(source, name, is_package=path.name == "__init__.py")}
    assert any(f"({target})" in arrow for arrow in back_arrows(graph)), graph


def test_the_layer_check_catches_a_module_outside_the_layers():
    graph = {"agentmesh.claims": ["agentmesh.core.lease"], "agentmesh.agent.x": ["agentmesh.files"]}
    assert len(back_arrows(graph)) == 2


def test_the_cycle_check_catches_a_cycle():
    graph = {"agentmesh.agent.a": ["agentmesh.agent.b"], "agentmesh.agent.b": ["agentmesh.agent.c"],
             "agentmesh.agent.c": ["agentmesh.agent.a"], "agentmesh.agent.d": ["agentmesh.agent.a"]}
    assert cycles(graph) == [["agentmesh.agent.a", "agentmesh.agent.b", "agentmesh.agent.c", "agentmesh.agent.a"]]


def raw_git_calls(source: str) -> list[str]:
    """`<anything>.run("<git subcommand>", ...)`: git command lines, which belong in agentmesh/git."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr in ("run", "run_bytes") and node.args
                and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            found.append(f"line {node.lineno}: .{node.func.attr}({node.args[0].value!r}, ...)")
    return found


def test_raw_git_lives_in_the_git_layer():
    outside = {str(p.relative_to(PACKAGE)): raw_git_calls(p.read_text()) for p in sorted(PACKAGE.rglob("*.py"))
               if p.relative_to(PACKAGE).parts[0] != "git"}
    assert {k: v for k, v in outside.items() if v} == {}
    assert raw_git_calls("mesh.cache.run('cat-file', 'commit', sha)\n")
