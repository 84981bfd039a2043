"""The harness's own `git daemon`: the agents' remote is `git://127.0.0.1:PORT/<repo>`.

It serves one folder (the bare repository alone), with receive-pack enabled. The port is picked
by binding port 0 and is kept across an outage, so the agents' URL never changes; the daemon runs
in its own process group, so a hang (SIGSTOP) also freezes the upload-packs and receive-packs it
has forked, as a stuck server would.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

from agentmesh.host.process import kill_group, start_process
from agentmesh.ops.chaos.leftovers import group_stopped, lock_files

START_SECONDS = 10.0
STOP_GRACE = 2.0
QUIET_SECONDS = 5.0  # the longest wait for a moment between two ref transactions


class GitDaemonError(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


class GitDaemon:
    def __init__(self, base: Path, log_path: Path):
        self.base = base
        self.log_path = log_path
        self.port = 0
        self.proc: subprocess.Popen | None = None
        self.paused = False

    def url(self, repo: str) -> str:
        return f"git://127.0.0.1:{self.port}/{repo}"

    def start(self) -> None:
        """Start serving: the first time on a free port (another one if a process takes it before
        the daemon binds it), later on the same one, so the agents' URL stays valid."""
        for _ in range(1 if self.port else 3):
            port = self.port or free_port()
            if self._try_start(port):
                self.port = port
                return
        raise GitDaemonError(f"git daemon could not listen on 127.0.0.1:{self.port or 'a free port'}; "
                             f"see {self.log_path}")

    def _try_start(self, port: int) -> bool:
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(self.base),
               "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": "/dev/null"}
        proc = start_process(["git", "daemon", "--reuseaddr", "--export-all", "--enable=receive-pack",
                              "--informative-errors", f"--base-path={self.base}", "--listen=127.0.0.1",
                              f"--port={port}", str(self.base)], env=env, log_path=self.log_path)
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                return False
            if _listening(port):
                self.proc, self.paused = proc, False
                return True
            time.sleep(0.05)
        kill_group(proc, grace=0)
        return False

    def stop(self) -> None:
        """Stop the daemon and everything it forked (a push in flight dies mid-way, as in a crash),
        between two ref transactions when one comes within QUIET_SECONDS (`freeze`)."""
        if self.proc is not None:
            if self.freeze():
                kill_group(self.proc, grace=0)  # SIGKILL reaches stopped processes
            else:
                self._signal(signal.SIGCONT)  # a stopped group cannot act on SIGTERM
                kill_group(self.proc, grace=STOP_GRACE)
            self.proc, self.paused = None, False

    def pause(self) -> None:
        self._signal(signal.SIGSTOP)
        self.paused = True

    def freeze(self, wait: float = QUIET_SECONDS) -> bool:
        """SIGSTOP the daemon and its children at a moment when no ref transaction is under way in the
        served folder (no git lock file in it); whether one came within `wait` seconds (else it is left
        as it was). git's `--atomic` is all-or-nothing while refs are checked and locked, not when the
        server dies, or its folder moves (receive-pack uses absolute paths), between the renames that
        commit them: a fault struck there tears the push and leaves lock files that block the refs for
        good, which no agent could mend. Faults of the remote strike between transactions. A daemon
        paused already (a hang) stays paused: it is frozen only if no transaction is held in it."""
        if self.paused:
            return not lock_files(self.base)
        deadline = time.monotonic() + wait
        while True:
            self.pause()
            if self._stopped(deadline) and not lock_files(self.base):
                return True
            self.resume()
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.02)

    def resume(self) -> None:
        self._signal(signal.SIGCONT)
        self.paused = False

    def _stopped(self, deadline: float) -> bool:
        """Whether the whole group took the SIGSTOP before `deadline` (a lock scan before that could miss
        a lock file a receive-pack is still creating)."""
        while self.proc is not None and not group_stopped(self.proc.pid):
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.005)
        return True

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def _signal(self, sig: int) -> None:
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                pass
