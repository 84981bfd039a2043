"""Executors: the programs that do the work in a worktree (Claude Code, Codex, aider, a script).

The executor is the least trusted process agentmesh starts: it reads text
from the issue tracker. So it runs
- from an argv list, never through a shell; the task file, worktree and
  issue number arrive through placeholders that agentmesh fills in;
- with a scrubbed environment: no forge token, only what the host config
  passes through explicitly (an executor's own API key, say);
- in its own process group, with a timeout; on timeout, halt or a lost claim
  the whole group is killed, grandchildren included;
- optionally in a bubblewrap sandbox: the worktree writable, its `.git` and
  everything else read-only, no network unless allowed, its own PID
  namespace (so nothing outlives it).
stdout and stderr go to a per-run log file. The host commits and pushes
outside the sandbox afterwards.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from agentmesh.core.errors import ConfigError
from agentmesh.host.process import ProcessOutcome, kill_pidfile_group, log_tail, run_process, write_pidfile

PROMPT = "Read the task in {task_file} and make the change it asks for in this repository. Do not commit."

# Documented command lines; `{...}` are filled by agentmesh, never by a shell.
PRESETS: dict[str, list[str]] = {
    "claude-code": ["claude", "-p", PROMPT, "--output-format", "json", "--permission-mode", "acceptEdits"],
    "codex": ["codex", "exec", "--full-auto", PROMPT],
    "aider": ["aider", "--yes-always", "--no-auto-commits", "--no-gitignore", "--message-file", "{task_file}"],
    "demo": [sys.executable, "-m", "agentmesh.agent.demo", "{task_file}", "{worktree}"],
}

# What an executor may inherit from the agent's environment. Everything else,
# forge tokens first of all, is dropped.
_BASE_ENV = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TERM", "TZ", "USER", "LOGNAME", "HOME", "TMPDIR")
_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")


@dataclass(frozen=True)
class ExecutorSpec:
    """One resolved executor: argv template, limits and sandbox mode."""

    name: str
    argv: tuple[str, ...]
    timeout_seconds: float
    sandbox: str = "auto"  # off | auto | required
    allow_network: bool = False
    env_passthrough: tuple[str, ...] = ()


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

    @property
    def ok(self) -> bool:
        return self.outcome is ProcessOutcome.OK


def resolve(kind: str, *, command: Sequence[str] | None = None, chain: Sequence[str] | None = None,
            script: Sequence[str] | None = None, timeout_seconds: float = 3600, sandbox: str = "auto",
            allow_network: bool = False, env_passthrough: Sequence[str] = ()) -> list[ExecutorSpec]:
    """The executors to try, in order (several only for `fallback`)."""
    def spec(name: str, argv: Sequence[str]) -> ExecutorSpec:
        if not argv:
            raise ConfigError(f"executor {name}: empty command")
        return ExecutorSpec(name, tuple(argv), timeout_seconds, sandbox, allow_network, tuple(env_passthrough))

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
        unknown = [n for n in names if n not in PRESETS]
        if not names or unknown:
            raise ConfigError(f"executor.chain: must list presets from {sorted(PRESETS)}, got {names}")
        return [spec(n, PRESETS[n]) for n in names]
    if kind in PRESETS:
        return [spec(kind, PRESETS[kind])]
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


def bwrap_available() -> str | None:
    """Why bubblewrap cannot run here, or None when it can."""
    exe = shutil.which("bwrap")
    if exe is None:
        return "bwrap is not installed (apt-get install bubblewrap)"
    probe = run_process([exe, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--unshare-pid", "true"],
                        capture=True, timeout=30)
    if probe.outcome is ProcessOutcome.TIMEOUT:
        return "bwrap cannot start: the probe timed out after 30s"
    if probe.outcome is ProcessOutcome.UNAVAILABLE:
        return f"bwrap cannot start: {probe.error}"
    if probe.returncode != 0:
        stderr = probe.stderr.decode("utf-8", "replace").strip()
        return f"bwrap cannot start: {stderr.splitlines()[-1] if stderr else probe.returncode}"
    return None


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


def _needed_under_tmp(argv: Sequence[str], worktree: Path) -> list[Path]:
    """Paths the executor needs that the sandbox's private /tmp would hide: its program's install
    (a venv), this Python and package (the demo executor), and the worktree's repository."""
    program = shutil.which(argv[0]) if argv else None
    candidates = [Path(sys.prefix), Path(__file__).resolve().parents[2], _git_common_dir(worktree)]
    if program:
        candidates.append(Path(program).resolve().parent.parent)
    found: list[Path] = []
    for path in sorted({c.resolve() for c in candidates if c is not None}):
        if path.is_relative_to("/tmp") and path != Path("/tmp") and path.exists() \
                and not any(path.is_relative_to(f) for f in found):
            found.append(path)
    return found


