"""The one way agentmesh runs a child process: git, executors, gates, the demo's daemons, probes.

Every child starts in its own session, so its process group is the whole tree it spawns
(an executor's shell and its `sleep`, git's ssh and remote helpers). Stopping a child means
stopping its group: SIGTERM, a grace period, then SIGKILL, so no grandchild outlives it.

`run_process` runs one child to completion, timeout or stop and says which as an `ProcessOutcome`;
`start_process` and `stop_groups` are for children that run alongside this process.
A pidfile that records the start time lets a later process kill a group a crashed one left
behind, and never an unrelated process that reused the pid.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from enum import StrEnum
from pathlib import Path

from agentmesh.core.record import Record
from agentmesh.host.files import write_atomic

GRACE_SECONDS = 5.0  # between SIGTERM and SIGKILL
_KILLED_WAIT_SECONDS = 5.0  # after SIGKILL, for the group's members to be gone
_POLL_SECONDS = 0.05  # while waiting for a group to die


class ProcessOutcome(StrEnum):
    """How a child's run ended (not a journal entry's `core.vocab.Outcome`)."""

    OK = "ok"
    FAILED = "failed"  # ran and exited non-zero
    TIMEOUT = "timeout"
    STOPPED = "stopped"  # the caller's stop asked for it
    UNAVAILABLE = "unavailable"  # could not start at all


# A reason to stop (a lost claim, a halt) or None to go on; an Event stops once set.
StopCheck = Callable[[], str | None] | threading.Event


class ProcessResult(Record):
    argv: tuple[str, ...]
    outcome: ProcessOutcome
    returncode: int | None  # None when it never started; negative: the signal that ended it
    duration_s: float
    log_path: Path | None = None
    stdout: bytes = b""  # only with capture=True
    stderr: bytes = b""
    stop_reason: str | None = None
    error: str | None = None  # why it could not start

    @property
    def ok(self) -> bool:
        return self.outcome is ProcessOutcome.OK

    def tail(self, chars: int) -> str:
        """The end of the output: the log file's, or what was captured."""
        if self.log_path is not None:
            return log_tail(self.log_path, chars)
        return (self.stdout + self.stderr)[-chars:].decode("utf-8", "replace")


def log_tail(path: Path, chars: int, start: int = 0) -> str:
    """The last `chars` bytes of a log from byte `start` on, decoded leniently; "" when it cannot be read."""
    try:
        with open(path, "rb") as log:
            log.seek(max(start, log.seek(0, os.SEEK_END) - chars))
            return log.read().decode("utf-8", "replace")
    except OSError:
        return ""


def _open_log(path: Path) -> int:
    # output may quote an issue's text: readable by this user only
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)


def start_process(argv: Sequence[str], *, cwd: Path | str | None = None, env: Mapping[str, str] | None = None,
                  log_path: Path | None = None, capture: bool = False, stdin_pipe: bool = False) -> subprocess.Popen:
    """Start a child in its own session. Output goes to `log_path` (appended, stderr with stdout),
    to pipes with `capture`, or nowhere. Raises OSError when it cannot start."""
    if log_path is not None and capture:
        raise ValueError("output goes to a log or is captured, not both")
    log = _open_log(log_path) if log_path is not None else None
    try:
        return subprocess.Popen(
            list(argv), cwd=cwd, env=None if env is None else dict(env),
            stdin=subprocess.PIPE if stdin_pipe else subprocess.DEVNULL,
            stdout=subprocess.PIPE if capture else subprocess.DEVNULL if log is None else log,
            stderr=subprocess.PIPE if capture else subprocess.DEVNULL if log is None else subprocess.STDOUT,
            start_new_session=True)
    finally:
        if log is not None:
            os.close(log)  # the child holds its own copy


