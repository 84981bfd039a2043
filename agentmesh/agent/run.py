"""Run the host's executors on a task: the part claim-task and rework share.

The executors come from the host config (a fallback chain runs the next one,
from a clean worktree, when one cannot start or fails). While they run, the
heartbeat renews the claim and the local halt file is polled; either stops
the whole process group. The agent's own git files are guarded against an
unsandboxed executor (agent/work.py).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from agentmesh.agent import executor as executors
from agentmesh.agent.halt import local_halt
from agentmesh.agent.mesh import Mesh
from agentmesh.agent.work import agent_git_files, guarded_git
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


@dataclass(frozen=True)
class Ran:
    result: executors.ExecResult  # the one that decides the task: the last executor that started
    notes: list[str]  # for the log
    stop: StopReason | None  # why the executor was stopped, if it was


def run_executors(mesh: Mesh, *, worktree: Path, task_file: Path, issue: int, base: str, heartbeat: Heartbeat,
                  env: Mapping[str, str], pidfile: Path, budget_seconds: float | None = None) -> Ran:
    """Run the host's executors in turn until one works. `budget_seconds`: executor time left today;
    past it the executor is stopped like a halt."""
    host = mesh.host
    specs = executors.resolve(host.executor.kind, command=host.executor.command, chain=host.executor.chain,
                              script=mesh.policy.executor_script, timeout_seconds=host.executor.timeout_seconds,
                              sandbox=host.executor.sandbox, allow_network=host.executor.allow_network,
                              env_passthrough=host.executor.env_passthrough)
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
        return stop(StopReason.HALTED, halted) if halted else None

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
    ran = [r for r in results if r.outcome != ProcessOutcome.UNAVAILABLE]
    return Ran(ran[-1] if ran else results[-1], notes, stopped[0] if stopped else None)
