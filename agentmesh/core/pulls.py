"""monitor-prs' decisions: cleanup after this agent's finished PRs, its own open PRs, and the
siblings' PRs it must review. Pure: monitor-prs observes, these decide, one apply acts.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

from agentmesh.core.model import PullRequest
from agentmesh.core.plan import (
    Action,
    CleanUpClosed,
    CleanUpMerged,
    Feedback,
    GiveUp,
    HandOver,
    Merge,
    QueueRework,
    ReportCI,
    RequestReview,
    Wait,
)
from agentmesh.core.review import merge_decision, reviewers_for


@dataclass(frozen=True)
class FinishedClaim:
    """A claim of this agent and the work branch its PR comes from."""

    issue: int
    sha: str
    branch: str
    attempt: int


def plan_cleanup(mine: Sequence[FinishedClaim], pulls: Sequence[PullRequest]) -> list[Action]:
    """Merged: clean up. Closed unmerged: return the issue to the queue. Judged by the newest PR of
    each work branch in a complete listing; a claim without one is left alone."""
    actions: list[Action] = []
    for held in mine:
        pull = max((p for p in pulls if p.head == held.branch), key=lambda p: p.number, default=None)
        if pull is None or pull.state == "open":
            continue
        if pull.state == "merged":
            actions.append(CleanUpMerged(issue=held.issue, pr=pull.number, sha=held.sha))
        else:
            actions.append(CleanUpClosed(issue=held.issue, pr=pull.number, sha=held.sha, attempt=held.attempt))
    return actions


@dataclass(frozen=True)
class OwnPull:
    """What monitor-prs saw of one of this agent's open PRs. Past a handed-over or foreign head
    nothing else is read, so those fields keep their defaults."""

    pull: int
    issue: int
    head: str
    handed_over: bool  # labelled needs-human
    head_is_ours: bool = True
    missing_reviewers: tuple[str, ...] = ()
    failing_ci: tuple[str, ...] = ()  # context names, cleaned
    ci_pending: bool = False
    approvals: int = 0
    required: int = 1
    protected: tuple[str, ...] = ()
    changes_requested: bool = False  # by a ring agent or someone with write access
    auto_merge: bool = False
    reworks_done: int = 0
    rework_max: int = 1
    rework_queued: bool = False  # a request for this very head waits for claim-task
    feedback: Feedback = ()


def plan_own_pull(seen: OwnPull) -> list[Action]:
    """Request the missing reviewers, report red CI once per head, then merge or say why not; a
    change request or red CI asks claim-task for a rework until `rework.max`, then a human decides."""
    where = {"issue": seen.issue, "pr": seen.pull}
    if seen.handed_over:
        return []
    if not seen.head_is_ours:
        return [HandOver(**where, detail="a human pushed to the work branch")]
    actions: list[Action] = []
    if seen.missing_reviewers:
        actions.append(RequestReview(**where, reviewers=seen.missing_reviewers,
                                     detail=", ".join(seen.missing_reviewers)))
    if seen.failing_ci:
        actions.append(ReportCI(**where, head=seen.head, detail=", ".join(seen.failing_ci)))
    ci_state = "failure" if seen.failing_ci else "pending" if seen.ci_pending else "success"
    decision = merge_decision(auto=seen.auto_merge, approvals=seen.approvals, required=seen.required,
                              ci_state=ci_state, protected=seen.protected, changes_requested=seen.changes_requested)
    if decision.merge:
        # spelled out: mypy reads **where as possibly filling `head`
        return [*actions, Merge(issue=seen.issue, pr=seen.pull, head=seen.head)]
    actions.append(Wait(**where, detail=decision.reason))
    if seen.changes_requested or seen.failing_ci:
        if seen.reworks_done >= seen.rework_max:
            actions.append(GiveUp(**where, head=seen.head, done=seen.reworks_done,
                                  detail=f"{seen.reworks_done} rework(s) done"))
        elif not seen.rework_queued:
            actions.append(QueueRework(**where, head=seen.head, round=seen.reworks_done + 1, feedback=seen.feedback,
                                       detail=f"round {seen.reworks_done + 1}"))
    return actions


def review_due(*, me: str, author: str, claimer: str | None, ring: Sequence[str], alive: Collection[str],
               required: int, handed_over: bool) -> bool:
    """Whether this agent is a ring reviewer of a sibling's PR (before reading its reviews)."""
    if handed_over or me == claimer:
        return False
    exclude = {claimer} if claimer and claimer != author else set()
    return me in reviewers_for(ring, author, alive=alive, count=required, exclude=exclude)
