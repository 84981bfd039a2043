"""The one subprocess wrapper for git.

Every git process agentmesh starts goes through `Git.run`, which gives it:
- a scrubbed environment: no system or global config, no hooks, no
  fsmonitor, no credential helpers, no terminal prompts, C locale;
- a timeout that kills git's whole process group (ssh, remote helpers);
- tokens only through an askpass helper that reads an environment variable,
  so a token never appears in argv, in a URL or in `.git/config`;
- errors that show the command, the exit code and the output.
`Git.sealed` is the runner for a worktree an executor has written: no token
and no askpass in its environment, and every filter, diff and merge driver
that configuration defines switched off (see `neutral_drivers`).
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from agentmesh.core.errors import AgentmeshError, TemporaryError
from agentmesh.core.pattern import LazyPattern
from agentmesh.core.record import Record, replace
from agentmesh.host.files import write_atomic
from agentmesh.host.process import ProcessOutcome, run_process, start_process

DEFAULT_TIMEOUT = 60.0

# Variables a git child may inherit. Everything else (GIT_DIR, GIT_INDEX_FILE,
# GIT_CONFIG_*, forge tokens, ...) is dropped, so the caller's shell can't
# redirect git at another repository or smuggle config in.
_PASSTHROUGH = frozenset((
    "PATH",
    "HOME",
    "TMPDIR",
    "USER",
    "LOGNAME",
    "TZ",
    "SSH_AUTH_SOCK",
    "SSH_AGENT_PID",
    "GIT_SSH",
    "GIT_SSH_COMMAND",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "GIT_SSL_CAINFO",
))

# Config forced on every call; command-line -c beats every config file.
_SAFE_CONFIG = (
    "core.hooksPath=/dev/null",
    "core.fsmonitor=false",
    "core.askPass=",
    "credential.helper=",
    "protocol.version=2",
    "protocol.ext.allow=never",
    "advice.detachedHead=false",
    "init.defaultBranch=main",
    "gc.auto=0",
    "maintenance.auto=false",
)
_SAFE_ARGS = tuple(arg for item in _SAFE_CONFIG for arg in ("-c", item))  # what every call's argv starts with

TOKEN_ENV = "AGENTMESH_GIT_TOKEN"
USERNAME_ENV = "AGENTMESH_GIT_USERNAME"
ASKPASS_NAME = "askpass.sh"
GLOBAL_CONFIG_NAME = "gitconfig"

_ASKPASS_SCRIPT = f"""#!/bin/sh
# agentmesh askpass: answers git's prompts from the environment only.
case "$1" in
  Username*) printf '%s\\n' "${{{USERNAME_ENV}:-x-access-token}}" ;;
  *) printf '%s\\n' "${{{TOKEN_ENV}}}" ;;
