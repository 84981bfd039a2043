"""What a run may leave on this host: executors still running, locks still held.

Two kinds of lock files: git's (`index.lock`, `refs/heads/x.lock`, `packed-refs.lock`, ...) are held
by existing, so one inside a repository is a lock a killed git left behind, and it blocks the next
update of that ref; agentmesh's own (`filelock`, an flock on a file it keeps) are held only while a
process holds the flock, so those are tried, not counted.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from agentmesh.host.process import start_time
from agentmesh.host.state import StateLayout
from agentmesh.ops.chaos.invariants import Invariant, Verdict, verdict


def running_executors(state_dir: Path) -> list[int]:
    """The process groups of the executors an agent's `running/issue-*.json` pidfiles name, if each
    leader is still the process that wrote the pidfile (a reused pid is never touched)."""
    found = []
    for pidfile in sorted(StateLayout(state_dir).running.glob("issue-*.json")):
        try:
            data = json.loads(pidfile.read_text())
            pgid, start = int(data["pgid"]), data.get("start")
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if start is not None and start_time(pgid) == start:
            found.append(pgid)
    return found


@dataclass(frozen=True)
class LockScan:
    git_locks: tuple[str, ...]  # lock files inside a repository: held by existing
    held: tuple[str, ...]  # agentmesh's flock files some process still holds
    checked: int

    def verdict(self) -> Verdict:
        return verdict(Invariant.NO_LOCKS, f"{len(self.git_locks)} git lock file(s), {len(self.held)} held file "
                       f"lock(s) ({self.checked} lock files checked)",
                       [f"git lock {p}" for p in self.git_locks] + [f"held {p}" for p in self.held])


def scan_locks(repositories: list[Path], state_dirs: list[Path]) -> LockScan:
    git_locks: list[str] = []
    held: list[str] = []
    checked = 0
    for repo in repositories:
        for path in lock_files(repo):
            checked += 1
            git_locks.append(str(path))
    for state in state_dirs:
        for path in lock_files(state):
            checked += 1
            inside_repo = any(part.endswith(".git") for part in path.relative_to(state).parts[:-1])
            if inside_repo:
                git_locks.append(str(path))
            elif _flock_held(path):
                held.append(str(path))
    return LockScan(tuple(sorted(git_locks)), tuple(sorted(held)), checked)


def lock_files(root: Path) -> list[Path]:
    """Every `*.lock` file under `root`."""
    found = []
    for folder, _dirs, files in os.walk(root):
        found += [Path(folder) / f for f in files if f.endswith(".lock")]
    return sorted(found)


def _flock_held(path: Path) -> bool:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False  # gone meanwhile: not held
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        os.close(fd)  # closing also drops our probe's lock
    return False


@dataclass(frozen=True)
class StopRecord:
    """How the agents' processes took being asked to stop at the end."""

    asked: int
    grace: float
    stuck: tuple[str, ...]  # still running after grace: killed (SIGTERM, then SIGKILL)
    executors: tuple[str, ...]  # executors still running after their agents stopped: killed
    server: tuple[str, ...] = ()  # the git daemon's children when the agents were asked to stop

    def verdict(self) -> Verdict:
        # what the server was doing explains a stuck agent (a push waiting on a frozen receive-pack)
        server = [f"git daemon child at the stop: {p}" for p in self.server] if self.stuck else []
        return verdict(Invariant.PROCESSES_EXIT, f"{self.asked - len(self.stuck)}/{self.asked} agent processes "
                       f"stopped within {self.grace:.0f}s; {len(self.executors)} executor(s) left running",
                       [f"stuck: {s}" for s in self.stuck] + [f"executor left running: {e}" for e in self.executors]
                       + server)


def group_stopped(pgid: int) -> bool:
    """Whether every process of group `pgid` is stopped (`T` in /proc): SIGSTOP is sent at once but
    taken later, so one pre-empted inside a system call may still finish it."""
    return all(state in ("T", "t") for _, state in _group_members(pgid))


def group_processes(pgid: int, *, skip: int | None = None) -> list[str]:
    """Each process of group `pgid` as `pid state wchan: command`, read from /proc (Linux): what a stuck
    process waits on, told in the report since the folder may be gone when it is read."""
    found = []
    for entry, state in _group_members(pgid, skip):
        try:
            wchan = (entry / "wchan").read_text().strip() or "-"
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue  # gone meanwhile
        found.append(f"{entry.name} {state} {wchan}: {command[:160]}")
    return sorted(found)


def _group_members(pgid: int, skip: int | None = None) -> Iterator[tuple[Path, str]]:
    """(its /proc folder, its state letter) of each process of group `pgid`, but `skip`."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == skip:
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            pgrp = int(fields[2])
        except (OSError, IndexError, ValueError):
            continue  # gone meanwhile
        if pgrp == pgid:
            yield entry, fields[0]
