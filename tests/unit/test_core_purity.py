"""agentmesh/core must stay pure: no module that does I/O, no reading the clock."""

import ast
from pathlib import Path

import agentmesh.core

CORE = Path(agentmesh.core.__file__).parent
FORBIDDEN_MODULES = {
    "subprocess", "socket", "requests", "urllib", "http", "os", "shutil", "pathlib", "tempfile",
    "filelock", "time", "asyncio", "multiprocessing", "threading", "io", "sqlite3", "pygit2",
    "agentmesh.git", "agentmesh.forge", "agentmesh.cli", "agentmesh.agent", "agentmesh.ops",
    "agentmesh.state", "agentmesh.claims", "agentmesh.mesh",
}
FORBIDDEN_CALLS = {"open", "print", "input", "exec", "eval", "__import__"}
FORBIDDEN_ATTRS = {"now", "utcnow", "today", "time", "getenv", "environ"}


def _violations(source: str, name: str) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(source)):
        modules = []
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            modules = [node.module]
        for module in modules:
            if any(module == bad or module.startswith(bad + ".") for bad in FORBIDDEN_MODULES):
                found.append(f"{name}: imports {module}")
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in FORBIDDEN_CALLS:
            found.append(f"{name}: calls {node.func.id}()")
        if isinstance(node, ast.Attribute) and node.attr in FORBIDDEN_ATTRS:
            found.append(f"{name}: uses .{node.attr}")
    return found


def test_core_imports_nothing_that_does_io():
    files = sorted(CORE.rglob("*.py"))
    assert len(files) >= 3
    violations = [v for f in files for v in _violations(f.read_text(), f.name)]
    assert violations == []


def test_the_purity_check_catches_violations():
    bad = "import subprocess\nfrom os import path\nimport agentmesh.git.run\nx = open('f')\nimport datetime\ndatetime.datetime.now()\n"
    assert len(_violations(bad, "bad.py")) == 5