esac
"""

# Config keys that make git run a program for a path, by any driver name: `-c` cannot unset them, so
# a sealed runner sets each to what git takes for "no command".
_DRIVER_KEY = LazyPattern(r"(?P<section>filter|diff|merge)\.(?P<name>.+)\.(?P<key>[a-z]+)")
_NEUTRAL = {"filter": {"clean": "", "smudge": "", "process": "", "required": "false"},
            "diff": {"command": "", "textconv": ""},
            "merge": {"driver": ""}}
# Config a sealed runner forces on top of _SAFE_CONFIG: no attributes from the host user's files, and
# the signing program git's own (commit_tree signs with it, holding the key's path).
_SEALED_CONFIG = (("core.attributesFile", "/dev/null"), ("gpg.ssh.program", "ssh-keygen"))


def neutral_drivers(config_keys: Iterable[str]) -> list[tuple[str, str]]:
    """(key, value) pairs that switch off every filter, diff and merge driver among `config_keys`
    (as `git config --list --name-only` prints them): git runs no empty command, and a required
    filter that runs none fails nothing."""
    names = {(m["section"], m["name"]) for k in config_keys if (m := _DRIVER_KEY.fullmatch(k))}
    return [(f"{section}.{name}.{key}", value) for section, name in sorted(names)
            for key, value in _NEUTRAL[section].items()]


_URL_USERINFO = LazyPattern(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)[^/@\s]*@")


def redact_url(text: str) -> str:
    """Strip `user:password@` from any URL in text."""
    return _URL_USERINFO.sub(r"\g<scheme>***@", text)


def ensure_askpass(directory: Path) -> Path:
    """Write the askpass helper into directory (it holds no secret) and return its path."""
    return _write_if_changed(directory / ASKPASS_NAME, _ASKPASS_SCRIPT, 0o700)


def _write_if_changed(path: Path, text: str, mode: int = 0o600) -> Path:
    if not path.exists() or path.read_text() != text:
        write_atomic(path, text, mode)
    return path


def ensure_global_config(directory: Path, trusted: list[Path]) -> Path:
    """agentmesh's private global git config: only `safe.directory` for local remotes.

    The user's own global config is ignored on purpose (hooks, helpers,
    rewrites), so a shared bare repository owned by another user would fail
    git's ownership check. Naming it here trusts exactly the remote the user
    configured; it also reaches upload-pack and receive-pack, which do not
    inherit `-c` options on local transports.
    """
    text = "".join(f"[safe]\n\tdirectory = {_quote_config(str(p))}\n" for p in trusted)
    return _write_if_changed(directory / GLOBAL_CONFIG_NAME, text)


def _quote_config(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


class GitResult(Record):
    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str


class GitError(AgentmeshError):
    """git exited non-zero. Callers that expect failures classify it further."""

    def __init__(self, args: Sequence[str], returncode: int, stdout: str, stderr: str):
        self.args_ = tuple(args)
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
        output = redact_url((stderr.strip() or stdout.strip()).replace("\n", " | "))
        if len(output) > 600:
            output = "..." + output[-600:]
        super().__init__(f"{format_command(args)} exited {returncode}: {output or '(no output)'}")


class GitTransient(GitError, TemporaryError):
    """git failed for a reason that passes by itself: a lock another git process holds (git waits
    only briefly for a ref lock), a ref moved under a compare-and-swap, a full or read-only disk."""


# git's own words for those reasons (LC_ALL=C); a persistent failure, like a ref that already
# exists or a directory/file conflict between ref names, matches none of them
_TRANSIENT = LazyPattern(
    r"unable to create '[^']*\.lock': file exists"
    r"|cannot lock ref '[^']*': is at [0-9a-f]+ but expected"
    r"|no space left on device|disk quota exceeded|read-only file system",
    re.IGNORECASE,
)


def git_error(args: Sequence[str], returncode: int, stdout: str, stderr: str) -> GitError:
    """The GitError for a failed git command: GitTransient when git's output says it is temporary."""
    cls = GitTransient if _TRANSIENT.search(stderr) else GitError
    return cls(args, returncode, stdout, stderr)


class GitTimeout(GitError, TemporaryError):
    """git did not finish in time (its process group was killed): a git failure, and a temporary one."""

    def __init__(self, args: Sequence[str], timeout: float):
        self.args_ = tuple(args)
        self.returncode, self.stdout, self.stderr = -9, "", ""
        self.timeout = timeout
        AgentmeshError.__init__(self, f"{format_command(args)} timed out after {timeout:g}s")


def format_command(args: Sequence[str]) -> str:
    """The command as a user would type it, without the forced -c options."""
    shown = ["git"]
    skip = False
    for arg in args:
        if skip:
            skip = False
            continue
        if arg == "-c":
            skip = True
            continue
        shown.append(redact_url(arg))
    return " ".join(shown)


