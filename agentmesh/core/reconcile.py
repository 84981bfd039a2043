"""claim-task's first decision: what to do with each claim this agent already holds.

Earlier runs may have crashed anywhere, so every claim is judged from what the remote and the forge
show now: release it (issue closed or gone, no seat, no budget), renew it (its PR is in review),
rework it (monitor-prs asked, for the PR's current head), open the PR for pushed work (adopt), or
resume the work (nothing published yet). Pure: the facts come in, the plan goes out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from agentmesh.core.plan import Action, Adopt, DropRework, Feedback, Release, Renew, Resume, Rework
from agentmesh.core.vocab import StopReason


@dataclass(frozen=True)
class ReworkAsk:
    """What monitor-prs asked for (agent/rework.py stores it on disk)."""

    pull: int
    head: str
    round: int
    feedback: Feedback = ()


@dataclass(frozen=True)
class HeldClaim:
    """One claim of this agent, with everything the decision needs."""

    issue: int
    sha: str
    attempt: int
    branch: str
    issue_open: bool | None  # None: the issue does not exist (any more)
    pull: int | None = None  # the open PR of `branch`
    pull_head: str = ""
    pull_handed_over: bool = False  # labelled needs-human: agents keep out
    pushed_head: str = ""  # the sha of `branch` on the remote; empty when it does not exist
    rework: ReworkAsk | None = None


def plan_reconcile(claims: Sequence[HeldClaim], *, seats: int, executors_allowed: bool,
                   budget: str = "") -> list[Action]:
    """Actions for this agent's claims, in order. Resume and rework take a seat each; claims that
    find none are released, so a host never holds more work than it can do."""
    actions: list[Action] = []
    busy = 0
    for held in claims:
        if held.issue_open is None:
            actions.append(Release(issue=held.issue, sha=held.sha, detail="issue not found"))
        elif not held.issue_open:
            actions.append(Release(issue=held.issue, sha=held.sha, detail="issue is closed", branch=held.branch))
        elif held.pull is not None:
            ask = held.rework if executors_allowed else None
            if ask is not None and (ask.pull != held.pull or ask.head != held.pull_head or held.pull_handed_over):
                actions.append(DropRework(issue=held.issue, pr=held.pull, head=ask.head, detail="stale request"))
                ask = None
            if ask is not None and busy < seats:
                busy += 1
                actions.append(Rework(issue=held.issue, pr=ask.pull, sha=held.sha, branch=held.branch,
                                      attempt=held.attempt, head=ask.head, round=ask.round, feedback=ask.feedback,
                                      detail=f"round {ask.round}"))
            else:
                actions.append(Renew(issue=held.issue, pr=held.pull, sha=held.sha, detail="in review"))
        elif held.pushed_head:
            actions.append(Adopt(issue=held.issue, sha=held.sha, branch=held.branch, head=held.pushed_head,
                                 detail=held.branch))
        elif not executors_allowed:
            actions.append(Release(issue=held.issue, sha=held.sha,
                                   detail=f"{StopReason.BUDGET} ({budget}); nothing was published"))
        elif busy < seats:
            busy += 1
            actions.append(Resume(issue=held.issue, sha=held.sha, branch=held.branch, attempt=held.attempt,
                                  detail="a crashed run published nothing yet"))
        else:
            actions.append(Release(issue=held.issue, sha=held.sha, detail="more claims than seats"))
    return actions


def seats_taken(actions: Sequence[Action]) -> int:
    return sum(isinstance(a, (Resume, Rework)) for a in actions)


def idle_reason(*, claims_allowed: bool, candidates: int, free_seats: int, paused: bool = False) -> str:
    """Why a tick that found nothing to work on did nothing."""
    if paused:
        return "spending paused"
    if not claims_allowed:
        return "budget exhausted"
    if candidates and free_seats > 0:
        return f"{candidates} candidate(s), none claimed"
    return "all seats busy" if candidates else "no eligible issue"
