"""Whether the work on a claimed issue is still wanted, re-read while its executor runs.

A run reads the kill switch and the issue once, before it claims. A human who closes (cancels) the
issue, parks it with a blocking label or halts the mesh meanwhile must still stop it: the watch
re-reads both at every heartbeat, and once more right before anything is pushed (the last gate
before the work goes public). The halt ref is one ls-refs round trip; the halt issues, a forge
listing, are read only every few checks and at the last gate. At the heartbeats the watch also asks
whether the job must make way for an urgent issue (agent/preempt.py); the last gate does not:
finished work is published.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection
from dataclasses import dataclass

from agentmesh.agent.halt import halt_issue, switch_halt
from agentmesh.agent.mesh import Mesh
from agentmesh.agent.preempt import Preemption
from agentmesh.core.errors import TemporaryError
from agentmesh.core.select import Why, exclusion_reasons
from agentmesh.core.vocab import Label, StopReason
from agentmesh.forge.base import Forge, NotFound
from agentmesh.git.remote import ls_refs
from agentmesh.host.config import HALT_REF

HALT_ISSUES_EVERY = 5  # checks between two listings of the halt issues
UNWANTED = (Why.NOT_OPEN, Why.BLOCKING_LABEL)  # a human closed the issue or parked it


@dataclass(frozen=True)
class Unwanted:
    stop: StopReason
    reason: str


class Watch:
    def __init__(self, mesh: Mesh, forge: Forge, issue: int, *, agent: str, eligible: Collection[str],
                 every_seconds: float, now: Callable[[], float] = time.monotonic,
                 preemption: Preemption | None = None):
        self.mesh = mesh
        self.forge = forge
        self.issue = issue
        self.agent = agent
        self.eligible = eligible
        self.every_seconds = every_seconds
        self.now = now
        self.preemption = preemption
        self.last = now()
        self.checks = 0

    def due(self) -> Unwanted | None:
        """At each heartbeat: why the executor must stop, or None. A read that fails is retried at the
        next heartbeat (the last gate before a push reads again, and fails the push when it cannot)."""
        if self.now() - self.last < self.every_seconds:
            return None
        self.last = self.now()
        self.checks += 1
        try:
            unwanted = self.unwanted(halt_issues=self.checks % HALT_ISSUES_EVERY == 0)
        except TemporaryError:
            unwanted = None
        preempt = self.preemption.due(self.issue) if unwanted is None and self.preemption is not None else None
        return Unwanted(StopReason.PREEMPTED, preempt.detail) if preempt is not None else unwanted

    def unwanted(self, *, halt_issues: bool = True) -> Unwanted | None:
        """Read now: the mesh-wide kill switch, then the issue (with the halt issues, in one forge read; on the
        local forge, whose items are refs of the remote, in the kill switch's own listing)."""
        listing = ls_refs(self.mesh.git, self.mesh.remote,
                          [HALT_REF, *(self.forge.item_prefixes() if halt_issues else ())])
        halted = switch_halt(self.mesh, listing=listing)
        if halted:
            return Unwanted(StopReason.MESH_HALTED, halted)
        if halt_issues:
            found, halting = self.forge.issue_and_labelled(self.issue, Label.HALT, listing=listing)
            halted = halt_issue(self.forge, halting)
            if halted:
                return Unwanted(StopReason.MESH_HALTED, halted)
        else:
            try:
                found = self.forge.get_issue(self.issue)
            except NotFound:
                found = None
        if found is None:
            return Unwanted(StopReason.CANCELLED, f"issue #{self.issue} is gone")
        issue = found
        reasons = [r for r in exclusion_reasons(issue, agent=self.agent, eligible_labels=self.eligible)
                   if r.code in UNWANTED]
        if reasons:
            return Unwanted(StopReason.CANCELLED, f"issue #{self.issue} is no longer wanted ("
                            + ", ".join(str(r) for r in reasons) + ")")
        return None
