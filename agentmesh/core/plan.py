"""Typed actions: what a run decided to do, before it does it.

claim-task and monitor-prs observe the remote and the forge, hand the facts to pure decision
functions (core/reconcile.py, core/pulls.py), and get back a plan: a list of these actions. One
`apply` carries them out, or under `--dry-run` reports each as `would-<act>`, so what a run would do
and what it does come from the same decision.
"""

from __future__ import annotations

from typing import Any, ClassVar

from agentmesh.core.record import Record, values
from agentmesh.core.vocab import Act

Feedback = tuple[tuple[str, str], ...]  # (source, text) pairs for a rework's task file


class Action(Record, kw_only=True):
    act: ClassVar[Act]
    issue: int | None = None
    pr: int | None = None
    detail: str = ""  # why, in words for the report

    def to_json(self) -> dict[str, Any]:
        data = {k: v for k, v in values(self).items() if v not in (None, "", (), [])}
        return {"act": str(self.act), **data}


# --- claim-task: this agent's claims, then new ones ---------------------------------------------


class Release(Action):
    act = Act.RELEASE
    sha: str
    branch: str = ""  # set: also remove the worktree of this branch


class Renew(Action):
    """The PR is in review: keep the claim alive until monitor-prs sees it merged or closed."""

    act = Act.RENEW
    sha: str


class Adopt(Action):
    """The work was pushed but no PR exists (a crash in between): open it now."""

    act = Act.ADOPT
    sha: str
    branch: str
    head: str  # the pushed commit: a merged or closed PR of it is never followed by a second


class BlockCycle(Action):
    """Issues that depend on each other in a cycle: one comment naming it on each, then the blocked label."""

    act = Act.BLOCK_CYCLE
    members: tuple[int, ...]
    path: tuple[int, ...]


class Resume(Action):
    """A claim without published work (a crashed run): work on it again, in a seat."""

    act = Act.RESUME
    sha: str
    branch: str
    attempt: int


class Rework(Action):
    """Address the review of `head` (monitor-prs asked for it), in a seat."""

    act = Act.REWORK
    sha: str
    branch: str
    attempt: int
    head: str
    round: int
    feedback: Feedback = ()


class DropRework(Action):
    """A rework request for a head that moved on (or a PR a human took): forget it."""

    act = Act.DROP_REWORK
    head: str


class Claim(Action):
    act = Act.CLAIM
    branch: str
    attempt: int


# --- monitor-prs: cleanup, own PRs, siblings' PRs, reaping ---------------------------------------


class CleanUpMerged(Action):
    """This agent's PR merged: close the issue, clear its stage, delete the branch and the claim."""

    act = Act.CLEAN_UP_MERGED
    sha: str | None  # the claim, if this agent still holds it


class CleanUpClosed(Action):
    """This agent's PR was closed unmerged: count the attempt, delete the branch, return the issue."""

    act = Act.CLEAN_UP_CLOSED
    sha: str | None  # the claim, if this agent still holds it
    attempt: int


class Review(Action):
    act = Act.REVIEW
    head: str


class RequestReview(Action):
    act = Act.REQUEST_REVIEW
    reviewers: tuple[str, ...]


class ReportCI(Action):
    act = Act.REPORT_CI
    head: str


class QueueRework(Action):
    act = Act.QUEUE_REWORK
    head: str
    round: int
    feedback: Feedback = ()


class HandOver(Action):
    """Someone else pushed to the work branch: it is theirs now."""

    act = Act.HAND_OVER


class GiveUp(Action):
    """`rework.max` reworks did not make the PR pass: a human takes it."""

    act = Act.GIVE_UP
    head: str
    done: int


class Merge(Action):
    act = Act.MERGE
    head: str  # fenced at apply: merged only while the issue's claim is still this agent's


class Withdraw(Action):
    """Close this agent's open PR: its issue is closed (cancelled), or another agent holds the claim
    (this PR's work was reaped and is being redone), so merging it would make a second merge."""

    act = Act.WITHDRAW
    head: str
    sha: str | None  # this agent's claim, released too; None when it holds none
    issue_closed: bool  # cancelled; else another agent holds the claim


class Reclaim(Action):
    """This agent's open PR has no claim (reaped while the agent was away): claim the issue again,
    so the PR can be merged under a fence and nobody redoes the work."""

    act = Act.RECLAIM
    branch: str
    attempt: int


class Wait(Action):
    act = Act.WAIT


class Reap(Action):
    act = Act.REAP
    ref: str
    sha: str
    holder: str | None
    observed_seconds: float


class Sweep(Action):
    """A work or lesson branch with no open PR and no live claim, unchanged past lease + grace by this
    host's clock: delete it, pinned to the sha that was observed."""

    act = Act.SWEEP
    branch: str
    sha: str
