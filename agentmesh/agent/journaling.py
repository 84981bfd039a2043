"""Which run events are outcomes worth remembering, and how they become journal entries."""

from __future__ import annotations

from collections.abc import Callable

from agentmesh.agent.report import Line, Report
from agentmesh.core.errors import TemporaryError, UserError
from agentmesh.core.vocab import Event, JournalEvent, Outcome
from agentmesh.memory.journal import Journal

# run event -> (journal event, outcome); everything else (idle, lost-race, waiting, warnings) is noise.
# No outcome: it takes the detail's first word (the executor's: ok, failed, timeout, stopped).
OUTCOMES: dict[Event, tuple[JournalEvent, Outcome | None]] = {
    Event.CLAIMED: (JournalEvent.CLAIMED, Outcome.CLAIMED),
    Event.EXECUTED: (JournalEvent.EXECUTED, None),
    Event.PR_OPENED: (JournalEvent.PR_OPENED, Outcome.OPENED),
    Event.ADOPTED: (JournalEvent.PR_OPENED, Outcome.ADOPTED),
    Event.FAILED: (JournalEvent.FAILED, Outcome.FAILED),
    Event.DEAD_LETTER: (JournalEvent.FAILED, Outcome.DEAD_LETTER),
    Event.RELEASED: (JournalEvent.RELEASED, Outcome.RELEASED),
    Event.CLAIM_LOST: (JournalEvent.RELEASED, Outcome.CLAIM_LOST),
    Event.REWORKED: (JournalEvent.REWORKED, Outcome.PUSHED),
    Event.REWORK_QUEUED: (JournalEvent.REWORK_REQUESTED, Outcome.QUEUED),
    Event.NEEDS_HUMAN: (JournalEvent.HANDED_OVER, Outcome.NEEDS_HUMAN),
    Event.HANDED_OVER: (JournalEvent.HANDED_OVER, Outcome.HUMAN_PUSHED),
    Event.APPROVED: (JournalEvent.REVIEWED, Outcome.APPROVED),
    Event.CHANGES_REQUESTED: (JournalEvent.REVIEWED, Outcome.CHANGES_REQUESTED),
    Event.MERGED: (JournalEvent.MERGED, Outcome.MERGED),
    Event.CLEANED_UP: (JournalEvent.CLEANED_UP, Outcome.MERGED),
    Event.RETURNED: (JournalEvent.FAILED, Outcome.PR_CLOSED),
    Event.REAPED: (JournalEvent.REAPED, Outcome.REAPED),
    Event.LESSON_PROPOSED: (JournalEvent.LESSON_PROPOSED, Outcome.OPENED),
    Event.WITHDRAWN: (JournalEvent.WITHDRAWN, Outcome.SUPERSEDED),
    Event.SWEPT: (JournalEvent.SWEPT, Outcome.ORPHAN),
    Event.CANCELLED: (JournalEvent.CANCELLED, Outcome.CANCELLED),
    Event.REQUEUED: (JournalEvent.REQUEUED, Outcome.REQUEUED),
    Event.BUDGET_PAUSED: (JournalEvent.BUDGET_PAUSED, Outcome.PAUSED),
    Event.BUDGET_RESUMED: (JournalEvent.BUDGET_RESUMED, Outcome.RESUMED),
    Event.PREEMPTED: (JournalEvent.PREEMPTED, Outcome.RELEASED),
    Event.SHIPPED: (JournalEvent.MERGED, Outcome.SHIPPED),
    Event.OVERRIDE: (JournalEvent.OVERRIDE, None),  # applied | ignored
}


def journal_listener(journal: Journal) -> Callable[[Line], None]:
    def record(line: Line) -> None:
        fields = entry_fields(line)
        if fields is not None:
            journal.record(**fields)

    return record


def entry_fields(line: Line) -> dict | None:
    """The journal entry of a run line, as `Journal.record`'s arguments; None for noise."""
    if not isinstance(line.event, Event) or line.event not in OUTCOMES:
        return None  # planned (dry run) or noise
    name, outcome = OUTCOMES[line.event]
    return {"event": name, "issue": line.issue, "pr": line.pr, "outcome": outcome or line.detail.split(" ", 1)[0],
            "duration_s": line.duration_s, "cost_usd": line.cost_usd, "summary": line.summary or line.detail,
            "paths": line.paths, "key": line.key}


def flush_journal(journal: Journal, report: Report) -> None:
    """Publish the queued entries; a failure is a warning (they stay queued for the next run)."""
    try:
        journal.flush()
    except (TemporaryError, UserError) as exc:
        report.add(Event.WARNING, detail=f"journal not pushed yet, queued for the next run: {exc}")
