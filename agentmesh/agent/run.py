"""Run the host's executors on a task: the part claim-task and rework share.

The executors come from the host config (a fallback chain runs the next one,
from a clean worktree, when one cannot start or fails). While they run, the
heartbeat renews the claim, the local halt file is polled, and the watch
re-reads the issue and the mesh's kill switch (agent/watch.py); each stops
the whole process group. The agent's own git files are guarded against an
unsandboxed executor (agent/work.py).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from agentmesh.agent import executor as executors
from agentmesh.agent.halt import local_halt
from agentmesh.agent.mesh import Mesh
from agentmesh.agent.watch import Watch
from agentmesh.agent.work import agent_git_files, guarded_git
from agentmesh.core.errors import ConfigError
from agentmesh.core.overrides import Overrides
from agentmesh.core.vocab import StopReason
from agentmesh.git.run import TOKEN_ENV
from agentmesh.git.worktree import reset_worktree
from agentmesh.host.process import ProcessOutcome
from agentmesh.refs.heartbeat import Heartbeat


def forbidden_env(mesh: Mesh, env: Mapping[str, str]) -> list[str]:
    """Variables the executor must not inherit: the token's variable, and any other holding its value."""
    names = [mesh.host.forge.token_env, TOKEN_ENV]
    if mesh.token:
        names += [k for k, v in env.items() if v == mesh.token]
    return names


def host_executors(mesh: Mesh, overrides: Overrides | None = None, *, review: bool = False) \
        -> list[executors.ExecutorSpec]:
    """The executors this host runs, in order (ConfigError for a kind its config cannot make). The mesh
    policy, read from the remote, is needed only for `script`. `review`: its LLM reviewers instead
    (`review.executor`, else `executor`, with the review presets). An issue's `overrides` keep only the
    executor it names and set the timeout (core/overrides.py)."""
    executor = (mesh.host.review.executor or mesh.host.executor) if review else mesh.host.executor
    specs = executors.resolve(executor.kind, command=executor.command, chain=executor.chain,
                              script=mesh.policy.executor_script if executor.kind == "script" else None,
                              timeout_seconds=executor.timeout_seconds, sandbox=executor.sandbox,
                              allow_network=executor.allow_network, env_passthrough=executor.env_passthrough,
                              presets=executors.REVIEW_PRESETS if review else executors.PRESETS)
    if overrides is None:
        return specs
    chosen = [spec for spec in specs if overrides.executor in (None, spec.name)] or specs
    timeout = overrides.timeout_seconds
    return [replace(spec, timeout_seconds=timeout) if timeout else spec for spec in chosen]


def start_problems(mesh: Mesh, env: Mapping[str, str], *, review: bool = False) -> list[executors.StartProblem]:
    """Why each of the host's executors (`review`: LLM reviewers) that cannot start on this host cannot
    (`doctor` lists them)."""
    specs = host_executors(mesh, review=review)
    bwrap = mesh.sandbox_problem(specs[0].sandbox if specs else mesh.host.executor.sandbox)

    def repo_mode(path: str) -> str | None:
        return mesh.cache.file_mode(mesh.base_head, path)

    found = [executors.start_problem(spec, path_env=env.get("PATH"), private=mesh.private, bwrap_problem=bwrap,
                                     repo_mode=repo_mode) for spec in specs]
    return [problem for problem in found if problem is not None]


def check_executors(mesh: Mesh, env: Mapping[str, str]) -> None:
    """Refuse, before anything is claimed, a host none of whose executors can start: every claim would
    be released again, unworked. A fallback chain with one that can start goes on."""
    problems = start_problems(mesh, env)
    if problems and len(problems) == len(host_executors(mesh)):
        raise ConfigError("; ".join(str(p) for p in problems))


@dataclass(frozen=True)
class Ran:
    result: executors.ExecResult  # the one that decides the task: the last executor that started
    notes: list[str]  # for the log
    stop: StopReason | None  # why the executor was stopped, if it was
    scratch: tuple[str, ...] = ()  # what that executor leaves besides the change: never committed


def run_executors(mesh: Mesh, *, worktree: Path, task_file: Path, issue: int, base: str, heartbeat: Heartbeat,
                  env: Mapping[str, str], pidfile: Path, budget_seconds: float | None = None,
                  watch: Watch | None = None, overrides: Overrides | None = None) -> Ran:
    """Run the host's executors in turn until one works. `budget_seconds`: executor time left today;
    past it the executor is stopped like a halt. `watch`: re-reads, at each heartbeat, whether the
    work is still wanted (the issue open, the mesh not halted). `overrides`: the issue's own executor
    and timeout."""
    specs = host_executors(mesh, overrides)
    log_path = mesh.state.logs / f"issue-{issue}-{time.strftime('%Y%m%dT%H%M%S')}.log"

    started = time.monotonic()
    stopped: list[StopReason] = []  # which stop fired, for the caller to act on (never its wording)

    def stop(reason: StopReason, why: str) -> str:
        stopped.append(reason)
        return why

    def should_stop() -> str | None:
        if budget_seconds is not None and time.monotonic() - started >= budget_seconds:
            return stop(StopReason.BUDGET, f"{StopReason.BUDGET}: no executor minutes left today")
        lost = heartbeat.beat()
        if lost:
            return stop(StopReason.CLAIM_LOST, lost)
        halted = local_halt(mesh)
        if halted:
            return stop(StopReason.HALTED, halted)
        unwanted = watch.due() if watch is not None else None
        return stop(unwanted.stop, unwanted.reason) if unwanted else None

    results: list[executors.ExecResult] = []
    notes: list[str] = []
    for spec in specs:
        if any(r.outcome != ProcessOutcome.UNAVAILABLE for r in results):
            reset_worktree(mesh.git, worktree, base)
        with guarded_git(agent_git_files(mesh.cache.path, mesh.state.bin_dir, worktree)) as changed:
            result = executors.run(spec, worktree=worktree, task_file=task_file, issue=issue, log_path=log_path,
                                   forbidden_env=forbidden_env(mesh, env), should_stop=should_stop, base_env=env,
                                   pidfile=pidfile, private=mesh.private)
        notes += changed
        results.append(result)
        if result.outcome in (ProcessOutcome.OK, ProcessOutcome.STOPPED) or heartbeat.lost:
            break
    began = [i for i, r in enumerate(results) if r.outcome != ProcessOutcome.UNAVAILABLE]
    decided = began[-1] if began else len(results) - 1
    return Ran(results[decided], notes, stopped[0] if stopped else None, specs[decided].scratch)
