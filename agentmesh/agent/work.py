"""The agent side of one task's commit: its message and trailers, and the guard on the cache config.

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

from agentmesh.git.cache import CacheClone

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
