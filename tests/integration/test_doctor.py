"""`agentmesh doctor` against real remotes, with PATH under the test's control."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import responses
import yaml

from agentmesh.git.signing import ensure_key
from agentmesh.host.config import HostConfig
from agentmesh.host.roster import ROSTER_PATH
from agentmesh.ops.doctor import run_checks
from tests.support import closed_port, git, git_daemon, human_commit, local_forge_remote, remote_refs
from tests.support.cli import run_cli

NAMES = ["git", "config", "state-dir", "remote", "policy", "identity", "hook", "forge", "sandbox", "executor",
         "scheduler", "clock"]


def bin_dir(tmp_path: Path, *, old_git: bool = False, cron: bool = True, bwrap: bool = False) -> Path:
    """A PATH directory holding only the programs a test wants doctor to find."""
    path = tmp_path / "bin"
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir()
    if old_git:
        fake = path / "git"
        fake.write_text("#!/bin/sh\necho 'git version 2.30.0'\n")
        fake.chmod(0o755)
    else:
        (path / "git").symlink_to(shutil.which("git"))
    (path / "ssh-keygen").symlink_to(shutil.which("ssh-keygen"))  # agents sign every commit
    if cron:
        (path / "crontab").write_text("#!/bin/sh\nexit 0\n")
        (path / "crontab").chmod(0o755)
    if bwrap:
        for program in ("bwrap", "true"):  # the probe runs `true` inside the sandbox
            (path / program).symlink_to(shutil.which(program))
    return path


def write_config(tmp_path: Path, remote: str, **extra) -> Path:
    data = {"agent": "alice", "host": "host1", "remote": remote, "state_dir": str(tmp_path / "state"),
            "executor": {"kind": "demo", "sandbox": "off"}, **extra}
    path = tmp_path / "agentmesh.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def with_roster(tmp_path: Path, remote: Path, agent: str = "alice") -> str:
    """alice's key (made where her state dir keeps it) in a roster on main; returns its line."""
    key = ensure_key(tmp_path / "state" / "identity" / "id_ed25519", "alice")
    human_commit(remote, {ROSTER_PATH: f"agents:\n- name: {agent}\n  key: {key.line}\n"})
    return key.line


def guarded(tmp_path: Path, remote: Path) -> None:
    """The remote's server runs agentmesh's pre-receive hook (installed after the roster: it then
    refuses unsigned commits on main)."""
    done = run_cli("hook", "install", str(remote), cwd=tmp_path)
    assert done.returncode == 0, done.stderr


def doctor(tmp_path: Path, config: Path, *args: str, path: Path | None = None,
           env: dict | None = None) -> subprocess.CompletedProcess:
    return run_cli("--config", str(config), "doctor", *args, cwd=tmp_path,
                   env={"PATH": str(path or bin_dir(tmp_path)), **(env or {})})


def lines(result: subprocess.CompletedProcess) -> dict[str, str]:
    """check name -> its whole output line."""
    out = {}
    for line in result.stdout.splitlines():
        name = line[2:].split(":", 1)[0]
        out[name] = line
    return out


def test_all_green_on_a_local_forge_remote_and_no_probe_ref_left(tmp_path):
    remote = local_forge_remote(tmp_path / "remote.git")
    with_roster(tmp_path, remote)
    guarded(tmp_path, remote)
    before = remote_refs(remote)
    result = doctor(tmp_path, write_config(tmp_path, str(remote)))
    assert result.returncode == 0, result.stdout + result.stderr
    found = lines(result)
    assert list(found) == NAMES
    assert all(line.startswith("✓ ") for line in found.values()), result.stdout
    assert found["forge"] == "✓ forge: local forge: no token needed"
    assert "cron" in found["scheduler"]
    assert remote_refs(remote) == before  # the scratch ref was deleted


def test_a_ref_lock_a_dead_push_left_in_the_remote_fails_the_remote_check(tmp_path):
    """A receive-pack killed while committing leaves `*.lock` files that refuse every later push of
    their refs; a live push holds one for milliseconds, so only an old one is reported."""
    remote = local_forge_remote(tmp_path / "remote.git")
    config = write_config(tmp_path, str(remote))
    fresh = remote / "refs" / "heads" / "other.lock"
    fresh.write_text("0" * 40 + "\n")  # a push committing right now
    assert lines(doctor(tmp_path, config))["remote"].startswith("✓")
    stale = remote / "refs" / "heads" / "main.lock"
    stale.write_text("0" * 40 + "\n")
    os.utime(stale, (time.time() - 7200, time.time() - 7200))
    result = doctor(tmp_path, config)
    assert result.returncode == 1 and result.stderr == ""
    line = lines(result)["remote"]
    assert line.startswith("✗ remote: 1 stale ref lock file(s) in the remote refuse every push of their refs: "
                           "refs/heads/main.lock (2.0 h old)"), line
    assert "docs/local-forge.md" in line and lines(result)["policy"].startswith("✗ policy: skipped")


