"""The built-in `syntax` review gate: the program the reviewer runs in the sandbox.

    python -I -m agentmesh.agent.syntax_gate PATHS_FILE

PATHS_FILE holds the PR's changed paths, NUL-separated, relative to the working directory (the
PR head's worktree). Each Python, YAML, JSON or TOML file among them must parse (core/syntax.py);
nothing of the repository is run. `-I` keeps the worktree off `sys.path` (its `yaml.py` or
`sitecustomize.py` is never imported) and ignores PYTHON* variables. A deleted file, a symlink
and a path through a symlinked directory are not read. Exit 1 when a file does not parse.
"""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path

from agentmesh.core.syntax import syntax_problem, syntax_targets


def _shown(path: str) -> str:
    return path if path.isprintable() else ascii(path)


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -I -m agentmesh.agent.syntax_gate PATHS_FILE", file=sys.stderr)
        return 2
    warnings.simplefilter("ignore")  # compile's SyntaxWarnings are not failures
    listed = Path(argv[0]).read_bytes().decode("utf-8", "surrogateescape").split("\0")
    root = os.path.realpath(".")
    checked, failed = 0, 0
    for path in syntax_targets(p for p in listed if p):
        target = os.path.join(root, path)
        if os.path.realpath(target) != os.path.normpath(target) or not os.path.isfile(target):
            continue  # deleted, or a symlink: its target is not the PR's file
        with open(target, "rb") as handle:
            data = handle.read()
        checked += 1
        problem = syntax_problem(path, data)
        if problem is not None:
            failed += 1
            print(f"{_shown(path)}: {problem}")
    print(f"{checked} file(s) checked, {failed} do not parse" if failed else f"{checked} file(s) parse")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
