"""Failures outside agentmesh are temporary (exit 75), never bugs (exit 3): a ref lock another git
process holds, a remote that went away, a read-only or full state dir. Real git throughout."""

import os
import subprocess
from pathlib import Path

import pytest

from agentmesh.core.errors import EXIT_BUG, RemoteUnavailable, TemporaryError
from agentmesh.forge.local.schema import ITEMS
from agentmesh.git.branch_edit import swap_ref
from agentmesh.git.cache import CacheClone, mirror_ref
from agentmesh.git.remote import RefUpdate, ls_refs, push
from agentmesh.git.run import Git, GitError
from tests.support import git, git_daemon, git_http, local_forge_remote, make_remote
from tests.support.cli import cli_argv, cli_env, run_cli
from tests.support.gitcount import counting_git

MAIN = "refs/heads/main"


@pytest.fixture
def clone(tmp_path):
    remote = make_remote(tmp_path / "remote.git")
    cache = CacheClone(Git(), tmp_path / "cache.git", str(remote)).ensure()
    cache.fetch_default_branch()
    return cache


def _hold_git_lock(clone: CacheClone, ref: str):
    """What a concurrent git process holds while it updates `ref`: its `<ref>.lock` file."""
    lock = clone.path / f"{ref}.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    lock.touch()
    return lock


def _advance(remote: str) -> str:
    """A new commit on the remote's main, as another agent would push it."""
    head = git("commit-tree", "main^{tree}", "-p", "main", "-m", "moved", cwd=remote)
    git("update-ref", MAIN, head, cwd=remote)
    return head


# --- 1. ref writes in the cache clone ----------------------------------------------------------


def test_a_ref_lock_held_by_another_git_is_temporary_not_a_bug(clone):
    new = clone.commit_tree(clone.empty_tree(), [], "x\n")
    _hold_git_lock(clone, mirror_ref(MAIN))
    with pytest.raises(TemporaryError, match=r"main\.lock': File exists") as raised:
        clone.update_ref(mirror_ref(MAIN), new)
    assert isinstance(raised.value, GitError) and raised.value.exit_code == 75
    _advance(clone.url)
    with pytest.raises(TemporaryError, match=r"main\.lock"):  # a fetch racing the same lock: the issue's crash
        clone.fetch([MAIN])
    _hold_git_lock(clone, "packed-refs")
    with pytest.raises(TemporaryError, match=r"packed-refs\.lock"):
        clone.run("pack-refs", "--all")


def test_a_persistent_git_failure_is_still_a_bug(clone):
    head = clone.resolve(mirror_ref(MAIN))
    with pytest.raises(GitError, match="reference already exists") as raised:
        clone.create_ref(mirror_ref(MAIN), head)
    assert not isinstance(raised.value, TemporaryError) and raised.value.exit_code == EXIT_BUG


def _add_file(clone: CacheClone) -> str | None:
    """A commit adding f.txt on the remote's main, through swap_ref; the new head."""
    def build(head: str | None) -> str | None:
        assert head is not None and clone.has_object(head)
        return clone.commit_tree(clone.edit_tree(clone.tree_of(head), "f.txt", b"1\n"), [head], "add f\n")

    return swap_ref(clone, MAIN, build)[1]


def test_swap_ref_moves_the_mirror_only_under_the_clone_lock(clone, tmp_path):
    """The push itself moves the mirror ref (no `update-ref` of its own), holding the clone's lock so that it
    never races a fetch; while another holds that lock, the push does not wait for it and leaves the mirror
    stale, for the next fetch to move."""
    remote = clone.url
    before = clone.resolve(mirror_ref(MAIN))
    holder = CacheClone(clone.git, clone.path, clone.url)  # another fetcher of this clone (its own lock handle)
    with holder.locked():
        done = _add_file(clone)
        assert done == git("rev-parse", "main", cwd=remote) != before
        assert clone.resolve(mirror_ref(MAIN)) == before, "the mirror ref was written without the clone's lock"
    with counting_git(tmp_path / "count") as count:
        again = _add_file(clone)
    assert again == git("rev-parse", "main", cwd=remote) == clone.resolve(mirror_ref(MAIN))
    assert "update-ref" not in count.commands() and count.commands()["push"] == 1, count.commands()


def test_swap_ref_succeeds_when_only_the_mirror_update_is_blocked(clone):
    """The push landed: a mirror ref git cannot lock right now is a stale cache, not a failure."""
    _hold_git_lock(clone, mirror_ref(MAIN))
    new = _add_file(clone)
    assert new == git("rev-parse", "main", cwd=clone.url)
    (clone.path / f"{mirror_ref(MAIN)}.lock").unlink()
    clone.fetch([MAIN])
    assert clone.resolve(mirror_ref(MAIN)) == new


# --- 2. a remote that went away ----------------------------------------------------------------


