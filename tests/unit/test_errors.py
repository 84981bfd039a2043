"""The error model: every failure class has one exit code, and its place in the tree says which."""

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
from agentmesh.git.run import GitError, GitTimeout


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
