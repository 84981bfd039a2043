"""Executors: the programs that do the work in a worktree (Claude Code, Codex, aider, a script).

The executor is the least trusted process agentmesh starts: it reads text
from the issue tracker. So it runs
- from an argv list, never through a shell; the task file, worktree and
  issue number arrive through placeholders that agentmesh fills in;
- with a scrubbed environment: no forge token, only what the host config
  passes through explicitly (an executor's own API key, say);
- in its own process group, with a timeout; on timeout, halt or a lost claim
  the whole group is killed, grandchildren included;
- with an empty private HOME (XDG directories inside it), so nothing finds
  the host user's dotfiles by looking in $HOME;
- optionally in a bubblewrap sandbox that has nothing to leak: it sees only
  the system directories (/usr, /etc, ...), the installation of the program
  it runs (and of its interpreter), the worktree (writable) with its
  repository (read-only) and the task file. Not the real HOME, not the
  agent's state dir, not the host config, `~/.ssh` or `~/.config`; no network
  unless allowed; its own PID namespace (so nothing outlives it).
stdout and stderr go to a per-run log file. The host commits and pushes
outside the sandbox afterwards.
"""

from __future__ import annotations

import json
import os
import posixpath
import re
import shlex
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property, partial
from pathlib import Path, PurePath

from agentmesh.core.cli_output import parse_cli_output
from agentmesh.core.errors import ConfigError, TemporaryError
from agentmesh.core.pattern import LazyPattern
from agentmesh.core.public import COMMAND_ECHO
from agentmesh.host.files import write_atomic
from agentmesh.host.process import ProcessOutcome, kill_pidfile_group, log_tail, run_process, write_pidfile

PROMPT = "Read the task in {task_file} and make the change it asks for in this repository. Do not commit."

# Documented command lines; `{...}` are filled by agentmesh, never by a shell. Each flag is checked
# against the real CLI's --help (tests/integration/test_executor_presets.py).
PRESETS: dict[str, list[str]] = {
    "claude-code": ["claude", "-p", PROMPT, "--output-format", "json", "--permission-mode", "acceptEdits"],
    # `codex exec` never asks for approval; workspace-write lets its commands write the worktree only
    "codex": ["codex", "exec", "--sandbox", "workspace-write", PROMPT],
    # --yes-always would also say yes to analytics; the update check needs a network the sandbox lacks
    "aider": ["aider", "--yes-always", "--no-auto-commits", "--no-gitignore", "--no-check-update",
              "--no-show-release-notes", "--no-analytics", "--message-file", "{task_file}"],
    "demo": [sys.executable, "-m", "agentmesh.agent.demo", "{task_file}", "{worktree}"],
}
REVIEW_PROMPT = ("Read the review task in {task_file} and answer as it says, ending with the verdict JSON object "
                 "as your final message. Do not change any file.")
# The presets as LLM reviewers (agent/llm_review.py): an output whose final message is machine-readable
# (core/llm_review.py), and no edits. The others are run as they are.
REVIEW_PRESETS: dict[str, list[str]] = {
    **PRESETS,
    "claude-code": ["claude", "-p", REVIEW_PROMPT, "--output-format", "json"],
    "codex": ["codex", "exec", "--json", "--sandbox", "read-only", REVIEW_PROMPT],
}
# Files a preset leaves in the worktree that are not part of the change (git pathspec globs): never committed
SCRATCH: dict[str, tuple[str, ...]] = {
    "aider": (".aider.chat.history.md", ".aider.input.history", ".aider.llm.history", ".aider.tags.cache.v*/**"),
}
# The presets that call a hosted model: in the sandbox they need executor.allow_network
NEEDS_NETWORK = frozenset({"claude-code", "codex", "aider"})
INSTALL_HINTS = {
    "claude-code": "npm install -g @anthropic-ai/claude-code",
    "codex": "npm install -g @openai/codex",
    "aider": "pipx install aider-chat",
}
WORKTREE_PREFIX = "{worktree}/"

