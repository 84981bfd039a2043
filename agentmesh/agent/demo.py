"""The `demo` executor: deterministic, offline, and it makes a real, reviewable change.

It reads the task file agentmesh wrote and applies every block of the form

    ```agentmesh-demo path=docs/hello.md
    file content
    ```

by writing that content to that path inside the worktree. Paths that leave
the worktree (`../../etc/passwd`, absolute paths, symlinks out) are refused.
It powers `agentmesh demo` and the end-to-end tests.

    python -m agentmesh.agent.demo TASK_FILE WORKTREE
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from agentmesh.core.pattern import LazyPattern

BLOCK = LazyPattern(r"^```agentmesh-demo path=(?P<path>[^\s`]+)[ \t]*\n(?P<body>.*?)^```[ \t]*$", re.M | re.S)
MAX_FILE = 100_000


def _is_git_dir_name(part: str) -> bool:
    """`.git` as git itself recognises it: any case, trailing dots or spaces, the 8.3 short name."""
    name = part.rstrip(". ").casefold()
    return name == ".git" or name.startswith("git~")


def safe_target(worktree: Path, relative: str) -> Path | None:
    """The file to write, or None if `relative` would leave the worktree or touch .git."""
    if relative.startswith("/") or "\\" in relative:
        return None
    parts = Path(relative).parts
    if not parts or any(p in ("..", "") or _is_git_dir_name(p) for p in parts):
        return None
    target = (worktree / relative).resolve()
    root = worktree.resolve()
    if root not in target.parents:
        return None
    return target


def apply(task_text: str, worktree: Path) -> list[str]:
    """Apply every demo block; return messages. Raises ValueError on a refused block."""
    done = []
    blocks = list(BLOCK.finditer(task_text))
    if not blocks:
        raise ValueError("the task has no ```agentmesh-demo path=...``` block; nothing to do")
    for match in blocks:
        relative, body = match["path"], match["body"]
        target = safe_target(worktree, relative)
        if target is None:
            raise ValueError(f"refusing path outside the worktree: {relative!r}")
        if len(body) > MAX_FILE:
            raise ValueError(f"refusing {relative}: {len(body)} bytes is over {MAX_FILE}")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(body)
        done.append(f"wrote {relative} ({len(body)} bytes)")
    return done


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m agentmesh.agent.demo TASK_FILE WORKTREE", file=sys.stderr)
        return 2
    task_file, worktree = Path(argv[0]), Path(argv[1])
    try:
        for line in apply(task_file.read_text(), worktree):
            print(f"demo executor: {line}")
    except (ValueError, OSError) as exc:
        print(f"demo executor: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
