"""The process runner with real processes: exit codes, timeouts and stops that take the whole
group down, the log tail, pidfiles. Each test kills only the processes it started."""

import threading
import time
from pathlib import Path

import pytest

from agentmesh.host.process import (
    ProcessOutcome,
    group_alive,
    kill_group,
    kill_pidfile_group,
    log_tail,
    run_process,
    start_process,
    start_time,
    stop_groups,
    write_pidfile,
)


def identity(pid: int) -> tuple[int, str | None]:
    """A pid with its start time, so a reused pid never passes for the process we started."""
    return pid, start_time(pid)


def running(process: tuple[int, str | None]) -> bool:
    pid, start = process
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    fields = stat.rsplit(")", 1)[-1].split()
    return fields[19] == start and fields[0] != "Z"  # a zombie has died, only its parent has not reaped it


def wait_for(path: Path, seconds: float = 10) -> str:
    deadline = time.monotonic() + seconds
    while not (path.exists() and path.read_text().strip()) and time.monotonic() < deadline:
        time.sleep(0.02)
    return path.read_text().strip()


class Family:
    """A child `sh` that starts a grandchild `sleep` and writes its pid; records both identities
    from inside the run (the stop check), and kills their groups if a test fails midway."""

    def __init__(self, tmp_path: Path):
        self.pidfile = tmp_path / "grandchild.pid"
        self.argv = ["sh", "-c", f"sleep 300 & echo $! > {self.pidfile}; sleep 300"]
        self.child: tuple[int, str | None] | None = None
        self.grandchild: tuple[int, str | None] | None = None

    def started(self, pid: int) -> None:
        self.child = identity(pid)

    def observe(self) -> None:
        if self.grandchild is None and self.child is not None:
            self.grandchild = identity(int(wait_for(self.pidfile)))

    def cleanup(self) -> None:
        if self.child is not None and running(self.child):
            kill_group(self.child[0], grace=0)


@pytest.fixture
def family(tmp_path):
    started = Family(tmp_path)
    yield started
    started.cleanup()


def test_exit_codes(tmp_path):
    ok = run_process(["sh", "-c", "exit 0"], cwd=tmp_path)
    failed = run_process(["sh", "-c", "exit 3"], cwd=tmp_path)
    assert (ok.outcome, ok.returncode, ok.ok) == (ProcessOutcome.OK, 0, True)
    assert (failed.outcome, failed.returncode, failed.ok) == (ProcessOutcome.FAILED, 3, False)
    assert failed.duration_s >= 0 and failed.stop_reason is None


def test_an_unavailable_program_is_reported_not_raised(tmp_path):
    log = tmp_path / "run.log"
    result = run_process(["no-such-program-xyz"], cwd=tmp_path, log_path=log)
    assert result.outcome == ProcessOutcome.UNAVAILABLE and result.returncode is None and not result.ok
    assert "no-such-program-xyz" in result.error
    assert log.read_text().startswith("cannot start:")


def test_timeout_kills_the_whole_group(tmp_path, family):
    def stop():
        family.observe()
        return None

    started = time.monotonic()
    result = run_process(family.argv, cwd=tmp_path, timeout=1.0, stop=stop, on_start=family.started,
                         poll_seconds=0.05)
    assert result.outcome == ProcessOutcome.TIMEOUT and result.returncode is not None and result.returncode < 0
    assert time.monotonic() - started < 10  # SIGTERM was enough: no wait for the whole grace
    assert family.child is not None and family.grandchild is not None
    assert not running(family.child) and not running(family.grandchild)


def test_a_stop_check_stops_it_with_its_reason(tmp_path, family):
    calls = []

    def stop():
        family.observe()
        calls.append(1)
        return "claim lost" if len(calls) > 3 else None

    result = run_process(family.argv, cwd=tmp_path, stop=stop, on_start=family.started, poll_seconds=0.05)
    assert (result.outcome, result.stop_reason) == (ProcessOutcome.STOPPED, "claim lost")
    assert len(calls) == 4
    assert not running(family.child) and not running(family.grandchild)


def test_an_event_stops_it(tmp_path):
    stop = threading.Event()
    timer = threading.Timer(0.3, stop.set)
    timer.start()
    try:
        result = run_process(["sleep", "300"], cwd=tmp_path, stop=stop, poll_seconds=0.05, timeout=60)
    finally:
        timer.cancel()
    assert (result.outcome, result.stop_reason) == (ProcessOutcome.STOPPED, "stop requested")
    assert result.duration_s < 30


def test_sigkill_after_the_grace_when_sigterm_is_ignored(tmp_path):
    started = time.monotonic()
    result = run_process(["sh", "-c", "trap '' TERM; sleep 300"], cwd=tmp_path, timeout=1.0, grace=0.5)
    assert result.outcome == ProcessOutcome.TIMEOUT and result.returncode == -9
    assert time.monotonic() - started < 10


