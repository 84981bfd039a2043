"""The LLM review (`review.llm: on`): the ring reviewer's executor reads the issue, the PR's diff and the
gates' results, and gives a verdict (core/llm_review.py reads it, and combines it with the gates).

It runs as a gate does (agent/gates.py): in the sandbox, or not at all unless the host turned the
sandbox off on purpose; with a scrubbed environment, an empty HOME and no token. Its worktree is the
PR's merge base, not its head: a PR must not configure the CLI that judges it (Claude Code's
`.claude/settings.json` hooks, instructions in `CLAUDE.md` or `AGENTS.md`); the change reaches the
reviewer as the diff in its task file.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from agentmesh.agent import executor as executors
from agentmesh.core.llm_review import LlmVerdict, no_verdict, read_verdict
from agentmesh.host.process import ProcessOutcome, log_tail

_OUTPUT_BYTES = 256 * 1024


@dataclass(frozen=True)
class LlmRun:
    """A review executor's verdict (None: not asked), and what it used (journaled with the review: budgets
    count it)."""

    verdict: LlmVerdict | None
    duration_s: float = 0.0
    cost_usd: float | None = None


def run_llm_review(specs: Sequence[executors.ExecutorSpec], *, worktree: Path, task: str, log_dir: Path, pull: int,
                   base_env: Mapping[str, str], forbidden_env: Sequence[str], private: executors.Private,
                   beat: Callable[[], None] = lambda: None) -> LlmRun:
    """Run the review executors in turn (the next only when one cannot start) on the task text; the
    verdict of the first that ran. Whatever fails on the way is no verdict, which escalates."""
    task_file = log_dir / f"pr-{pull}-review.md"
    log_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    task_file.write_text(task)
    for spec in specs:
        problem = executors.sandbox_problem(spec.sandbox)
        if problem is not None:
            return LlmRun(no_verdict(f"not run: {problem}, and the review executor reads the PR only in the "
                                     "sandbox (or with sandbox: off on the reviewer's host)"))
        log_path = log_dir / f"pr-{pull}-review-{spec.name}.log"
        log_path.unlink(missing_ok=True)
        result = executors.run(spec, worktree=worktree, task_file=task_file, issue=pull, log_path=log_path,
                               forbidden_env=forbidden_env, base_env=base_env, should_stop=lambda: beat(),
                               private=private)
        if result.outcome is ProcessOutcome.UNAVAILABLE:
            continue
        if not result.ok:
            said = f": {result.message}" if result.message else ""
            found = no_verdict(f"the review executor {spec.name} ended {result.outcome} "
                               f"(exit {result.returncode}){said}")
        else:
            found = read_verdict(log_tail(log_path, _OUTPUT_BYTES))
        return LlmRun(found, result.duration_s, result.cost_usd)
    return LlmRun(no_verdict("no review executor could start"))
