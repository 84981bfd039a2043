"""Worktrees from the per-host cache clone, one per task, under the state directory.

`git worktree add/remove/prune` on one clone fail intermittently when they
race (docs/design/protocol.md, "The measurements behind it": 7 of 160 adds
with 8 processes), so every operation holds the clone's file lock, the same
one its fetches hold.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

from agentmesh.core.errors import UserError
from agentmesh.core.slug import is_work_branch
from agentmesh.git.cache import CacheClone
from agentmesh.git.run import Git, neutral_drivers

MAX_DIFF_BYTES = 32 * 1024 * 1024


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
            self._remove_locked(path)  # and the entries of worktrees whose folder is gone
            self.root.mkdir(parents=True, exist_ok=True)
            self.cache.run("worktree", "add", "--quiet", "--force", "-B", branch, str(path), start)
        return path

    def remove(self, branch: str) -> None:
        """Remove the worktree and its local branch; a missing one is fine."""
        path = self.path_for(branch)
        with self.cache.locked():
            self._remove_locked(path)
            self.cache.run("branch", "--quiet", "-D", branch, check=False)

    def _remove_locked(self, path: Path) -> None:
        """Remove the worktree at `path`; prune the clone's worktree entries unless git removed it itself."""
        removed = False
        if path.exists():
            removed = self.cache.run("worktree", "remove", "--force", "--force", str(path), check=False).returncode == 0
            shutil.rmtree(path, ignore_errors=True)  # a half-created worktree git does not know
        if not removed:
            self.cache.run("worktree", "prune")

    def list(self) -> list[Path]:
        out = self.cache.run("worktree", "list", "--porcelain").stdout
        return [Path(line[len("worktree "):]) for line in out.splitlines()
                if line.startswith("worktree ") and Path(line[len("worktree "):]).parent == self.root]


def sealed_git(git: Git, worktree: Path) -> Git:
    """`git` for a worktree an executor has written (or a PR's code has run in): without the token, and
    with every filter, diff and merge driver its configuration defines switched off, whichever file
    (an include, `config.worktree`) defines it. Hooks and fsmonitor are off for every call anyway."""
    sealed = git.sealed()
    keys = sealed.run("config", "--list", "--name-only", "-z", cwd=worktree, check=False).stdout.split("\0")
    return git.sealed(neutral_drivers(k.strip() for k in keys))


def commit_work(git: Git, worktree: Path, base: str, message: str, *, exclude: Sequence[str] = (),
                sealed: Git | None = None, base_tree: str | None = None) -> str | None:
    """One commit with the worktree's content on top of `base`, but for the files matching the
    `exclude` globs (an executor's scratch files); None when nothing changed. `sealed`: what
    `sealed_git(git, worktree)` gave the caller; `base_tree`: `base`'s tree, when the caller knows it."""
    git = sealed or sealed_git(git, worktree)
    git.run("add", "--all", "--", ".", *(f":(exclude,glob){pattern}" for pattern in exclude), cwd=worktree)
    tree = git.run("write-tree", cwd=worktree).stdout.strip()
    if tree == (base_tree or git.run("rev-parse", "--verify", f"{base}^{{tree}}", cwd=worktree).stdout.strip()):
        return None
    return git.commit_tree(tree, [base], message, cwd=worktree)


def reset_worktree(git: Git, worktree: Path, base: str) -> None:
    """Throw away everything an executor did: back to `base`, untracked and ignored files removed."""
    git = sealed_git(git, worktree)
    git.run("reset", "--quiet", "--hard", base, cwd=worktree)
    git.run("clean", "-qfdx", cwd=worktree)


def work_diff(git: Git, worktree: Path, base: str, commit: str, *, sealed: Git | None = None) -> str | None:
    """The change as a unified diff (binary content as text, so it is scanned too); None if too large.
    `sealed` as for `commit_work`."""
    git = sealed or sealed_git(git, worktree)
    out = git.run_bytes("diff", "--text", "--no-color", "--no-ext-diff", "--no-textconv", "--no-renames",
                        base, commit, cwd=worktree)
    return None if len(out) > MAX_DIFF_BYTES else out.decode("utf-8", "replace")


def changed_paths(git: Git, worktree: Path, base: str, commit: str) -> list[str]:
    out = git.run("diff", "--name-only", "-z", "--no-renames", base, commit, cwd=worktree).stdout
    return [p for p in out.split("\0") if p]
