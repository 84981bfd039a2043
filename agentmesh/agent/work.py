"""The git side of one task: turn whatever the executor left in the worktree into one commit.

The executor is not trusted to commit: it may have committed, reset or
switched branches. Whatever it did, agentmesh stages the worktree as it is
and writes a single commit on top of the base, as the agent, with hooks
disabled (the git runner forces `core.hooksPath=/dev/null`). Without the
sandbox an executor could also have edited the cache clone's config, which
later git calls would honour, so that file is snapshotted and restored.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from agentmesh.git.cache import CacheClone
from agentmesh.git.run import Git

MAX_DIFF_BYTES = 32 * 1024 * 1024
REWORK_TRAILER = "Agentmesh-Rework"  # written here, counted by agent/rework.py


def commit_message(subject: str, *, issue: int, agent: str, host: str, claim_sha: str, attempt: int,
                   rework: int = 0) -> str:
    """The trailers are how later runs recognise the agent's own commits (a human's push has none)."""
    return (
        f"{subject}\n\n"
        f"Agentmesh-Issue: {issue}\n"
        f"Agentmesh-Agent: {agent}\n"
        f"Agentmesh-Host: {host}\n"
        f"Agentmesh-Claim: {claim_sha}\n"
        f"Agentmesh-Attempt: {attempt}\n"
        + (f"{REWORK_TRAILER}: {rework}\n" if rework else "")
    )


def commit_work(git: Git, worktree: Path, base: str, message: str) -> str | None:
    """One commit with the worktree's content on top of `base`; None when nothing changed."""
    git.run("add", "--all", "--", ".", cwd=worktree)
    tree = git.run("write-tree", cwd=worktree).stdout.strip()
    if tree == git.run("rev-parse", "--verify", f"{base}^{{tree}}", cwd=worktree).stdout.strip():
        return None
    return git.run("commit-tree", tree, "-p", base, cwd=worktree, input=message).stdout.strip()


def reset_worktree(git: Git, worktree: Path, base: str) -> None:
    """Throw away everything an executor did: back to `base`, untracked and ignored files removed."""
    git.run("reset", "--quiet", "--hard", base, cwd=worktree)
    git.run("clean", "-qfdx", cwd=worktree)


def work_diff(git: Git, worktree: Path, base: str, commit: str) -> str | None:
    """The change as a unified diff (binary content as text, so it is scanned too); None if too large."""
    out = git.run_bytes("diff", "--text", "--no-color", "--no-ext-diff", "--no-textconv", "--no-renames",
                        base, commit, cwd=worktree)
    return None if len(out) > MAX_DIFF_BYTES else out.decode("utf-8", "replace")


def changed_paths(git: Git, worktree: Path, base: str, commit: str) -> list[str]:
    out = git.run("diff", "--name-only", "-z", "--no-renames", base, commit, cwd=worktree).stdout
    return [p for p in out.split("\0") if p]


@contextmanager
def guarded_config(cache: CacheClone) -> Iterator[list[str]]:
    """Restore the cache clone's config after the block; the yielded list reports a tampering."""
    path = cache.path / "config"
    before = path.read_bytes()
    notes: list[str] = []
    try:
        yield notes
    finally:
        if not path.is_file() or path.read_bytes() != before:
            path.unlink(missing_ok=True)
            path.write_bytes(before)
            notes.append("the executor changed the cache clone's git config; restored")
