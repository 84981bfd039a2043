"""The budget pause: a mesh-wide stop of new spending, beside the kill switch (ADR 0015).

`agentmesh budget pause` pushes a signed pause commit on top of the branch `agentmesh/pause`,
`agentmesh budget resume` a signed resume commit: the kill switch's mechanism on a branch of its
own (agent/switch.py: it only grows, each push a compare-and-swap; a forged pause pauses, a forged
resume does not resume). While paused, no agent claims an issue; unlike a halt nothing running is
stopped: claims held run to their PR (a resumed crash or a rework included), reviews and merges go
on. Agents read the branch from the listing of HEAD every command makes.
"""

from __future__ import annotations

from dataclasses import dataclass

from agentmesh.agent.mesh import Mesh
from agentmesh.agent.report import Report
from agentmesh.agent.switch import Switch, clear_switch, first_line, set_switch, switch_reason
from agentmesh.core.vocab import Event
from agentmesh.git.remote import RemoteRefs
from agentmesh.host.config import PAUSE_REF

PAUSE_BRANCH = PAUSE_REF.removeprefix("refs/heads/")
PAUSE_SUBJECT = "agentmesh: budget pause [skip ci]"
RESUME_SUBJECT = "agentmesh: budget resume [skip ci]"
SPENDING_PAUSE = Switch(PAUSE_REF, PAUSE_SUBJECT, RESUME_SUBJECT, "the budget pause", "budget resume",
                        set_hint="no push access to agentmesh/*? `agentmesh halt` or an issue labelled "
                                 "agentmesh:halt stops everything instead")


def pause_reason(mesh: Mesh, *, listing: RemoteRefs | None = None) -> str | None:
    """Why spending is paused, or None."""
    sha = (listing or mesh.remote_refs).get(PAUSE_REF)
    reason = switch_reason(mesh, SPENDING_PAUSE, sha) if sha is not None else None
    return None if reason is None else f"spending paused (branch {PAUSE_BRANCH}): {reason}"


@dataclass
class PauseReport(Report):
    paused: str | None = None  # the state after the command: why spending is paused, or None

    def to_json(self) -> dict:
        return {**super().to_json(), "paused": self.paused}


def pause(mesh: Mesh, report: PauseReport, reason: str) -> None:
    """Pause spending, or change the reason of the pause; idempotent: the same reason pushes nothing."""
    why = first_line(reason)
    pushed = set_switch(mesh, SPENDING_PAUSE, why, keep_same=True)
    if pushed is None:
        report.add(Event.SKIPPED, detail=f"already paused: {why}")
    else:
        report.add(Event.BUDGET_PAUSED, key=f"budget-paused-{pushed[:12]}", detail=why)
    report.paused = f"spending paused (branch {PAUSE_BRANCH}): {why}"


def resume(mesh: Mesh, report: PauseReport) -> None:
    """Resume spending, pinned to the pause this command read; idempotent: nothing paused, nothing pushed."""
    cleared, pushed = clear_switch(mesh, SPENDING_PAUSE)
    if pushed is not None:
        report.add(Event.BUDGET_RESUMED, key=f"budget-resumed-{pushed[:12]}", detail=f"was: {cleared}")
    else:
        report.add(Event.SKIPPED, detail="was not paused" if cleared is None else "resumed meanwhile by another")