def run_process(argv: Sequence[str], *, cwd: Path | str | None = None, env: Mapping[str, str] | None = None,
                timeout: float | None = None, log_path: Path | None = None, capture: bool = False,
                input: bytes | None = None, stop: StopCheck | None = None,
                on_start: Callable[[int], object] | None = None, poll_seconds: float = 0.2,
                grace: float = GRACE_SECONDS, reap_group: bool = True) -> ProcessResult:
    """Run one child to completion, timeout or stop.

    `stop` is polled every `poll_seconds`; without it the wait is one blocking call, so a
    short child costs no more than a bare subprocess. `on_start` gets the pid (a pidfile,
    say). On timeout, stop or an exception here the whole group is killed with `grace`
    between SIGTERM and SIGKILL; with `reap_group` also after a normal exit, so nothing
    the child left running outlives it.
    """
    argv = tuple(argv)
    started = time.monotonic()
    try:
        proc = start_process(argv, cwd=cwd, env=env, log_path=log_path, capture=capture,
                             stdin_pipe=input is not None)
    except OSError as exc:
        if log_path is not None:
            with open(log_path, "ab") as log:
                log.write(f"cannot start: {exc}\n".encode())
        return ProcessResult(argv, ProcessOutcome.UNAVAILABLE, None, 0.0, log_path, error=str(exc))
    return finish_process(proc, argv, started, timeout=timeout, log_path=log_path, capture=capture, input=input,
                          stop=stop, on_start=on_start, poll_seconds=poll_seconds, grace=grace, reap_group=reap_group)


def finish_process(proc: subprocess.Popen, argv: tuple[str, ...], started: float, *, timeout: float | None = None,
                   log_path: Path | None = None, capture: bool = False, input: bytes | None = None,
                   stop: StopCheck | None = None, on_start: Callable[[int], object] | None = None,
                   poll_seconds: float = 0.2, grace: float = GRACE_SECONDS, reap_group: bool = True) -> ProcessResult:
    """`run_process` for a child `start_process` started at `started` (time.monotonic()): the same waiting,
    stopping and result. `input` is written to it now (it was started with `stdin_pipe`), so a child can do
    its own start-up while this process does other work."""
    outcome: ProcessOutcome | None = None
    stop_reason: str | None = None
    out = err = None
    try:
        if on_start is not None:
            on_start(proc.pid)
        outcome, stop_reason, out, err = _wait(proc, input, started + timeout if timeout is not None else None,
                                               stop, poll_seconds)
    finally:
        if out is None or reap_group:  # stopped, timed out or interrupted; or leftovers after an exit
            kill_group(proc, grace=grace)
        if out is None and capture:
            out, err = proc.communicate()  # what it wrote before it died, and its pipes closed
    if outcome is None:
        outcome = ProcessOutcome.OK if proc.returncode == 0 else ProcessOutcome.FAILED
    return ProcessResult(argv, outcome, proc.returncode, time.monotonic() - started, log_path, out or b"", err or b"",
                         stop_reason)


def _wait(proc: subprocess.Popen, input: bytes | None, deadline: float | None, stop: StopCheck | None,
          poll_seconds: float) -> tuple[ProcessOutcome | None, str | None, bytes | None, bytes | None]:
    """Wait for the child: (None, None, out, err) when it exits, (outcome, reason, None, None)
    when it must be stopped. communicate() may be retried after a timeout without losing output."""
    while True:
        step = None if deadline is None else max(0.0, deadline - time.monotonic())
        if stop is not None:
            step = poll_seconds if step is None else min(step, poll_seconds)
        try:
            out, err = proc.communicate(input, timeout=step)
            return None, None, out or b"", err or b""
        except subprocess.TimeoutExpired:
            pass
        if deadline is not None and time.monotonic() >= deadline:
            return ProcessOutcome.TIMEOUT, None, None, None
        reason = _stop_reason(stop)
        if reason is not None:
            return ProcessOutcome.STOPPED, reason, None, None


def _stop_reason(stop: StopCheck | None) -> str | None:
    if stop is None:
        return None
    if isinstance(stop, threading.Event):
        return "stop requested" if stop.is_set() else None
    return stop()


# --- process groups --------------------------------------------------------------------------


