"""monitor-prs' decisions: cleanup after this agent's finished PRs, its own open PRs, and the
siblings' PRs it must review. Pure: monitor-prs observes, these decide, one apply acts.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

from agentmesh.core.markers import parse_pull_marker
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
    Reclaim,
    ReportCI,
    RequestReview,
    Wait,
    Withdraw,
)
from agentmesh.core.review import merge_decision, reviewers_for


@dataclass(frozen=True)
class FinishedClaim:
    """A claim of this agent and the work branch its PR comes from."""

    issue: int
    sha: str
    branch: str
    attempt: int


def cleanup_heads(agent: str, *, claimed: Collection[str], branches: Collection[str],
                  open_heads: Collection[str]) -> list[str]:
    """The branches whose PRs cleanup must ask for, by name: this agent's claimed work branches and its
    branches on the remote (`<agent>/...`), less those with an open PR (in review, nothing to clean).
    An idle agent asks for none, however many PRs the repository has seen."""
    mine = set(claimed) | {b for b in branches if b.startswith(f"{agent}/")}
    return sorted(mine - set(open_heads))


def plan_cleanup(mine: Sequence[FinishedClaim], pulls: Sequence[PullRequest],
                 branches: Collection[str]) -> list[Action]:
    """After this agent's PRs (`pulls`, any state) merged or closed: clean up while the remote still
    shows something of it, a claim of this agent or the PR's branch (`branches`, this agent's on the
    remote), whoever merged or closed it and whatever crashed on the way. Judged by the newest PR of
    each branch in a complete listing; an open one is still in review."""
    claims = {c.branch: c for c in mine}
    newest: dict[str, PullRequest] = {}
    for pull in pulls:
        if pull.head not in newest or pull.number > newest[pull.head].number:
            newest[pull.head] = pull
    actions: list[Action] = []
    for branch, pull in sorted(newest.items(), key=lambda bp: bp[1].number):
        held = claims.get(branch)
        if pull.state == "open" or (held is None and branch not in branches):
            continue
        marker = parse_pull_marker(pull.body)
        issue = held.issue if held else marker.issue if marker else None
        if pull.state == "merged":
            actions.append(CleanUpMerged(issue=issue, pr=pull.number, sha=held.sha if held else None))
        else:
            actions.append(CleanUpClosed(issue=issue, pr=pull.number, sha=held.sha if held else None,
                                         attempt=held.attempt if held else 0))
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
    issue_open: bool = True
    claimer: str | None = None  # who holds the issue's claim now
    me: str = ""
    claim: str | None = None  # this agent's claim sha, when it holds it
    branch: str = ""
    attempt: int = 1
    missing_reviewers: tuple[str, ...] = ()
    failing_ci: tuple[str, ...] = ()  # context names, cleaned
    ci_pending: bool = False
    unmet_checks: tuple[str, ...] = ()  # required checks not green on the head, with why (core/review.py)
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
    fenced = plan_fence(seen)
    if fenced is not None:
        return fenced
    actions: list[Action] = []
    if seen.missing_reviewers:
        actions.append(RequestReview(**where, reviewers=seen.missing_reviewers,
                                     detail=", ".join(seen.missing_reviewers)))
    if seen.failing_ci:
        actions.append(ReportCI(**where, head=seen.head, detail=", ".join(seen.failing_ci)))
    ci_state = "failure" if seen.failing_ci else "pending" if seen.ci_pending else "success"
    decision = merge_decision(auto=seen.auto_merge, approvals=seen.approvals, required=seen.required,
                              ci_state=ci_state, protected=seen.protected, changes_requested=seen.changes_requested,
                              unmet_checks=seen.unmet_checks)
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


def plan_fence(seen: OwnPull) -> list[Action] | None:
    """Whether agents may act on this agent's PR at all (None: go on). A human's takes it over a
    handed-over or foreign head. One issue, one merge: the PR goes on only while its issue is open and
    the claim is this agent's; otherwise it is closed, or the claim taken again."""
    where = {"issue": seen.issue, "pr": seen.pull}
    if seen.handed_over:
        return []
    if not seen.head_is_ours:
        return [HandOver(**where, detail="a human pushed to the work branch")]
    if not seen.issue_open:
        return [Withdraw(**where, head=seen.head, sha=seen.claim, issue_closed=True, detail="the issue was closed")]
    if seen.claimer is not None and seen.claimer != seen.me:
        # this PR's claim was reaped and another agent redoes the work: it is theirs to merge
        return [Withdraw(**where, head=seen.head, sha=None, issue_closed=False,
                         detail=f"the claim is held by {seen.claimer}")]
    if seen.claim is None:
        return [Reclaim(**where, branch=seen.branch, attempt=seen.attempt, detail="the claim was lost")]
    return None


def review_due(*, me: str, author: str, claimer: str | None, ring: Sequence[str], alive: Collection[str],
               required: int, handed_over: bool) -> bool:
    """Whether this agent is a ring reviewer of a sibling's PR (before reading its reviews)."""
    if handed_over or me == claimer:
        return False
    exclude = {claimer} if claimer and claimer != author else set()
    return me in reviewers_for(ring, author, alive=alive, count=required, exclude=exclude)