def test_json_output(tmp_path):
    remote = local_forge_remote(tmp_path / "remote.git")
    with_roster(tmp_path, remote)
    guarded(tmp_path, remote)
    result = doctor(tmp_path, write_config(tmp_path, str(remote)), "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["ok"] is True
    assert [c["name"] for c in data["checks"]] == NAMES
    assert all(set(c) == {"name", "ok", "detail", "hint"} and c["ok"] for c in data["checks"])


def test_missing_gitea_token_is_a_failed_check(tmp_path):
    remote = local_forge_remote(tmp_path / "remote.git")
    config = write_config(tmp_path, str(remote), forge={
        "kind": "gitea", "url": "http://127.0.0.1:9", "repo": "team/app", "token_env": "DOCTOR_TEST_TOKEN"})
    result = doctor(tmp_path, config, env={"DOCTOR_TEST_TOKEN": ""})
    assert result.returncode == 1
    line = lines(result)["forge"]
    assert line.startswith("✗ forge: gitea forge: $DOCTOR_TEST_TOKEN is not set — fix: export DOCTOR_TEST_TOKEN=")
    assert lines(result)["remote"].startswith("✓")
    assert result.stderr == ""


def test_unreachable_remotes_are_failed_checks_not_tracebacks(tmp_path):
    with closed_port() as port:
        results = {remote: doctor(tmp_path, write_config(tmp_path, remote), "--json")
                   for remote in (str(tmp_path / "missing.git"), f"git://127.0.0.1:{port}/mesh.git")}
    for remote, result in results.items():
        assert result.returncode == 1, result.stderr
        assert result.stderr == ""
        checks = {c["name"]: c for c in json.loads(result.stdout)["checks"]}
        assert not checks["remote"]["ok"] and remote.split("/")[-1] in checks["remote"]["detail"]
        assert checks["remote"]["hint"]
        assert checks["clock"]["detail"] == "skipped until the remote check passes"
        assert checks["git"]["ok"] and checks["config"]["ok"]


def test_an_old_git_is_reported_and_git_work_skipped(tmp_path):
    remote = local_forge_remote(tmp_path / "remote.git")
    result = doctor(tmp_path, write_config(tmp_path, str(remote)), path=bin_dir(tmp_path, old_git=True))
    assert result.returncode == 1
    found = lines(result)
    assert found["git"].startswith("✗ git: git 2.30.0 is older than 2.38 — fix: install git ≥ 2.38")
    assert found["remote"] == "✗ remote: skipped until the git check passes — fix: fix git first"
    assert found["config"].startswith("✓")
    assert result.stderr == ""


def test_invalid_config_skips_what_needs_it(tmp_path):
    config = tmp_path / "agentmesh.yaml"
    config.write_text("agent: alice\nremote: /x\nlease: {seconds: 5}\n")
    result = doctor(tmp_path, config)
    assert result.returncode == 1 and result.stderr == ""
    found = lines(result)
    assert list(found) == NAMES
    assert found["config"].startswith("✗ config: ") and "lease: unknown key" in found["config"]
    for name in ("state-dir", "remote", "policy", "identity", "forge", "sandbox", "executor", "clock"):
        assert found[name] == f"✗ {name}: skipped until the config check passes — fix: fix config first"
    assert found["git"].startswith("✓") and found["scheduler"].startswith("✓")


def test_no_scheduler_and_no_bwrap_are_failed_checks(tmp_path):
    remote = local_forge_remote(tmp_path / "remote.git")
    config = write_config(tmp_path, str(remote), executor={"kind": "demo", "sandbox": "auto"})
    result = doctor(tmp_path, config, path=bin_dir(tmp_path, cron=False))
    assert result.returncode == 1
    found = lines(result)
    assert found["scheduler"].startswith("✗ scheduler: neither crontab nor systemctl is on PATH — fix: install cron")
    assert "contrib/systemd" in found["scheduler"]
    assert found["sandbox"].startswith("✗ sandbox: bwrap is not installed")
    assert "executor.sandbox: off" in found["sandbox"]
    assert found["remote"].startswith("✓")


def test_working_bwrap_passes_the_sandbox_check(tmp_path):
    if shutil.which("bwrap") is None:
        return  # nothing to prove without bubblewrap; the failing side is tested above
    from agentmesh.agent.executor import bwrap_available

    remote = local_forge_remote(tmp_path / "remote.git")
    config = write_config(tmp_path, str(remote), executor={"kind": "demo", "sandbox": "required"})
    result = doctor(tmp_path, config, path=bin_dir(tmp_path, bwrap=True))
    line = lines(result)["sandbox"]
    if bwrap_available() is None:
        assert line == "✓ sandbox: bwrap works (executor.sandbox: required)"
    else:  # installed but blocked here (e.g. no user namespaces): reported, no hint to turn it off
        assert line.startswith("✗ sandbox: bwrap cannot start") and "sandbox: off" not in line


def test_state_dir_world_writable_is_a_failed_check(tmp_path):
    remote = local_forge_remote(tmp_path / "remote.git")
    state = tmp_path / "state"
    state.mkdir()
    state.chmod(0o777)
    result = doctor(tmp_path, write_config(tmp_path, str(remote)))
    assert result.returncode == 1
    found = lines(result)
    assert found["state-dir"] == f"✗ state-dir: {state}: world-writable (mode 0777) — fix: chmod o-w {state}"
    assert found["remote"] == "✗ remote: skipped until the state-dir check passes — fix: fix state-dir first"


def test_clock_behind_the_remote_head_is_a_failed_check(tmp_path):
    remote = local_forge_remote(tmp_path / "remote.git")
    work = tmp_path / "work"
    git("clone", "--quiet", str(remote), str(work))
    git("commit", "--quiet", "--allow-empty", "-m", "from the future", cwd=work,
        env={"GIT_COMMITTER_DATE": "@4102444800 +0000"})  # 2100-01-01
    git("push", "--quiet", "origin", "HEAD:main", cwd=work)
    result = doctor(tmp_path, write_config(tmp_path, str(remote)))
    assert result.returncode == 1
    line = lines(result)["clock"]
    assert line.startswith("✗ clock: local clock is ") and "behind the remote head's commit date" in line
    assert "fix: fix the system clock" in line


@responses.activate
def test_gitea_token_needs_write_permission(tmp_path):
    remote = local_forge_remote(tmp_path / "remote.git")
    host = HostConfig.model_validate({
        "agent": "alice", "remote": str(remote), "state_dir": str(tmp_path / "state"),
        "executor": {"sandbox": "off"},
        "forge": {"kind": "gitea", "url": "https://gitea.test", "repo": "team/app", "token_env": "T"}})
    api = "https://gitea.test/api/v1"
    responses.get(f"{api}/user", json={"login": "bot", "id": 1})
    permission = responses.get(f"{api}/repos/team/app/collaborators/bot/permission", json={"permission": "read"})

    def forge_check():
        checks = run_checks(lambda: host, env={"T": "s3cret-token"}, which=lambda _: "/usr/bin/crontab")
        return next(c for c in checks if c.name == "forge")

    check = forge_check()
    assert not check.ok and check.detail == "gitea forge: bot has read access to team/app"
    assert check.hint == "give bot write access to team/app"
    assert responses.calls[0].request.headers["Authorization"] == "token s3cret-token"
    permission.body = json.dumps({"permission": "write"})
    check = forge_check()
    assert check.ok and "s3cret" not in check.detail


def test_remote_probe_over_git_daemon(tmp_path):
    remote = local_forge_remote(tmp_path / "srv" / "remote.git")
    before = remote_refs(remote)
    with git_daemon(tmp_path / "srv") as base:
        host = HostConfig.model_validate({"agent": "alice", "remote": f"{base}/remote.git",
                                          "state_dir": str(tmp_path / "state"), "executor": {"sandbox": "off"}})
        checks = {c.name: c for c in run_checks(lambda: host, env={}, which=lambda _: "/usr/bin/crontab")}
    assert checks["remote"].ok, checks["remote"]
    assert checks["clock"].ok, checks["clock"]
    assert remote_refs(remote) == before


def test_identity_says_plainly_what_a_missing_roster_or_entry_lets_a_writer_do(tmp_path):
    remote = local_forge_remote(tmp_path / "remote.git")
    config = write_config(tmp_path, str(remote))
    found = lines(doctor(tmp_path, config))
    assert found["identity"].startswith("✗ identity: no .agentmesh/roster.yaml on main: anyone who can push")
    line = with_roster(tmp_path, remote, agent="bob")
    result = doctor(tmp_path, config)
    assert result.returncode == 1 and "alice is not in .agentmesh/roster.yaml" in lines(result)["identity"]
    assert f"- name: alice key: {line}" in result.stdout  # the entry to add, in the hint
    other = ensure_key(tmp_path / "other", "x").line
    human_commit(remote, {ROSTER_PATH: f"agents:\n- name: alice\n  key: {other}\n"})
    assert "lists another key for alice" in lines(doctor(tmp_path, config))["identity"]
    human_commit(remote, {ROSTER_PATH: f"agents:\n- name: alice\n  key: {line}\n"})
    assert lines(doctor(tmp_path, config))["identity"].startswith("✓ identity: signs as alice with SHA256:")
    key = tmp_path / "state" / "identity" / "id_ed25519"
    key.chmod(0o640)  # widened by hand or a backup tool: ssh-keygen then signs nothing
    found = lines(doctor(tmp_path, config))
    assert found["state-dir"] == (f"✗ state-dir: signing key {key} is open to others (mode 0640): ssh-keygen "
                                  f"refuses to sign with it, so this agent can write nothing — fix: chmod 600 {key}")
    assert found["remote"] == "✗ remote: skipped until the state-dir check passes — fix: fix state-dir first"


def test_a_policy_that_would_auto_merge_unchecked_fails_doctor_and_every_run(tmp_path):
    """`merge.auto: true` with no gate and no required check: doctor names the fix on the policy line,
    and the agent's own runs stop with the same one-line config error (exit 1)."""
    remote = local_forge_remote(tmp_path / "remote.git")
    with_roster(tmp_path, remote)
    config = write_config(tmp_path, str(remote))
    assert lines(doctor(tmp_path, config))["policy"] == (
        "✓ policy: gates: syntax; required checks: none; merge.auto: false")
    human_commit(remote, {".agentmesh/mesh.yaml": "merge: {auto: true}\ngates: []\n"})
    result = doctor(tmp_path, config)
    assert result.returncode == 1 and result.stderr == ""
    found = lines(result)
    assert found["policy"].startswith("✗ policy: .agentmesh/mesh.yaml on the default branch: merge.auto: true with "
                                      "no gates and no review.required_checks would merge whatever a sibling "
                                      "approves unchecked: add `gates: [{builtin: syntax}]`")
    assert "fix: fix .agentmesh/mesh.yaml on the default branch through a PR" in found["policy"]
    assert found["identity"] == "✗ identity: skipped until the policy check passes — fix: fix policy first"
    assert found["remote"].startswith("✓") and found["clock"].startswith("✓")
    run = run_cli("--config", str(config), "monitor-prs", cwd=tmp_path, env={"PATH": str(bin_dir(tmp_path))})
    assert run.returncode == 1 and run.stderr.count("\n") == 1, run.stderr
    assert "merge.auto: true with no gates and no review.required_checks" in run.stderr
    human_commit(remote, {".agentmesh/mesh.yaml": "merge: {auto: true}\ngates: []\n"
                                                  "review: {required_checks: [ci/tests]}\n"})
    assert lines(doctor(tmp_path, config))["policy"] == (
        "✓ policy: gates: none; required checks: ci/tests; merge.auto: true")


def test_identity_fails_plainly_under_the_unsigned_benchmark_baseline(tmp_path):
    remote = local_forge_remote(tmp_path / "remote.git")
    config = write_config(tmp_path, str(remote))
    with_roster(tmp_path, remote)
    result = doctor(tmp_path, config, env={"AGENTMESH_BENCHMARK_UNSIGNED": "1"})
    assert result.returncode == 1
    assert lines(result)["identity"].startswith(
        "✗ identity: AGENTMESH_BENCHMARK_UNSIGNED=1: this agent signs nothing (a benchmark baseline)")


def test_hook_says_plainly_what_a_writer_can_do_on_an_unguarded_path_remote(tmp_path):
    remote = local_forge_remote(tmp_path / "remote.git")
    with_roster(tmp_path, remote)
    config = write_config(tmp_path, str(remote))
    result = doctor(tmp_path, config)
    assert result.returncode == 1
    line = lines(result)["hook"]
    assert line.startswith(f"✗ hook: {remote} has no current agentmesh pre-receive hook (missing): anyone who can "
                           "push can write the default branch, claims, presence, reviews")
    assert line.endswith(f"— fix: on the server: agentmesh hook install {remote}")
    guarded(tmp_path, remote)
    found = lines(doctor(tmp_path, config))
    assert found["hook"].startswith(f"✓ hook: {remote} runs agentmesh's pre-receive hook: .agentmesh/roster.yaml on "
                                    "main: 1 agent(s)")
    assert all(line.startswith("✓ ") for line in found.values())