class _Group:
    """One process group to stop: a child of ours (reaped here) or a bare pgid (not our child)."""

    def __init__(self, target: subprocess.Popen | int):
        self.proc = target if isinstance(target, subprocess.Popen) else None
        self.pgid = target.pid if isinstance(target, subprocess.Popen) else target

    def signal(self, sig: int) -> None:
        try:
            os.killpg(self.pgid, sig)
        except (ProcessLookupError, PermissionError):
            pass  # gone, or no longer ours to signal

    def alive(self) -> bool:
        # an unreaped leader counts as alive to killpg, so reap it first
        if self.proc is not None and self.proc.poll() is None:
            return True
        return group_alive(self.pgid)

    def reap(self) -> None:
        if self.proc is not None:
            self.proc.wait()


def group_alive(pgid: int) -> bool:
    """Whether any member of the group still runs. Zombies don't count: a member reparented to an
    init that reaps slowly (a container's PID 1, bwrap's namespace leader) would hold every stop
    for seconds, though it can do nothing any more."""
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return _has_live_member(pgid)


def _has_live_member(pgid: int) -> bool:
    try:
        entries = os.listdir("/proc")
    except OSError:
        return True  # no /proc to look in: trust killpg
    wanted = str(pgid).encode()
    for name in entries:
        if not name.isdigit():
            continue
        # this scans every process of the machine, after each child's exit: a getpgid each (a syscall,
        # where opening and reading its stat file were three), and the stat, raw, of a member only
        try:
            if os.getpgid(int(name)) != pgid:
                continue
            fd = os.open(f"/proc/{name}/stat", os.O_RDONLY)
            try:
                stat = os.read(fd, 1024)
            finally:
                os.close(fd)
        except OSError:
            continue  # gone meanwhile
        fields = stat.rsplit(b")", 1)[-1].split()
        if len(fields) > 2 and fields[2] == wanted and fields[0] != b"Z":
            return True
    return False


def stop_groups(targets: Iterable[subprocess.Popen | int], *, grace: float = GRACE_SECONDS) -> None:
    """SIGTERM every group, give them `grace` seconds together, then SIGKILL what is left.
    With grace 0, SIGKILL at once. Returns once the groups are gone (or refuse to die)."""
    groups = [_Group(t) for t in targets]
    if grace > 0:
        for group in groups:
            group.signal(signal.SIGTERM)
    # each group is judged alive once per round: a judgement may scan /proc, and a gone one is not signalled
    groups = _wait_gone(groups, max(grace, 0.0))
    for group in groups:
        group.signal(signal.SIGKILL)
    for group in groups:
        group.reap()
    _wait_gone(groups, _KILLED_WAIT_SECONDS)


def kill_group(target: subprocess.Popen | int, *, grace: float = GRACE_SECONDS) -> None:
    """Stop one child's process group (a Popen of ours, or a pgid): SIGTERM, grace, SIGKILL."""
    stop_groups([target], grace=grace)


def _wait_gone(groups: list[_Group], seconds: float) -> list[_Group]:
    """Wait up to `seconds` for the groups to be gone; the ones still alive then."""
    deadline = time.monotonic() + seconds
    while True:
        groups = [g for g in groups if g.alive()]
        if not groups or time.monotonic() >= deadline:
            return groups
        time.sleep(_POLL_SECONDS)


# --- pidfiles ----------------------------------------------------------------------------------


def start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (/proc/<pid>/stat field 22), to tell a
    process from an unrelated one that later reused its pid."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[-1].split()[19]


def write_pidfile(pidfile: Path, pid: int) -> None:
    """Record a running child's group and start time (its pid is its pgid: its own session)."""
    write_atomic(pidfile, json.dumps({"pgid": pid, "start": start_time(pid)}))


def kill_pidfile_group(pidfile: Path, *, grace: float = GRACE_SECONDS) -> bool:
    """Kill the group a pidfile records, if its leader is still the process that wrote it, and
    remove the pidfile; True if that group was still running."""
    try:
        data = json.loads(pidfile.read_text())
        pgid, start = int(data["pgid"]), data.get("start")
    except (OSError, ValueError, KeyError, TypeError):
        pidfile.unlink(missing_ok=True)
        return False
    alive = start is not None and start_time(pgid) == start
    if alive:
        kill_group(pgid, grace=grace)
    pidfile.unlink(missing_ok=True)
    return alive
