"""Preemption while a claim-task tick's jobs run: the seats' shared view, read at the heartbeats.

A tick holds the host lock while its executors run, so no later tick of this agent can notice an
urgent issue meanwhile: the running jobs' watches (agent/watch.py) ask here at each heartbeat. The
open issues are listed at most once per heartbeat period for all seats together, and ranked only
when one of them carries a preempting label; core/preempt.py decides. The job chosen is stopped
through its watch, like a cancel, and its seat then claims the urgent issue (agent/claim_task.py).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Collection, Sequence

from agentmesh.core.errors import TemporaryError
from agentmesh.core.preempt import Preempt, RunningJob, choose_preemption
from agentmesh.core.select import Candidate


class Preemption:
    def __init__(self, *, seats: int, preempting: Collection[str], rank: Callable[[], Sequence[Candidate]],
                 every_seconds: float, now: Callable[[], float] = time.monotonic):
        """`rank`: the candidates this agent may claim now, best first (read from the forge when called)."""
        self.seats = seats
        self.preempting = tuple(preempting)
        self.rank = rank
        self.every_seconds = every_seconds
        self.now = now
        self.last = now()
        self.running: dict[int, RunningJob] = {}
        self.decided: Preempt | None = None  # one at a time: its seat claims the urgent issue first
        self.lock = threading.Lock()

    def started(self, job: RunningJob) -> None:
        with self.lock:
            self.running[job.issue] = job

    def ended(self, issue: int) -> Preempt | None:
        """The job of `issue` ended: the preemption it made way for, if it was the one chosen."""
        with self.lock:
            self.running.pop(issue, None)
            decided = self.decided
            if decided is None or decided.victim != issue:
                return None
            self.decided = None
            return decided

    def due(self, issue: int) -> Preempt | None:
        """At a heartbeat of the job of `issue`: the preemption that stops it, or None. A read that
        fails is retried at the next heartbeat."""
        if not self.preempting:
            return None
        with self.lock:
            if self.decided is None and len(self.running) >= self.seats \
                    and self.now() - self.last >= self.every_seconds:
                self.last = self.now()
                try:
                    self.decided = choose_preemption(list(self.running.values()), self.rank(), seats=self.seats,
                                                     preempting=self.preempting)
                except TemporaryError:
                    pass
            return self.decided if self.decided is not None and self.decided.victim == issue else None
