"""What the host config's `notify:` sends, pure: which run events are notices, their key, text and JSON.

A notice's `text` (what Slack, Mattermost and ntfy-style endpoints show) is built from agentmesh's own
words, numbers and names only: endpoints render it as markup, and forge text (an issue title) or an
executor's words could mention everyone or link anywhere from it. Those travel as JSON data, in the
`title` and `detail` fields. The one exception is an operator's own halt reason, escaped for markup.

Each notice has a key, the identity of the outcome it reports, so that a rerun which re-derives the
outcome after a crash (the same failed attempt, the same PR handed to a human) notifies once: the
key of the run line when the line has one (the journal entry's), else the marker-like facts (issue,
PR, attempt); a budget notice is keyed by its UTC day.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from agentmesh.core.pattern import LazyPattern
from agentmesh.core.sanitize import clean_text
from agentmesh.core.vocab import Event, NotifyEvent

DEFAULT_FAILURES = 2  # a second failed attempt is worth a look before the issue is dead-lettered
TITLE_CHARS = 200
DETAIL_CHARS = 500
_KEY_JUNK = LazyPattern(r"[^a-z0-9]+")  # dashes too: a run of them becomes one

# run event -> notice; a failed attempt (FAILED, or RETURNED: its PR was closed unmerged) only from
# the `failures`th attempt on
_NOTICES = {
    Event.NEEDS_HUMAN: NotifyEvent.NEEDS_HUMAN,
    Event.DEAD_LETTER: NotifyEvent.DEAD_LETTER,
    Event.BUDGET_EXHAUSTED: NotifyEvent.BUDGET_EXHAUSTED,
}
_FAILURES = frozenset({Event.FAILED, Event.RETURNED})


def notice_event(event: Event, *, attempt: int | None, failures: int) -> NotifyEvent | None:
    """The notice a run event is, or None (most events are not for a person)."""
    if event in _FAILURES:
        return NotifyEvent.REPEATED_FAILURE if attempt is not None and attempt >= failures else None
    return _NOTICES.get(event)


def notice_key(kind: NotifyEvent, *, line_key: str = "", issue: int | None = None, pr: int | None = None,
               attempt: int | None = None, day: date | None = None) -> str:
    """The notice's identity ([a-z0-9-]): one delivery per key on a host."""
    if kind is NotifyEvent.BUDGET_EXHAUSTED and day is not None:
        raw = f"{kind}-{day.isoformat()}"
    elif line_key:
        raw = f"{kind}-{line_key}"
    else:
        raw = f"{kind}-i{issue}-p{pr}-a{attempt}"
    return _KEY_JUNK.sub("-", raw.lower()).strip("-")[:160]


def markup_free(text: str, limit: int = 200) -> str:
    """One clean line that chat markup cannot turn into a mention or a link (Slack's escapes, which
    Mattermost also reads)."""
    line = " ".join(clean_text(text, 4 * limit).split())[:limit]
    return line.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


@dataclass(frozen=True)
class Notice:
    event: NotifyEvent
    key: str
    agent: str
    host: str
    at: str  # when, UTC, ISO 8601
    issue: int | None = None
    pr: int | None = None
    attempt: int | None = None
    max_attempts: int | None = None
    title: str = ""  # forge text: data only, never in `text`
    detail: str = ""  # the run's detail (may quote an executor or the forge): data only

    def text(self) -> str:
        who = f"(`{self.agent}` on `{self.host}`)"
        where = " ".join(part for part in (f"PR #{self.pr}" if self.pr else "",
                                           f"issue #{self.issue}" if self.issue else "") if part) or "the mesh"
        of = f" of {self.max_attempts}" if self.max_attempts else ""
        match self.event:
            case NotifyEvent.NEEDS_HUMAN:
                said = f"{where} needs a human: agents will not touch it again"
            case NotifyEvent.DEAD_LETTER:
                said = f"{where} is dead-lettered: attempt {self.attempt}{of} failed; it waits for a human"
            case NotifyEvent.REPEATED_FAILURE:
                said = f"{where} failed again: attempt {self.attempt}{of}"
            case NotifyEvent.BUDGET_EXHAUSTED:
                said = f"budget exhausted, no new claims today: {markup_free(self.detail)}"
            case NotifyEvent.HALT:
                said = f"halted: {markup_free(self.detail)}"
            case NotifyEvent.RESUME:
                said = f"resumed: {markup_free(self.detail)}"
        return f"agentmesh: {said} {who}"

    def to_json(self) -> dict[str, Any]:
        """The event as the command reads it on stdin, and the webhook's body: `text` plus the fields."""
        return {"text": self.text(), "event": str(self.event), "id": self.key, "agent": self.agent,
                "host": self.host, "time": self.at, "issue": self.issue, "pr": self.pr, "attempt": self.attempt,
                "max_attempts": self.max_attempts, "title": clean_text(self.title, TITLE_CHARS),
                "detail": clean_text(self.detail, DETAIL_CHARS)}
