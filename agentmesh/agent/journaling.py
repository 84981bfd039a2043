"""Which run events are outcomes worth remembering, and how they become journal entries."""

from __future__ import annotations

from collections.abc import Callable

from agentmesh.agent.report import Event, Report
from agentmesh.core.errors import TemporaryError, UserError
from agentmesh.memory.journal import Journal

# run event -> (journal event, outcome); everything else (idle, lost-race, waiting, warnings) is noise
OUTCOMES: dict[str, tuple[str, str]] = {
    "claimed": ("claimed", "claimed"),
    "executed": ("executed", ""),  # outcome: the executor's (ok, failed, timeout, stopped)
    "pr-opened": ("pr-opened", "opened"),
    "adopted": ("pr-opened", "adopted"),
    "failed": ("failed", "failed"),
    "dead-letter": ("failed", "dead-letter"),
    "released": ("released", "released"),
    "claim-lost": ("released", "claim-lost"),
    "reworked": ("reworked", "pushed"),
    "rework-queued": ("rework-requested", "queued"),
    "needs-human": ("handed-over", "needs-human"),
    "handed-over": ("handed-over", "human-pushed"),
    "approved": ("reviewed", "approved"),
    "changes-requested": ("reviewed", "changes-requested"),
    "merged": ("merged", "merged"),
    "cleaned-up": ("cleaned-up", "merged"),
    "returned": ("failed", "pr-closed"),
    "reaped": ("reaped", "reaped"),
    "lesson-proposed": ("lesson-proposed", "opened"),
}


def journal_listener(journal: Journal) -> Callable[[Event], None]:
    def record(event: Event) -> None:
        if event.event not in OUTCOMES:
            return
        name, outcome = OUTCOMES[event.event]
        journal.record(name, issue=event.issue, pr=event.pr, outcome=outcome or event.detail.split(" ", 1)[0],
                       duration_s=event.duration_s, cost_usd=event.cost_usd,
                       summary=event.summary or event.detail, paths=event.paths)

    return record


def flush_journal(journal: Journal, report: Report) -> None:
    """Publish the queued entries; a failure is a warning (they stay queued for the next run)."""
    try:
        journal.flush()
    except (TemporaryError, UserError) as exc:
        report.record(Event("warning", detail=f"journal not pushed yet, queued for the next run: {exc}"))
