"""`agentmesh claim-task`, `halt`, `resume` and scripts/claim-task.py as a user runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.support import agent_forge, agent_mesh, demo_body, git, local_forge_remote

ROOT = Path(__file__).resolve().parents[2]


def run(tmp_path: Path, *args: str, script: bool = False) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENTMESH_")}
    env.update(XDG_STATE_HOME=str(tmp_path / "state"), AGENTMESH_CRASH_DIR=str(tmp_path))
    argv = [sys.executable, str(ROOT / "scripts" / "claim-task.py")] if script else [sys.executable, "-m", "agentmesh"]
    return subprocess.run([*argv, *args], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)


def test_halt_resume_and_claim_task_from_the_command_line(tmp_path):
    remote = local_forge_remote(tmp_path / "remote.git")
    agent_forge(agent_mesh(remote, tmp_path / "hosts", "human")).create_issue(
        "Note", demo_body("note.md", "hi\n"), ["task"])
    who = ["--remote", str(remote), "--agent", "alice"]
    halted = run(tmp_path, *who, "halt", "--reason", "maintenance window", "--json")
    assert halted.returncode == 0, halted.stderr
    assert json.loads(halted.stdout)["where"] == ".agentmesh/HALT on main"
    tick = run(tmp_path, *who, "claim-task")
    assert tick.returncode == 0 and "halted" in tick.stdout and "maintenance window" in tick.stdout
    assert run(tmp_path, *who, "halt", "--reason", "again").returncode == 0  # idempotent
    assert "maintenance window" in git("show", "main:.agentmesh/HALT", cwd=remote)
    resumed = run(tmp_path, *who, "resume")
    assert resumed.returncode == 0 and resumed.stdout.strip() == "resumed"
    assert run(tmp_path, *who, "resume").stdout.strip().startswith("was not halted")
    report = run(tmp_path, "--json", *who, script=True)  # global options after command options
    assert report.returncode == 0, report.stderr
    data = json.loads(report.stdout)
    assert data["status"] == "worked"
    assert [e["event"] for e in data["events"]] == ["claimed", "executed", "pushed", "pr-opened"]


def test_claim_task_needs_a_remote_with_a_default_branch(tmp_path):
    git("init", "--bare", "--quiet", str(tmp_path / "empty.git"))
    result = run(tmp_path, "--remote", str(tmp_path / "empty.git"), "--agent", "alice", "claim-task")
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "default branch" in result.stderr
