"""How a failed command or daemon step is reported, the same way by every front end.

An error the user can act on (a user error, a held claim, a temporary failure, among them a
state dir that cannot be written) is one line with its exit code. Anything else is a bug: exit 3,
and a redacted crash log (0600) is written: for a command in AGENTMESH_CRASH_DIR, else the state
dir's logs/ once the command knows it, else a private (0700) folder in the user's cache dir; for the
daemon in the state dir's logs/. Never in the shared temporary directory: a traceback can show
paths, issue text and arguments.
"""

from __future__ import annotations

import os
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

from agentmesh import __version__
from agentmesh.core.errors import EXIT_BUG, AgentmeshError
from agentmesh.core.terminal import terminal_text
from agentmesh.host.state import StateLayout, state_failure

CRASH_DIR_ENV = "AGENTMESH_CRASH_DIR"


@dataclass(frozen=True)
class Failure:
    exit_code: int
    message: str  # one line
    crash_log: Path | None = None

    @property
    def is_bug(self) -> bool:
        return self.exit_code == EXIT_BUG


def user_facing(exc: BaseException) -> AgentmeshError | None:
    """The error to show for `exc`, or None when it is a bug."""
    if isinstance(exc, AgentmeshError):
        return exc if exc.exit_code != EXIT_BUG else None
    if isinstance(exc, OSError):
        return state_failure(exc)
    return None


def failure(exc: BaseException, *, crash_dir: Path | None = None) -> Failure:
    """What to tell the user about `exc`; for a bug, the crash log is written first."""
    error = user_facing(exc)
    if error is not None:
        return Failure(error.exit_code, f"error: {error}")
    path = write_crash_log(exc, crash_dir)
    what = str(exc) if isinstance(exc, AgentmeshError) else f"{type(exc).__name__}: {exc}"
    where = f"crash log: {path}" if path is not None else "no crash log could be written: traceback above"
    return Failure(EXIT_BUG, f"internal error: {what} ({where})", path)


def redacted(text: str) -> str:
    """A crash log is shared in bug reports: drop credential-shaped text and the values of
    variables named like credentials (the forge token among them)."""
    from agentmesh.core.secrets import redact

    names = ("TOKEN", "SECRET", "PASSWORD", "KEY")
    values = [v for k, v in os.environ.items() if any(n in k.upper() for n in names) and len(v) >= 8]
    return redact(text, known_secrets=values)


def private_crash_dir() -> Path:
    """`agentmesh/crash` in the user's cache dir (XDG_CACHE_HOME, else ~/.cache)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "agentmesh" / "crash"


def command_crash_dir(state_root: Path | None) -> Path | None:
    """Where a command's crash log goes: AGENTMESH_CRASH_DIR when set, else the logs/ of the state dir
    the command resolved (once it exists: it is created 0700), else None (`write_crash_log` decides)."""
    if os.environ.get(CRASH_DIR_ENV):
        return Path(os.environ[CRASH_DIR_ENV])
    if state_root is None or not state_root.is_dir():
        return None
    return StateLayout(state_root).logs


def write_crash_log(exc: BaseException, directory: Path | None = None) -> Path | None:
    """`<directory>/agentmesh-crash-<time>-<pid>.log`, 0600; without a directory, in AGENTMESH_CRASH_DIR
    or `private_crash_dir()`, kept 0700. None (the traceback on stderr) when it cannot be written."""
    private = directory is None and not os.environ.get(CRASH_DIR_ENV)
    text = redacted("".join(traceback.format_exception(exc)))
    header = redacted(f"agentmesh {__version__}\nargv: {sys.argv!r}\n\n")
    stem = f"agentmesh-crash-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}"
    try:
        directory = directory or Path(os.environ.get(CRASH_DIR_ENV) or private_crash_dir())  # no HOME: RuntimeError
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        if private and (directory.stat().st_mode & 0o077):
            directory.chmod(0o700)  # agentmesh's own folder, made wider by hand or another tool
        for n in range(1, 100):  # a daemon may crash twice within a second
            path = directory / (f"{stem}.log" if n == 1 else f"{stem}-{n}.log")
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                continue
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(header + text)
            return path
    except (OSError, RuntimeError):
        pass
    sys.stderr.write(terminal_text(text))
    return None

