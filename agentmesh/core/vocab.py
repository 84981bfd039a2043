"""The mesh's vocabulary: every label, stage, event, run status and stop reason, as enums.

A `StrEnum` member *is* its string, so labels go to the forge and events to the journal unchanged,
while code compares members, never message text, and a typo is an AttributeError, not a silently
dropped journal entry.
"""

from __future__ import annotations

from enum import StrEnum


class Label(StrEnum):
    """Labels agentmesh reads or writes on the forge."""

    PR = "agentmesh"  # on every PR an agent opens
    CLAIMED = "agentmesh:claimed"  # set by earlier versions; every stage change still removes it
    WORKING = "agentmesh:working"
    REVIEW = "agentmesh:review"
    FAILED = "agentmesh:failed"
    DEAD_LETTER = "agentmesh:dead-letter"
    BLOCKED = "agentmesh:blocked"
    NEEDS_HUMAN = "agentmesh:needs-human"  # on a PR: agents stop touching it
    HALT = "agentmesh:halt"  # on an open issue: the mesh-wide kill switch
    MEMORY = "agentmesh:memory"  # on a lesson PR


class Stage(StrEnum):
    """Where an issue is in its life. The working stages are labels, so humans see them in the forge."""

    CLAIMED = Label.CLAIMED.value
    WORKING = Label.WORKING.value
    REVIEW = Label.REVIEW.value
    FAILED = Label.FAILED.value

    @property
    def label(self) -> Label:
        return Label(self.value)


# The labels that keep an issue from being claimed (the local forge's registry holds every Label).
BLOCKING_LABELS: frozenset[Label] = frozenset({Label.BLOCKED, Label.DEAD_LETTER, Label.NEEDS_HUMAN})


class RunStatus(StrEnum):
    """How a claim-task or monitor-prs run ended, as a whole."""

    OK = "ok"
    IDLE = "idle"
    WORKED = "worked"
    BUSY = "busy"  # another run of the same command holds the host lock
    HALTED = "halted"
    DRY_RUN = "dry-run"


class StopReason(StrEnum):
    """Why a running executor was stopped (nothing it did is published)."""

    BUDGET = "budget exhausted"
    CLAIM_LOST = "claim lost"
    HALTED = "halted on this host"
    MESH_HALTED = "mesh halted"
    CANCELLED = "issue cancelled"
    PREEMPTED = "preempted"  # an urgent issue takes the seat (core/preempt.py)


class NotifyEvent(StrEnum):
    """What the host config's `notify:` tells an operator about (core/notify.py, docs/operations.md)."""

    NEEDS_HUMAN = "needs-human"  # an issue or PR is labelled for a human
    DEAD_LETTER = "dead-letter"  # an issue's last allowed attempt failed
    REPEATED_FAILURE = "repeated-failure"  # an issue failed again (from `notify.failures` attempts on)
    BUDGET_EXHAUSTED = "budget-exhausted"  # a budget cap stops new claims (once per agent and UTC day)
    HALT = "halt"  # `agentmesh halt` set the kill switch
    RESUME = "resume"  # `agentmesh resume` cleared it


class Event(StrEnum):
    """What a run reports. Outcomes among them are journaled (agent/journaling.py)."""

    # claim-task
    CLAIMED = "claimed"
    LOST_RACE = "lost-race"
    RESUMED = "resumed"
    IN_REVIEW = "in-review"
    ADOPTED = "adopted"
    RELEASED = "released"
    CLAIM_LOST = "claim-lost"
    KILLED_LEFTOVER = "killed-leftover"
    EXECUTED = "executed"
    PUSHED = "pushed"
    PR_OPENED = "pr-opened"
    FAILED = "failed"
    DEAD_LETTER = "dead-letter"
    BUDGET_EXHAUSTED = "budget-exhausted"
    SPENDING_PAUSED = "spending-paused"  # a tick under `agentmesh budget pause`
    BUDGET_STOPPED = "budget-stopped"
    CANCELLED = "cancelled"
    HALT_STOPPED = "halt-stopped"
    PREEMPTED = "preempted"
    REQUEUED = "requeued"
    OVERRIDE = "override"  # a trusted timeout:/executor: label applied, or an untrusted or bad one ignored
    REWORKING = "reworking"
    REWORKED = "reworked"
    REWORK_POSTPONED = "rework-postponed"
    CYCLE_BLOCKED = "cycle-blocked"
    IDLE = "idle"
    # monitor-prs
    CLEANED_UP = "cleaned-up"
    RETURNED = "returned"
    REVIEW_REQUESTED = "review-requested"
    CI_FAILED = "ci-failed"
    WAITING = "waiting"
    REWORK_QUEUED = "rework-queued"
    NEEDS_HUMAN = "needs-human"
    HANDED_OVER = "handed-over"
    APPROVED = "approved"
    CHANGES_REQUESTED = "changes-requested"
    MERGED = "merged"
    MERGE_PENDING = "merge-pending"
    REAPED = "reaped"
    LESSON_PROPOSED = "lesson-proposed"
    WITHDRAWN = "withdrawn"
    RECLAIMED = "reclaimed"
    SWEPT = "swept"
    SHIPPED = "shipped"  # `pr ship`: merged now by an operator, without the ring's approvals
    # budget pause|resume
    BUDGET_PAUSED = "budget-paused"
    BUDGET_RESUMED = "budget-resumed"
    # both
    SKIPPED = "skipped"
    WARNING = "warning"
    ERROR = "error"