@pytest.fixture
def moved(tmp_path):
    """A local-forge remote served over every transport, then moved away: (urls, cache clones)."""
    srv = tmp_path / "srv"
    remote = local_forge_remote(srv / "mesh.git")
    with git_daemon(srv) as daemon, git_http(srv) as (http, _):
        urls = {"path": str(remote), "file": f"file://{remote}", "git": f"{daemon}/mesh.git",
                "http": f"{http}/mesh.git"}
        clones = {name: CacheClone(Git(), tmp_path / f"cache-{name}.git", url).ensure() for name, url in urls.items()}
        for cache in clones.values():
            cache.fetch_default_branch()
        remote.rename(tmp_path / "elsewhere.git")
        yield urls, clones


@pytest.mark.parametrize("transport", ["path", "file", "git", "http"])
def test_every_remote_call_to_a_moved_repository_is_unavailable(moved, transport):
    urls, clones = moved
    cache = clones[transport]
    with pytest.raises(RemoteUnavailable):
        ls_refs(cache.git, urls[transport], [MAIN])
    with pytest.raises(RemoteUnavailable):
        cache.fetch([ITEMS + "*"], prune=True)
    new = cache.commit_tree(cache.empty_tree(), [], "x\n")
    with pytest.raises(TemporaryError):  # OutcomeUnknown: a readback decides, and it fails the same way
        push(cache.git, cache.path, urls[transport], [RefUpdate("refs/heads/claim/1", new, None)])


@pytest.mark.parametrize("transport", ["git", "path"])
def test_issue_list_exits_75_like_claims_list_when_the_remote_moved_away(tmp_path, transport):
    """Issue 13: `issue list` crashed (exit 3) on git daemon's "repository not exported" where
    `claims list` exited 75."""
    srv = tmp_path / "srv"
    remote = local_forge_remote(srv / "mesh.git")
    with git_daemon(srv) as daemon:
        who = ["--remote", f"{daemon}/mesh.git" if transport == "git" else str(remote), "--agent", "a1"]
        created = run_cli(*who, "issue", "create", "one", cwd=tmp_path)
        assert created.returncode == 0, created.stderr
        assert run_cli(*who, "issue", "list", cwd=tmp_path).returncode == 0
        remote.rename(tmp_path / "elsewhere.git")
        for command in (["issue", "list"], ["claims", "list"], ["issue", "create", "two"]):
            result = run_cli(*who, *command, cwd=tmp_path)
            assert (result.returncode, result.stderr.count("\n")) == (75, 1), (command, result.stderr)
            assert result.stderr.startswith(f"agentmesh: error: remote {who[1]}")
    assert not list(tmp_path.glob("agentmesh-crash-*.log"))


# --- 3. a state dir that cannot be written -----------------------------------------------------

# Mounts are made in a private mount namespace of the child (`unshare --mount`): they vanish with
# it, so nothing stays mounted whatever happens to the test. As root, permissions never stop a
# write: only a read-only or full file system does.
UNSHARE = ["unshare", "--mount", *([] if os.geteuid() == 0 else ["--map-root-user"])]
READ_ONLY = 'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" && exec "$@"'
# a small tmpfs as the state home: one run fills the state dir, then the disk is filled up
FULL = '''mount -t tmpfs -o size=4m tmpfs "$0" || exit 90
"$@" issue list >/dev/null || exit 91
cat /dev/zero > "$0/filler" 2>/dev/null
exec "$@" $COMMAND'''


def _mounted(script: str, target: Path, argv: list[str], *, cwd: Path, env: dict | None = None):
    """Run `sh -c script target argv...` in a private mount namespace."""
    return subprocess.run([*UNSHARE, "sh", "-c", script, str(target), *argv], capture_output=True, text=True,
                          env=cli_env(cwd, env), cwd=cwd, timeout=120)


@pytest.fixture
def mounts(tmp_path):
    probe = tmp_path / "probe"
    probe.mkdir()
    result = _mounted(READ_ONLY, probe, ["true"], cwd=tmp_path)
    if result.returncode != 0:
        pytest.skip(f"no private mount namespace here (unshare --mount: {result.stderr.strip()})")


@pytest.fixture
def agent(tmp_path):
    """A local-forge remote with one task, and agent a1 that has used it once (its state dir exists)."""
    remote = local_forge_remote(tmp_path / "remote.git")
    who = ["--remote", str(remote), "--agent", "a1"]
    assert run_cli(*who, "issue", "create", "one", "--label", "task", cwd=tmp_path).returncode == 0
    assert run_cli(*who, "claims", "list", cwd=tmp_path).returncode == 0
    return who, tmp_path / "state" / "agentmesh" / "a1"


def _assert_temporary(result, *expected: str) -> None:
    assert (result.returncode, result.stderr.count("\n")) == (75, 1), result.stderr
    assert result.stderr.startswith("agentmesh: error: ") and "Traceback" not in result.stderr
    for text in expected:
        assert text in result.stderr


