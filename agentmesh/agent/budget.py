"""Budgets per window (a UTC day, a week from Monday or a month: `budgets.window`), enforced from the
journals: every agent's entries on its journal branch are the ledger (core/memory.py counts them).

A run reads the window's entries (plus its own queued ones) before it claims.
Reaching a task cap stops new claims; reaching a minutes or cost cap also
stops every executor run, and a run that hits the minutes cap mid-task is
stopped like a halt: nothing half-done is published.

Agents racing within one tick can each see the last free slot, so the fleet
can exceed a cap by at most the number of agents claiming at that moment.

`agentmesh budget pause` (agent/pause.py) stops new claims like a reached task cap, whatever the
spend: a BudgetCheck carries it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta

from agentmesh.agent.mesh import Mesh
from agentmesh.agent.pause import pause_reason
from agentmesh.core.memory import (
    Breach,
    Caps,
    JournalEntry,
    Usage,
    Window,
    breaches,
    budget_breaches,
    budget_window,
    entries_since,
    has_caps,
    minutes_left,
    usage_in,
    utc_day,
)
from agentmesh.core.writers import OTHER, writer_keys
from agentmesh.memory.journal import Journal, JournalRead

AHEAD_DAYS = 366  # journal months read past today: entries a fast clock stamped later count now


@dataclass(frozen=True)
class BudgetCheck:
    breaches: list[Breach] = field(default_factory=list)
    minutes_left: float | None = None  # executor minutes left in the window; None: no minutes cap
    paused: str | None = None  # why spending is paused (`agentmesh budget pause`), or None

    @property
    def claims_allowed(self) -> bool:
        return not self.breaches and self.paused is None

    @property
    def executors_allowed(self) -> bool:
        return not any(b.stops_executors for b in self.breaches)

    def __str__(self) -> str:
        return "; ".join(str(b) for b in self.breaches)


def caps(mesh: Mesh) -> tuple[Caps, Caps]:
    budgets = mesh.policy.budgets
    return budgets.agent.caps(), budgets.fleet.caps()


def budgeted(mesh: Mesh) -> bool:
    """Whether the mesh caps spending at all (without caps, nobody needs to see a claim at once)."""
    return has_caps(*caps(mesh))


def _read(journal: Journal, window: Window, now: float) -> JournalRead:
    return journal_since(journal, window.start.date(), now)


def check_budget(mesh: Mesh, journal: Journal, now: float) -> BudgetCheck:
    """The window's state against the caps, and the pause; without caps no journal is read."""
    agent_caps, fleet_caps = caps(mesh)
    paused = pause_reason(mesh)
    if not has_caps(agent_caps, fleet_caps):
        return BudgetCheck(paused=paused)
    kind = mesh.policy.budgets.window
    entries = _read(journal, budget_window(kind, now), now).entries
    agent = mesh.host.agent
    return BudgetCheck(
        budget_breaches(entries, agent=agent, now=now, agent_caps=agent_caps, fleet_caps=fleet_caps, window=kind),
        minutes_left(entries, agent=agent, now=now, agent_caps=agent_caps, fleet_caps=fleet_caps, window=kind),
        paused)


def journal_since(journal: Journal, since: date, now: float) -> JournalRead:
    """Every writer's entries from `since` on, future months included: what a budget report reads, from
    an earlier day when the caller needs more (`agentmesh report` reads the journals once)."""
    return journal.read(since, until=utc_day(now) + timedelta(days=AHEAD_DAYS))


def budget_report(mesh: Mesh, journal: Journal, now: float, *, read: JournalRead | None = None,
                  agents: Iterable[str] = ()) -> dict:
    """The window's usage per agent and for the fleet, against the caps, and the pause (`agentmesh budget`).
    `read`: the journals from the window's start or earlier (journal_since), when the caller has read them.
    Agents are keyed as core/writers.py keys journal writers (`agents` and this host's first): at most
    MAX_AGENTS rows, every other writer's spend under OTHER, which no per-agent cap applies to."""
    agent_caps, fleet_caps = caps(mesh)
    kind = mesh.policy.budgets.window
    window = budget_window(kind, now)
    if read is None:
        read = _read(journal, window, now)
    first = window.start.date()  # a window starts at midnight UTC
    entries = entries_since(read.entries, first)
    keys = writer_keys(entries, [mesh.host.agent, *agents])
    groups: dict[str, list[JournalEntry]] = {key: [] for key in sorted(set(keys.values()))}
    for entry in entries:
        groups[keys[entry.agent]].append(entry)

    def row(usage: Usage, limit: Caps, scope: str) -> dict:
        return {"usage": usage.to_json(), "caps": {f"tasks_per_{kind}": limit.tasks,
                                                   f"executor_minutes_per_{kind}": limit.minutes,
                                                   f"cost_usd_per_{kind}": limit.cost_usd},
                "exhausted": [b.to_json() for b in breaches(usage, limit, scope, kind)]}

    return {"day": utc_day(now).isoformat(), "window": window.to_json(), "paused": pause_reason(mesh),
            "agents": {a: row(usage_in(group, window, now), Caps() if a == OTHER else agent_caps, f"agent {a}")
                       for a, group in groups.items()},
            "fleet": row(usage_in(entries, window, now), fleet_caps, "fleet"),
            "ignored_journal_lines": read.ignored, "warning": read.ignored_text()}