PROBE_SECONDS = 30  # a bwrap probe slower than this tells nothing of the sandbox (a loaded host)
PROBE_KEPT_SECONDS = 600  # how long a run's report and pre-claim check trust the last good probe

# What an executor may inherit from the agent's environment. Everything else,
# forge tokens first of all, is dropped; HOME and the XDG directories are its own.
_BASE_ENV = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TERM", "TZ", "USER", "LOGNAME", "TMPDIR")
_PLACEHOLDER = LazyPattern(r"\{([a-z_]+)\}")
# A git identity for tools that insist on one: aider otherwise writes one into the repository's
# config, which the sandbox keeps read-only (and an executor never commits: the agent does).
GIT_IDENTITY = {"GIT_CONFIG_COUNT": "2", "GIT_CONFIG_KEY_0": "user.name", "GIT_CONFIG_VALUE_0": "agentmesh executor",
                "GIT_CONFIG_KEY_1": "user.email", "GIT_CONFIG_VALUE_1": "executor@agentmesh.invalid"}

# The sandbox's view of the host: these system directories read-only (a symlink stays a symlink,
# as /bin -> usr/bin on a merged /usr), nothing else unless named below.
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib64", "/lib32", "/libx32", "/etc")
_SYSTEM_PATHS = tuple((name, Path(name)) for name in SYSTEM_DIRS)
SANDBOX_HOME = "/tmp/home"  # on the sandbox's own /tmp: empty at every start, gone at the end
# Corners of a HOME that hold credentials: never shown, even when a program is installed next to them.
HOME_SECRETS = (".ssh", ".config", ".gnupg", ".aws", ".azure", ".kube", ".docker", ".netrc", ".git-credentials",
                ".gitconfig", ".npmrc", ".pypirc", ".password-store", ".pki", ".local/state", ".local/share/keyrings",
                ".cargo/credentials", ".cargo/credentials.toml", ".claude", ".claude.json", ".codex")
# What of an installation prefix is bound when the prefix itself holds something private (~/.local)
_PREFIX_MEMBERS = ("bin", "lib", "lib64", "lib32", "libexec", "pyvenv.cfg")


@dataclass(frozen=True)
class ExecutorSpec:
    """One resolved executor: argv template, limits and sandbox mode."""

    name: str
    argv: tuple[str, ...]
    timeout_seconds: float
    sandbox: str = "auto"  # off | auto | required
    allow_network: bool = False
    env_passthrough: tuple[str, ...] = ()
    scratch: tuple[str, ...] = ()  # what it leaves in the worktree besides the change (SCRATCH)


@dataclass(frozen=True)
class Private:
    """What an executor must never see: the real HOME (never shown whole: only a program installed
    in it, without its HOME_SECRETS), and `paths` never shown at all (the agent's state dir, the host
    config, keys). The worktree, its repository and the task file are shown although they live in
    the state dir."""

    home: Path = field(default_factory=Path.home)
    paths: tuple[Path, ...] = ()

    def hidden(self) -> list[Path]:
        return list(self._hidden)

    @cached_property
    def _hidden(self) -> tuple[Path, ...]:  # of the frozen fields only: a sandbox's binds ask it ~20 times
        return (*self.paths, *(self.home / name for name in HOME_SECRETS))


@dataclass(frozen=True)
class ExecResult:
    name: str
    returncode: int | None
    outcome: ProcessOutcome
    duration_s: float
    sandboxed: bool
    log_path: Path
    cost_usd: float | None = None
    stop_reason: str | None = None
    message: str | None = None  # the CLI's own words about a failure (core/cli_output.py)

    @property
    def ok(self) -> bool:
        return self.outcome is ProcessOutcome.OK


