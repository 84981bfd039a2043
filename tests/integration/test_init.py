"""`agentmesh init` as a user runs it: files that load with the project's own loaders."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from agentmesh.agent.executor import PRESETS, resolve
from agentmesh.host.config import MeshPolicy, load_host_config, parse_mesh_policy
from tests.support.cli import run_cli


def load(path: Path):
    return load_host_config(path, env={})


def one_line_error(result: subprocess.CompletedProcess, text: str) -> None:
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stderr.count("\n") == 1 and text in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


def test_local_host_config_and_starter_mesh_policy(tmp_path):
    result = run_cli("init", "--remote", "/srv/mesh.git", "--agent", "host1-a", "--mesh", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "wrote agentmesh.yaml" in result.stdout and "doctor" in result.stdout
    host = load(tmp_path / "agentmesh.yaml")
    assert (host.agent, host.remote, host.forge.kind, host.executor.kind) == (
        "host1-a", "/srv/mesh.git", "local", "demo")
    assert host.executor.sandbox == "auto" and host.state_dir is None
    text = (tmp_path / ".agentmesh" / "mesh.yaml").read_text()
    policy = parse_mesh_policy(text)
    assert policy.rework.max == 1 and policy.review.ring == [] and policy.review.required_checks == []
    assert [(g.name, g.builtin) for g in policy.gates] == [("syntax", "syntax")]  # a new mesh parses what changes
    assert "gates:\n  - {builtin: syntax}\n" in text and "before its PR is opened" not in text
    assert ".agentmesh/**" in policy.protected_paths and policy.merge.auto is False
    for section in ("ring:", "labels:", "gates:", "required_checks:", "protected_paths:", "merge:", "rework:",
                    "budgets:"):
        assert section in text
    assert text.count("#") > 10  # a commented starter, not a bare dump


def test_init_mesh_and_forge_init_write_one_starter_policy_the_defaults(tmp_path):
    """Both starters come from the policy model: identical files that parse back to `MeshPolicy()`."""
    assert run_cli("init", "--remote", "/srv/mesh.git", "--agent", "host1-a", "--mesh", cwd=tmp_path).returncode == 0
    written = (tmp_path / ".agentmesh" / "mesh.yaml").read_text()
    created = run_cli("forge", "init", str(tmp_path / "mesh.git"), cwd=tmp_path)
    assert created.returncode == 0, created.stderr
    committed = subprocess.run(["git", "--git-dir", str(tmp_path / "mesh.git"), "cat-file", "blob",
                                "main:.agentmesh/mesh.yaml"], capture_output=True, text=True, check=True).stdout
    assert committed == written
    assert parse_mesh_policy(written) == MeshPolicy()


def test_never_overwrites_without_force_and_writes_all_or_nothing(tmp_path):
    existing = tmp_path / ".agentmesh" / "mesh.yaml"
    existing.parent.mkdir()
    existing.write_text("version: 1\n")
    result = run_cli("init", "--remote", "/srv/mesh.git", "--agent", "host1-a", "--mesh", cwd=tmp_path)
    one_line_error(result, ".agentmesh/mesh.yaml: already exists; pass --force")
    assert not (tmp_path / "agentmesh.yaml").exists() and existing.read_text() == "version: 1\n"
    assert run_cli("init", "--remote", "/srv/mesh.git", "--agent", "host1-a", cwd=tmp_path).returncode == 0
    again = run_cli("init", "--remote", "/srv/other.git", "--agent", "host1-a", cwd=tmp_path)
    one_line_error(again, "agentmesh.yaml: already exists")
    assert load(tmp_path / "agentmesh.yaml").remote == "/srv/mesh.git"
    forced = run_cli("init", "--remote", "/srv/other.git", "--agent", "host1-a", "--mesh", "--force", cwd=tmp_path)
    assert forced.returncode == 0, forced.stderr
    assert load(tmp_path / "agentmesh.yaml").remote == "/srv/other.git"
    assert parse_mesh_policy(existing.read_text()).rework.max == 1


def test_gitea_and_github(tmp_path):
    result = run_cli("init", "--forge", "gitea", "--url", "https://gitea.example.com/", "--repo", "team/app",
                     "--agent", "host1-a", "--token-env", "GITEA_TOKEN", "--executor", "claude-code",
                     "--path", "conf/gitea.yaml", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "export GITEA_TOKEN=" in result.stdout
    host = load(tmp_path / "conf" / "gitea.yaml")
    assert (host.forge.kind, host.forge.url, host.forge.repo, host.forge.token_env) == (
        "gitea", "https://gitea.example.com/", "team/app", "GITEA_TOKEN")
    assert host.remote == "https://gitea.example.com/team/app.git"
    assert host.executor.allow_network and host.executor.env_passthrough == ["ANTHROPIC_API_KEY"]
    result = run_cli("init", "--forge", "github", "--repo", "team/app", "--agent", "host1-b", "--path", "gh.yaml",
                     cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    host = load(tmp_path / "gh.yaml")
    assert (host.forge.kind, host.forge.url, host.remote) == ("github", None, "https://github.com/team/app.git")


@pytest.mark.parametrize("args, message", [
    (["--forge", "gitea", "--url", "https://g.example"], "--forge gitea needs --repo OWNER/NAME"),
    (["--forge", "gitea", "--repo", "team/app"], "--forge gitea needs --url"),
    (["--forge", "github"], "--forge github needs --repo OWNER/NAME"),
    (["--forge", "gitea", "--url", "gitea.example", "--repo", "team/app"], "must be an http(s) URL"),
    (["--forge", "github", "--repo", "team"], "forge.repo: must look like OWNER/NAME"),
    (["--repo", "team/app", "--remote", "/x"], "--repo is only for --forge gitea or github"),
    (["--agent", "Host_1", "--remote", "/x"], "--agent 'Host_1': not a valid agent name"),
    (["--agent", "-x", "--remote", "/x"], "not a valid agent name"),
    (["--agent", "a"], "--remote URL is required with --forge local"),
    (["--remote", "https://me:secret@git.example/x.git"], "remote: must not contain credentials"),
    (["--remote", "/x", "--token-env", "ghp_0123-4567"],
     "forge.token_env: must be the name of an environment variable"),
    (["--remote", "/x", "--executor", "gpt"], "Invalid value for '--executor'"),
])
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, args, message):
    if "--agent" not in args:
        args = [*args, "--agent", "host1-a"]
    result = run_cli("init", *args, cwd=tmp_path)
    assert result.returncode == 1, result.stdout
    assert message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "agentmesh.yaml").exists()


def test_every_executor_choice_loads_and_presets_resolve(tmp_path):
    for kind in [*PRESETS, "script", "command"]:
        result = run_cli("init", "--remote", "/x", "--agent", "a", "--executor", kind, "--path", f"{kind}.yaml",
                         cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        host = load(tmp_path / f"{kind}.yaml")
        assert host.executor.kind == kind
        if kind != "script":  # script's argv lives in the mesh policy
            specs = resolve(kind, command=host.executor.command)
            assert specs[0].argv


def test_values_yaml_would_misread_are_quoted(tmp_path):
    remote = str(tmp_path / "my mesh #1: null.git")
    result = run_cli("init", "--remote", remote, "--agent", "yes", "--token-env", "NULL", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    host = load(tmp_path / "agentmesh.yaml")
    assert (host.agent, host.remote, host.forge.token_env) == ("yes", remote, "NULL")


def test_global_options_and_config_path_are_used(tmp_path):
    result = run_cli("--config", "host.yaml", "--remote", "/srv/mesh.git", "--agent", "host2-a", "init", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    host = load(tmp_path / "host.yaml")
    assert (host.agent, host.remote) == ("host2-a", "/srv/mesh.git")


def test_init_makes_the_signing_key_and_prints_and_writes_its_roster_entry(tmp_path):
    from agentmesh.core.identity import PublicKey
    from agentmesh.host.roster import parse_roster

    result = run_cli("init", "--remote", "/srv/mesh.git", "--agent", "host1-a", "--mesh", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    private = tmp_path / "state" / "agentmesh" / "host1-a" / "identity" / "id_ed25519"  # XDG_STATE_HOME
    assert private.stat().st_mode & 0o777 == 0o600
    key = PublicKey.parse((private.parent / "id_ed25519.pub").read_text())
    assert key.fingerprint in result.stdout and f"key: {key.line}" in result.stdout
    roster = parse_roster((tmp_path / ".agentmesh" / "roster.yaml").read_text())
    assert [(a.name, a.key) for a in roster.agents] == [("host1-a", key.line)] and roster.maintainers == []
    again = run_cli("init", "--remote", "/srv/mesh.git", "--agent", "host1-a", "--path", "other.yaml", cwd=tmp_path)
    assert again.returncode == 0 and f"key: {key.line}" in again.stdout  # the same key, never replaced
