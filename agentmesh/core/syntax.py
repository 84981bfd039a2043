"""The built-in syntax gate's checks: does a changed file parse? Pure, and never runs the file.

Python is byte-compiled (`compile`, never executed), YAML is composed with PyYAML's safe loader
(syntax only: no object is constructed, so a custom tag such as `!Ref` is fine), JSON is decoded
and TOML parsed with `tomllib`. Which files are checked goes by their extension. Messages give
the parser's reason, line and column, never the offending line: a gate's output becomes a public
review.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Iterable
from enum import StrEnum

from agentmesh.core.review import glob_match


class Syntax(StrEnum):
    PYTHON = "Python"
    YAML = "YAML"
    JSON = "JSON"
    TOML = "TOML"


_SUFFIXES = {".py": Syntax.PYTHON, ".pyi": Syntax.PYTHON, ".yaml": Syntax.YAML, ".yml": Syntax.YAML,
             ".json": Syntax.JSON, ".toml": Syntax.TOML}
# JSON files that their tools read as JSON with comments: not plain JSON, so not checked as JSON
JSONC = ("tsconfig*.json", "jsconfig*.json", ".vscode/**", "devcontainer.json", ".devcontainer/**")


def syntax_of(path: str) -> Syntax | None:
    """The language a changed path is checked as, or None when the gate leaves it alone."""
    name = path.rsplit("/", 1)[-1]
    dot = name.rfind(".")
    kind = _SUFFIXES.get(name[dot:].lower()) if dot > 0 else None
    if kind is Syntax.JSON and any(glob_match(pattern, path) for pattern in JSONC):
        return None
    return kind


def syntax_targets(paths: Iterable[str]) -> list[str]:
    """The changed paths the syntax gate checks, in order, once each."""
    return [p for p in dict.fromkeys(paths) if syntax_of(p) is not None]


def _where(line: int | None, column: int | None) -> str:
    if not line:
        return ""
    return f"line {line}" + (f", column {column}" if column else "") + ": "


def _parse_python(path: str, data: bytes) -> None:
    compile(data, path, "exec", dont_inherit=True)  # compiled, never run


def _parse_yaml(path: str, data: bytes) -> None:
    import yaml

    for _ in yaml.compose_all(data, Loader=yaml.SafeLoader):  # every document; nodes only, no objects
        pass


def _parse_json(path: str, data: bytes) -> None:
    json.loads(data)


def _parse_toml(path: str, data: bytes) -> None:
    tomllib.loads(data.decode("utf-8"))


_PARSERS = {Syntax.PYTHON: _parse_python, Syntax.YAML: _parse_yaml, Syntax.JSON: _parse_json,
            Syntax.TOML: _parse_toml}


def _why(exc: Exception) -> str:
    """What a parser's exception says, with its line and column, without quoting the file."""
    import yaml

    if isinstance(exc, SyntaxError):  # IndentationError and TabError too
        return f"{_where(exc.lineno, exc.offset)}{exc.msg}"
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark
        return f"{_where(mark.line + 1, mark.column + 1) if mark else ''}{exc.problem or exc.context or 'invalid'}"
    if isinstance(exc, yaml.YAMLError):  # a reader error: bytes that are no text
        return type(exc).__name__
    if isinstance(exc, json.JSONDecodeError):
        return f"{_where(exc.lineno, exc.colno)}{exc.msg}"
    if isinstance(exc, UnicodeDecodeError):
        return f"not UTF-8 text (byte {exc.start})"
    if isinstance(exc, (RecursionError, MemoryError)):
        return "too deeply nested to parse"
    return str(exc)  # TOMLDecodeError names its line; compile's ValueError a NUL byte


def syntax_problem(path: str, data: bytes) -> str | None:
    """Why `data`, the content of `path`, does not parse as its language; None when it does (or when
    the syntax gate leaves `path` alone)."""
    kind = syntax_of(path)
    if kind is None:
        return None
    import yaml  # here: the agents that import this module (for syntax_of) mostly parse nothing

    try:
        _PARSERS[kind](path, data)
    except (SyntaxError, yaml.YAMLError, ValueError, RecursionError, MemoryError) as exc:
        return f"{kind}: {_why(exc)}"
    return None
