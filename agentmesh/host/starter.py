"""The starter `.agentmesh/mesh.yaml`: a mesh policy written out as a commented file.

`agentmesh init --mesh` and `agentmesh forge init` both write it. Every value
comes from the `MeshPolicy` model (its defaults, unless a policy is given), so
the starter cannot drift from what an absent key means; only the comments are
written here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml
from pydantic import BaseModel

from agentmesh.host.config import MeshPolicy


@dataclass(frozen=True)
class _Key:
    """One `key: value` line; a None value with an `example` is shown commented out."""

    name: str
    value: Any
    note: str = ""
    example: str | None = None
    block: bool = False  # a non-empty list as `- item` lines rather than `[a, b]`


@dataclass(frozen=True)
class _Section:
    """A nested mapping: `name:` and its own rows, indented."""

    name: str
    rows: tuple[str | _Key, ...]
    note: str = ""


_Row = str | _Key | _Section  # a str is a comment line, written as is
_INDENT = "  "


def _inline(value: object) -> str:
    """A value as one line of YAML: `1800`, `false`, `null`, `[a, b]`, `{k: v}`."""
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    elif isinstance(value, list):
        value = [v.model_dump(mode="json") if isinstance(v, BaseModel) else v for v in value]
    text = yaml.safe_dump(value, default_flow_style=True, sort_keys=False, width=float("inf"))
    return text.removesuffix("\n").removesuffix("\n...")  # a bare scalar ends its document explicitly


def _render(rows: tuple[_Row, ...], indent: str = "") -> list[str]:
    """Lines of `rows`, with the notes of the key lines lined up."""
    width = max((len(indent + _head(row)) for row in rows if isinstance(row, _Key)), default=0)
    lines = []
    for row in rows:
        if isinstance(row, str):
            lines.append(indent + row)
        elif isinstance(row, _Section):
            lines.append(f"{indent}{row.name}:" + (f"  # {row.note}" if row.note else ""))
            lines += _render(row.rows, indent + _INDENT)
        else:
            head = indent + _head(row)
            lines.append(f"{head.ljust(width)}  # {row.note}" if row.note else head)
            if row.block and row.value:
                lines += [f"{indent}{_INDENT}- {_inline(item)}" for item in row.value]
    return lines


def _head(key: _Key) -> str:
    if key.value is None and key.example is not None:
        return f"# {key.name}: {key.example}"
    if key.block and key.value:
        return f"{key.name}:"
    return f"{key.name}: {_inline(key.value)}"


def starter_mesh_yaml(policy: MeshPolicy | None = None) -> str:
    """The commented mesh.yaml that parses back to `policy` (default: `MeshPolicy()`, every default)."""
    p = policy or MeshPolicy()
    blocks: list[tuple[_Row, ...]] = [
        ("# The mesh policy, shared by every agent. It changes through a PR like any code.",
         _Key("version", p.version)),
        ("# The branch agents branch from and merge into (default: the remote's HEAD).",
         _Key("default_branch", p.default_branch, example="main")),
        (_Section("labels", (
            "# Open issues carrying one of these labels may be claimed by an agent.",
            _Key("eligible", p.labels.eligible))),),
        (_Section("lease", (
            _Key("seconds", p.lease.seconds, "how long a claim lives without renewal"),
            _Key("renew_seconds", p.lease.renew_seconds, "how often a working agent renews (lease >= 3 x renew)"),
            _Key("grace_seconds", p.lease.grace_seconds, "extra time an observer waits before reaping"),
            _Key("max_seconds", p.lease.max_seconds, "the longest lease a claim may ask for"))),),
        (_Section("claims", (
            _Key("ref_prefix", p.claims.ref_prefix, "one claim ref per issue: <prefix><issue>"),)),),
        (_Section("presence", (
            _Key("ref_prefix", p.presence.ref_prefix, "one presence ref per agent"),)),),
        (_Section("review", (
            _Key("ring", p.review.ring, "agent names that review each other's PRs, in ring order (empty: everyone)"),
            _Key("bot_users", p.review.bot_users, "no roster: the forge accounts the agents use, if not their names"),
            _Key("required_approvals", p.review.required_approvals,
                 "approvals on the current head needed before a merge"),
            _Key("required_checks", p.review.required_checks,
                 "forge CI contexts that must be success on the head before a merge, e.g. [ci/tests]"),
            _Key("llm", p.review.llm.value, "on: the reviewer also asks its executor for a verdict, after the gates "
                 "(docs/monitor-prs.md#llm-review)"))),),
        ("# What the reviewing agent checks on each PR head before it approves, in its sandbox",
         "# (executor.sandbox of its host): `builtin: syntax` parses the changed Python, YAML, JSON",
         "# and TOML files without running them; a command gate runs the PR's code, e.g.",
         "#   - {name: tests, run: [python, -m, pytest, -q], timeout_seconds: 600}",
         "# merge.auto: true needs a gate or a required check.",
         _Key("gates", p.gates, block=True)),
        ("# Paths agents must never change (globs); a human changes them.",
         _Key("protected_paths", p.protected_paths, block=True)),
        (_Section("budgets", (
            _Key("window", str(p.budgets.window), "day | week (from Monday) | month, UTC"),
            _Key("agent", p.budgets.agent),
            _Key("fleet", p.budgets.fleet)), note="null means unlimited"),),
        (_Section("selection", (
            "# How claimable issues are ranked: multipliers of the terms (agentmesh/core/select.py).",
            _Key("weights", p.selection.weights))),),
        (_Section("preemption", (
            _Key("labels", p.preemption.labels, "stops an agent's lowest-scored job when its seats are all busy; "
                 "[]: off"),)),),
        (_Section("migration", (
            _Key("lock_branches", p.migration.lock_branches, "while the old cron scripts still run: each claim also "
                 "holds the lock branch they check (docs/migration.md)"),)),),
        (_Key("max_attempts", p.max_attempts, "failed attempts before an issue goes to agentmesh:dead-letter"),
         _Key("max_diff_lines", p.max_diff_lines, "larger changes are not pushed")),
        ("# The command hosts whose executor kind is `script` run, e.g. [python, scripts/agent.py].",
         _Key("executor_script", p.executor_script)),
        (_Section("merge", (
            _Key("auto", p.merge.auto, "merge approved PRs automatically once CI and the required checks are green"),
            _Key("method", p.merge.method, "merge or squash"))),),
        (_Section("rework", (
            _Key("max", p.rework.max, "executor re-runs per PR after changes requested or red CI; 0: off"),)),),
        (_Section("memory", (
            _Key("branch", p.memory.branch, "where earlier versions committed journals (read only; each agent now "
                 "writes agentmesh/journals/<agent>)"),
            _Key("max_entry_bytes", p.memory.max_entry_bytes, "the largest journal entry"),
            _Key("max_journal_bytes", p.memory.max_journal_bytes, "a month's journal continues in a new part"),
            _Key("context_bytes", p.memory.context_bytes, "memory given to the executor"),
            _Key("lessons", p.memory.lessons, "draft a lesson PR when a PR passed after changes or rework"),
            _Key("lesson_days", p.memory.lesson_days, "drafted lessons expire after this many days"))),),
    ]
    return "\n".join("".join(line + "\n" for line in _render(block)) for block in blocks)
