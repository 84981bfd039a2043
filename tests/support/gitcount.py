"""Counting the git processes a piece of agentmesh starts, with git's own trace2 events.

A `git` shim first on PATH sets GIT_TRACE2_EVENT and execs the real git: every git process (the
ones agentmesh starts, and their git children: upload-pack, receive-pack, index-pack, gc --auto...)
writes one `start` event there. agentmesh passes PATH through to git and scrubs the rest, so the
shim is the one way in; nothing of agentmesh is replaced.
"""

from __future__ import annotations

import json
import os
import shutil
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path


@dataclass
class GitCount:
    events: Path

    def _starts(self) -> list[dict]:
        if not self.events.exists():
            return []
        starts = []
        for line in self.events.read_text(errors="replace").splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                continue  # a line cut by a killed process
            if event.get("event") == "start":
                starts.append(event)
        return starts

    def processes(self) -> int:
        """Every git process, children included."""
        return len(self._starts())

    def calls(self) -> int:
        """The git processes agentmesh itself started (a child's sid holds its parent's: `parent/child`)."""
        return sum(1 for event in self._starts() if "/" not in event.get("sid", ""))

    def commands(self) -> Counter[str]:
        """How many processes ran each git command (the first argument that is not an option)."""
        found: Counter[str] = Counter()
        for event in self._starts():
            argv = event.get("argv", [])
            program = os.path.basename(argv[0]) if argv else ""
            if program.startswith("git-"):  # a dashed child: git-receive-pack '<path>'
                found[program[len("git-"):]] += 1
                continue
            argv = argv[1:]
            words = [a for i, a in enumerate(argv) if not a.startswith("-") and (i == 0 or argv[i - 1] != "-c")]
            found[words[0] if words else "?"] += 1
        return found

    def argvs(self) -> list[list[str]]:
        """The command lines of the calls agentmesh started, in order, without the forced `-c` options."""
        found = []
        for event in self._starts():
            if "/" in event.get("sid", ""):
                continue
            argv = event.get("argv", [])[1:]
            found.append([a for i, a in enumerate(argv) if a != "-c" and (i == 0 or argv[i - 1] != "-c")])
        return found

    def spawned(self) -> Counter[str]:
        """How many processes git started of each program that is not git (ssh-keygen for a signature)."""
        found: Counter[str] = Counter()
        if self.events.exists():
            for line in self.events.read_text(errors="replace").splitlines():
                try:
                    event = json.loads(line)
                except ValueError:
                    continue
                argv = event.get("argv") or [""] if event.get("event") == "child_start" else None
                if argv and os.path.basename(argv[0]) != "git" and not argv[0].startswith("git-"):
                    found[os.path.basename(argv[0])] += 1
        return found

    def reset(self) -> None:
        self.events.unlink(missing_ok=True)


@contextmanager
def counting_git(directory: Path) -> Iterator[GitCount]:
    """Within the block, every git process started with this process's PATH is counted."""
    real = shutil.which("git")
    assert real is not None, "git is not on PATH"
    directory.mkdir(parents=True, exist_ok=True)
    events = directory / "trace2.events"
    shim = directory / "git"
    shim.write_text(f"#!/bin/sh\nGIT_TRACE2_EVENT='{events}' exec '{real}' \"$@\"\n")
    shim.chmod(0o755)
    before = os.environ["PATH"]
    os.environ["PATH"] = f"{directory}{os.pathsep}{before}"
    try:
        yield GitCount(events)
    finally:
        os.environ["PATH"] = before
