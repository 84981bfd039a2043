"""Issue 15, item 10: preemption. An agent with one seat works a slow issue; a `priority:critical`
issue is filed; at the next heartbeat the slow job is stopped, its unfinished work pushed to its
branch as a checkpoint in the push that releases its claim, and the seat claims the critical issue.
No attempt is counted: the slow issue is claimed again at once, as attempt 1.

Real agent processes on a real local-forge remote; verdicts are read from the bare remote with git
plumbing. Nothing is timed: the executor writes its partial change, touches `started-<issue>` and
waits for `go`, which the test creates only once the critical issue's job has started, so only
the preemption can have ended the slow job.
"""

from __future__ import annotations

import json
import sys

import yaml

from tests.support import (
    agent_forge,
    agent_mesh,
    demo_body,
    git,
    journal_entries,
    local_forge_remote,
    remote_refs,
    wait_for,
)
from tests.support.cli import run_cli, start_cli, write_host_config

# runs, go, worktree, issue: a partial change at once (the checkpoint's), the finished one after `go`
EXECUTOR = """
import pathlib, sys, time
runs, go, worktree, issue = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2]), pathlib.Path(sys.argv[3]), sys.argv[4]
(worktree / f"work-{issue}.txt").write_text("partial\\n")
(runs / f"started-{issue}").touch()
while not go.exists():
    time.sleep(0.05)
(worktree / f"work-{issue}.txt").write_text("done\\n")
"""
HEARTBEAT = 10  # the shortest renew_seconds a mesh may set: preemption is decided at a heartbeat


def meta(remote, number: int) -> dict:
    return json.loads(git("cat-file", "blob", f"refs/agentmesh/items/{number}:meta.json", cwd=remote))


def comments(remote, number: int) -> list[str]:
    ref = f"refs/agentmesh/items/{number}"
    names = git("ls-tree", "--name-only", f"{ref}:comments", cwd=remote).split()
    return [json.loads(git("cat-file", "blob", f"{ref}:comments/{n}", cwd=remote))["body"] for n in names]


def journaled(remote, event: str, issue: int) -> bool:
    return any(e.event == event and e.issue == issue for e in journal_entries(remote))


def test_a_critical_issue_preempts_the_running_job(tmp_path):
    lease = {"seconds": 60, "renew_seconds": HEARTBEAT, "grace_seconds": 0}
    remote = local_forge_remote(tmp_path / "remote.git", yaml.safe_dump({"lease": lease}))
    human = agent_forge(agent_mesh(remote, tmp_path / "humans", "human"))
    runs, go = tmp_path / "runs", tmp_path / "go"
    runs.mkdir()
    command = [sys.executable, "-c", EXECUTOR, str(runs), str(go), "{worktree}", "{issue}"]
    config = write_host_config(tmp_path, remote, "ada", {"kind": "command", "sandbox": "off",
                                                         "timeout_seconds": 600, "command": command})
    slow = human.create_issue("Slow task", demo_body("a.txt", "a\n"), ["task"]).number
    proc = start_cli("--config", str(config), "claim-task", "--json", cwd=tmp_path)
    try:
        wait_for((runs / f"started-{slow}").exists, "the slow job to start")
        critical = human.create_issue("Urgent fix", demo_body("b.txt", "b\n"), ["task", "priority:critical"]).number
        wait_for((runs / f"started-{critical}").exists, "the critical issue's job to start in the freed seat")

        # the slow job made way: its claim is gone, its partial work is on its branch, signed, as a checkpoint
        claims = remote_refs(remote, "refs/heads/claim/")
        assert list(claims) == [f"refs/heads/claim/{critical}"]
        [branch] = [ref for ref in remote_refs(remote, "refs/heads/ada/") if ref.startswith(f"refs/heads/ada/{slow}-")]
        assert git("cat-file", "blob", f"{branch}:work-{slow}.txt", cwd=remote) == "partial"
        message = git("log", "-1", "--format=%B", branch, cwd=remote)
        assert "Agentmesh-Checkpoint: preempted" in message
        assert git("cat-file", "commit", branch, cwd=remote).count("gpgsig") == 1
        labels = set(meta(remote, slow)["labels"])
        assert not {"agentmesh:failed", "agentmesh:working", "agentmesh:claimed"} & labels  # no attempt counted
        assert any("No attempt is counted" in body for body in comments(remote, slow))

        go.touch()
        out, err = proc.communicate(timeout=120)
    finally:
        go.touch()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    report = json.loads(out)
    said = [(e["event"], e.get("issue")) for e in report["events"]]
    assert ("preempted", slow) in said and ("pr-opened", critical) in said, said
    assert ("failed", slow) not in said
    assert journaled(remote, "preempted", slow)

    # the slow issue is claimable again at once, as the same attempt (its branch: no -a2)
    again = run_cli("--config", str(config), "claim-task", "--json", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    said = [(e["event"], e.get("issue"), e.get("detail", "")) for e in json.loads(again.stdout)["events"]]
    assert any(event == "claimed" and issue == slow and detail.endswith("attempt 1")
               for event, issue, detail in said), said
    assert ("pr-opened", slow) in [(event, issue) for event, issue, _ in said], said
    assert git("cat-file", "blob", f"{branch}:work-{slow}.txt", cwd=remote) == "done"
