"""With --json, every failure is also one JSON object on stdout: {"error": ..., "exit_code": ...}."""

from __future__ import annotations

import json

import pytest

from tests.support import local_forge_remote
from tests.support.cli import run_cli


def _json_error(result, code: int) -> dict:
    assert result.returncode == code, result.stderr
    assert result.stderr.startswith("agentmesh: ") and result.stderr.count("\n") == 1  # the line a human reads
    data = json.loads(result.stdout)
    assert set(data) == {"error", "exit_code"} and data["exit_code"] == code
    return data


@pytest.mark.parametrize("command", [["claim-task"], ["monitor-prs"], ["status"], ["issue", "list"], ["halt"]])
def test_a_config_error_is_a_json_object_with_json(tmp_path, command):
    (tmp_path / "agentmesh.yaml").write_text("agent: a\nremote: /nowhere.git\nexecutor: {kind: magic}\n")
    data = _json_error(run_cli("--config", "agentmesh.yaml", *command, "--json", cwd=tmp_path), 1)
    assert "executor.kind: must be one of" in data["error"]
    plain = run_cli("--config", "agentmesh.yaml", *command, cwd=tmp_path)
    assert plain.returncode == 1 and plain.stdout == ""  # without --json: only the line on stderr


def test_a_temporary_failure_and_a_usage_error_are_json_objects_too(tmp_path):
    remote = local_forge_remote(tmp_path / "remote.git")
    who = ["--remote", str(remote), "--agent", "alice"]
    assert "#7 not found" in _json_error(run_cli(*who, "issue", "show", "7", "--json", cwd=tmp_path), 1)["error"]
    remote.rename(tmp_path / "moved.git")
    _json_error(run_cli(*who, "issue", "list", "--json", cwd=tmp_path), 75)
    _json_error(run_cli(*who, "claim-task", "--json", "--bogus", cwd=tmp_path), 1)
