"""What one command run did: events, in order, for the CLI's output, the journal and the logs.

Listeners see every event as it happens (the journal queues outcomes to disk
at once, so a crash later in the run loses none of them).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from agentmesh.core.errors import EXIT_OK


@dataclass(frozen=True)
class Event:
    event: str
    issue: int | None = None
    pr: int | None = None
    detail: str = ""
    duration_s: float = 0.0  # executor time this step used
    cost_usd: float | None = None  # as the executor reported it
    paths: tuple[str, ...] = ()  # files the step changed
    summary: str = ""  # for the journal, when it should say more than `detail`

    def to_json(self) -> dict:
        data = {"event": self.event, "issue": self.issue, "pr": self.pr, "detail": self.detail}
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
    status: str = "ok"
    reason: str = ""
    events: list[Event] = field(default_factory=list)
    exit_code: int = EXIT_OK
    listeners: list[Callable[[Event], None]] = field(default_factory=list, repr=False)

    def record(self, event: Event) -> None:
        self.events.append(event)  # list.append is atomic: jobs run in threads
        for listener in self.listeners:
            listener(event)

    def to_json(self) -> dict:
        return {"agent": self.agent, "status": self.status, "reason": self.reason,
                "events": [e.to_json() for e in self.events], "exit_code": self.exit_code}
