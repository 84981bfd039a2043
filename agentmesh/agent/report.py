"""What one command run did: lines, in order, for the CLI's output, the journal and the logs.

Listeners see every line as it happens (the journal queues outcomes to disk at once, so a crash
later in the run loses none of them). A dry run's lines are the plan: `would-<act>` for each action.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from agentmesh.core.errors import EXIT_OK, AgentmeshError
from agentmesh.core.plan import Action
from agentmesh.core.vocab import Event, RunStatus, Would


@dataclass(frozen=True)
class Line:
    event: Event | Would
    issue: int | None = None
    pr: int | None = None
    detail: str = ""
    duration_s: float = 0.0  # executor time this step used
    cost_usd: float | None = None  # as the executor reported it
    paths: tuple[str, ...] = ()  # files the step changed
    summary: str = ""  # for the journal, when it should say more than `detail`
    key: str = ""  # the journal keeps one entry per key: a step a rerun re-derives is recorded once
    attempt: int | None = None  # a failed attempt's number (since the last requeue), for notify

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"event": str(self.event), "issue": self.issue, "pr": self.pr, "detail": self.detail}
        if self.duration_s:
            data["duration_s"] = round(self.duration_s, 1)
        if self.cost_usd is not None:
            data["cost_usd"] = self.cost_usd
        return data

    def __str__(self) -> str:
        where = "".join(f" {k}{v}" for k, v in (("#", self.issue), ("PR #", self.pr)) if v is not None)
        return f"{self.event}{where}" + (f": {self.detail}" if self.detail else "")


@dataclass
class Report:
    agent: str
    status: RunStatus = RunStatus.OK
    reason: str = ""
    events: list[Line] = field(default_factory=list)
    exit_code: int = EXIT_OK  # raised only by `error`: the exit code of the worst error met
    listeners: list[Callable[[Line], None]] = field(default_factory=list, repr=False)
    plan: list[Action] = field(default_factory=list)

    def record(self, line: Line) -> None:
        self.events.append(line)  # list.append is atomic: jobs run in threads
        for listener in self.listeners:
            listener(line)

    def add(self, event: Event, *, issue: int | None = None, pr: int | None = None, detail: str = "",
            duration_s: float = 0.0, cost_usd: float | None = None, paths: tuple[str, ...] = (),
            summary: str = "", key: str = "", attempt: int | None = None) -> None:
        self.record(Line(event, issue, pr, detail, duration_s, cost_usd, paths, summary, key, attempt))

    def error(self, exc: AgentmeshError, *, issue: int | None = None, pr: int | None = None, detail: str = "") -> None:
        """A failure that did not stop the run: reported, and the run's exit code is the worst one's."""
        self.add(Event.ERROR, issue=issue, pr=pr, detail=detail or str(exc))
        self.exit_code = max(self.exit_code, exc.exit_code)

    def planned(self, action: Action) -> None:
        """Under --dry-run: what apply would do."""
        self.plan.append(action)
        self.record(Line(Would[action.act.name], action.issue, action.pr, action.detail))

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"agent": self.agent, "status": str(self.status), "reason": self.reason,
                                "events": [e.to_json() for e in self.events], "exit_code": self.exit_code}
        if self.status == RunStatus.DRY_RUN:
            data["plan"] = [a.to_json() for a in self.plan]
        return data
