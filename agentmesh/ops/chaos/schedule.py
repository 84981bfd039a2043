"""The nemesis's plan and the executors' delays: pure functions of the seed and the options.

`--seed N` with the same options replays the same faults at the same offsets against the same
targets. What a fault meets there (which claim is held, whether an executor is running) depends on
the agents' own timing, which no seed controls; the applied timeline records it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from enum import StrEnum

REMOTE = "remote"  # the target of the remote's faults
SKEW_SECONDS = 3600.0  # ±1 h: far beyond any lease, so a clock trusted for leases would show it
EARLIEST = 2.0  # let the agents start before the first fault
LAST_HEAL_MARGIN = 1.0  # every fault is healed this long before the nemesis ends
PAUSE_MARGIN = (8.0, 12.0)  # a pause lasts lease + grace + this: long enough for an observer to reap
GAP = (3.0, 9.0)  # between the starts of the extra faults
PLACE_TRIES = 40


class Fault(StrEnum):
    KILL_AGENT = "kill-agent"  # SIGKILL the agent's processes; it is down for a while, then restarts
    KILL_EXECUTOR = "kill-executor"  # SIGKILL the executors its state dir's running/ pidfiles name
    PAUSE_AGENT = "pause-agent"  # SIGSTOP agent and executors past lease + grace, then SIGCONT
    SKEW_CLOCK = "skew-clock"  # the agent's wall clock off by ±1 h for a while
    READ_ONLY_STATE = "read-only-state"  # the agent's state dir remounted read-only for a while
    REMOTE_OUTAGE = "remote-outage"  # git daemon stopped, then started again on the same port
    REMOTE_HANG = "remote-hang"  # git daemon SIGSTOPped: connections open, nothing answers
    REMOTE_MOVE = "remote-move"  # the bare repository renamed away, then back

    @property
    def on_remote(self) -> bool:
        return self in (Fault.REMOTE_OUTAGE, Fault.REMOTE_HANG, Fault.REMOTE_MOVE)

    @property
    def takes_agent_down(self) -> bool:
        """Faults after which the agent does no work for a while (at least one agent stays up)."""
        return self in (Fault.KILL_AGENT, Fault.PAUSE_AGENT, Fault.READ_ONLY_STATE)


@dataclass(frozen=True)
class Shape:
    """The options the plan depends on."""

    agents: tuple[str, ...]
    seconds: float  # the nemesis's length
    lease_seconds: float
    grace_seconds: float
    faults: tuple[Fault, ...] = tuple(Fault)

    @property
    def pause_floor(self) -> float:
        return self.lease_seconds + self.grace_seconds + PAUSE_MARGIN[0]

    @property
    def last_end(self) -> float:
        return self.seconds - LAST_HEAL_MARGIN


@dataclass(frozen=True)
class FaultEvent:
    at: float  # seconds after the nemesis starts
    fault: Fault
    target: str  # an agent's name, or REMOTE
    seconds: float = 0.0  # how long it lasts; 0: a single blow (kill-executor)
    skew: float = 0.0  # skew-clock only: seconds added to the wall clock

    @property
    def ends(self) -> float:
        return self.at + self.seconds

    def describe(self) -> str:
        parts = [f"for {self.seconds:.1f}s"] if self.seconds else []
        if self.fault is Fault.SKEW_CLOCK:
            parts.insert(0, f"{self.skew:+.0f}s")
        return " ".join(parts)

    def to_json(self) -> dict:
        data: dict[str, object] = {"at": self.at, "fault": str(self.fault), "target": self.target,
                                   "seconds": self.seconds}
        if self.fault is Fault.SKEW_CLOCK:
            data["skew"] = self.skew
        return data


@dataclass(frozen=True)
class Plan:
    events: tuple[FaultEvent, ...]
    left_out: tuple[str, ...] = ()  # faults asked for that cannot fit, and why

    def to_json(self) -> dict:
        return {"events": [e.to_json() for e in self.events], "left_out": list(self.left_out)}


def plan(seed: int, shape: Shape) -> Plan:
    """One of every fault that fits first (the pause, then the others shuffled, at random offsets),
    so every run meets each kind; then more at random gaps until the nemesis ends. No two faults with a duration overlap
    on one target, the remote has one fault at a time, at most one agent is paused, at least one
    agent is up at every moment, and everything is healed before the nemesis ends."""
    rng = random.Random(f"agentmesh-chaos/{seed}")
    placed: list[FaultEvent] = []
    kinds = [k for k in Fault if k in shape.faults]  # enum order, not the caller's: one plan per set
    left_out = tuple(f"{k}: needs {shape.pause_floor + EARLIEST + LAST_HEAL_MARGIN:.0f}s of nemesis, "
                     f"has {shape.seconds:.0f}s" for k in kinds if not _fits(k, shape))
    kinds = [k for k in kinds if _fits(k, shape)]
    if not shape.agents:
        return Plan((), left_out)
    first: list[Fault] = [k for k in kinds if k is not Fault.PAUSE_AGENT]
    rng.shuffle(first)
    if Fault.PAUSE_AGENT in kinds:
        first.insert(0, Fault.PAUSE_AGENT)  # the longest, so the hardest to fit: placed first
    for kind in first:
        for _ in range(PLACE_TRIES):
            event = _draw(rng, kind, rng.uniform(EARLIEST, shape.last_end), shape)
            if _allowed(event, placed, shape):
                placed.append(event)
                break
    extra = [k for k in kinds if k is not Fault.PAUSE_AGENT]  # one long pause is plenty
    moment = EARLIEST + rng.uniform(*GAP)
    while extra and moment < shape.last_end:
        event = _draw(rng, rng.choice(extra), moment, shape)
        if _allowed(event, placed, shape):
            placed.append(event)
        moment += rng.uniform(*GAP)
    return Plan(tuple(sorted(placed, key=lambda e: (e.at, e.fault, e.target))), left_out)


def _fits(kind: Fault, shape: Shape) -> bool:
    if kind is Fault.PAUSE_AGENT:
        return EARLIEST + shape.pause_floor <= shape.last_end
    return shape.last_end > EARLIEST


def _draw(rng: random.Random, kind: Fault, at: float, shape: Shape) -> FaultEvent:
    target = REMOTE if kind.on_remote else rng.choice(shape.agents)
    skew = 0.0
    if kind is Fault.KILL_EXECUTOR:
        seconds = 0.0
    elif kind is Fault.PAUSE_AGENT:
        seconds = shape.lease_seconds + shape.grace_seconds + rng.uniform(*PAUSE_MARGIN)
        at = min(at, shape.last_end - seconds)  # a pause is placed wherever it still fits
    elif kind is Fault.KILL_AGENT:
        seconds = rng.uniform(1.0, 5.0)  # down time before the restart
    elif kind is Fault.SKEW_CLOCK:
        seconds, skew = rng.uniform(10.0, 30.0), rng.choice((-SKEW_SECONDS, SKEW_SECONDS))
    elif kind is Fault.REMOTE_MOVE:
        seconds = rng.uniform(4.0, 10.0)
    else:  # read-only state, remote outage, remote hang
        seconds = rng.uniform(5.0, 15.0)
    return FaultEvent(round(max(EARLIEST, at), 1), kind, target, round(seconds, 1), skew)


def _overlap(a: FaultEvent, b: FaultEvent) -> bool:
    return a.at <= b.ends and b.at <= a.ends


def _allowed(event: FaultEvent, placed: list[FaultEvent], shape: Shape) -> bool:
    if event.ends > shape.last_end:
        return False
    if event.fault is Fault.KILL_EXECUTOR:
        return True  # a single blow: it may land anywhere, even on a paused agent
    during = [p for p in placed if p.seconds and _overlap(p, event)]
    if any(p.target == event.target for p in during):
        return False
    if event.fault is Fault.PAUSE_AGENT and any(p.fault is Fault.PAUSE_AGENT for p in during):
        return False
    if event.fault.takes_agent_down:
        down = {p.target for p in during if p.fault.takes_agent_down} | {event.target}
        return len(down) < len(shape.agents)
    return True


def executor_delay(seed: int, issue: int, *, lease_seconds: float, grace_seconds: float,
                   long_share: float = 0.25) -> float:
    """How long the chaos executor sleeps before doing issue `issue`'s work: mostly a few seconds,
    for `long_share` of the issues longer than lease + grace, so only renewals keep the claim."""
    rng = random.Random(f"agentmesh-chaos/{seed}/executor/{issue}")
    if rng.random() < long_share:
        return round(lease_seconds + grace_seconds + rng.uniform(5.0, 15.0), 1)
    return round(rng.uniform(1.0, 6.0), 1)
