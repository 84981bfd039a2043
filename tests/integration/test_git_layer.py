"""The git layer against real remotes over a path, file://, git:// and smart HTTP."""

import os
import socket
import threading
import time
from pathlib import Path

import pytest

from agentmesh.core.errors import RemoteUnavailable, UserError
from agentmesh.git.cache import CacheClone
from agentmesh.git.remote import RefUpdate, ls_refs, push
from agentmesh.git.run import Git, GitError, GitTimeout, ensure_askpass
from tests.support import closed_port, git, git_daemon, git_http, make_remote, remote_refs


@pytest.fixture
def served(tmp_path):
    """One bare remote with a few refs, reachable over every transport."""
    remote = make_remote(tmp_path / "srv" / "remote.git")
    head = git("rev-parse", "main", cwd=remote)
    for ref in ("refs/heads/claim/1", "refs/heads/claim/12", "refs/heads/feature/x", "refs/tags/v1"):
        git("update-ref", ref, head, cwd=remote)
    with git_daemon(tmp_path / "srv") as daemon, git_http(tmp_path / "srv") as (http, _):
        yield {
            "path": str(remote),
            "file": f"file://{remote}",
            "git": f"{daemon}/remote.git",
            "http": f"{http}/remote.git",
        }, remote


@pytest.mark.parametrize("transport", ["path", "file", "git", "http"])
def test_ls_refs_lists_only_the_prefix(served, transport):
    urls, remote = served
    listing = ls_refs(Git(), urls[transport], ["refs/heads/claim/"])
    expected = remote_refs(remote, "refs/heads/claim/")
    assert listing.refs == expected and len(expected) == 2


@pytest.mark.parametrize("transport", ["path", "file", "git", "http"])
def test_ls_refs_reports_head_symref(served, transport):
    urls, remote = served
    listing = ls_refs(Git(), urls[transport], ["HEAD"])
    assert listing.symrefs["HEAD"] == "refs/heads/main"
    assert listing.get("HEAD") == git("rev-parse", "main", cwd=remote)


def test_ls_refs_exact_prefix_includes_longer_names(served):
    urls, _ = served
    assert set(ls_refs(Git(), urls["path"], ["refs/heads/claim/1"]).refs) == {
        "refs/heads/claim/1", "refs/heads/claim/12"}


def test_failed_listing_raises_never_empty(tmp_path):
    with pytest.raises(RemoteUnavailable, match="no git repository"):
        ls_refs(Git(), str(tmp_path / "missing.git"), ["refs/"])
    with closed_port() as port, pytest.raises(RemoteUnavailable, match="unreachable"):
        ls_refs(Git(), f"git://127.0.0.1:{port}/x.git", ["refs/"])


def test_silent_server_times_out_as_unavailable():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(5)
    port = server.getsockname()[1]
    accepted = []
    threading.Thread(target=lambda: accepted.append(server.accept()), daemon=True).start()
    started = time.monotonic()
    with pytest.raises(RemoteUnavailable):
        ls_refs(Git(), f"git://127.0.0.1:{port}/x.git", ["refs/"], timeout=0.5)
    assert time.monotonic() - started < 5
    server.close()


def _commit(cache: CacheClone, message: str, parents=()) -> str:
    return cache.commit_tree(cache.empty_tree(), list(parents), message)


@pytest.fixture
def cache(tmp_path):
    remote = make_remote(tmp_path / "remote.git")
    return CacheClone(Git(), tmp_path / "cache.git", str(remote)).ensure(), remote


def test_cas_create_first_push_wins(cache):
    clone, remote = cache
    a, b = _commit(clone, "a"), _commit(clone, "b")
    first = push(clone.git, clone.path, clone.url, [RefUpdate("refs/heads/claim/7", a, None)])
    second = push(clone.git, clone.path, clone.url, [RefUpdate("refs/heads/claim/7", b, None)])
    assert first.ok and not second.ok
    assert second.statuses["refs/heads/claim/7"].flag == "!"
    assert remote_refs(remote, "refs/heads/claim/") == {"refs/heads/claim/7": a}


def test_ancestor_trap_is_closed_by_the_empty_lease(cache):
    """A plain push would fast-forward a claim that points at an ancestor; the lease refuses."""
    clone, remote = cache
    base = _commit(clone, "base")
    late = _commit(clone, "late claim", [base])
    assert push(clone.git, clone.path, clone.url, [RefUpdate("refs/heads/claim/9", base, None)]).ok
    git("update-ref", "refs/heads/trap-demo", base, cwd=remote)
    plain = clone.run("push", "--porcelain", clone.url, f"{late}:refs/heads/trap-demo", check=False)
    assert plain.returncode == 0  # the premise: a plain push steals it
    result = push(clone.git, clone.path, clone.url, [RefUpdate("refs/heads/claim/9", late, None)])
    assert not result.ok
    assert remote_refs(remote, "refs/heads/claim/9")["refs/heads/claim/9"] == base


def test_same_sha_twice_reports_success_twice(cache):
    """docs/design/protocol.md's premise for unique claim commits: an identical push 'succeeds' again."""
    clone, _ = cache
    c = _commit(clone, "same")
    assert push(clone.git, clone.path, clone.url, [RefUpdate("refs/heads/claim/3", c, None)]).ok
    again = push(clone.git, clone.path, clone.url, [RefUpdate("refs/heads/claim/3", c, None)])
    assert again.ok and again.statuses["refs/heads/claim/3"].flag == "="


