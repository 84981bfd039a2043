"""Preemption: whether one of this agent's running jobs must make way for an urgent issue.

When every seat of an agent is busy and an eligible issue carries a preempting label
(`priority:critical` by default), the agent stops its own lowest-scored running job, so that the
urgent issue gets the seat. Each agent decides only about its own jobs: no agent stops another's.
A job that is itself urgent, or that reworks an open PR (its claim must stay), is never stopped.
A preempting label counts only when a maintainer or roster agent set it (`counted_labels`): stopping
agents' work is steering them, which a label anyone with triage access can set must not do.
Pure: the running jobs with their scores and the ranked candidates come in, the decision goes out.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass

from agentmesh.core.overrides import counted
from agentmesh.core.select import Candidate


@dataclass(frozen=True)
class RunningJob:
    """A job in one of this agent's seats."""

    issue: int
    score: float
    labels: frozenset[str] = frozenset()
    rework: bool = False  # addresses the review of an open PR: never preempted


@dataclass(frozen=True)
class Preempt:
    """Stop the job of `victim` and release its claim, for `urgent`."""

    victim: int
    urgent: int
    detail: str


def is_urgent(labels: Collection[str], preempting: Collection[str]) -> bool:
    """Whether an issue with `labels` may preempt (labels compare case-insensitively, as in selection)."""
    wanted = {label.strip().lower() for label in preempting}
    return any(label.strip().lower() in wanted for label in labels)


def counted_labels(labels: Sequence[str], preempting: Collection[str], setters: Mapping[str, str],
                   trusted: Callable[[str], bool]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(the labels that count, the preempting labels that do not): a preempting label counts only when
    its setter (`setters`: label -> who added it last, core/overrides.setters) is `trusted`."""
    return counted(labels, lambda label: is_urgent([label], preempting), setters, trusted)


def choose_preemption(running: Sequence[RunningJob], candidates: Sequence[Candidate], *, seats: int,
                      preempting: Collection[str]) -> Preempt | None:
    """The job to stop, or None. `candidates`: the issues this agent may claim now, best first (core/select.py;
    claimed issues, the running ones among them, are not candidates). Nothing is stopped while a seat is free
    or no label preempts; the urgent issue is the best-ranked urgent candidate, the victim the lowest-scored
    job that is neither urgent nor a rework (ties: the newest issue, so every run picks the same one)."""
    if len(running) < seats or not preempting:
        return None
    urgent = next((c for c in candidates if is_urgent(c.issue.labels, preempting)), None)
    if urgent is None:
        return None
    victims = [job for job in running if not job.rework and not is_urgent(job.labels, preempting)
               and job.issue != urgent.number]
    if not victims:
        return None
    victim = min(victims, key=lambda job: (job.score, -job.issue))
    return Preempt(victim=victim.issue, urgent=urgent.number,
                   detail=f"preempted for #{urgent.number} (score {urgent.score.total:.1f}, "
                          f"this job's {victim.score:.1f})")
