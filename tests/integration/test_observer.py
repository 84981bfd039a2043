"""Reading the mesh needs only --remote: no agent name, nothing written. Writing needs --agent."""

from __future__ import annotations

import pytest

from tests.support import agent_forge, agent_mesh, local_forge_remote, remote_refs
from tests.support.cli import ok_json, run_cli

READS = [
    ["status", "--json"], ["issue", "list", "--json"], ["issue", "show", "1", "--json"], ["pr", "list", "--json"],
    ["claims", "list", "--json"], ["memory", "log", "--json"], ["memory", "lessons", "--json"], ["budget", "--json"],
]


def test_every_read_command_works_without_an_agent_and_writes_nothing(tmp_path):
    remote = local_forge_remote(tmp_path / "remote.git")
    agent_forge(agent_mesh(remote, tmp_path / "hosts", "alice")).create_issue("Read me", "body", ["task"])
    before = remote_refs(remote, "refs/")
    for command in READS:
        ok_json(run_cli("--remote", str(remote), *command, cwd=tmp_path))
    assert ok_json(run_cli("--remote", str(remote), "issue", "show", "1", "--json", cwd=tmp_path))["title"] == "Read me"
    assert remote_refs(remote, "refs/") == before


@pytest.mark.parametrize("command", [["issue", "create", "x"], ["claims", "acquire", "1"], ["halt"], ["claim-task"]])
def test_a_write_without_an_agent_says_to_pass_one(tmp_path, command):
    remote = local_forge_remote(tmp_path / "remote.git")
    before = remote_refs(remote, "refs/")
    result = run_cli("--remote", str(remote), *command, cwd=tmp_path)
    assert result.returncode == 1 and result.stderr.count("\n") == 1, result.stderr
    assert "writes to the mesh as an agent: pass --agent NAME" in result.stderr
    assert remote_refs(remote, "refs/") == before
