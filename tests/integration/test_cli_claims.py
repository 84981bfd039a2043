"""`agentmesh claims ...` as a user runs it: real processes, exit codes, JSON and one-line errors."""

import json
import shutil
from pathlib import Path

import pytest

from tests.support import make_remote, remote_refs
from tests.support.cli import run_cli


@pytest.fixture
def home(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    return home


@pytest.fixture
def remote(tmp_path):
    return make_remote(tmp_path / "remote.git")


def run(home: Path, *args: str, cwd: Path | None = None, env: dict | None = None):
    """agentmesh with `home` as HOME, crash-log folder and state home (XDG_STATE_HOME=home/state)."""
    return run_cli(*args, cwd=cwd or home, env={"HOME": str(home), "XDG_STATE_HOME": str(home / "state"),
                                                "AGENTMESH_CRASH_DIR": str(home), **(env or {})})


def test_version_and_help(home):
    from agentmesh import __version__

    assert run(home, "--version").stdout.strip() == f"agentmesh {__version__}"
    helptext = run(home, "--help").stdout
    assert "Exit codes" in helptext and "--remote" in helptext and "claims" in helptext
    assert "acquire" in run(home, "claims", "--help").stdout


def test_acquire_exit_codes_and_json(home, remote):
    won = run(home, "--remote", str(remote), "--agent", "host1-a", "claims", "acquire", "42",
              "--work-branch", "host1-a/42-fix-it", "--json")
    assert won.returncode == 0, won.stderr
    data = json.loads(won.stdout)
    assert data["won"] is True and data["holder"] == "host1-a" and data["work_branch"] == "host1-a/42-fix-it"
    assert remote_refs(remote, "refs/heads/claim/") == {"refs/heads/claim/42": data["sha"]}
    lost = run(home, "--remote", str(remote), "--agent", "host2-b", "claims", "acquire", "42", "--json")
    assert lost.returncode == 4
    assert json.loads(lost.stdout) == {**data, "won": False}
    human = run(home, "--remote", str(remote), "--agent", "host2-b", "claims", "acquire", "42")
    assert human.returncode == 4 and "already held by host1-a" in human.stdout


def test_renew_release_by_non_holder_exit_4_and_change_nothing(home, remote):
    run(home, "--remote", str(remote), "--agent", "a", "claims", "acquire", "7")
    before = remote_refs(remote)
    for command in ("renew", "release"):
        result = run(home, "--remote", str(remote), "--agent", "b", "claims", command, "7")
        assert result.returncode == 4 and "held by a, not b" in result.stderr
        assert remote_refs(remote) == before
    renewed = run(home, "--remote", str(remote), "--agent", "a", "claims", "renew", "7", "--json")
    assert renewed.returncode == 0 and json.loads(renewed.stdout)["renewal"] == 1
    released = run(home, "--remote", str(remote), "--agent", "a", "claims", "release", "7")
    assert released.returncode == 0 and remote_refs(remote, "refs/heads/claim/") == {}


def test_list_and_reap(home, remote):
    run(home, "--remote", str(remote), "--agent", "a", "claims", "acquire", "3")
    listed = run(home, "--remote", str(remote), "--agent", "b", "claims", "list", "--json")
    assert [(c["issue"], c["agent"], c["expired"]) for c in json.loads(listed.stdout)] == [(3, "a", False)]
    assert "#3" in run(home, "--remote", str(remote), "--agent", "b", "claims", "list").stdout
    reap = run(home, "--remote", str(remote), "--agent", "b", "claims", "reap", "--dry-run", "--json")
    assert reap.returncode == 0 and json.loads(reap.stdout) == []
    mine = run(home, "--remote", str(remote), "--agent", "b", "claims", "list", "--mine", "--json")
    assert json.loads(mine.stdout) == []


def test_config_file_and_env_overrides(home, remote, tmp_path):
    (tmp_path / "agentmesh.yaml").write_text(f"agent: from-file\nremote: {remote}\nstate_dir: st\n")
    result = run(home, "claims", "acquire", "5", "--json", cwd=tmp_path)
    assert result.returncode == 0 and json.loads(result.stdout)["holder"] == "from-file"
    assert (tmp_path / "st").is_dir()
    result = run(home, "claims", "acquire", "6", "--json", cwd=tmp_path, env={"AGENTMESH_AGENT": "from-env"})
    assert json.loads(result.stdout)["holder"] == "from-env"


@pytest.mark.parametrize("args,code,message", [
    (["--agent", "a", "claims", "list"], 1, "no host config found and no remote given"),
    (["--remote", "/r", "--agent", "Bad_Name", "claims", "list"], 1, "agent: 'Bad_Name' is not a valid agent name"),
    (["--remote", "/nonexistent/x.git", "--agent", "a", "claims", "list"], 75, "no git repository there"),
    (["--remote", "git://127.0.0.1:9/x.git", "--agent", "a", "claims", "list"], 75, "unreachable"),
    (["--remote", "/r", "--agent", "a", "claims", "acquire", "0"], 1, "0 is not in the range"),
    (["--remote", "/r", "--agent", "a", "claims", "nope"], 1, "No such command"),
])
def test_errors_are_one_line_with_exit_codes(home, args, code, message):
    result = run(home, *args)
    assert result.returncode == code, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_mesh_policy_on_remote_is_a_config_error(home, tmp_path):
    remote = make_remote(tmp_path / "bad.git", mesh_yaml="lease:\n  seconds: 5\n")
    result = run(home, "--remote", str(remote), "--agent", "a", "claims", "list")
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "agentmesh: error: .agentmesh/mesh.yaml on the default branch: lease.seconds: must be ≥ 60")


