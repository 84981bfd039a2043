"""One error hierarchy; the CLI maps each class to an exit code in one place.

Exit codes: 0 ok, 1 user or config error, 3 internal bug, 4 claim held by
another agent, 75 temporary failure (retry later; EX_TEMPFAIL).
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_USER = 1
EXIT_BUG = 3
EXIT_HELD = 4
EXIT_TEMPORARY = 75


class AgentmeshError(Exception):
    """Base of every error a user may see. The message is one line. Raised as itself (or as a
    subclass that does not override `exit_code`, like GitError) it is a bug: exit 3 with a crash log."""

    exit_code = EXIT_BUG

    def __str__(self) -> str:
        return " ".join(super().__str__().split())


class UserError(AgentmeshError):
    """Bad input, bad config or a refused operation: the user must act."""

    exit_code = EXIT_USER


class ConfigError(UserError):
    pass


class NotHolder(AgentmeshError):
    """This agent does not hold the claim it tried to use; nothing changed."""

    exit_code = EXIT_HELD


class TemporaryError(AgentmeshError):
    """The remote or forge is unreachable, slow or rate-limited: retry later."""

    exit_code = EXIT_TEMPORARY


class RemoteUnavailable(TemporaryError):
    pass


class OutcomeUnknown(TemporaryError):
    """A remote write may or may not have happened; a readback decides."""