def test_a_read_only_state_dir_is_temporary_and_named(mounts, agent, tmp_path):
    who, state = agent
    for command in (["claims", "list"], ["issue", "list"], ["claim-task"], ["tick"]):
        result = _mounted(READ_ONLY, tmp_path / "state", cli_argv(*who, *command), cwd=tmp_path)
        _assert_temporary(result, "is read-only: Read-only file system", str(state))
    assert not list(tmp_path.glob("agentmesh-crash-*.log"))


def test_a_read_only_part_of_the_state_dir_is_temporary(mounts, agent, tmp_path):
    who, state = agent
    cache = next(state.glob("cache-*.git"))
    (state / "logs").mkdir(exist_ok=True)
    result = _mounted(READ_ONLY, cache, cli_argv(*who, "issue", "create", "two"), cwd=tmp_path)
    _assert_temporary(result, "Read-only file system")
    result = _mounted(READ_ONLY, state / "logs", cli_argv(*who, "claim-task"), cwd=tmp_path)
    _assert_temporary(result, "is read-only", str(state / "logs"))
    assert not list(tmp_path.glob("agentmesh-crash-*.log"))


def test_a_full_state_dir_is_temporary(mounts, agent, tmp_path):
    who, _ = agent
    state = tmp_path / "full" / "agentmesh" / "a1"
    state.parent.parent.mkdir()
    for command, expected in (("claims list", "No space left on device"), ("issue create two", "No space left"),
                              ("tick", "No space left on device"),  # git fails first: GitTransient
                              ("halt --local", f"the file system of {state}/HALT is full: No space left on device")):
        result = _mounted(FULL, tmp_path / "full", cli_argv(*who), cwd=tmp_path,
                          env={"XDG_STATE_HOME": str(tmp_path / "full"), "COMMAND": command})
        _assert_temporary(result, expected)
    assert not list(tmp_path.glob("agentmesh-crash-*.log"))


# --- 4. the daemon reports failures as the CLI does ----------------------------------------------

DAEMON = ["daemon", "--max-seconds", "1", "--jitter", "0", "--claim-every", "60", "--monitor-every", "60"]


def _step_lines(result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("agentmesh daemon: ")]


def test_a_daemon_bug_writes_a_redacted_crash_log_in_the_state_dir(tmp_path):
    token = "ghp_" + "Q7w" * 12
    remote = local_forge_remote(tmp_path / f"repo-{token}.git")  # the token ends up in argv
    who, env = ["--remote", str(remote), "--agent", "a1"], {"AGENTMESH_TOKEN": token}
    assert run_cli(*who, "claims", "list", cwd=tmp_path, env=env).returncode == 0
    state = tmp_path / "state" / "agentmesh" / "a1"
    lock = next(state.glob("observations-*.json.lock"))  # no claim seen: the file itself is not written
    lock.with_suffix("").mkdir()  # state no code path expects: a bug in every step that observes claims
    result = run_cli(*who, *DAEMON, cwd=tmp_path, env=env)
    assert result.returncode == 3, result.stderr  # the steps go on; the drain hit the bug too, and it is the exit
    assert "Traceback" not in result.stderr
    assert [line.split(": ")[1] for line in _step_lines(result)] == ["monitor-prs", "claim-task", "drain"]
    crashed = [line for line in _step_lines(result) if ": internal error: IsADirectoryError: " in line]
    logs = sorted((state / "logs").glob("agentmesh-crash-*.log"))
    assert crashed and len(logs) == len(crashed) == len(_step_lines(result)), result.stderr
    assert sorted(line.rsplit("(crash log: ", 1)[1].rstrip(")") for line in crashed) == [str(p) for p in logs]
    for log in logs:
        text = log.read_text()
        assert "Traceback" in text and "IsADirectoryError" in text and "argv:" in text
        assert token not in text and "[REDACTED]" in text
    assert not list(tmp_path.glob("agentmesh-crash-*.log"))  # the CLI's crash dir: untouched


def test_daemon_temporary_failures_are_one_line_without_crash_logs(mounts, agent, tmp_path):
    who, state = agent
    (state / "logs").mkdir(exist_ok=True)
    result = _mounted(READ_ONLY, state / "logs", cli_argv(*who, *DAEMON), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = _step_lines(result)
    assert [line.split(": ")[1] for line in lines] == ["monitor-prs", "claim-task"], result.stderr
    assert all(f"error: the file system of {state}" in line and "is read-only" in line for line in lines)
    assert "Traceback" not in result.stderr and not list(tmp_path.glob("**/agentmesh-crash-*.log"))
    remote = Path(who[1])
    remote.rename(tmp_path / "elsewhere.git")
    result = run_cli(*who, *DAEMON, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = _step_lines(result)
    assert lines and all(f"error: remote {remote}: no git repository there" in line for line in lines), result.stderr
    assert "Traceback" not in result.stderr and not list(tmp_path.glob("**/agentmesh-crash-*.log"))