def test_atomic_push_moves_both_refs_or_neither(cache):
    clone, remote = cache
    a, b, c = _commit(clone, "a"), _commit(clone, "b"), _commit(clone, "c")
    assert push(clone.git, clone.path, clone.url, [RefUpdate("refs/heads/claim/5", a, None)]).ok
    stale = push(clone.git, clone.path, clone.url,
                 [RefUpdate("refs/heads/claim/5", b, c), RefUpdate("refs/heads/w/5-x", b, None)], atomic=True)
    assert not stale.ok and len(stale.rejected()) == 2
    assert "refs/heads/w/5-x" not in remote_refs(remote)
    fresh = push(clone.git, clone.path, clone.url,
                 [RefUpdate("refs/heads/claim/5", b, a), RefUpdate("refs/heads/w/5-x", b, None)], atomic=True)
    assert fresh.ok
    assert remote_refs(remote, "refs/heads/")["refs/heads/w/5-x"] == b


def test_delete_is_pinned_to_expected_sha(cache):
    clone, remote = cache
    a, b = _commit(clone, "a"), _commit(clone, "b")
    push(clone.git, clone.path, clone.url, [RefUpdate("refs/heads/claim/6", a, None)])
    assert not push(clone.git, clone.path, clone.url, [RefUpdate("refs/heads/claim/6", None, b)]).ok
    assert push(clone.git, clone.path, clone.url, [RefUpdate("refs/heads/claim/6", None, a)]).ok
    assert "refs/heads/claim/6" not in remote_refs(remote)


def test_git_error_shows_command_code_and_output(tmp_path):
    with pytest.raises(GitError) as info:
        Git().run("rev-parse", "--verify", "no-such-ref", cwd=tmp_path)
    text = str(info.value)
    assert "git rev-parse --verify no-such-ref exited 128" in text and "fatal" in text
    assert "core.hooksPath" not in text  # forced -c options are not noise in messages


def test_environment_is_scrubbed_and_hooks_never_run(tmp_path, monkeypatch):
    repo = tmp_path / "repo"
    git("init", "--quiet", str(repo))
    hook = repo / ".git" / "hooks" / "pre-commit"
    hook.write_text(f"#!/bin/sh\ntouch {tmp_path}/hook-ran\n")
    hook.chmod(0o755)
    other = tmp_path / "other"
    git("init", "--quiet", str(other))
    monkeypatch.setenv("GIT_DIR", str(other / ".git"))  # must not redirect our git
    monkeypatch.setenv("AGENTMESH_TOKEN", "tok-should-not-leak")
    gitrun = Git(author_name="a1", author_email="a1@x.invalid")
    gitrun.run("commit", "--allow-empty", "-q", "-m", "x", cwd=repo)
    assert not (tmp_path / "hook-ran").exists()
    assert git("log", "--format=%an", cwd=repo, env={"GIT_DIR": str(repo / ".git")}) == "a1"
    env = gitrun.env()
    assert "GIT_DIR" not in env and "AGENTMESH_TOKEN" not in env
    assert env["GIT_CONFIG_GLOBAL"] == "/dev/null" and env["GIT_TERMINAL_PROMPT"] == "0"


def test_timeout_kills_the_whole_process_group(tmp_path):
    """A hung transport helper and its children die with the git call."""
    pidfile = tmp_path / "grandchild.pid"
    ssh = tmp_path / "fake-ssh"
    ssh.write_text(f"#!/bin/sh\nsleep 300 &\necho $! > {pidfile}\nwait\n")
    ssh.chmod(0o755)
    gitrun = Git(timeout=1.0)
    started = time.monotonic()
    with pytest.raises(GitTimeout, match="timed out after 1s"):
        gitrun.run("ls-remote", "ssh://example.invalid/repo.git", env={"GIT_SSH_COMMAND": str(ssh)})
    assert time.monotonic() - started < 10
    pid = int(pidfile.read_text())
    for _ in range(50):
        if not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]:
            break
        time.sleep(0.1)
    else:
        pytest.fail(f"grandchild {pid} survived the timeout")


def test_token_reaches_http_remote_only_through_askpass(tmp_path):
    token = "tok_" + os.urandom(8).hex()
    remote = make_remote(tmp_path / "srv" / "remote.git")
    with git_http(tmp_path / "srv", token=token) as (url, log):
        anonymous = Git()
        with pytest.raises(UserError, match="401"):
            ls_refs(anonymous, f"{url}/remote.git", ["refs/heads/"])
        gitrun = Git(askpass=ensure_askpass(tmp_path / "bin"), token=token, username="agent")
        clone = CacheClone(gitrun, tmp_path / "cache.git", f"{url}/remote.git").ensure()
        clone.fetch(["refs/heads/main"])
        head = clone.resolve("refs/mirror/heads/main")
        result = push(gitrun, clone.path, clone.url, [RefUpdate("refs/heads/claim/1", head, None)])
        assert result.ok and ls_refs(gitrun, clone.url, ["refs/heads/claim/"]).get("refs/heads/claim/1") == head
        assert any(h.startswith("Basic ") for h in log.auth_headers)
    assert remote_refs(remote, "refs/heads/claim/") == {"refs/heads/claim/1": head}
    for path in [tmp_path / "cache.git" / "config", tmp_path / "bin" / "askpass.sh"]:
        assert token not in path.read_text()
    assert token not in " ".join(result.statuses) and token not in str(gitrun)


def test_work_branches_from_hostile_titles_are_names_git_accepts():
    from agentmesh.core.slug import work_branch
    from tests.support import HOSTILE_TITLES

    for title in HOSTILE_TITLES:
        branch = work_branch("host1-a", 42, title)
        Git().run("check-ref-format", "--branch", branch)
        Git().run("check-ref-format", f"refs/heads/{branch}")