def resolve(kind: str, *, command: Sequence[str] | None = None, chain: Sequence[str] | None = None,
            script: Sequence[str] | None = None, timeout_seconds: float = 3600, sandbox: str = "auto",
            allow_network: bool = False, env_passthrough: Sequence[str] = (),
            presets: Mapping[str, Sequence[str]] = PRESETS) -> list[ExecutorSpec]:
    """The executors to try, in order (several only for `fallback`); `presets`: REVIEW_PRESETS for a reviewer."""
    def spec(name: str, argv: Sequence[str]) -> ExecutorSpec:
        if not argv:
            raise ConfigError(f"executor {name}: empty command")
        return ExecutorSpec(name, tuple(argv), timeout_seconds, sandbox, allow_network, tuple(env_passthrough),
                            SCRATCH.get(name, ()))

    if kind == "command":
        if not command:
            raise ConfigError("executor.command: is required for executor kind command")
        return [spec("command", command)]
    if kind == "script":
        if not script:
            raise ConfigError("executor kind script needs `executor_script` in .agentmesh/mesh.yaml")
        return [spec("script", script)]
    if kind == "fallback":
        names = list(chain or [])
        unknown = [n for n in names if n not in presets]
        if not names or unknown:
            raise ConfigError(f"executor.chain: must list presets from {sorted(presets)}, got {names}")
        return [spec(n, presets[n]) for n in names]
    if kind in presets:
        return [spec(kind, presets[kind])]
    raise ConfigError(f"executor.kind: unknown executor {kind!r}")


def fill(argv: Sequence[str], values: Mapping[str, str]) -> list[str]:
    """Replace `{name}` placeholders in one pass, not with str.format: a value
    holding braces is never expanded again, and no shell ever sees the result."""
    def one(match: re.Match) -> str:
        return values.get(match[1], match[0])

    return [_PLACEHOLDER.sub(one, arg) for arg in argv]


def executor_env(base: Mapping[str, str], passthrough: Sequence[str], forbidden: Sequence[str],
                 extra: Mapping[str, str]) -> dict[str, str]:
    env = {k: v for k, v in base.items() if k in _BASE_ENV or k in passthrough}
    for name in forbidden:
        env.pop(name, None)
    env.update(extra)
    return env


class SandboxProbeInterrupted(TemporaryError):
    """The bwrap probe timed out or a signal ended it: no verdict on the sandbox either way. Never "no
    sandbox": with `sandbox: auto` that would run the executor unsandboxed, and a gate would fail a good PR."""


