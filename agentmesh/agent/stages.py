"""What an issue's labels say about its progress, and the records agents leave on the forge.

Stages are labels so that humans see them in the forge's issue list:
`agentmesh:working` -> `agentmesh:review`, or `agentmesh:failed`, and
`agentmesh:dead-letter` once `max_attempts` attempts have failed
(`agentmesh:claimed` is no longer set: a claim is worked on in the tick that
wins it). Attempts are counted from marker comments on the issue, so every
agent on every host counts the same number.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

from agentmesh.core.markers import (
    attempt_marker,
    attempts_ever,
    count_attempts,
    marker_text,
    pull_marker,
    since_requeue,
    strip_issue_keywords,
)
from agentmesh.core.model import Comment, Issue
from agentmesh.core.sanitize import clean_text
from agentmesh.core.secrets import Finding
from agentmesh.core.vocab import Label, Stage
from agentmesh.forge.base import Forge, Relabel

LOG_TAIL_CHARS = 3000


def set_stage(forge: Forge, issue: int, stage: Stage | None) -> None:
    """Make `stage` the issue's only stage label (None: no stage, back in the queue): one write."""
    change = stage_change(issue, stage)
    forge.relabel(issue, add=change.add, remove=change.remove, open_only=change.open_only)


def stage_change(issue: int, stage: Stage | None) -> Relabel:
    """The label change that makes `stage` the issue's only stage label, to land with another write. A stage
    is never added to a closed issue (its other stages are still removed): a run whose view of the issue was
    taken before it was closed and cleaned up (a merge by this agent's monitor-prs) would leave it behind."""
    return Relabel(issue, (stage.label,) if stage is not None else (), tuple(s.label for s in Stage if s != stage),
                   open_only=True)


def inline_title(title: str, limit: int = 120) -> str:
    """An issue title fit for a commit subject or PR title: cleaned, one line, bounded."""
    return " ".join(clean_text(title, 4 * limit).split())[:limit] or "untitled"


def work_title(issue: Issue) -> str:
    """The subject of the work commit and the PR's title: the issue's title without keywords that
    would close or reopen other issues when it lands on the default branch, and its own number."""
    return f"{strip_issue_keywords(inline_title(issue.title)) or 'untitled'} (#{issue.number})"


def pull_body(issue: Issue, *, agent: str, host: str, claim_sha: str) -> str:
    return (
        f"Closes #{issue.number}\n\n"
        f"Opened by agentmesh agent `{agent}` on `{host}` under claim `{claim_sha}`.\n\n"
        f"{marker_text(pull_marker(agent, issue.number, claim_sha))}\n"
    )


def log_tail(text: str, public: Callable[[str], str]) -> str:
    """The end of an executor log made `public` (core/public.py), invisible characters removed. The whole
    of `text` is made public before it is cut, so a cut never leaves part of an encoded secret."""
    tail = public(text)[-LOG_TAIL_CHARS:]
    return clean_text(tail, LOG_TAIL_CHARS).strip() or "(empty log)"


def attempts_so_far(comments: Sequence[Comment], trusted: Callable[[str], bool]) -> int:
    """The failed attempts recorded in an issue's `comments`, whose authors were judged first
    (AgentRun.comments: on the local forge anyone can write any author name)."""
    return count_attempts(comments, {c.author for c in comments if trusted(c.author)})


class Failure(NamedTuple):
    attempt: int  # since the last requeue: what max_attempts counts
    dead: bool
    ever: int  # attempts recorded on the issue, requeues or not: this one's identity (a notice's key)


def record_failure(forge: Forge, issue: int, comments: Sequence[Comment], *, agent: str, claim_attempt: int,
                   reason: str, details: str, max_attempts: int, trusted: Callable[[str], bool]) -> Failure:
    """Comment once per claim, set the failed (or dead-letter) stage. `comments`: the issue's, authors
    judged as for attempts_so_far, so a forged marker neither counts nor stands in for this agent's own."""
    authors = {c.author for c in comments if trusted(c.author)}
    ever = attempts_ever(comments, authors)
    comments = since_requeue(comments, authors)  # a requeue starts the count, and the markers, afresh
    tag = marker_text(attempt_marker(agent, claim_attempt))
    recorded = any(tag in c.body and c.author in authors for c in comments)  # a rerun after a crash
    attempt = count_attempts(comments, authors) + (0 if recorded else 1)
    dead = attempt >= max_attempts
    verdict = (f"Giving up: after {attempt} failed attempt(s) the issue is labelled `{Label.DEAD_LETTER}` "
               "and waits for a human." if dead else "The issue is back in the queue.")
    forge.ensure_comment(issue, attempt_marker(agent, claim_attempt),
                         f"agentmesh: attempt {attempt} of {max_attempts} by `{agent}` failed: {reason}\n\n"
                         f"{verdict}\n\n{details}", comments=comments)
    if dead:
        forge.add_labels(issue, [Label.DEAD_LETTER])
    set_stage(forge, issue, Stage.FAILED)
    return Failure(attempt, dead, ever + (0 if recorded else 1))


def needs_human_key(number: int, sha: str) -> str:
    """The journal key (and notice key) of handing issue or PR `number` to a human at `sha` (the head or
    claim the hand-over's comment marker names): a rerun that hands it over again records it once."""
    return f"needs-human-{number}-{sha[:16]}"


def code_span(text: str, limit: int = 200) -> str:
    """Text an executor chose (a path in its change, its error message) as one clean line in a code
    span it cannot close: no markdown, mention or link of its own reaches the forge."""
    return f"`{inline_title(text, limit).replace('`', chr(39))}`"


def secret_report(findings: Sequence[Finding]) -> str:
    """Where secrets were found, never what they are."""
    lines = [f"- `{f.rule}` in {code_span(f.path)} line {f.line}" for f in findings[:20]]
    more = f"\n- … and {len(findings) - 20} more" if len(findings) > 20 else ""
    return "The change was not pushed because it contains what looks like a secret:\n\n" + "\n".join(lines) + more


def protected_list(paths: Sequence[str], limit: int = 20) -> str:
    """The protected paths a change touches, as a markdown list."""
    more = f"\n- … and {len(paths) - limit} more" if len(paths) > limit else ""
    return "\n".join(f"- {code_span(p)}" for p in paths[:limit]) + more
