"""The built-in syntax gate's decisions (core/syntax.py): which changed files it checks, and whether
each parses, on tables. Nothing is executed: a file that would act when run only has to parse."""

from __future__ import annotations

import pytest

from agentmesh.core.syntax import syntax_of, syntax_problem, syntax_targets


@pytest.mark.parametrize("path, kind", [
    ("a.py", "Python"), ("pkg/stubs.pyi", "Python"), ("ci.yml", "YAML"), ("k8s/app.YAML", "YAML"),
    ("package.json", "JSON"), ("pyproject.toml", "TOML"),
    ("README.md", None), ("Makefile", None), (".py", None), ("py", None), ("notes.json5", None),
    ("x.jsonc", None), ("tsconfig.json", None), ("web/tsconfig.build.json", None), (".vscode/settings.json", None),
    (".devcontainer/devcontainer.json", None),  # JSON with comments, read by their tools as such
])
def test_which_files_are_checked(path, kind):
    assert syntax_of(path) == kind


def test_targets_keep_order_and_drop_the_rest():
    assert syntax_targets(["b.py", "README.md", "a.json", "b.py", "tsconfig.json", "c.toml"]) == [
        "b.py", "a.json", "c.toml"]


@pytest.mark.parametrize("path, data, problem", [
    ("m.py", b"def broken(:\n", "Python: line 1, column 12: invalid syntax"),
    ("m.py", b"if x:\npass\n", "Python: line 2, column 1: expected an indented block"),
    ("m.py", b"return 1\n", "Python: line 1, column 1: 'return' outside function"),  # a compiler error, not a parse one
    ("m.py", b"x = 1\x00\n", "Python: source code string cannot contain null bytes"),
    ("m.py", b"(" * 500, "Python: line 1, column 201: too many nested parentheses"),
    ("c.yaml", b"key: [unclosed\n", "YAML: line 2, column 1: expected ',' or ']'"),
    ("c.yml", b"a: b: c\n", "YAML: line 1, column 5: mapping values are not allowed here"),
    ("c.yml", b"\xff\xfe\xff", "YAML: ReaderError"),
    ("d.json", b'{"a": }', "JSON: line 1, column 7: Expecting value"),
    ("d.json", b"\xff", "JSON: not UTF-8 text (byte 0)"),
    ("d.json", b"[" * 100_000, "JSON: too deeply nested to parse"),
    ("p.toml", b"a = \n", "TOML: Invalid value (at line 1, column 5)"),
    ("p.toml", b"\xff", "TOML: not UTF-8 text (byte 0)"),
])
def test_a_file_that_does_not_parse_is_named_with_where(path, data, problem):
    found = syntax_problem(path, data)
    assert found is not None and found.startswith(problem), found


@pytest.mark.parametrize("path, data", [
    ("m.py", b"import os\nos.system('touch /tmp/pwned')\n"),  # parses: it is compiled, never run
    ("m.py", b"# -*- coding: latin-1 -*-\nx = '\xe9'\n"),
    ("m.py", b"x = '\\d'\n"),  # a SyntaxWarning is no failure
    ("c.yaml", b"a: 1\n---\nb: !Ref x\n"),  # several documents, a custom tag (CloudFormation): syntax only
    ("c.yaml", b"!!python/object/apply:os.system ['touch /tmp/pwned']\n"),  # composed, never constructed
    ("c.yaml", b""),
    ("d.json", b'{"a": [1, 2.5, null]}'),
    ("p.toml", b"[tool.x]\nkey = 'v'\n"),
    ("README.md", b"((( not checked"),
])
@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::SyntaxWarning")
def test_a_file_that_parses_passes(path, data):
    assert syntax_problem(path, data) is None


def test_a_problem_never_quotes_the_file():
    """The gate's output goes into a public review: it names where, not what."""
    secret = b"token-0123456789abcdef"
    for path, data in [("m.py", b"x = (" + secret + b"\n"), ("c.yaml", b"a: [" + secret + b"\n"),
                       ("d.json", b'{"' + secret + b'": }'), ("p.toml", b"a = " + secret + b"\n")]:
        found = syntax_problem(path, data)
        assert found is not None and secret.decode() not in found, found