class Git(Record):
    """Runs git. Holds only immutable settings; safe to share."""

    _unshown = ("token",)

    askpass: Path | None = None
    global_config: Path | None = None  # agentmesh's own, never the user's ~/.gitconfig
    token: str | None = None
    username: str | None = None
    author_name: str = "agentmesh"
    author_email: str = "agentmesh@agentmesh.invalid"
    timeout: float = DEFAULT_TIMEOUT
    signing_key: Path | None = None  # every commit this Git writes is SSH-signed with it
    forced: tuple[tuple[str, str], ...] = ()  # (key, value) set for every call, through the environment
    # variables every call sets on top of the scrubbed environment: a pre-receive hook's quarantine
    environment: tuple[tuple[str, str], ...] = ()

    def commit_tree(self, tree: str, parents: Sequence[str], message: str, *, cwd: Path | str) -> str:
        """Write one commit object (signed when this Git has a signing key) and return its sha."""
        signing = ("-c", "gpg.format=ssh", "-c", f"user.signingKey={self.signing_key}") if self.signing_key else ()
        args = [*signing, "commit-tree", *(["-S"] if self.signing_key else []), tree]
        for parent in parents:
            args += ["-p", parent]
        return self.run(*args, cwd=cwd, input=message).stdout.strip()

    def sealed(self, forced: Iterable[tuple[str, str]] = ()) -> Git:
        """This runner for local work in a worktree an executor has written: no token, no askpass,
        the host user's attributes ignored, and `forced` (neutral_drivers) on top."""
        return replace(self, token=None, username=None, askpass=None,
                       forced=(*_SEALED_CONFIG, *forced))

    def keygen_env(self) -> dict[str, str]:
        """The environment of ssh-keygen (signing, verifying): git's, less what only a push needs (the forge
        token, its user name, the askpass helper that hands them out)."""
        env = self.env()
        for name in (TOKEN_ENV, USERNAME_ENV, "GIT_ASKPASS"):
            env.pop(name, None)
        return env

    def env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        environ = os.environ  # by name, decoding only the values kept (items() decoded all of them), per git call
        env = {k: environ[k] for k in environ if k in _PASSTHROUGH}
        env.update(
            {
                "LC_ALL": "C",
                "LANGUAGE": "C",
                "GIT_CONFIG_NOSYSTEM": "1",
                "GIT_CONFIG_GLOBAL": str(self.global_config or "/dev/null"),
                "GIT_TERMINAL_PROMPT": "0",
                "GCM_INTERACTIVE": "never",
                "SSH_ASKPASS_REQUIRE": "never",
                "GIT_AUTHOR_NAME": self.author_name,
                "GIT_AUTHOR_EMAIL": self.author_email,
                "GIT_COMMITTER_NAME": self.author_name,
                "GIT_COMMITTER_EMAIL": self.author_email,
            }
        )
        env.setdefault("GIT_SSH_COMMAND", "ssh -o BatchMode=yes")
        if self.askpass is not None:
            env["GIT_ASKPASS"] = str(self.askpass)
            if self.token:
                env[TOKEN_ENV] = self.token
            if self.username:
                env[USERNAME_ENV] = self.username
        if self.forced:
            # GIT_CONFIG_KEY_n, unlike -c, takes any key: a driver name may hold a '='
            env["GIT_CONFIG_COUNT"] = str(len(self.forced))
            for i, (key, value) in enumerate(self.forced):
                env[f"GIT_CONFIG_KEY_{i}"], env[f"GIT_CONFIG_VALUE_{i}"] = key, value
        env.update(self.environment)
        if extra:
            env.update(extra)
        return env

    def run(
        self,
        *args: str,
        cwd: Path | str | None = None,
        input: str | bytes | None = None,
        timeout: float | None = None,
        check: bool = True,
        env: Mapping[str, str] | None = None,
    ) -> GitResult:
        argv, returncode, out, err = self._exec(args, cwd, input, timeout, env)
        result = GitResult(argv, returncode, out.decode("utf-8", "replace"), err.decode("utf-8", "replace"))
        if check and returncode != 0:
            raise git_error(argv, returncode, result.stdout, result.stderr)
        return result

    def version(self) -> str:
        """What `git --version` prints, e.g. `git version 2.39.5`."""
        return self.run("--version", timeout=30).stdout.strip()

    def run_bytes(
        self,
        *args: str,
        cwd: Path | str | None = None,
        input: bytes | None = None,
        timeout: float | None = None,
        env: Mapping[str, str] | None = None,
    ) -> bytes:
        """Like run(check=True) but returns raw stdout, for protocol and blob data."""
        argv, returncode, out, err = self._exec(args, cwd, input, timeout, env)
        if returncode != 0:
            raise git_error(argv, returncode, "", err.decode("utf-8", "replace"))
        return out

    def start(self, *args: str, cwd: Path | str | None = None) -> tuple[tuple[str, ...], subprocess.Popen]:
        """Start a git process that runs alongside this one, fed through pipes (`cat-file --batch-command`,
        git/batch.py), with the forced config and the environment of every `run`: (its argv without `git`,
        as GitError takes it; the process, in its own process group, stdin and stdout and stderr piped)."""
        argv = (*_SAFE_ARGS, *args)
        try:
            return argv, start_process(["git", *argv], cwd=cwd, env=self.env(), capture=True, stdin_pipe=True)
        except OSError as exc:
            raise GitError(argv, 127, "", f"cannot run git: {exc}") from None

    def _exec(self, args, cwd, input, timeout, env) -> tuple[tuple[str, ...], int, bytes, bytes]:
        argv = [*_SAFE_ARGS, *args]
        timeout = timeout or self.timeout
        if isinstance(input, str):
            input = input.encode()
        # the hot path: one blocking wait, SIGKILL to git's helpers (ssh, remote helpers) only on
        # timeout, and nothing reaped after an exit (an ssh ControlPersist master may outlive git)
        done = run_process(["git", *argv], cwd=cwd, env=self.env(env), input=input, capture=True, timeout=timeout,
                           grace=0, reap_group=False)
        if done.outcome is ProcessOutcome.UNAVAILABLE:
            raise GitError(argv, 127, "", f"cannot run git: {done.error}")
        if done.outcome is ProcessOutcome.TIMEOUT:
            raise GitTimeout(argv, timeout)
        assert done.returncode is not None  # it ran: only an unavailable program has none
        return tuple(argv), done.returncode, done.stdout, done.stderr