class JournalEvent(StrEnum):
    """What a journal entry records (ai-memory/README.md has the schema)."""

    CLAIMED = "claimed"
    EXECUTED = "executed"
    PR_OPENED = "pr-opened"
    FAILED = "failed"
    RELEASED = "released"
    REWORKED = "reworked"
    REWORK_REQUESTED = "rework-requested"
    HANDED_OVER = "handed-over"
    REVIEWED = "reviewed"
    MERGED = "merged"
    CLEANED_UP = "cleaned-up"
    REAPED = "reaped"
    LESSON_PROPOSED = "lesson-proposed"
    WITHDRAWN = "withdrawn"
    SWEPT = "swept"
    CANCELLED = "cancelled"
    REQUEUED = "requeued"
    BUDGET_PAUSED = "budget-paused"
    BUDGET_RESUMED = "budget-resumed"
    PREEMPTED = "preempted"
    OVERRIDE = "override"


class Outcome(StrEnum):
    """How the step a journal entry records ended (an executor's run: its own outcome instead)."""

    CLAIMED = "claimed"
    OPENED = "opened"
    ADOPTED = "adopted"
    FAILED = "failed"
    DEAD_LETTER = "dead-letter"
    RELEASED = "released"
    CLAIM_LOST = "claim-lost"
    PUSHED = "pushed"
    QUEUED = "queued"
    NEEDS_HUMAN = "needs-human"
    HUMAN_PUSHED = "human-pushed"
    APPROVED = "approved"
    CHANGES_REQUESTED = "changes-requested"
    MERGED = "merged"
    PR_CLOSED = "pr-closed"
    REAPED = "reaped"
    SUPERSEDED = "superseded"
    ORPHAN = "orphan"
    CANCELLED = "cancelled"
    REQUEUED = "requeued"
    PAUSED = "paused"
    RESUMED = "resumed"
    SHIPPED = "shipped"


class Act(StrEnum):
    """The kinds of action a plan holds. Under `--dry-run` each is reported as `would-<act>`."""

    # claim-task
    RELEASE = "release"
    RENEW = "renew"
    ADOPT = "adopt"
    RESUME = "resume"
    REWORK = "rework"
    DROP_REWORK = "drop-rework"
    BLOCK_CYCLE = "block-cycle"  # label the issues of a dependency cycle blocked, with one comment each
    CLAIM = "claim"
    # monitor-prs
    CLEAN_UP_MERGED = "clean-up-merged"
    CLEAN_UP_CLOSED = "clean-up-closed"
    REVIEW = "review"
    REQUEST_REVIEW = "request-review"
    REPORT_CI = "report-ci"
    QUEUE_REWORK = "queue-rework"
    HAND_OVER = "hand-over"
    GIVE_UP = "give-up"  # reworks exhausted: a human takes the PR
    MERGE = "merge"
    WAIT = "wait"
    WITHDRAW = "withdraw"  # close this agent's PR: its issue is closed, or another agent holds the claim
    RECLAIM = "reclaim"  # this agent's open PR lost its claim: take it again
    REAP = "reap"
    SWEEP = "sweep"  # delete a work branch with no PR and no live claim


# What a dry run reports for each planned action: `would-claim`, `would-merge`, ...
Would = StrEnum("Would", {act.name: f"would-{act.value}" for act in Act})  # type: ignore[misc]


class BuiltinGate(StrEnum):
    """Review gates built into agentmesh, named in the mesh policy as `gates: [{builtin: <name>}]`."""

    SYNTAX = "syntax"  # the changed Python, YAML, JSON and TOML files parse (core/syntax.py)


class BudgetWindow(StrEnum):
    """The span budget caps count over (`budgets.window`): UTC, weeks from Monday."""

    DAY = "day"
    WEEK = "week"
    MONTH = "month"


class ReviewVerdict(StrEnum):
    """What a review comes to: the verdict an LLM reviewer gives (core/llm_review.py), and the outcome of
    a review once combined with the gates."""

    APPROVE = "approve"
    REQUEST_CHANGES = "request-changes"
    ESCALATE = "escalate"  # a human decides: the PR is labelled needs-human


class LlmReview(StrEnum):
    """`review.llm` in the mesh policy: whether the ring reviewer also asks its executor for a verdict."""

    OFF = "off"
    ON = "on"


class MigrateStep(StrEnum):
    """What a migrate run does about the import PR."""

    NOTHING = "nothing-to-import"  # the default branch has every file
    OPEN = "open-pr"  # a new branch off the default branch, and its PR
    ADD = "add-to-pr"  # commit the files its branch lacks onto the existing branch, then open or adopt its PR
    ADOPT = "adopt-pr"  # the branch has every file already: open or adopt its PR
    REFUSED = "closed-pr"  # its last PR was closed unmerged: a human said no


class RowChange(StrEnum):
    """How a row of a watched table changed since the last redraw (`status --watch`): its marker."""

    SAME = ""
    NEW = "+"
    CHANGED = "*"
    GONE = "-"


class IncidentKind(StrEnum):
    """What `agentmesh report` lists as an incident (core/report.py)."""

    HALT = "halt"  # a halt commit on the kill switch's branch
    REAP = "reap"  # an expired claim deleted by an observer
    DEAD_LETTER = "dead-letter"  # an issue's last allowed attempt failed
    NEEDS_HUMAN = "needs-human"  # a PR or issue handed to a person


class BoardColumn(StrEnum):
    """The columns of the report's board: where each open issue is (core/report.py, `board`)."""

    ELIGIBLE = "eligible"
    CLAIMED = "claimed"
    WORKING = "working"
    REVIEW = "review"
    NEEDS_HUMAN = "needs_human"
    FAILED = "failed"
    DEAD_LETTER = "dead_letter"
