"""Review gates: the checks a PR head must pass before a sibling approves it.

Always: the diff-size limit, the secret scan, and that the PR closes the
issue its branch was claimed for. Then the mesh policy's `gates`, run in a
fresh worktree of the PR head, each with its timeout, a scrubbed environment
and the sandbox the host config asks for: a gate runs code from the PR, so it
gets the same distrust as an executor. More: without a working sandbox a gate
does not run at all, unless the host config turned the sandbox off on purpose
(`executor.sandbox: off`), and its output is made public (core/public.py)
before it can reach the review. A gate is a command, or the built-in `syntax`
gate: this Python, isolated (`-I`), parsing the changed files
(agent/syntax_gate.py), in the same sandbox.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from agentmesh.agent import executor as executors
from agentmesh.core.markers import PullMarker, closing_references
from agentmesh.core.model import PullRequest
from agentmesh.core.review import GateResult
from agentmesh.core.secrets import added_lines, scan_diff
from agentmesh.core.syntax import syntax_targets
from agentmesh.core.vocab import BuiltinGate
from agentmesh.host.config import Gate
from agentmesh.host.process import ProcessOutcome, log_tail

_OUTPUT_BYTES = 64 * 1024


def diff_size_gate(diff: str, max_lines: int) -> GateResult:
    changed = sum(1 for line in diff.splitlines()
                  if line[:1] in "+-" and not line.startswith(("+++ ", "--- ")))
    ok = changed <= max_lines
    return GateResult("diff size", ok, f"{changed} changed line(s), limit {max_lines}")


def secret_gate(diff: str, known_secrets: Sequence[str]) -> GateResult:
    findings = scan_diff(diff, known_secrets)
    if not findings:
        files = len(added_lines(diff))
        return GateResult("secret scan", True, f"no secret in {files} changed file(s)")
    where = ", ".join(f"{f.rule} in {f.path} line {f.line}" for f in findings[:5])
    return GateResult("secret scan", False, f"{len(findings)} finding(s): {where}")


def closes_issue_gate(pull: PullRequest, marker: PullMarker) -> GateResult:
    name = "closes its issue"
    if marker.issue not in closing_references(pull.body):
        return GateResult(name, False, f"the body does not close #{marker.issue}")
    if not re.fullmatch(rf"{re.escape(marker.agent)}/{marker.issue}-[a-z0-9-]+", pull.head):
        return GateResult(name, False, f"branch {pull.head[:80]!r} is not {marker.agent}'s work branch for "
                                       f"#{marker.issue}")
    return GateResult(name, True, f"closes #{marker.issue} from {marker.agent}'s work branch")


# The built-in gates as commands: `-I` keeps the worktree's modules and PYTHON* variables out
BUILTIN_ARGV = {BuiltinGate.SYNTAX: (sys.executable, "-I", "-m", "agentmesh.agent.syntax_gate", "{task_file}")}


def run_gate(gate: Gate, *, worktree: Path, log_dir: Path, sandbox: str, base_env: Mapping[str, str],
             forbidden_env: Sequence[str], public: Callable[[str], str], pull: int, changed: Sequence[str] = (),
             private: executors.Private | None = None, beat: Callable[[], None] = lambda: None) -> GateResult:
    """Run one gate on the PR head; `beat` is called while it runs (claim renewals). `public` makes its
    output fit for the review (no secret, no host path). `changed`: the paths the PR changes, which the
    syntax gate checks."""
    targets = syntax_targets(changed) if gate.builtin is BuiltinGate.SYNTAX else []
    if gate.builtin is BuiltinGate.SYNTAX and not targets:
        return GateResult(gate.name, True, "no Python, YAML, JSON or TOML file changed")
    problem = executors.sandbox_problem(sandbox)
    if problem is not None:  # PR code without a sandbox: only when the host said so (sandbox: off)
        return GateResult(gate.name, False, f"not run: {problem}, and a gate runs the PR's code only in the "
                                            "sandbox (or with executor.sandbox: off on the reviewer's host)")
    argv = BUILTIN_ARGV[gate.builtin] if gate.builtin is not None else tuple(gate.run)
    spec = executors.ExecutorSpec(f"gate {gate.name}", argv, gate.timeout_seconds, sandbox)
    log_path = log_dir / f"pr-{pull}-gate-{re.sub(r'[^A-Za-z0-9._-]', '_', gate.name)}.log"
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path.unlink(missing_ok=True)
    task_file = log_dir / f"pr-{pull}-gate.txt"  # a command gate gets no task, but the sandbox binds one
    if gate.builtin is BuiltinGate.SYNTAX:
        task_file.write_bytes("\0".join(targets).encode("utf-8", "surrogateescape"))
    else:
        task_file.write_text(f"review gate {gate.name}\n")
    result = executors.run(spec, worktree=worktree, task_file=task_file, issue=pull, log_path=log_path,
                           forbidden_env=forbidden_env, base_env=base_env, should_stop=lambda: beat(),
                           private=private)
    output = public(log_tail(log_path, _OUTPUT_BYTES))
    if result.ok:
        checked = f", {len(targets)} changed file(s)" if targets else ""
        return GateResult(gate.name, True, f"passed in {result.duration_s:.1f}s{checked}")
    what = {ProcessOutcome.TIMEOUT: f"timed out after {gate.timeout_seconds}s",
            ProcessOutcome.UNAVAILABLE: "could not start"}.get(result.outcome, f"exit {result.returncode}")
    return GateResult(gate.name, False, what, output)