def test_broken_cache_clone_is_rebuilt(home, remote):
    assert run(home, "--remote", str(remote), "--agent", "a", "claims", "list").returncode == 0
    cache = next((home / "state" / "agentmesh" / "a").glob("cache-*.git"))
    (cache / "HEAD").write_text("garbage\n")
    result = run(home, "--remote", str(remote), "--agent", "a", "claims", "acquire", "1")
    assert result.returncode == 0, result.stderr
    assert list(cache.parent.glob("cache-*.git.broken-*"))


def test_unexpected_failure_exits_3_with_crash_log(home, remote):
    token = "ghp_" + "Q7w" * 12
    secret_named = home / f"repo-{token}.git"  # the token ends up in argv, as a careless path might
    shutil.copytree(remote, secret_named)
    env = {"AGENTMESH_TOKEN": token}
    assert run(home, "--remote", str(secret_named), "--agent", "a", "claims", "list", env=env).returncode == 0
    lock = next((home / "state" / "agentmesh" / "a").glob("observations-*.json.lock"))  # no claim seen: no file
    lock.with_suffix("").mkdir()  # state no code path expects
    result = run(home, "--remote", str(secret_named), "--agent", "a", "claims", "list", env=env)
    assert result.returncode == 3
    assert "internal error" in result.stderr and "crash log" in result.stderr
    logs = list(home.glob("agentmesh-crash-*.log"))
    text = logs[0].read_text()
    assert logs and "Traceback" in text and "argv:" in text
    assert token not in text and "[REDACTED]" in text


def test_a_crash_log_goes_to_the_state_dir_0600_when_no_crash_dir_is_set(home, remote):
    env = {"AGENTMESH_CRASH_DIR": "", "XDG_CACHE_HOME": str(home / "cache")}
    assert run(home, "--remote", str(remote), "--agent", "a", "claims", "list", env=env).returncode == 0
    state = home / "state" / "agentmesh" / "a"
    lock = next(state.glob("observations-*.json.lock"))  # no claim seen: the file itself is not written
    lock.with_suffix("").mkdir()  # state no code path expects: a bug
    result = run(home, "--remote", str(remote), "--agent", "a", "claims", "list", env=env)
    assert result.returncode == 3, result.stderr
    [log] = list(home.rglob("agentmesh-crash-*.log"))
    assert log.parent == state / "logs" and f"(crash log: {log})" in result.stderr
    assert log.stat().st_mode & 0o777 == 0o600 and state.stat().st_mode & 0o777 == 0o700
    assert "Traceback" in log.read_text()


def test_the_plumbing_claims_on_a_halted_mesh_as_documented(home, remote):
    # docs/operations.md, "The kill switch": a halt stops the agents' runs (claim-task, tick, the daemon); the
    # `claims` verbs are the protocol by hand and read neither switch, so an operator can reserve, renew,
    # release or reap claims while the mesh is halted. Pinned here: changing it changes those docs.
    mesh = ("--remote", str(remote), "--agent", "host1-a")
    assert run(home, *mesh, "halt", "--reason", "stop").returncode == 0
    assert run(home, *mesh, "halt", "--local").returncode == 0
    halted = remote_refs(remote, "refs/heads/agentmesh/halt")
    won = run(home, *mesh, "claims", "acquire", "7", "--json")
    assert won.returncode == 0 and json.loads(won.stdout)["won"] is True, won.stderr
    assert run(home, *mesh, "claims", "renew", "7").returncode == 0
    assert run(home, *mesh, "claims", "release", "7").returncode == 0
    assert remote_refs(remote, "refs/heads/claim/") == {} and remote_refs(remote, "refs/heads/agentmesh/halt") == halted