def test_children_left_after_an_exit_are_killed_unless_asked_not_to(tmp_path):
    argv = ["sh", "-c", f"sleep 300 & echo $! > {tmp_path / 'left.pid'}"]
    assert run_process(argv, cwd=tmp_path).ok
    reaped = identity(int(wait_for(tmp_path / "left.pid")))
    assert not running(reaped)

    (tmp_path / "left.pid").unlink()
    leader: list[int] = []
    kept = run_process(argv, cwd=tmp_path, reap_group=False, on_start=leader.append)
    leftover = identity(int(wait_for(tmp_path / "left.pid")))
    try:
        assert kept.ok and running(leftover)
    finally:
        kill_group(leader[0], grace=0)  # its group: the sleep we started
    assert not running(leftover)


def test_the_log_gets_the_output_and_its_tail(tmp_path):
    log = tmp_path / "run.log"
    log.write_text("header\n")
    result = run_process(["sh", "-c", "for i in $(seq 1 500); do echo line $i; done; echo oops >&2; exit 1"],
                         cwd=tmp_path, log_path=log)
    assert result.outcome == ProcessOutcome.FAILED
    text = log.read_text()
    assert text.startswith("header\nline 1\n") and text.endswith("line 500\noops\n")  # appended, stderr too
    assert result.tail(20) == text[-20:] == log_tail(log, 20)
    assert result.tail(10**6) == text
    assert log_tail(tmp_path / "missing.log", 20) == ""


def test_a_new_log_is_private(tmp_path):
    log = tmp_path / "new.log"
    run_process(["echo", "hi"], cwd=tmp_path, log_path=log)
    assert log.read_text() == "hi\n" and log.stat().st_mode & 0o777 == 0o600


def test_input_and_captured_output(tmp_path):
    result = run_process(["sh", "-c", "cat; echo err >&2"], cwd=tmp_path, input=b"hello\n", capture=True)
    assert result.ok and (result.stdout, result.stderr) == (b"hello\n", b"err\n")
    assert result.tail(4) == "err\n"


def test_captured_output_survives_a_timeout(tmp_path):
    result = run_process(["sh", "-c", "echo before; sleep 300"], cwd=tmp_path, capture=True, timeout=0.5, grace=0)
    assert result.outcome == ProcessOutcome.TIMEOUT and result.stdout == b"before\n"


def test_the_environment_is_exactly_the_one_given(tmp_path):
    result = run_process(["/usr/bin/env"], cwd=tmp_path, env={"ONLY": "this"}, capture=True)
    assert result.stdout == b"ONLY=this\n"


def test_stop_groups_shares_one_grace_between_groups(tmp_path):
    procs = [start_process(["sh", "-c", f"trap '' TERM; echo $$ > ready-{i}; sleep 300"], cwd=tmp_path)
             for i in range(3)]
    try:
        for i in range(3):
            wait_for(tmp_path / f"ready-{i}")  # SIGTERM is ignored from here on
        started = time.monotonic()
        stop_groups(procs, grace=1.0)
        assert time.monotonic() - started < 5  # one grace for all three, not one each
        assert [p.returncode for p in procs] == [-9, -9, -9]
    finally:
        stop_groups(procs, grace=0)


def test_a_pidfile_kills_its_group_but_never_a_reused_pid(tmp_path):
    proc = start_process(["sh", "-c", "sleep 300 & sleep 300"], cwd=tmp_path)
    try:
        pidfile = tmp_path / "run.json"
        write_pidfile(pidfile, proc.pid)
        stale = tmp_path / "stale.json"
        stale.write_text(pidfile.read_text().replace('"start": "', '"start": "1'))  # another process's start time
        assert kill_pidfile_group(stale) is False and not stale.exists()
        assert proc.poll() is None  # untouched

        # as after a crash, the leader's parent is not the killer: something else reaps it
        reaper = threading.Thread(target=proc.wait)
        reaper.start()
        assert kill_pidfile_group(pidfile, grace=5) is True and not pidfile.exists()
        reaper.join(timeout=10)
        assert proc.returncode == -15
        (tmp_path / "garbage.json").write_text("{not json")
        assert kill_pidfile_group(tmp_path / "garbage.json") is False
    finally:
        kill_group(proc, grace=0)


def test_a_group_of_zombies_is_gone(tmp_path):
    """A member that exited but is not reaped yet (here: a leader we don't wait for; in a container,
    a process reparented to a PID 1 that reaps slowly) runs nothing: stopping its group must not wait
    for the reaper. This cost every bwrap run about 2 s on this machine."""
    import subprocess

    proc = subprocess.Popen(["true"], start_new_session=True)
    wait_for_state(proc.pid, "Z")
    assert group_alive(proc.pid) is False
    live = subprocess.Popen(["sleep", "30"], start_new_session=True)
    try:
        assert group_alive(live.pid) is True
    finally:
        live.kill()
        live.wait()
        proc.wait()


def wait_for_state(pid: int, state: str) -> None:
    deadline = time.monotonic() + 10
    while Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0] != state:
        assert time.monotonic() < deadline, f"pid {pid} never reached state {state}"
        time.sleep(0.01)
