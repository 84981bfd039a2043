"""`agentmesh report`: the fleet over the last N days, as one JSON document (schema `agentmesh-report/1`,
docs/operations.md "Report") that `--json` prints and `--html` renders. Gathers data; nothing here prints.

Built from the remote alone, so every host renders the same report: `agentmesh status`'s view (agents,
claims, PRs, budget, kill switch), every writer's journal over the window, the open issues for the board,
and the kill switch's history for the halts. Every listing is complete or raises (TemporaryError, exit 75):
an unreachable remote is an error, never an empty fleet.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from agentmesh.agent.budget import caps, journal_since
from agentmesh.agent.halt import KILL_SWITCH, RESUME_SUBJECT
from agentmesh.agent.mesh import Mesh
from agentmesh.agent.switch import fetched, reason_of
from agentmesh.core.errors import TemporaryError
from agentmesh.core.markers import parse_pull_marker
from agentmesh.core.memory import budget_window, entries_since, utc_ts
from agentmesh.core.report import (
    INCIDENT_LIMIT,
    SCHEMA,
    HaltRecord,
    OpenPull,
    board,
    budget_series,
    halt_issues,
    ignored_lines,
    incidents,
    latency,
    throughput,
    window_dates,
)
from agentmesh.forge.base import Forge, PullRequest
from agentmesh.host.config import HALT_REF, ForgeConfig
from agentmesh.ops.status import PERFORMANCE_DAYS, AgentRow, ClaimRow, PullRow, Status, gather

GITHUB_WEB = "https://github.com"


def web_url(config: ForgeConfig) -> str | None:
    """The repository's page on the forge, the base of links; None on the local forge (no web pages)."""
    if config.kind == "local" or not config.repo:
        return None
    base = (config.url or "").rstrip("/")
    if config.kind == "github":
        # api.github.com serves github.com; GitHub Enterprise serves its API under <host>/api/v3
        base = GITHUB_WEB if not base or base == "https://api.github.com" else base.removesuffix("/api/v3")
    return f"{base}/{config.repo}"


def halt_history(mesh: Mesh) -> list[HaltRecord]:
    """The halt commits on the kill switch's branch, newest first (at most INCIDENT_LIMIT), each at its own
    committer date. A resume is no incident; a forged halt halts, so it is one."""
    sha = mesh.remote_refs.get(HALT_REF)
    if sha is None:
        return []
    if not fetched(mesh, KILL_SWITCH, sha):
        raise TemporaryError(f"{HALT_REF} moved while it was read; try again")
    return [HaltRecord(float(at), reason_of(KILL_SWITCH, message))
            for _, at, message in mesh.cache.log_dated(sha, "--first-parent", f"--max-count={INCIDENT_LIMIT}")
            if message.partition("\n")[0].strip() != RESUME_SUBJECT]


def agent_json(row: AgentRow, claims: Sequence[ClaimRow]) -> dict:
    return {"agent": row.agent, "host": row.host, "version": row.version, "executor": row.executor,
            "capabilities": list(row.capabilities), "alive": row.alive, "verified": row.verified, "key": row.key,
            "seen_seconds": row.age_seconds, "heartbeat_at": row.heartbeat_at,
            "claims": [{"issue": c.issue, "lease_left_seconds": c.lease_left_seconds, "expired": c.expired}
                       for c in claims if c.holder == row.agent]}


def pull_json(row: PullRow, url: str | None) -> dict:
    return {"number": row.number, "title": row.title, "author": row.author, "issue": row.issue, "url": url,
            "age_seconds": row.age_seconds, "approved_by": row.approved_by,
            "changes_requested_by": row.changes_requested_by, "ci": row.ci, "approved_head": row.approved_head,
            "head_sha": row.head_sha}


def open_pull(pull: PullRequest) -> OpenPull:
    marker = parse_pull_marker(pull.body)
    return OpenPull(pull.number, marker.issue if marker else None, marker.agent if marker else None,
                    pull.url or None)


def gather_report(mesh: Mesh, forge: Forge, now: float, days: int) -> dict:
    """The report document of the last `days` UTC days (today included), read at `now`."""
    issues = forge.list_issues(state="open")
    pulls = forge.list_pulls(state="open")
    dates = window_dates(days, now)
    # the journals read once, for status's performance and budget too
    first = min(dates[0], budget_window(mesh.policy.budgets.window, now).start.date(),
                dates[-1] - timedelta(days=PERFORMANCE_DAYS - 1))
    read = journal_since(mesh.journal(), first, now)
    status: Status = gather(mesh, forge, now, open_issues=issues, open_pulls=pulls, journal=read)
    entries = entries_since(read.entries, dates[0])
    roster = [a.agent for a in status.agents]
    agent_caps, fleet_caps = caps(mesh)
    urls = {p.number: p.url or None for p in pulls}
    return {
        "schema": SCHEMA, "generated_at": utc_ts(now), "observer": status.agent, "remote": status.remote,
        "days": days,
        "forge": {"kind": mesh.host.forge.kind, "web_url": web_url(mesh.host.forge)},
        "halted": status.halted, "paused": status.budget.get("paused"),
        "agents": [agent_json(a, status.claims) for a in status.agents],
        "board": board(issues, claims={c.issue: c.holder for c in status.claims}, pulls=[open_pull(p) for p in pulls],
                       eligible_labels=mesh.policy.labels.eligible),
        "pulls": [pull_json(p, urls.get(p.number)) for p in status.pulls],
        "pulls_open": status.pulls_open,
        "performance": {a: p.to_json() for a, p in status.performance.items()},
        "throughput": throughput(entries, dates, now, roster),
        "latency": latency(entries),
        "budget": {**budget_series(entries, dates, now, agent_caps=agent_caps, fleet_caps=fleet_caps,
                                   window=mesh.policy.budgets.window, agents=roster),
                   "current": status.budget},
        "incidents": incidents(entries, [*halt_history(mesh), *halt_issues(issues)], since=dates[0],
                               now=now),
        "incident_limit": INCIDENT_LIMIT,
        # the journal lines read (from the earliest day the report needs) and left out of every figure
        **ignored_lines(unreadable=read.unreadable, unsigned=read.ignored),
    }


