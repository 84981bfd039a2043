"""core/pattern.py: a LazyPattern matches as `re.compile` would, compiles on first use, and no module of
agentmesh compiles a regular expression when it is imported (issue 16: ~0.3 to 1 M instructions a pattern,
paid by every process that imports the module)."""

import ast
import re
from pathlib import Path

import agentmesh
from agentmesh.core.pattern import LazyPattern

PACKAGE = Path(agentmesh.__file__).parent


def test_it_matches_as_the_compiled_pattern_does():
    source, text = r"(?P<word>[a-z]+)-(\d+)", "ab-12 cd-3 x-"
    lazy, eager = LazyPattern(source), re.compile(source)
    assert lazy.fullmatch("ab-12").groupdict() == eager.fullmatch("ab-12").groupdict()
    assert lazy.match(text).span() == eager.match(text).span() and lazy.match("-") is None
    assert lazy.search(" " + text).group() == "ab-12"
    assert lazy.findall(text) == eager.findall(text) == [("ab", "12"), ("cd", "3")]
    assert [m.span() for m in lazy.finditer(text)] == [m.span() for m in eager.finditer(text)]
    assert lazy.sub("#", text) == eager.sub("#", text) and lazy.sub(lambda m: m["word"], text, 1) == "ab cd-3 x-"
    assert lazy.subn("#", text) == eager.subn("#", text)
    assert lazy.split(text, 1) == eager.split(text, 1)
    flagged = LazyPattern(r"^b$", re.MULTILINE | re.IGNORECASE)
    assert flagged.search("a\nB\nc") is not None and flagged.pattern == r"^b$"


def test_it_compiles_once_on_first_use():
    lazy = LazyPattern(r"x+")
    assert lazy._compiled is None
    first = lazy.compiled
    assert lazy.fullmatch("xx") and lazy.compiled is first


def compiled_at_import(root: Path) -> list[str]:
    """`re.compile(...)` calls outside any function or lambda: run when the module (or class) is built."""
    found = []

    def visit(node, path, in_function):
        for child in ast.iter_child_nodes(node):
            inside = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            call = isinstance(child, ast.Call) and isinstance(child.func, ast.Attribute) \
                and child.func.attr == "compile" and isinstance(child.func.value, ast.Name) \
                and child.func.value.id == "re"
            if call and not inside:
                found.append(f"{path.relative_to(root)}:{child.lineno}")
            visit(child, path, inside)

    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text())
        visit(tree, path, False)
        for node in ast.walk(tree):  # `from re import compile` would hide a call from the check above
            if isinstance(node, ast.ImportFrom) and node.module == "re" \
                    and any(a.name == "compile" for a in node.names):
                found.append(f"{path.relative_to(root)}:{node.lineno} imports re.compile")
    return found


def test_no_module_compiles_a_pattern_when_imported(tmp_path):
    assert compiled_at_import(PACKAGE) == []
    (tmp_path / "bad.py").write_text(
        "import re\nA = re.compile('a')\nRULES = (('b', re.compile('b')),)\n\nclass C:\n    D = re.compile('d')\n\n"
        "def f():\n    return re.compile('fine')\n\nG = lambda: re.compile('fine')\n")
    assert compiled_at_import(tmp_path) == ["bad.py:2", "bad.py:3", "bad.py:6"]
