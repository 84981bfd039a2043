"""An observer that just started does not show a stopped agent as `alive 0s` (issue 15, item 6)."""

from __future__ import annotations

import json
import time

from tests.support import git, local_forge_remote
from tests.support.cli import run_cli

REF = "refs/heads/agentmesh/agents/alice"


def _backdate(remote, ref: str, seconds: int) -> None:
    """Rewrite the presence commit as the same commit made `seconds` ago: an agent that stopped back then."""
    sha = git("rev-parse", ref, cwd=remote)
    stamp = f"@{int(time.time()) - seconds} +0000"
    env = {"GIT_COMMITTER_DATE": stamp, "GIT_AUTHOR_DATE": stamp}
    message = git("log", "-1", "--format=%B", sha, cwd=remote)
    tree = git("rev-parse", f"{sha}^{{tree}}", cwd=remote)
    old = git("commit-tree", tree, "-m", message, cwd=remote, env=env)
    git("update-ref", ref, old, sha, cwd=remote)


def test_a_new_observer_sees_a_long_stopped_agent_as_dead_by_its_clock(tmp_path):
    remote = local_forge_remote(tmp_path / "remote.git")
    assert run_cli("--remote", str(remote), "--agent", "alice", "claim-task", cwd=tmp_path).returncode == 0
    _backdate(remote, REF, 2 * 3600)  # more than lease + grace (1800 + 300 s) ago
    fresh = tmp_path / "observer"
    fresh.mkdir()
    status = run_cli("--remote", str(remote), "status", "--json", cwd=fresh)
    assert status.returncode == 0, status.stderr
    [alice] = json.loads(status.stdout)["agents"]
    assert alice["alive"] is False and alice["age_seconds"] < 60 and alice["committed_seconds"] >= 7200
    text = run_cli("--remote", str(remote), "status", cwd=fresh).stdout
    lines = text.splitlines()
    header = next(line for line in lines if line.startswith("agent "))  # the Agents table comes first
    row = next(line for line in lines if line.startswith("alice "))
    column = header.index("heartbeat (its clock)")
    assert row.split()[1] == "DEAD" and row[column:].split()[0] == "2h00m"  # its clock, in a column of its own
    assert row[header.index("seen"):].split()[0].endswith("s")  # this host's observation: seconds


def test_a_live_agent_stays_alive_for_a_new_observer(tmp_path):
    remote = local_forge_remote(tmp_path / "remote.git")
    assert run_cli("--remote", str(remote), "--agent", "alice", "claim-task", cwd=tmp_path).returncode == 0
    fresh = tmp_path / "observer"
    fresh.mkdir()
    [alice] = json.loads(run_cli("--remote", str(remote), "status", "--json", cwd=fresh).stdout)["agents"]
    assert alice["alive"] is True and alice["committed_seconds"] < 120
