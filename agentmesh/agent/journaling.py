"""Which run events are outcomes worth remembering, and how they become journal entries."""

from __future__ import annotations

from collections.abc import Callable

from agentmesh.agent.report import Line, Report
from agentmesh.core.errors import TemporaryError, UserError
from agentmesh.core.vocab import Event, JournalEvent, Outcome
from agentmesh.memory.journal import Journal

# run event -> (journal event, outcome); everything else (idle, lost-race, waiting, warnings) is noise.
# No outcome: it takes the detail's first word (the executor's: ok, failed, timeout, stopped).
J, O = JournalEvent, Outcome
OUTCOMES: dict[Event, tuple[JournalEvent, Outcome | None]] = {
    Event.CLAIMED: (J.CLAIMED, O.CLAIMED),
    Event.EXECUTED: (J.EXECUTED, None),
    Event.PR_OPENED: (J.PR_OPENED, O.OPENED),
    Event.ADOPTED: (J.PR_OPENED, O.ADOPTED),
    Event.FAILED: (J.FAILED, O.FAILED),
    Event.DEAD_LETTER: (J.FAILED, O.DEAD_LETTER),
    Event.RELEASED: (J.RELEASED, O.RELEASED),
    Event.CLAIM_LOST: (J.RELEASED, O.CLAIM_LOST),
    Event.REWORKED: (J.REWORKED, O.PUSHED),
    Event.REWORK_QUEUED: (J.REWORK_REQUESTED, O.QUEUED),
    Event.NEEDS_HUMAN: (J.HANDED_OVER, O.NEEDS_HUMAN),
    Event.HANDED_OVER: (J.HANDED_OVER, O.HUMAN_PUSHED),
    Event.APPROVED: (J.REVIEWED, O.APPROVED),
    Event.CHANGES_REQUESTED: (J.REVIEWED, O.CHANGES_REQUESTED),
    Event.MERGED: (J.MERGED, O.MERGED),
    Event.CLEANED_UP: (J.CLEANED_UP, O.MERGED),
    Event.RETURNED: (J.FAILED, O.PR_CLOSED),
    Event.REAPED: (J.REAPED, O.REAPED),
    Event.LESSON_PROPOSED: (J.LESSON_PROPOSED, O.OPENED),
}


def journal_listener(journal: Journal) -> Callable[[Line], None]:
    def record(line: Line) -> None:
        if not isinstance(line.event, Event) or line.event not in OUTCOMES:
            return  # planned (dry run) or noise
        name, outcome = OUTCOMES[line.event]
        journal.record(name, issue=line.issue, pr=line.pr, outcome=outcome or line.detail.split(" ", 1)[0],
                       duration_s=line.duration_s, cost_usd=line.cost_usd,
                       summary=line.summary or line.detail, paths=line.paths)

    return record


def flush_journal(journal: Journal, report: Report) -> None:
    """Publish the queued entries; a failure is a warning (they stay queued for the next run)."""
    try:
        journal.flush()
    except (TemporaryError, UserError) as exc:
        report.add(Event.WARNING, detail=f"journal not pushed yet, queued for the next run: {exc}")
