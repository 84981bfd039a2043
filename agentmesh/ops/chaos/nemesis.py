"""The nemesis: applies a plan's faults to the running mesh at their offsets, and heals them.

Every fault with a duration is healed at its end, and `heal_all` heals whatever is still open
(the end of the nemesis, or an interrupted run), so the mesh always quiesces on a healthy host.
What each blow met is recorded, because the plan is seeded but the agents' timing is not.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from agentmesh.ops.chaos.agents import Agent
from agentmesh.ops.chaos.gitdaemon import GitDaemon, GitDaemonError
from agentmesh.ops.chaos.mounts import MountError, make_read_only, restore, why_not_permitted
from agentmesh.ops.chaos.schedule import Fault, FaultEvent, Plan

ARMED_SECONDS = 10.0  # how long a kill-executor waits for the agent to run one


@dataclass
class Cluster:
    """What the nemesis can hit."""

    agents: dict[str, Agent]
    daemon: GitDaemon
    repo: Path  # the bare repository the daemon serves

    @property
    def moved(self) -> Path:
        return self.repo.with_name(self.repo.name + ".moved")


@dataclass(frozen=True)
class Applied:
    at: float  # seconds after the nemesis started, as it happened
    event: FaultEvent
    heal: bool
    note: str

    def to_json(self) -> dict:
        return {"at": round(self.at, 1), **self.event.to_json(), "action": "heal" if self.heal else "start",
                "note": self.note}


class Nemesis:
    def __init__(self, plan: Plan, cluster: Cluster):
        self.cluster = cluster
        self.pending = sorted(plan.events, key=lambda e: e.at)
        self.open: list[FaultEvent] = []  # started, with a heal due
        self.timeline: list[Applied] = []
        self.armed: list[FaultEvent] = []  # kill-executors waiting for an executor to start
        self.cannot_mount = why_not_permitted()
        self.begun: float | None = None

    def elapsed(self, now: float) -> float:
        if self.begun is None:
            self.begun = now
        return now - self.begun

    def tick(self, now: float) -> None:
        """Apply every start and heal due by now (monotonic), in time order; the first tick starts
        the nemesis's clock."""
        elapsed = self.elapsed(now)
        self._retry_armed(elapsed, now)
        while True:
            start = self.pending[0] if self.pending and self.pending[0].at <= elapsed else None
            heal = min((e for e in self.open if e.ends <= elapsed), key=lambda e: e.ends, default=None)
            if heal is not None and (start is None or heal.ends <= start.at):
                self._heal(heal, elapsed)
            elif start is not None:
                self.pending.pop(0)
                self._start(start, elapsed, now)
            else:
                return

    def heal_all(self, now: float) -> None:
        elapsed = self.elapsed(now)
        for event in sorted(self.open, key=lambda e: e.ends):
            self._heal(event, elapsed)
        for event in self.armed:
            self.timeline.append(Applied(elapsed, event, False, "no executor ran before the nemesis ended"))
        self.pending, self.armed = [], []

    def _start(self, event: FaultEvent, elapsed: float, now: float) -> None:
        note = self._guarded(lambda: self._hit(event, now))
        if note is None:  # nothing to hit yet: armed
            self.armed.append(event)
            return
        late = elapsed - event.at
        self.timeline.append(Applied(elapsed, event, False, note + (f" ({late:.1f}s late)" if late > 1 else "")))
        if event.seconds:
            self.open.append(event)

    def _retry_armed(self, elapsed: float, now: float) -> None:
        """A kill-executor that found none running waits up to ARMED_SECONDS for one to start."""
        for event in list(self.armed):
            self.armed.remove(event)
            if elapsed - event.at < ARMED_SECONDS:
                self._start(event, elapsed, now)
            else:
                self.timeline.append(Applied(elapsed, event, False, f"no executor ran within {ARMED_SECONDS:.0f}s"))

    def _heal(self, event: FaultEvent, elapsed: float) -> None:
        self.open.remove(event)
        self.timeline.append(Applied(elapsed, event, True, self._guarded(lambda: self._mend(event)) or ""))

    @staticmethod
    def _guarded(action: Callable[[], str | None]) -> str | None:
        """A fault that cannot be applied is noted, not fatal: the run and its judgement go on."""
        try:
            return action()
        except (OSError, GitDaemonError, MountError) as exc:
            return f"failed: {exc}"

    def _hit(self, event: FaultEvent, now: float) -> str | None:
        """What the blow did; None when it found nothing to hit yet (no executor running)."""
        agent = self.cluster.agents.get(event.target)
        daemon = self.cluster.daemon
        match event.fault:
            case Fault.KILL_AGENT if agent:
                return agent.kill(now, event.seconds)
            case Fault.KILL_EXECUTOR if agent:
                killed = agent.kill_executors()
                return f"killed {killed} executor(s)" if killed else None
            case Fault.PAUSE_AGENT if agent:
                return agent.pause()
            case Fault.SKEW_CLOCK if agent:
                return agent.set_skew(event.skew)
            case Fault.READ_ONLY_STATE if agent:
                if self.cannot_mount:
                    return f"skipped: cannot mount ({self.cannot_mount})"
                make_read_only(agent.state_dir)
                return "state dir read-only"
            case Fault.REMOTE_OUTAGE:
                daemon.stop()
                return "git daemon stopped"
            case Fault.REMOTE_HANG:
                daemon.pause()
                return "git daemon stopped with SIGSTOP"
            case Fault.REMOTE_MOVE:
                return self._move_remote(daemon)
        return f"skipped: no target {event.target!r}"

    def _move_remote(self, daemon: GitDaemon) -> str:
        """Moved between two ref transactions (`GitDaemon.freeze`), as an operator's `mv` that tore a
        push in half would break git itself, not the mesh."""
        hung = daemon.paused
        if not daemon.freeze():
            return "skipped: a push kept refs locked"
        try:
            self.cluster.repo.rename(self.cluster.moved)
        finally:
            if not hung:
                daemon.resume()
        return f"repository moved to {self.cluster.moved.name}"

    def _mend(self, event: FaultEvent) -> str:
        agent = self.cluster.agents.get(event.target)
        daemon = self.cluster.daemon
        match event.fault:
            case Fault.KILL_AGENT:
                return "restarts now"  # the agent's own tick starts it again once its down time is over
            case Fault.PAUSE_AGENT if agent:
                return agent.resume()
            case Fault.SKEW_CLOCK if agent:
                return agent.set_skew(0)
            case Fault.READ_ONLY_STATE if agent:
                return "skipped" if self.cannot_mount else restore(agent.state_dir)
            case Fault.REMOTE_OUTAGE:
                daemon.start()
                return f"git daemon started again on port {daemon.port}"
            case Fault.REMOTE_HANG:
                daemon.resume()
                return "git daemon continued"
            case Fault.REMOTE_MOVE:
                if not self.cluster.moved.exists():
                    return "nothing to move back"
                self.cluster.moved.rename(self.cluster.repo)
                return "repository back in place"
        return "nothing to heal"
