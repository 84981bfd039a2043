"""The error model: every failure class has one exit code, and its place in the tree says which."""

import errno
import os

import pytest

from agentmesh.core.errors import (
    EXIT_BUG,
    EXIT_HELD,
    EXIT_TEMPORARY,
    EXIT_USER,
    AgentmeshError,
    ConfigError,
    NotHolder,
    OutcomeUnknown,
    RemoteUnavailable,
    TemporaryError,
    UserError,
)
from agentmesh.git.remote import remote_failure
from agentmesh.git.run import GitError, GitTimeout, git_error
from agentmesh.host.state import StateDir, StateUnavailable, state_failure
from agentmesh.ops.failures import failure


def test_a_git_timeout_is_a_git_error_and_temporary():
    exc = GitTimeout(["fetch", "origin"], 30)
    assert isinstance(exc, GitError) and isinstance(exc, TemporaryError)
    assert exc.exit_code == EXIT_TEMPORARY and str(exc) == "git fetch origin timed out after 30s"


def test_exit_codes_follow_the_class():
    assert GitError(["status"], 128, "", "fatal: x").exit_code == EXIT_BUG  # git failing where it never should
    assert AgentmeshError("x").exit_code == EXIT_BUG
    assert UserError("x").exit_code == ConfigError("x").exit_code == EXIT_USER
    assert NotHolder("x").exit_code == EXIT_HELD
    assert RemoteUnavailable("x").exit_code == OutcomeUnknown("x").exit_code == EXIT_TEMPORARY


def test_messages_are_one_line():
    assert str(UserError("bad\n  config\tvalue")) == "bad config value"


@pytest.mark.parametrize("stderr,expected", [
    # a repository that moved, was removed or is not exported: an outage at run time
    ("fatal: remote error: access denied or repository not exported: /mesh.git", RemoteUnavailable),
    ("fatal: remote error: no such repository: /mesh.git", RemoteUnavailable),
    (("fatal: '/srv/mesh.git' does not appear to be a git repository\n"
      "fatal: Could not read from remote repository."), RemoteUnavailable),
    ("remote: Repository not found.\nfatal: repository 'https://example.com/t/m.git/' not found", RemoteUnavailable),
    ("fatal: couldn't find remote ref refs/agentmesh/items/7", RemoteUnavailable),
    ("fatal: unable to access 'https://example.com/m.git/': Could not resolve host: example.com", RemoteUnavailable),
    # a lock another git process holds in our own clone
    (("error: cannot lock ref 'refs/mirror/heads/main': Unable to create "
      "'/s/cache.git/refs/mirror/heads/main.lock': File exists."), TemporaryError),
    ("fatal: write error: No space left on device", TemporaryError),
    # only the user can fix these
    ("git@example.com: Permission denied (publickey).\nfatal: Could not read from remote repository.", UserError),
    ("fatal: Authentication failed for 'https://example.com/m.git/'", UserError),
    ("fatal: could not read Username for 'https://example.com': terminal prompts disabled", UserError),
    ("fatal: unable to access 'https://example.com/m.git/': The requested URL returned error: 403", UserError),
])
def test_remote_failures_are_classified_by_what_the_user_can_do(stderr, expected):
    mapped = remote_failure(git_error(["fetch", "u"], 128, "", stderr), "https://tok@example.com/m.git")
    assert type(mapped) is expected or (expected is TemporaryError and isinstance(mapped, TemporaryError)
                                        and not isinstance(mapped, RemoteUnavailable))
    assert "tok" not in str(mapped)


def test_an_unknown_git_failure_stays_a_bug():
    mapped = remote_failure(git_error(["fetch", "u"], 128, "", "fatal: invalid refspec 'x'"), "/srv/m.git")
    assert isinstance(mapped, GitError) and mapped.exit_code == EXIT_BUG


def test_storage_failures_are_temporary_and_name_the_path(tmp_path):
    root = StateDir(tmp_path / "state", "/srv/mesh.git").ensure().root
    inside = str(root / "logs" / "x.log")
    for code, words in ((errno.EROFS, "is read-only"), (errno.ENOSPC, "is full"),
                        (errno.EDQUOT, "is over its disk quota"), (errno.EACCES, "is not writable"),
                        (errno.EPERM, "is not writable")):
        mapped = state_failure(OSError(code, os.strerror(code), inside))
        assert isinstance(mapped, StateUnavailable) and mapped.exit_code == EXIT_TEMPORARY
        assert str(mapped) == f"the file system of {inside} {words}: {os.strerror(code)}"
        assert str(state_failure(OSError(code, os.strerror(code), inside), root)) == (
            f"state dir {root} {words}: {os.strerror(code)}: {inside}")
    assert str(state_failure(OSError(errno.ENOSPC, "No space left on device"))) == (
        "a local disk is full: No space left on device")
    assert state_failure(PermissionError(errno.EPERM, "Operation not permitted")) is None  # e.g. a kill
    assert state_failure(IsADirectoryError(errno.EISDIR, "Is a directory", inside)) is None  # a bug


def test_the_cli_and_the_daemon_report_the_same_way(tmp_path):
    temporary = failure(OSError(errno.EROFS, "Read-only file system", str(tmp_path / "x")))
    assert (temporary.exit_code, temporary.crash_log) == (EXIT_TEMPORARY, None)
    assert temporary.message.startswith("error: the file system of ")
    bug = failure(GitError(["status"], 128, "", "fatal: x"), crash_dir=tmp_path / "logs")
    assert bug.exit_code == EXIT_BUG and bug.crash_log is not None and bug.crash_log.parent == tmp_path / "logs"
    assert bug.message == f"internal error: git status exited 128: fatal: x (crash log: {bug.crash_log})"
    again = failure(ValueError("y"), crash_dir=tmp_path / "logs")  # the same second: a second file
    assert again.crash_log != bug.crash_log and again.message.startswith("internal error: ValueError: y (crash log: ")


def test_a_crash_log_without_a_state_dir_is_private_in_the_cache_dir(tmp_path, monkeypatch):
    monkeypatch.delenv("AGENTMESH_CRASH_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    first = failure(ValueError("boom"))
    assert first.crash_log is not None and first.crash_log.parent == tmp_path / "cache" / "agentmesh" / "crash"
    assert first.crash_log.stat().st_mode & 0o777 == 0o600
    assert first.crash_log.parent.stat().st_mode & 0o777 == 0o700
    first.crash_log.parent.chmod(0o755)  # widened by hand: the next crash narrows agentmesh's folder again
    second = failure(ValueError("again"))
    assert second.crash_log is not None and second.crash_log.parent.stat().st_mode & 0o777 == 0o700
    assert second.crash_log.stat().st_mode & 0o777 == 0o600
