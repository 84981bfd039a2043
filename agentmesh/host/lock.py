"""One run of a command per agent and remote at a time, without waiting.

cron starts a tick every few minutes whether or not the last one finished;
a tick that finds the lock held exits at once instead of queueing behind it.
The lock is a file lock, so it dies with its process: a crashed run never
leaves a stale lock behind.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from filelock import FileLock, Timeout

from agentmesh.host.state import StateDir


@contextmanager
def host_lock(state: StateDir, name: str) -> Iterator[bool]:
    """Yields True when this process holds the lock `name`, False when another does."""
    lock = FileLock(str(state.lock_path(name)))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        yield False
        return
    try:
        yield True
    finally:
        lock.release()