def bwrap_available() -> str | None:
    """Why bubblewrap cannot run here, or None when it can. Raises SandboxProbeInterrupted (exit 75) when
    the probe tells neither."""
    exe = shutil.which("bwrap")
    if exe is None:
        return "bwrap is not installed (apt-get install bubblewrap)"
    probe = run_process([exe, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--unshare-pid", "true"],
                        capture=True, timeout=PROBE_SECONDS)
    if probe.outcome is ProcessOutcome.TIMEOUT:
        raise SandboxProbeInterrupted(f"the bwrap probe timed out after {PROBE_SECONDS}s; try again later")
    if probe.returncode is not None and probe.returncode < 0:
        raise SandboxProbeInterrupted(f"the bwrap probe was ended by signal {-probe.returncode}; try again later")
    if probe.outcome is ProcessOutcome.UNAVAILABLE:
        return f"bwrap cannot start: {probe.error}"
    if probe.returncode != 0:
        stderr = probe.stderr.decode("utf-8", "replace").strip()
        return f"bwrap cannot start: {stderr.splitlines()[-1] if stderr else probe.returncode}"
    return None


def remembered_bwrap_problem(path: Path, now: float) -> str | None:
    """`bwrap_available` for a run's report and its check before claiming: a good verdict is remembered in
    `path` (the state dir) for PROBE_KEPT_SECONDS of wall time while `bwrap` is the same file, so a daemon's
    or cron's every run does not start a sandbox to say so again. An executor or a gate probes anew right
    before it starts (`sandbox_problem`): a sandbox broken meanwhile is still never trusted."""
    exe = shutil.which("bwrap")
    stamp = None
    if exe is not None:
        try:
            st = os.stat(exe)
            stamp = [exe, st.st_ino, st.st_mtime_ns, st.st_size]
            kept = json.loads(path.read_text())
            if kept["bwrap"] == stamp and 0 <= now - float(kept["at"]) < PROBE_KEPT_SECONDS:
                return None
        except (OSError, ValueError, KeyError, TypeError):
            pass  # not remembered (or damaged: it is only a cache)
    problem = bwrap_available()
    if problem is None and stamp is not None:
        try:
            write_atomic(path, json.dumps({"bwrap": stamp, "at": now}))
        except OSError:
            pass  # the next run probes again
    return problem


def _resolved(path: Path) -> Path:
    return Path(os.path.realpath(path))


def find_program(program: str, path_env: str | None, cwd: Path) -> str | None:
    """Where an executor's argv[0] is: a bare name on PATH, a path relative to the directory it starts
    in (the worktree); None when there is no executable file there."""
    if "/" not in program:
        return shutil.which(program, path=path_env)
    path = os.path.join(cwd, program)  # an absolute program stays itself
    return path if os.path.isfile(path) and os.access(path, os.X_OK) else None


def _shebang(program: Path) -> list[str]:
    """The interpreter and options a script's `#!` line names, `env` and its options dropped; [] for a binary."""
    try:
        with open(program, "rb") as handle:
            first = handle.readline(256)
    except OSError:
        return []
    if not first.startswith(b"#!"):
        return []
    words = first[2:].decode("utf-8", "replace").split()
    if words and Path(words[0]).name == "env":
        words = [w for w in words[1:] if not w.startswith("-") and "=" not in w]
    return words


def _interpreter(program: Path, path_env: str | None) -> str | None:
    """The interpreter a script's `#!` line names (through `env`), found on PATH; None for a binary."""
    words = _shebang(program)
    return shutil.which(words[0], path=path_env) if words else None


def _installations(program: str | None, path_env: str | None) -> list[Path]:
    """Where the program and its interpreter are installed: the prefix of each as found on PATH and
    as its symlinks resolve (a venv's bin/python is a link into the Python it was made from)."""
    found: list[Path] = []
    for exe in [program, program and _interpreter(_resolved(Path(program)), path_env)]:
        if exe:
            found += [Path(os.path.abspath(exe)).parent.parent, _resolved(Path(exe)).parent.parent]
    return found


def _within(path: PurePath, base: PurePath) -> bool:
    """`path.is_relative_to(base)`, which in pathlib parses `base` again and raises and catches an exception
    for every no: a sandbox's binds ask it hundreds of times (~3 ms an executor start)."""
    parts = base.parts
    return path.parts[:len(parts)] == parts if parts else not path.anchor


def _system_dir(path: Path) -> bool:
    return any(_within(path, base) and os.path.isdir(name) for name, base in _SYSTEM_PATHS)


def _private(path: Path, private: Private) -> bool:
    """Whether showing `path` would show HOME whole, or something hidden."""
    return _within(private.home, path) or any(_within(path, h) for h in private.hidden())


def install_binds(prefix: Path, private: Private) -> list[Path]:
    """What of an installation prefix the sandbox may show: all of it, or, when it holds something
    private (pip's --user prefix ~/.local holds the state dir), only its programs and libraries."""
    resolved = _resolved(prefix)
    if not resolved.is_dir() or _private(resolved, private) or _private(prefix, private):
        return []
    if not any(_within(h, resolved) or _within(h, prefix) for h in private.hidden()):
        return [resolved]
    return [m for m in (resolved / name for name in _PREFIX_MEMBERS) if m.exists() and not _private(m, private)
            and not any(_within(h, m) for h in private.hidden())]


def _git_common_dir(worktree: Path) -> Path | None:
    """The repository a linked worktree's `.git` file points into (its objects and refs)."""
    try:
        text = (worktree / ".git").read_text()
    except (OSError, UnicodeDecodeError):
        return None
    if not text.startswith("gitdir: "):
        return None
    gitdir = Path(text[len("gitdir: "):].strip())
    return gitdir.parent.parent if gitdir.parent.name == "worktrees" else gitdir


def _system_binds(private: Private, *, allow_network: bool) -> list[str]:
    args: list[str] = []
    for name in SYSTEM_DIRS:
        if os.path.islink(name):
            args += ["--symlink", os.readlink(name), name]
        elif os.path.isdir(name):
            args += ["--ro-bind", name, name]
    resolv = _resolved(Path("/etc/resolv.conf"))
    if allow_network and resolv.exists() and not _system_dir(resolv):  # systemd-resolved: /run/systemd/resolve
        args += ["--ro-bind", str(resolv.parent), str(resolv.parent)]
    # anything private that a system directory holds (a config in /etc, HOME under /usr) is covered
    for path in sorted({_resolved(p) for p in [private.home, *private.hidden()] if p.exists()}):
        if _system_dir(path) and path != Path("/"):
            args += ["--tmpfs", str(path)] if path.is_dir() else ["--ro-bind", "/dev/null", str(path)]
    return args


def shown_installations(program: str | None, path_env: str | None, private: Private,
                        worktree: Path | None = None) -> list[Path]:
    """What the sandbox shows read-only besides the system directories: the installations of the
    program (as `find_program` found it) and its interpreter, this Python and this package. A program
    in the worktree is shown as part of it."""
    if program is not None and worktree is not None and _within(_resolved(Path(program)), _resolved(worktree)):
        program = None
    shown: list[Path] = []
    prefixes = [*_installations(program, path_env), Path(sys.prefix), Path(__file__).resolve().parents[1]]
    for path in sorted({b for p in prefixes if not _system_dir(_resolved(p)) for b in install_binds(p, private)}):
        if not any(_within(path, s) for s in shown):
            shown.append(path)
    return shown


def sandbox_argv(argv: Sequence[str], worktree: Path, task_file: Path, *, allow_network: bool,
                 private: Private | None = None, path_env: str | None = None) -> list[str]:
    """bwrap around `argv`: it sees the system directories, the program's installation, this Python
    and package (the demo executor), the worktree (writable) and its repository and the task file
    (read-only), and none of `private`."""
    private = private or Private()
    wrapped = ["bwrap", "--die-with-parent", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--new-session",
               "--cap-drop", "ALL", *_system_binds(private, allow_network=allow_network),
               "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp", "--tmpfs", "/var/tmp", "--dir", SANDBOX_HOME]
    for path in shown_installations(find_program(argv[0], path_env, worktree), path_env, private, worktree):
        wrapped += ["--ro-bind", str(path), str(path)]
    common = _git_common_dir(worktree)
    if common is not None and common.is_dir():
        wrapped += ["--ro-bind", str(common), str(common)]
    wrapped += ["--bind", str(worktree), str(worktree), "--ro-bind", str(task_file), str(task_file)]
    if (worktree / ".git").exists():
        wrapped += ["--ro-bind", str(worktree / ".git"), str(worktree / ".git")]
    if not allow_network:
        wrapped.append("--unshare-net")
    return [*wrapped, "--chdir", str(worktree), "--", *argv]


@contextmanager
def private_home(sandboxed: bool) -> Iterator[dict[str, str]]:
    """HOME and the XDG directories of one run: on the sandbox's own /tmp, or, unsandboxed, a fresh
    directory removed afterwards. Either way empty: no dotfile of the host user is found through it."""
    if sandboxed:
        yield _home_env(SANDBOX_HOME, tmp="/tmp")
        return
    home = tempfile.mkdtemp(prefix="agentmesh-home-")
    try:
        yield _home_env(home)
    finally:
        shutil.rmtree(home, ignore_errors=True)


def _home_env(home: str, tmp: str | None = None) -> dict[str, str]:
    env = {"HOME": home, "XDG_CONFIG_HOME": f"{home}/.config", "XDG_CACHE_HOME": f"{home}/.cache",
           "XDG_DATA_HOME": f"{home}/.local/share", "XDG_STATE_HOME": f"{home}/.local/state"}
    return env | ({"TMPDIR": tmp} if tmp else {})


def kill_leftover(pidfile: Path) -> bool:
    """Kill the process group of an executor whose agent crashed; True if one was still running.

    The executor runs in its own session, so SIGKILL on the agent leaves it
    alive; the next run of the agent finds its pidfile and finishes the job.
    The pidfile records the start time, so a reused pid is never killed.
    """
    return kill_pidfile_group(pidfile)


@dataclass(frozen=True)
class StartProblem:
    """Why an executor cannot start on this host, and what the operator does about it."""

    name: str
    reason: str
    fix: str

    def __str__(self) -> str:
        return f"executor {self.name} cannot start: {self.reason}; fix: {self.fix}"


def _program_problem(spec: ExecutorSpec, path_env: str | None,
                     repo_mode: Callable[[str], str | None]) -> tuple[str | None, StartProblem | None]:
    """(where argv[0] is, None) or (None, why it cannot be found). A relative path is in the worktree,
    so it is looked up in the repository the worktree is made from (`repo_mode`: a file's git mode)."""
    program = spec.argv[0]
    relative = program.removeprefix(WORKTREE_PREFIX)
    if _PLACEHOLDER.search(relative):
        return None, None  # known only when it runs
    if relative != program or ("/" in program and not program.startswith("/")):
        path = posixpath.normpath(relative)
        mode = None if path.startswith("../") else repo_mode(path)
        if mode is None:
            return None, StartProblem(spec.name, f"{program} is not a file in the repository",
                                      "commit the script through a PR, or fix its path (relative to the repository)")
        if mode not in ("100755", "120000"):
            return None, StartProblem(spec.name, f"{program} is not executable in the repository",
                                      f"git update-index --chmod=+x {path}, through a PR")
        return None, None
    found = find_program(program, path_env, Path("/"))
    if found is None:
        where = "does not exist or is not executable" if "/" in program else \
            f"is not on the PATH executors get ({path_env or 'PATH is unset'})"
        fix = INSTALL_HINTS.get(spec.name, "install it") + ", and put its directory on the PATH cron or systemd gives"
        return None, StartProblem(spec.name, f"{program!r} {where}", fix)
    return found, None


def _interpreter_problem(spec: ExecutorSpec, program: str, path_env: str | None) -> StartProblem | None:
    words = _shebang(_resolved(Path(program)))
    if words and _interpreter(_resolved(Path(program)), path_env) is None:
        return StartProblem(spec.name, f"{program} runs with {words[0]!r}, which is not on the PATH executors get "
                                       f"({path_env or 'PATH is unset'})",
                            f"install {Path(words[0]).name} or put its directory on that PATH")
    return None


def _sandbox_problem(spec: ExecutorSpec, program: str, path_env: str | None, private: Private) -> StartProblem | None:
    """A program installed where the sandbox shows nothing (HOME itself, a hidden directory), or a
    hosted model's CLI with no network."""
    shown = shown_installations(program, path_env, private)
    for exe in [program, _interpreter(_resolved(Path(program)), path_env)]:
        where = _resolved(Path(exe)) if exe else None
        if where is not None and not _system_dir(where) and not any(_within(where, s) for s in shown):
            return StartProblem(spec.name, f"{where} is in a private place the sandbox does not show",
                                "install it elsewhere (/usr/local, /opt or a venv of its own)")
    if spec.name in NEEDS_NETWORK and not spec.allow_network:
        return StartProblem(spec.name, "it calls its model's API, but the sandbox has no network",
                            "set executor.allow_network: true (and its API key in executor.env_passthrough)")
    return None


def start_problem(spec: ExecutorSpec, *, path_env: str | None, private: Private, bwrap_problem: str | None,
                  repo_mode: Callable[[str], str | None]) -> StartProblem | None:
    """Why `spec` cannot start on this host, checked before anything is claimed: its program on the
    PATH it will get (or in the repository), the interpreter its `#!` line names, what the sandbox
    shows it; None when it can start. `bwrap_problem`: `sandbox_problem(spec.sandbox)`."""
    if bwrap_problem is not None and spec.sandbox == "required":
        return StartProblem(spec.name, f"executor.sandbox is required but {bwrap_problem}",
                            "install bubblewrap and allow unprivileged user namespaces")
    program, problem = _program_problem(spec, path_env, repo_mode)
    if problem is not None or program is None:
        return problem
    problem = _interpreter_problem(spec, program, path_env)
    if problem is None and spec.sandbox != "off" and bwrap_problem is None:
        problem = _sandbox_problem(spec, program, path_env, private)
    return problem


def sandbox_problem(mode: str) -> str | None:
    """Why executors and gates of a host with this `executor.sandbox` would run unsandboxed; None when
    they run in bwrap, or the host turned the sandbox off on purpose."""
    return None if mode == "off" else bwrap_available()


def run(
    spec: ExecutorSpec,
    *,
    worktree: Path,
    task_file: Path,
    issue: int,
    log_path: Path,
    forbidden_env: Sequence[str] = (),
    should_stop: Callable[[], str | None] = lambda: None,
    base_env: Mapping[str, str] | None = None,
    poll_seconds: float = 0.2,
    pidfile: Path | None = None,
    private: Private | None = None,
) -> ExecResult:
    """Run one executor to completion, timeout or stop. `should_stop` returns a reason to stop
    (lost claim, halt) or None; it is polled while the executor runs. `pidfile` records the
    process group while it runs, for `kill_leftover` after a crash of this process. `private`: what
    the sandbox must not show besides the real HOME (the state dir, the host config)."""
    values = {"task_file": str(task_file), "worktree": str(worktree), "issue": str(issue)}
    argv = fill(spec.argv, values)
    base = os.environ if base_env is None else base_env
    path_env = base.get("PATH")
    problem = sandbox_problem(spec.sandbox)
    if problem is not None and spec.sandbox == "required":
        raise ConfigError(f"executor.sandbox is required but {problem}")
    sandboxed = spec.sandbox != "off" and problem is None
    log_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    log_path.touch(mode=0o600)  # executor output may quote the task's text: readable by this user only
    if find_program(argv[0], path_env, worktree) is None:  # checked here: inside bwrap a missing program is exit 1
        with open(log_path, "ab") as log:
            log.write(f"cannot start: {argv[0]!r} not found on PATH or in the worktree\n".encode())
        return ExecResult(spec.name, None, ProcessOutcome.UNAVAILABLE, 0.0, False, log_path)
    if sandboxed:
        argv = sandbox_argv(argv, worktree, task_file, allow_network=spec.allow_network, private=private,
                            path_env=path_env)
    with private_home(sandboxed) as home:
        env = executor_env(base, spec.env_passthrough, forbidden_env,
                           {**home, **GIT_IDENTITY, "AGENTMESH_ISSUE": str(issue),
                            "AGENTMESH_TASK_FILE": str(task_file), "AGENTMESH_WORKTREE": str(worktree)})
        start = log_path.stat().st_size
        with open(log_path, "ab") as log:
            # for the operator, on one ASCII line (public text drops it: it names the host's directories)
            log.write(f"{COMMAND_ECHO}{json.dumps(shlex.join(argv))[1:-1]}\n".encode())
        try:
            done = run_process(argv, cwd=worktree, env=env, timeout=spec.timeout_seconds, log_path=log_path,
                               stop=should_stop, poll_seconds=poll_seconds,
                               on_start=None if pidfile is None else partial(write_pidfile, pidfile))
        finally:
            if pidfile is not None:
                pidfile.unlink(missing_ok=True)
    if done.outcome is ProcessOutcome.UNAVAILABLE:
        return ExecResult(spec.name, None, done.outcome, 0.0, sandboxed, log_path)
    if done.outcome in (ProcessOutcome.TIMEOUT, ProcessOutcome.STOPPED):
        why = f": {done.stop_reason}" if done.stop_reason else ""
        with open(log_path, "ab") as log:
            log.write(f"\nagentmesh: executor {done.outcome} after {done.duration_s:.1f}s{why}\n".encode())
    said = parse_cli_output(log_tail(log_path, 65536, start))  # this run's: a fallback chain shares the log
    outcome = ProcessOutcome.FAILED if done.outcome is ProcessOutcome.OK and said.error else done.outcome
    return ExecResult(spec.name, done.returncode, outcome, done.duration_s, sandboxed, log_path, said.cost_usd,
                      done.stop_reason, said.message)
