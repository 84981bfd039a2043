"""agentmesh/core must stay pure: no module that does I/O, no reading the clock.

An allowlist, not a denylist: core may import core and the standard library's pure modules only
(plus `yaml`, a codec used on strings for lesson front matter). Anything else, however it is
written, fails.
"""

import ast
from pathlib import Path

import pytest

import agentmesh.core

CORE = Path(agentmesh.core.__file__).parent
PURE_MODULES = {
    "__future__", "_sha1", "_sha2", "_sha256", "abc", "base64", "binascii", "bisect", "collections", "dataclasses",
    "datetime", "enum", "fnmatch", "functools", "hashlib", "heapq", "html", "itertools", "json", "math", "operator",
    "re", "statistics", "string", "textwrap", "tomllib", "types", "typing", "unicodedata", "yaml",
}
FORBIDDEN_CALLS = {"open", "print", "input", "exec", "eval", "__import__"}
FORBIDDEN_ATTRS = {"now", "utcnow", "today", "time", "getenv", "environ"}


def _violations(source: str, name: str) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(source)):
        modules = []
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            module = "." * node.level + (node.module or "")
            modules = [module + alias.name if not node.module else f"{module}.{alias.name}"
                       if module in ("agentmesh", "agentmesh.core") else module for alias in node.names]
        for module in modules:
            if not (module.split(".")[0] in PURE_MODULES or module.startswith("agentmesh.core.")
                    or (module.startswith(".") and not module.startswith("..."))) or module.startswith(".."):
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
    bad = ("import subprocess\nfrom os import path\nimport agentmesh.git.run\nx = open('f')\nimport datetime\n"
           "datetime.datetime.now()\n")
    assert len(_violations(bad, "bad.py")) == 5


@pytest.mark.parametrize("line", [
    "from agentmesh import files", "from agentmesh.host import state", "from .. import memory",
    "from ..host.config import MeshPolicy", "import agentmesh.memory", "from agentmesh.host.config import X",
    "import pathlib", "import pydantic", "from time import time",
])
def test_the_purity_check_is_an_allowlist(line):
    assert _violations(line + "\n", "bad.py")


@pytest.mark.parametrize("line", ["from agentmesh.core.model import Issue", "from .model import Issue",
                                  "from . import model", "import re", "from collections.abc import Mapping"])
def test_the_purity_check_allows_core_and_pure_modules(line):
    assert _violations(line + "\n", "good.py") == []
