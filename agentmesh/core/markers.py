"""Hidden markers that let agents find their own writes on the forge again.

Reconciling from the forge, not from local memory, needs a way to recognise
what an agent wrote: the PR it opened for a claim, the comment that records
a failed attempt. Each carries an HTML comment `<!-- agentmesh:<marker> -->`
that forges do not render. Markers hold only agent names, numbers and
shas, never forge text.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from agentmesh.core.model import Comment
from agentmesh.core.pattern import LazyPattern

MARKER_PREFIX = "agentmesh:"
_MARKER = LazyPattern(r"[a-z0-9][a-z0-9:._/-]{0,120}")
_CLOSING = LazyPattern(r"\b(?:close[sd]?|fix(?:e[sd])?|resolve[sd]?)\s*:?\s+#([1-9][0-9]{0,9})\b", re.IGNORECASE)
_PR = LazyPattern(r"<!-- agentmesh:pr/(?P<agent>[a-z0-9][a-z0-9-]{0,39})/(?P<issue>[1-9][0-9]{0,9})"
                 r"/(?P<claim>[0-9a-f]{40}(?:[0-9a-f]{24})?) -->")
ATTEMPT_TAG = f"<!-- {MARKER_PREFIX}attempt/"
REQUEUE_TAG = f"<!-- {MARKER_PREFIX}requeued/"


def marker_text(marker: str) -> str:
    """The hidden HTML comment that identifies an agentmesh comment or PR body."""
    if not _MARKER.fullmatch(marker):
        raise ValueError(f"invalid marker {marker!r}")
    return f"<!-- {MARKER_PREFIX}{marker} -->"


def closing_references(text: str) -> list[int]:
    """Issue numbers named by `Closes #N`, `Fixes #N`, `Resolves #N` (any case), in order."""
    return list(dict.fromkeys(int(n) for n in _CLOSING.findall(text or "")))


# A keyword a forge acts on (GitHub and Gitea close, Gitea also reopens) and the issues it names:
# `#N`, `GH-N`, `owner/repo#N` or an issue URL, optionally as a list (`Fixes #1, #2 and #3`). Wider
# than what any forge accepts (no word boundary before the keyword, `:`, `issue` and spaces optional),
# since removing a little too much from a title costs nothing.
_REFERENCE = r"(?:#\d+|gh-\d+|[\w.-]+/[\w.-]+#\d+|https?://\S+)"
_ISSUE_KEYWORD = LazyPattern(
    rf"(?:close[sd]?|fix(?:e[sd])?|resolve[sd]?|reopen(?:s|ed)?)\s*:?\s*(?:issues?\s*)?{_REFERENCE}"
    rf"(?:\s*(?:,|\band\b)\s*{_REFERENCE})*", re.IGNORECASE)


def strip_issue_keywords(text: str) -> str:
    """`text` (one line) without the keywords that close or reopen issues when a forge reads it in a
    commit message or a PR title, and the separators they leave at its ends. Repeated: a removal can
    join a keyword to a reference that was apart (`Fix Closes #1 #2`)."""
    while True:
        stripped, removed = _ISSUE_KEYWORD.subn(" ", text)
        if not removed:
            return text
        text = " ".join(stripped.split()).strip(" ,;:")


@dataclass(frozen=True)
class PullMarker:
    """Who opened a PR for which issue, under which claim."""

    agent: str
    issue: int
    claim_sha: str


def pull_marker(agent: str, issue: int, claim_sha: str) -> str:
    return f"pr/{agent}/{issue}/{claim_sha}"


def parse_pull_marker(body: str) -> PullMarker | None:
    match = _PR.search(body or "")
    if match is None:
        return None
    return PullMarker(match["agent"], int(match["issue"]), match["claim"])


def attempt_marker(agent: str, attempt: int) -> str:
    """One per claim: the claim's attempt number is stable across its renewals, so a rerun
    after a crash finds the comment it already posted instead of counting the failure twice."""
    return f"attempt/{agent}/{attempt}"


def count_attempts(comments: Iterable[Comment], trusted: Iterable[str]) -> int:
    """Failed attempts recorded on an issue by trusted authors (mesh agents, people with write access).

    Comments from others do not count: anyone who can comment could otherwise
    push an issue into the dead-letter queue.
    """
    allowed = set(trusted)
    return sum(1 for c in since_requeue(comments, allowed) if c.author in allowed and ATTEMPT_TAG in c.body)


def requeue_marker(attempts_ever: int) -> str:
    """`issue requeue`'s: named by the attempts recorded before it, so a rerun posts no second one."""
    return f"requeued/{attempts_ever}"


def since_requeue(comments: Iterable[Comment], trusted: Iterable[str]) -> list[Comment]:
    """The comments (oldest first) after the last requeue marker by a trusted author: attempts before it
    no longer count, and their markers no longer stand in for a new claim's."""
    allowed = set(trusted)
    listed = list(comments)
    last = max((i for i, c in enumerate(listed) if c.author in allowed and REQUEUE_TAG in c.body), default=-1)
    return listed[last + 1:]


def attempts_ever(comments: Iterable[Comment], trusted: Iterable[str]) -> int:
    """Attempt markers by trusted authors, requeues or not."""
    allowed = set(trusted)
    return sum(1 for c in comments if c.author in allowed and ATTEMPT_TAG in c.body)
