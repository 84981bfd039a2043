"""Issue 15, items 1, 2 and 8: cancelling an issue or halting the mesh stops a run already in flight,
and nothing it did goes public. Real agent processes on a real local-forge remote; every verdict is
read from the bare remote with git plumbing.

The interleaving is forced, never timed: the executor touches `started` and then waits for `go`,
which the test creates only after it has closed the issue or halted the mesh (the last gate before
the push must refuse), or never (only the heartbeat's watch can end the run). A positive control
shows an uncancelled run still opens its PR, so no test passes by the mesh merely doing nothing.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.support import (
    agent_forge,
    agent_mesh,
    demo_body,
    git,
    journal_entries,
    local_forge_remote,
    remote_items,
    remote_refs,
    wait_for,
)
from tests.support.cli import run_cli, start_cli, write_host_config

# started, go, done, worktree: the change is written only once `go` exists
EXECUTOR = """
import pathlib, sys, time
started, go, done, worktree = map(pathlib.Path, sys.argv[1:5])
started.touch()
while not go.exists():
    time.sleep(0.05)
(worktree / "pkg").mkdir(exist_ok=True)
(worktree / "pkg" / "mod.py").write_text("VALUE = 1\\n")
done.touch()
"""
WATCH_SECONDS = 10  # the shortest renew_seconds a mesh may set: the watch reads at each heartbeat
ENDS_WITHIN = 60  # seconds a watched run may take to stop; it never stops without the watch


class Mesh:
    def __init__(self, tmp: Path, *, renew_seconds: int = 300):
        self.tmp = tmp
        lease = {"seconds": max(60, 3 * renew_seconds), "renew_seconds": renew_seconds, "grace_seconds": 0}
        self.remote = local_forge_remote(tmp / "remote.git", yaml.safe_dump({"lease": lease}))
        self.main = git("rev-parse", "refs/heads/main", cwd=self.remote)
        self.human = agent_forge(agent_mesh(self.remote, tmp / "humans", "human"))
        self.started, self.go, self.done = tmp / "started", tmp / "go", tmp / "done"
        command = [sys.executable, "-c", EXECUTOR, str(self.started), str(self.go), str(self.done), "{worktree}"]
        self.config = write_host_config(tmp, self.remote, "ada", {"kind": "command", "sandbox": "off",
                                                                   "timeout_seconds": 600, "command": command})
        self.operator = write_host_config(tmp, self.remote, "ops")
        self.issue = self.human.create_issue("Add a module", demo_body("pkg/mod.py", "VALUE = 1\n"),
                                             ["task"]).number
        self.proc: subprocess.Popen | None = None

    def cli(self, *args: str, config: Path | None = None) -> subprocess.CompletedProcess:
        return run_cli("--config", str(config or self.operator), *args, cwd=self.tmp)

    def start(self) -> None:
        self.proc = start_cli("--config", str(self.config), "claim-task", "--json", cwd=self.tmp)
        wait_for(self.started.exists, "the executor to start")

    def finish(self, timeout: float = ENDS_WITHIN) -> dict:
        assert self.proc is not None
        out, err = self.proc.communicate(timeout=timeout)
        assert self.proc.returncode == 0, err
        return json.loads(out)

    def stop(self) -> None:
        """Let a run the fix did not stop go on, so nothing outlives the test."""
        self.go.touch()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    # --- the remote, by plumbing ----------------------------------------------------------------

    def pulls(self) -> list[dict]:
        return [meta for meta in remote_items(self.remote).values() if meta["kind"] == "pull"]

    def issue_state(self) -> str:
        meta = git("cat-file", "blob", f"refs/agentmesh/items/{self.issue}:meta.json", cwd=self.remote)
        return json.loads(meta)["state"]

    def work_branches(self) -> list[str]:
        return list(remote_refs(self.remote, "refs/heads/ada/"))

    def claims(self) -> list[str]:
        return list(remote_refs(self.remote, "refs/heads/claim/"))

    def nothing_published(self) -> None:
        assert self.work_branches() == []
        assert self.pulls() == []
        assert self.claims() == []
        assert git("rev-parse", "refs/heads/main", cwd=self.remote) == self.main


@pytest.fixture
def mesh(tmp_path):
    made: list[Mesh] = []

    def make(**kw) -> Mesh:
        made.append(Mesh(tmp_path, **kw))
        return made[-1]

    yield make
    for m in made:
        m.stop()


def events(report: dict) -> list[str]:
    return [e["event"] for e in report["events"]]


def test_an_uncancelled_run_opens_its_pr(mesh):
    """The positive control: the same executor, released at once, gets its work to a PR."""
    m = mesh()
    m.start()
    m.go.touch()
    report = m.finish()
    assert "pr-opened" in events(report), report
    assert len(m.work_branches()) == 1 and len(m.pulls()) == 1 and len(m.claims()) == 1


def test_cancel_stops_a_running_executor_at_its_heartbeat(mesh):
    """`issue cancel` while the executor runs: the holder's next heartbeat stops it (`go` is never
    created, so only the watch ends the run), pushes nothing, and releases the claim."""
    m = mesh(renew_seconds=WATCH_SECONDS)
    m.start()
    done = m.cli("issue", "cancel", str(m.issue), "--reason", "not wanted any more")
    assert done.returncode == 0, done.stderr
    report = m.finish()
    assert "cancelled" in events(report), report
    assert not m.done.exists()  # the executor was stopped before it wrote anything
    m.nothing_published()
    assert m.issue_state() == "closed"


def test_closing_the_issue_before_the_push_publishes_nothing(mesh):
    """The executor finishes after the issue was closed, before any heartbeat came: the last gate
    before the push reads the issue again."""
    m = mesh()  # renew_seconds 300: no heartbeat during this run
    m.start()
    m.human.close_issue(m.issue)
    m.go.touch()
    report = m.finish()
    assert m.done.exists()  # the executor did its work ...
    assert "cancelled" in events(report), report
    m.nothing_published()  # ... and none of it went public


def test_halt_stops_a_running_executor_at_its_heartbeat(mesh):
    """`agentmesh halt` (mesh-wide, not --local) while the executor runs stops it at a heartbeat."""
    m = mesh(renew_seconds=WATCH_SECONDS)
    m.start()
    halted = m.cli("halt", "--reason", "incident")
    assert halted.returncode == 0, halted.stderr
    report = m.finish()
    assert "halt-stopped" in events(report), report
    assert not m.done.exists()
    m.nothing_published()
    assert m.issue_state() == "open"  # a halt parks the work; the issue waits for resume


def test_halt_before_the_push_publishes_nothing(mesh):
    m = mesh()
    m.start()
    halted = m.cli("halt", "--reason", "incident")
    assert halted.returncode == 0, halted.stderr
    m.go.touch()
    report = m.finish()
    assert m.done.exists()
    assert "halt-stopped" in events(report), report
    m.nothing_published()


# --- an issue whose work is in review, and requeue ------------------------------------------------


class Review(Mesh):
    """bob, on the demo executor, has an open PR for the issue."""

    def __init__(self, tmp: Path, **kw):
        super().__init__(tmp, **kw)
        self.bob = write_host_config(tmp, self.remote, "bob")
        opened = self.cli("claim-task", config=self.bob)
        assert opened.returncode == 0, opened.stderr
        [self.pr] = self.pulls()
        assert self.pr["state"] == "open" and self.bob_branches() and self.claims()

    def bob_branches(self) -> list[str]:
        return list(remote_refs(self.remote, "refs/heads/bob/"))

    def pull_state(self) -> str:
        [pull] = self.pulls()
        return pull["state"]

    def comments(self, number: int) -> list[dict]:
        ref = f"refs/agentmesh/items/{number}"
        names = git("ls-tree", "--name-only", f"{ref}:comments", cwd=self.remote).split()
        return [json.loads(git("cat-file", "blob", f"{ref}:comments/{name}", cwd=self.remote)) for name in names]

    def journaled(self, event: str) -> bool:
        return any(e.event == event and e.issue == self.issue for e in journal_entries(self.remote))


def test_cancel_closes_the_open_pr_and_removes_branch_and_claim(tmp_path):
    m = Review(tmp_path)
    done = m.cli("issue", "cancel", str(m.issue), "--reason", "wrong approach", "--json")
    assert done.returncode == 0, done.stderr
    assert m.issue_state() == "closed"
    assert m.pull_state() == "closed"
    assert m.bob_branches() == [] and m.claims() == []
    assert git("rev-parse", "refs/heads/main", cwd=m.remote) == m.main
    assert m.journaled("cancelled")
    said = len(m.comments(m.issue)) + len(m.comments(m.pr["number"]))
    again = m.cli("issue", "cancel", str(m.issue))  # idempotent: nothing more to do, nothing said twice
    assert again.returncode == 0, again.stderr
    assert len(m.comments(m.issue)) + len(m.comments(m.pr["number"])) == said
    bob = m.cli("monitor-prs", config=m.bob)  # and the PR's agent finds nothing left to merge
    assert bob.returncode == 0, bob.stderr
    assert git("rev-parse", "refs/heads/main", cwd=m.remote) == m.main


def test_monitor_prs_withdraws_the_pr_of_an_issue_closed_by_hand(tmp_path):
    """Closed in the forge, not through `issue cancel`: the PR's agent closes its PR and removes its
    branch and claim at its next monitor-prs, and merges nothing."""
    m = Review(tmp_path)
    m.human.close_issue(m.issue)
    bob = m.cli("monitor-prs", config=m.bob)
    assert bob.returncode == 0, bob.stderr
    assert m.pull_state() == "closed"
    assert m.bob_branches() == [] and m.claims() == []
    assert git("rev-parse", "refs/heads/main", cwd=m.remote) == m.main


FAILING = {"kind": "command", "sandbox": "off", "command": [sys.executable, "-c", "raise SystemExit(1)"]}


def test_requeue_clears_failed_attempts_and_dead_letter(tmp_path):
    """Dead-lettered after two failed attempts; requeued, the issue is claimed again, and a failure
    after the requeue counts as the first (failed, not dead-letter) before bob's demo run does it."""
    remote = local_forge_remote(tmp_path / "remote.git", yaml.safe_dump({"max_attempts": 2}))
    human = agent_forge(agent_mesh(remote, tmp_path / "humans", "human"))
    number = human.create_issue("Add a module", demo_body("pkg/mod.py", "VALUE = 1\n"), ["task"]).number
    failing = write_host_config(tmp_path, remote, "ada", FAILING)
    ops = write_host_config(tmp_path, remote, "ops")
    bob = write_host_config(tmp_path, remote, "bob")

    def cli(config: Path, *args: str) -> subprocess.CompletedProcess:
        done = run_cli("--config", str(config), *args, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        return done

    def labels() -> set[str]:
        meta = git("cat-file", "blob", f"refs/agentmesh/items/{number}:meta.json", cwd=remote)
        return set(json.loads(meta)["labels"])

    cli(failing, "claim-task")
    cli(failing, "claim-task")
    assert "agentmesh:dead-letter" in labels()
    cli(failing, "claim-task")  # dead-lettered: not claimed again
    assert "agentmesh:dead-letter" in labels()
    cli(ops, "issue", "requeue", str(number))
    assert not {"agentmesh:dead-letter", "agentmesh:failed"} & labels()
    said = git("ls-tree", "--name-only", f"refs/agentmesh/items/{number}:comments", cwd=remote).split()
    cli(ops, "issue", "requeue", str(number))  # idempotent: nothing said twice
    assert git("ls-tree", "--name-only", f"refs/agentmesh/items/{number}:comments", cwd=remote).split() == said
    cli(failing, "claim-task")  # claimed again; its failure is the first since the requeue
    assert "agentmesh:failed" in labels() and "agentmesh:dead-letter" not in labels()
    cli(bob, "claim-task")
    assert len(list(remote_refs(remote, "refs/heads/bob/"))) == 1  # still in the queue, and worked
