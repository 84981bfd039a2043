"""The agent side of one task's commit: its message and trailers, and the guard on the cache config.

The executor is not trusted to commit: it may have committed, reset or
switched branches. Whatever it did, agentmesh stages the worktree as it is
and writes a single commit on top of the base, as the agent, with hooks,
fsmonitor and the worktree's filter and diff drivers disabled and without
the token (git/worktree.py). In the sandbox an executor cannot write any of
the agent's git machinery; without it (`sandbox: off`), it could edit the
files later git calls honour (the cache clone's config, the agent's global
config and askpass helper, the worktree's `.git` link), so those are
snapshotted before it runs and restored after.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from agentmesh.git.run import ASKPASS_NAME, GLOBAL_CONFIG_NAME

REWORK_TRAILER = "Agentmesh-Rework"  # written here, counted by agent/rework.py
CHECKPOINT_TRAILER = "Agentmesh-Checkpoint"  # the unfinished work of a preempted job (agent/jobs.py)


def commit_message(subject: str, *, issue: int, agent: str, host: str, claim_sha: str, attempt: int,
                   rework: int = 0, checkpoint: bool = False) -> str:
    """The trailers are how later runs recognise the agent's own commits (a human's push has none)."""
    return (
        f"{subject}\n\n"
        f"Agentmesh-Issue: {issue}\n"
        f"Agentmesh-Agent: {agent}\n"
        f"Agentmesh-Host: {host}\n"
        f"Agentmesh-Claim: {claim_sha}\n"
        f"Agentmesh-Attempt: {attempt}\n"
        + (f"{REWORK_TRAILER}: {rework}\n" if rework else "")
        + (f"{CHECKPOINT_TRAILER}: preempted\n" if checkpoint else "")
    )


def is_checkpoint(message: str) -> bool:
    """Whether a commit `message` (one of the agent's own: executors never write them) marks a checkpoint."""
    return any(line.startswith(f"{CHECKPOINT_TRAILER}:") for line in message.splitlines())


def agent_git_files(cache: Path, bin_dir: Path, worktree: Path | None = None) -> list[Path]:
    """The files that steer the agent's own git calls and that an unsandboxed executor or gate could
    write: the cache clone's config and attributes, agentmesh's global config and askpass helper, and
    for a worktree its `.git` link and the files of its entry in the clone."""
    files = [cache / "config", cache / "info" / "attributes", bin_dir / GLOBAL_CONFIG_NAME, bin_dir / ASKPASS_NAME]
    if worktree is not None:
        files.append(worktree / ".git")
        try:
            link = (worktree / ".git").read_text()
        except (OSError, UnicodeDecodeError):
            link = ""
        if link.startswith("gitdir: "):
            entry = Path(link[len("gitdir: "):].strip())
            files += [entry / name for name in ("commondir", "gitdir", "config.worktree")]
    return files


def _snapshot(path: Path) -> tuple[bytes, int] | None:
    try:
        if path.is_symlink() or not path.is_file():
            return None
        return path.read_bytes(), path.stat().st_mode & 0o777
    except OSError:
        return None


def _restore(path: Path, saved: tuple[bytes, int] | None) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.is_symlink() or path.exists():
        path.unlink()
    if saved is not None:
        data, mode = saved
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)


@contextmanager
def guarded_git(files: Sequence[Path], who: str = "the executor") -> Iterator[list[str]]:
    """Restore `files` (agent_git_files) after the block as they were before it; the yielded list
    says which ones `who`, run in the block, changed."""
    before = {path: _snapshot(path) for path in files}
    notes: list[str] = []
    try:
        yield notes
    finally:
        changed = [path for path, saved in before.items() if _snapshot(path) != saved
                   or (saved is None and path.is_symlink())]
        for path in changed:
            _restore(path, before[path])
        if changed:
            notes.append(f"{who} changed agentmesh's own git files; restored: "
                         + ", ".join(sorted({p.name for p in changed})))
