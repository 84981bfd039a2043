"""`agentmesh claim-task`, `halt`, `resume` and scripts/claim-task.py as a user runs them."""

from __future__ import annotations

import json

from tests.support import agent_forge, agent_mesh, demo_body, git, local_forge_remote
from tests.support.cli import run_cli


def test_halt_resume_and_claim_task_from_the_command_line(tmp_path):
    remote = local_forge_remote(tmp_path / "remote.git")
    agent_forge(agent_mesh(remote, tmp_path / "hosts", "human")).create_issue(
        "Note", demo_body("note.md", "hi\n"), ["task"])
    who = ["--remote", str(remote), "--agent", "alice"]
    halted = run_cli(*who, "halt", "--reason", "maintenance window", "--json", cwd=tmp_path)
    assert halted.returncode == 0, halted.stderr
    assert json.loads(halted.stdout)["where"] == "branch agentmesh/halt"
    tick = run_cli(*who, "claim-task", cwd=tmp_path)
    assert tick.returncode == 0 and "halted" in tick.stdout and "maintenance window" in tick.stdout
    assert run_cli(*who, "halt", "--reason", "again", cwd=tmp_path).returncode == 0  # updates the reason
    assert "again" in run_cli(*who, "claim-task", cwd=tmp_path).stdout
    assert git("log", "--format=%s", "main", cwd=remote) == "Initial commit"
    resumed = run_cli(*who, "resume", cwd=tmp_path)
    assert resumed.returncode == 0 and resumed.stdout.strip() == "resumed (was: again)"
    assert run_cli(*who, "resume", cwd=tmp_path).stdout.strip().startswith("was not halted")
    report = run_cli("--json", *who, script="claim-task", cwd=tmp_path)  # global options after command options
    assert report.returncode == 0, report.stderr
    data = json.loads(report.stdout)
    assert data["status"] == "worked"
    assert [e["event"] for e in data["events"]] == ["claimed", "executed", "pushed", "pr-opened"]


def test_claim_task_needs_a_remote_with_a_default_branch(tmp_path):
    git("init", "--bare", "--quiet", str(tmp_path / "empty.git"))
    result = run_cli("--remote", str(tmp_path / "empty.git"), "--agent", "alice", "claim-task", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "default branch" in result.stderr
