"""Daily budgets, enforced from the journals: every agent's entries on the memory branch are the ledger.

A run reads today's entries (plus its own queued ones) before it claims.
Reaching a task cap stops new claims; reaching a minutes or cost cap also
stops every executor run, and a run that hits the minutes cap mid-task is
stopped like a halt: nothing half-done is published.

Agents racing within one tick can each see the last free slot, so the fleet
can exceed a cap by at most the number of agents claiming at that moment.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from agentmesh.agent.mesh import Mesh
from agentmesh.core.memory import (
    Breach,
    Caps,
    Usage,
    breaches,
    budget_breaches,
    has_caps,
    minutes_left,
    usage_on,
    utc_day,
)
from agentmesh.memory.journal import Journal


@dataclass(frozen=True)
class BudgetCheck:
    breaches: list[Breach] = field(default_factory=list)
    minutes_left: float | None = None  # executor minutes left today; None: no minutes cap

    @property
    def claims_allowed(self) -> bool:
        return not self.breaches

    @property
    def executors_allowed(self) -> bool:
        return not any(b.stops_executors for b in self.breaches)

    def __str__(self) -> str:
        return "; ".join(str(b) for b in self.breaches)


def caps(mesh: Mesh) -> tuple[Caps, Caps]:
    budgets = mesh.policy.budgets
    return budgets.agent.caps(), budgets.fleet.caps()


def check_budget(mesh: Mesh, journal: Journal, now: float) -> BudgetCheck:
    """Today's state against the caps; without caps nothing is read."""
    agent_caps, fleet_caps = caps(mesh)
    if not has_caps(agent_caps, fleet_caps):
        return BudgetCheck()
    entries = journal.entries(utc_day(now))
    agent = mesh.host.agent
    return BudgetCheck(budget_breaches(entries, agent=agent, now=now, agent_caps=agent_caps, fleet_caps=fleet_caps),
                       minutes_left(entries, agent=agent, now=now, agent_caps=agent_caps, fleet_caps=fleet_caps))


def budget_report(mesh: Mesh, journal: Journal, now: float) -> dict:
    """Today's usage per agent and for the fleet, against the caps (`agentmesh budget`)."""
    agent_caps, fleet_caps = caps(mesh)
    day = utc_day(now)
    read = journal.read(day)
    entries = read.entries
    agents = sorted({e.agent for e in entries} | {mesh.host.agent})

    def row(usage: Usage, limit: Caps, scope: str) -> dict:
        return {"usage": usage.to_json(), "caps": {"tasks_per_day": limit.tasks,
                                                   "executor_minutes_per_day": limit.minutes,
                                                   "cost_usd_per_day": limit.cost_usd},
                "exhausted": [b.to_json() for b in breaches(usage, limit, scope)]}

    return {"day": day.isoformat(),
            "agents": {a: row(usage_on(entries, day, a), agent_caps, f"agent {a}") for a in agents},
            "fleet": row(usage_on(entries, day), fleet_caps, "fleet"),
            "ignored_journal_lines": read.ignored, "warning": read.ignored_text()}

