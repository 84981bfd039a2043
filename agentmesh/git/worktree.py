"""Worktrees from the per-host cache clone, one per task, under the state directory.

`git worktree add/remove/prune` on one clone fail intermittently when they
race (docs/design/protocol.md, "The measurements behind it": 7 of 160 adds
with 8 processes), so every operation holds the clone's file lock, the same
one its fetches hold.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import dataclass
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
        """A fresh worktree for `branch`, at commit `start`, its HEAD detached: a local branch would cost a
        process to create and one to delete, and nothing reads it (the work is pushed by commit)."""
        path = self.path_for(branch)
        with self.cache.locked():
            self._remove_locked(path)  # and the entries of worktrees whose folder is gone
            self.root.mkdir(parents=True, exist_ok=True)
            self.cache.run("worktree", "add", "--quiet", "--force", "--detach", str(path), start)
        return path

    def remove(self, branch: str) -> None:
        """Remove the worktree, and the local branch an earlier version made for it; a missing one is fine."""
        path = self.path_for(branch)
        with self.cache.locked():
            self._remove_locked(path)
            if self._has_branch(branch):
                self.cache.run("branch", "--quiet", "-D", branch, check=False)

    def _remove_locked(self, path: Path) -> None:
        """Remove the worktree at `path`; prune the clone's worktree entries unless git removed it itself
        (and only when some entry's folder is gone: a prune finds nothing else to do)."""
        removed = False
        if path.exists():
            removed = self.cache.run("worktree", "remove", "--force", "--force", str(path), check=False).returncode == 0
            shutil.rmtree(path, ignore_errors=True)  # a half-created worktree git does not know
        if not removed and self._stale_entries():
            self.cache.run("worktree", "prune")

    def _stale_entries(self) -> bool:
        """Whether the clone holds a worktree entry `git worktree prune` would remove: one whose folder is
        gone, or that git cannot read (each entry's `gitdir` file names the worktree's `.git` file)."""
        try:
            entries = list((self.cache.path / "worktrees").iterdir())
        except OSError:
            return False  # no worktree was ever added
        for entry in entries:
            try:
                gitdir = Path((entry / "gitdir").read_text(errors="replace").strip())
            except OSError:
                return True
            if not gitdir.is_absolute() or not gitdir.exists():
                return True
        return False

    def _has_branch(self, branch: str) -> bool:
        """Whether the clone has the local branch `branch`, loose or packed (read without git)."""
        ref = f"refs/heads/{branch}"
        if (self.cache.path / ref).is_file():
            return True
        try:
            packed = (self.cache.path / "packed-refs").read_text(errors="replace")
        except OSError:
            return False
        return any(line.endswith(f" {ref}") for line in packed.splitlines())

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
                sealed: Git | None = None, base_tree: str | None = None, cache: CacheClone | None = None) -> str | None:
    """One commit with the worktree's content on top of `base`, but for the files matching the
    `exclude` globs (an executor's scratch files); None when nothing changed. `sealed`: what
    `sealed_git(git, worktree)` gave the caller; `base_tree`: `base`'s tree, when the caller knows it;
    `cache`: the clone the worktree is of, which writes the commit (signed without git, and noted as this
    host's: git/signing.note_signed) from the tree git wrote into the objects they share."""
    git = sealed or sealed_git(git, worktree)
    git.run("add", "--all", "--", ".", *(f":(exclude,glob){pattern}" for pattern in exclude), cwd=worktree)
    tree = git.run("write-tree", cwd=worktree).stdout.strip()
    if tree == (base_tree or git.run("rev-parse", "--verify", f"{base}^{{tree}}", cwd=worktree).stdout.strip()):
        return None
    if cache is not None:
        return cache.commit_tree(tree, [base], message)
    return git.commit_tree(tree, [base], message, cwd=worktree)


def reset_worktree(git: Git, worktree: Path, base: str) -> None:
    """Throw away everything an executor did: back to `base`, untracked and ignored files removed."""
    git = sealed_git(git, worktree)
    git.run("reset", "--quiet", "--hard", base, cwd=worktree)
    git.run("clean", "-qfdx", cwd=worktree)


@dataclass(frozen=True)
class Changes:
    """What a commit changed against its base: the unified diff (None: too large) and the paths."""

    diff: str | None
    paths: list[str]


def work_changes(git: Git, worktree: Path, base: str, commit: str, *, sealed: Git | None = None) -> Changes:
    """The change as a unified diff (binary content as text, so it is scanned too; None if too large) and
    the paths it touches, from one `git diff`. `sealed` as for `commit_work`."""
    git = sealed or sealed_git(git, worktree)
    out = git.run_bytes("diff", "--text", "--no-color", "--no-ext-diff", "--no-textconv", "--no-renames",
                        "--patch-with-raw", "-z", base, commit, cwd=worktree)
    paths, patch = split_raw(out)
    return Changes(None if len(patch) > MAX_DIFF_BYTES else patch.decode("utf-8", "replace"), paths)


def split_raw(out: bytes) -> tuple[list[str], bytes]:
    """`git diff --patch-with-raw -z --no-renames` output: (the paths of its raw records, the patch after
    them). Each raw record is `:<modes> <shas> <status>` NUL `<path>` NUL; a NUL ends the records."""
    paths: list[str] = []
    pos = 0
    while out.startswith(b":", pos):
        meta_end = out.index(b"\0", pos)
        path_end = out.index(b"\0", meta_end + 1)
        paths.append(out[meta_end + 1:path_end].decode("utf-8", "replace"))
        pos = path_end + 1
    if paths and out.startswith(b"\0", pos):
        pos += 1
    return paths, out[pos:]


def work_diff(git: Git, worktree: Path, base: str, commit: str, *, sealed: Git | None = None) -> str | None:
    """The change as a unified diff (see `work_changes`); None if too large."""
    return work_changes(git, worktree, base, commit, sealed=sealed).diff


def changed_paths(git: Git, worktree: Path, base: str, commit: str) -> list[str]:
    out = git.run("diff", "--name-only", "-z", "--no-renames", base, commit, cwd=worktree).stdout
    return [p for p in out.split("\0") if p]
