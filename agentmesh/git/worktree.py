"""Worktrees from the per-host cache clone, one per task, under the state directory.

`git worktree add/remove/prune` on one clone fail intermittently when they
race (PROTOCOL.md: 7 of 160 adds with 8 processes), so every operation holds
the clone's file lock, the same one its fetches hold.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from agentmesh.core.slug import is_work_branch
from agentmesh.errors import UserError
from agentmesh.git.cache import CacheClone


class Worktrees:
    def __init__(self, cache: CacheClone, root: Path):
        self.cache = cache
        self.root = root

    def path_for(self, branch: str) -> Path:
        if not is_work_branch(branch):
            raise UserError(f"not a work branch name: {branch!r}")
        return self.root / branch.replace("/", "--")

    def add(self, branch: str, start: str) -> Path:
        """A fresh worktree on local branch `branch`, reset to commit `start`."""
        path = self.path_for(branch)
        with self.cache.locked():
            if path.exists():
                self._remove_locked(path)
            self.root.mkdir(parents=True, exist_ok=True)
            self.cache.run("worktree", "prune")
            self.cache.run("worktree", "add", "--quiet", "--force", "-B", branch, str(path), start)
        return path

    def remove(self, branch: str) -> None:
        """Remove the worktree and its local branch; a missing one is fine."""
        path = self.path_for(branch)
        with self.cache.locked():
            self._remove_locked(path)
            self.cache.run("branch", "--quiet", "-D", branch, check=False)

    def _remove_locked(self, path: Path) -> None:
        if path.exists():
            self.cache.run("worktree", "remove", "--force", "--force", str(path), check=False)
            shutil.rmtree(path, ignore_errors=True)  # a half-created worktree git does not know
        self.cache.run("worktree", "prune")

    def list(self) -> list[Path]:
        out = self.cache.run("worktree", "list", "--porcelain").stdout
        return [Path(line[len("worktree "):]) for line in out.splitlines()
                if line.startswith("worktree ") and Path(line[len("worktree "):]).parent == self.root]