def sandbox_argv(argv: Sequence[str], worktree: Path, task_file: Path, *, allow_network: bool) -> list[str]:
    wrapped = ["bwrap", "--die-with-parent", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--new-session",
               "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp"]
    for path in _needed_under_tmp(argv, worktree):
        wrapped += ["--ro-bind", str(path), str(path)]
    wrapped += ["--bind", str(worktree), str(worktree), "--ro-bind", str(task_file), str(task_file)]
    if (worktree / ".git").exists():
        wrapped += ["--ro-bind", str(worktree / ".git"), str(worktree / ".git")]
    if not allow_network:
        wrapped.append("--unshare-net")
    return [*wrapped, "--chdir", str(worktree), "--", *argv]


def kill_leftover(pidfile: Path) -> bool:
    """Kill the process group of an executor whose agent crashed; True if one was still running.

    The executor runs in its own session, so SIGKILL on the agent leaves it
    alive; the next run of the agent finds its pidfile and finishes the job.
    The pidfile records the start time, so a reused pid is never killed.
    """
    return kill_pidfile_group(pidfile)


def _cost_from_log(log_path: Path) -> float | None:
    """Claude Code's JSON output reports `total_cost_usd`; other executors may print `cost_usd`."""
    for line in reversed(log_tail(log_path, 65536).splitlines()):
        line = line.strip()
        if line.startswith("{") and "cost_usd" in line:
            try:
                data = json.loads(line)
            except ValueError:
                continue
            for key in ("total_cost_usd", "cost_usd"):
                if isinstance(data.get(key), (int, float)):
                    return float(data[key])
    return None


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
) -> ExecResult:
    """Run one executor to completion, timeout or stop. `should_stop` returns a reason to stop
    (lost claim, halt) or None; it is polled while the executor runs. `pidfile` records the
    process group while it runs, for `kill_leftover` after a crash of this process."""
    values = {"task_file": str(task_file), "worktree": str(worktree), "issue": str(issue)}
    argv = fill(spec.argv, values)
    sandboxed = False
    problem = bwrap_available() if spec.sandbox != "off" else "sandbox off"
    if problem is not None and spec.sandbox == "required":
        raise ConfigError(f"executor.sandbox is required but {problem}")
    log_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    log_path.touch(mode=0o600)  # executor output may quote the task's text: readable by this user only
    if shutil.which(argv[0]) is None:  # checked here: inside bwrap a missing program is just exit 1
        with open(log_path, "ab") as log:
            log.write(f"cannot start: {argv[0]!r} not found on PATH\n".encode())
        return ExecResult(spec.name, None, ProcessOutcome.UNAVAILABLE, 0.0, False, log_path)
    if problem is None:
        argv, sandboxed = sandbox_argv(argv, worktree, task_file, allow_network=spec.allow_network), True
    env = executor_env(os.environ if base_env is None else base_env, spec.env_passthrough, forbidden_env,
                       {"AGENTMESH_ISSUE": str(issue), "AGENTMESH_TASK_FILE": str(task_file),
                        "AGENTMESH_WORKTREE": str(worktree)})
    with open(log_path, "ab") as log:
        log.write(f"$ {' '.join(argv)}\n".encode())
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
    return ExecResult(spec.name, done.returncode, done.outcome, done.duration_s, sandboxed, log_path,
                      _cost_from_log(log_path), done.stop_reason)
