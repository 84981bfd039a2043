"""`agentmesh status --watch`: redrawn in place under a real pseudo-terminal, marking what changed, surviving a
remote that goes away, and ending with exit 0 and the terminal given back; a snapshot per redraw on a pipe; and
what a redraw costs once nothing changed, in git processes."""

from __future__ import annotations

import os
import pty
import re
import select
import signal
import sys
import time

from agentmesh.agent.claim_task import claim_task
from agentmesh.cli.output import Screen
from agentmesh.ops.status import StatusMemo, gather
from tests.support import agent_forge, agent_mesh, demo_body, local_forge_remote, make_store
from tests.support.cli import cli_argv, cli_env, run_cli, start_cli
from tests.support.gitcount import counting_git

WAIT = 90.0  # seconds for one expected redraw: generous, the machine is shared
ANSI = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]")


class Pty:
    """`agentmesh ARGS` on the far side of a new pseudo-terminal (stdlib pty), read as a terminal would."""

    def __init__(self, cwd, *args):
        env = cli_env(cwd, {"TERM": "xterm-256color", "COLUMNS": "200", "LINES": "80"})
        env.pop("NO_COLOR", None)
        argv = cli_argv(*args)
        self.pid, self.fd = pty.fork()  # the child leads a new session, the terminal its controlling one
        if self.pid == 0:  # the child: become agentmesh at once
            try:
                os.chdir(cwd)
                os.execve(sys.executable, argv, env)
            finally:
                os._exit(127)
        self.out = b""

    def until(self, marker: bytes, start: int = 0) -> int:
        """Read until the pattern `marker` shows after offset `start`; the offset just past it."""
        deadline = time.monotonic() + WAIT
        pattern = re.compile(marker)
        while (found := pattern.search(self.out, start)) is None:
            assert time.monotonic() < deadline, f"no {marker!r} in {len(self.out)} bytes: {self.out[-3000:]!r}"
            if not self._read(deadline):
                raise AssertionError(f"the watch ended before {marker!r}: {self.out[-3000:]!r}")
        return found.end()

    def _read(self, deadline: float) -> bool:
        ready, _, _ = select.select([self.fd], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            return True
        try:
            chunk = os.read(self.fd, 65536)
        except OSError:  # EIO: the child closed the terminal
            return False
        self.out += chunk
        return bool(chunk)

    def finish(self) -> int:
        deadline = time.monotonic() + WAIT
        while self._read(deadline):
            assert time.monotonic() < deadline, "the watch did not stop"
        _, status = os.waitpid(self.pid, 0)
        os.close(self.fd)
        return os.waitstatus_to_exitcode(status)


def frame(raw: bytes) -> str:
    return ANSI.sub(b"", raw).decode("utf-8", "replace")


def test_watch_redraws_in_place_marks_changes_retries_and_exits_cleanly(tmp_path):
    remote = local_forge_remote(tmp_path / "remote.git")
    watch = Pty(tmp_path, "--remote", str(remote), "status", "--watch", "1")
    try:
        first = watch.until(b"first look, redrawn every 1s")
        first_end = watch.until(rb"Budget \(", first)
        assert "Claims: no claims" in frame(watch.out[first:first_end])

        # another agent claims an issue: the next redraw shows it as a new row, highlighted
        acquired = run_cli("--remote", str(remote), "--agent", "bob", "claims", "acquire", "5", cwd=tmp_path)
        assert acquired.returncode == 0, acquired.stderr
        changed = watch.until(rb"2 changes since")  # the claim, and bob's row in the performance table
        changed_end = watch.until(rb"Budget \(", changed)
        shown = frame(watch.out[changed:changed_end])
        row = next(line for line in shown.splitlines() if "#5" in line)
        assert row.split("\u2502")[1].strip() == "+" and "bob" in row  # the marker column, then the claim
        assert b"\x1b[1;30;43m" in watch.out[changed:changed_end]  # new cells highlighted (bold black on yellow)
        quiet = watch.until(b"0 changes since", changed_end)  # it stays, unmarked, at the next redraw

        # the remote goes away: the error is shown over the last tables, and retried until it is back
        (tmp_path / "remote.git").rename(tmp_path / "away.git")
        # (the first failure may be another symptom of the same move: a listing cut short)
        failed = watch.until(rb"failed, retrying every 1s: [^\r\n]*no git repository there", quiet)
        failed_end = watch.until(rb"Budget \(", failed)
        assert "#5" in frame(watch.out[failed:failed_end])  # the last good tables stay on screen
        (tmp_path / "away.git").rename(tmp_path / "remote.git")
        watch.until(rb"\d changes? since", failed_end)
        os.write(watch.fd, b"\x03")  # Ctrl-C, through the terminal's line discipline
        code = watch.finish()
    except BaseException:
        os.killpg(watch.pid, signal.SIGKILL)  # the child leads its own session (pty.fork)
        os.waitpid(watch.pid, 0)
        raise
    assert code == 0, watch.out[-2000:]
    assert watch.out.count(Screen.ENTER.encode()) == 1 and watch.out.rstrip(b"\r\n").endswith(Screen.LEAVE.encode())
    assert b"Traceback" not in watch.out and b"interrupted" not in watch.out


def test_watch_on_a_pipe_prints_each_snapshot_and_stops_on_sigterm(tmp_path):
    remote = local_forge_remote(tmp_path / "remote.git")
    proc = start_cli("--remote", str(remote), "status", "--watch", "1", cwd=tmp_path)
    try:
        seen = []
        while len(seen) < 2:
            line = proc.stdout.readline()
            assert line, proc.stderr.read()
            if line.startswith("--- "):
                seen.append(line)
        proc.send_signal(signal.SIGTERM)
        rest, err = proc.communicate(timeout=WAIT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert "first look" in seen[0] and "0 changes since" in seen[1]
    assert proc.returncode == 0 and err == "" and "\x1b" not in "".join(seen) + rest

    refused = run_cli("--remote", str(remote), "status", "--watch", "--json", cwd=tmp_path)
    assert refused.returncode == 1 and "--watch" in refused.stderr


def test_an_unchanged_redraw_costs_one_listing_and_the_forge_calls(tmp_path):
    """The figures of docs/operations.md ("Watching")."""
    remote = local_forge_remote(tmp_path / "remote.git")
    human = agent_forge(agent_mesh(remote, tmp_path / "humans", "human"))
    human.create_issue("one", demo_body("one.txt", "1\n"), ["task"])
    worker = agent_mesh(remote, tmp_path / "hosts", "a")
    claim_task(worker, agent_forge(worker), env={"PATH": os.environ["PATH"]})  # presence, claim, PR, journal
    memo = StatusMemo()

    def redraw(memo):
        mesh = agent_mesh(remote, tmp_path / "hosts", "obs")  # a new Mesh per redraw, as the command does
        return gather(mesh, agent_forge(mesh), time.time(), memo=memo)

    first = redraw(memo)
    with counting_git(tmp_path / "once") as once:
        redraw(None)
    with counting_git(tmp_path / "again") as again:
        same = redraw(memo)
    # one listing of the branches; the local forge's own listings (issues, PRs, the PR's branch, its CI) and its
    # read of the PRs; everything else (presence, claims, journals, reviews) is kept by sha
    assert again.calls() <= 6 and again.commands()["upload-pack"] <= 5, again.argvs()
    # 9 and 6 (15 and 6 while the claims' and presence refs' mirror was a for-each-ref each and the journals'
    # directories an ls-tree; 22 and 6 while each read was a `cat-file` of its own): the memo saves the reads of
    # everything that did not move
    assert once.calls() > again.calls(), (once.calls(), again.calls())
    assert [a.agent for a in same.agents] == ["a"] and same.performance == first.performance
    assert same.claims[0].age_seconds >= first.claims[0].age_seconds  # the same observation clock, going on

    # a changed ref is read again: another agent's claim shows at the next redraw
    make_store(f"file://{remote}", tmp_path / "hosts2", "bob").acquire(9)
    assert [(c.issue, c.holder) for c in redraw(memo).claims] == [(same.claims[0].issue, "a"), (9, "bob")]
