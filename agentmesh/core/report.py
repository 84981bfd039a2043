"""`agentmesh report`: the figures of the last N days from the journals, the board from the open issues, and
the incidents. Pure: entries, issues and the current time come in, JSON-ready data goes out.

Days are UTC dates, and every day of the window is there, zeros included, so each series has exactly
N points. An entry counts on the day its own stamp says, except one stamped later than `now` (its
writer's clock is ahead), which counts today, as budgets count it (core/memory.counts_in).

Journal text is untrusted: writers' names become dictionary keys only as core/writers.py keys them (agent
names, or a maintainer's journal writer, at most MAX_AGENTS of them); any other writer's figures are kept under
OTHER, so the per-agent series still add up to the fleet's.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from agentmesh.core.memory import (
    Caps,
    JournalEntry,
    Usage,
    Window,
    entry_day,
    usage_in,
    utc_ts,
)
from agentmesh.core.model import Issue
from agentmesh.core.moments import parse_ts
from agentmesh.core.performance import FAILED_EVENT, completions
from agentmesh.core.select import Why, dependencies, exclusion_reasons
from agentmesh.core.vocab import BoardColumn, BudgetWindow, IncidentKind, JournalEvent, Label, Outcome, Stage
from agentmesh.core.writers import writer_keys

SCHEMA = "agentmesh-report/1"
DEFAULT_DAYS = 7
MAX_DAYS = 366
INCIDENT_LIMIT = 100  # the newest ones

# an open issue's column by its labels, first match wins: a person's attention first
_LABEL_COLUMNS = ((Label.DEAD_LETTER, BoardColumn.DEAD_LETTER), (Label.NEEDS_HUMAN, BoardColumn.NEEDS_HUMAN),
                  (Stage.FAILED.label, BoardColumn.FAILED), (Stage.REVIEW.label, BoardColumn.REVIEW),
                  (Stage.WORKING.label, BoardColumn.WORKING), (Stage.CLAIMED.label, BoardColumn.CLAIMED))
# reasons that depend on which agent asks: the board is the fleet's, so they do not keep an issue off it
_PER_AGENT = frozenset({Why.ASSIGNED_TO_OTHER, Why.MISSING_CAPABILITY})
THROUGHPUT_SERIES = ("completed", "failed", "reworked")
BUDGET_SERIES = ("tasks", "minutes", "cost_usd")


def window_dates(days: int, now: float) -> list[date]:
    """The N UTC dates ending today, oldest first."""
    today = datetime.fromtimestamp(now, UTC).date()
    return [today - timedelta(days=back) for back in range(days - 1, -1, -1)]


def counted_day(entry: JournalEntry, now: float) -> date | None:
    """The day the entry counts on: its own, or today when its writer's clock is ahead."""
    day = entry_day(entry)
    return None if day is None else min(day, datetime.fromtimestamp(now, UTC).date())


def _by_day(entries: Iterable[JournalEntry], dates: Sequence[date], now: float) -> dict[date, list[JournalEntry]]:
    """The window's entries by the day they count on; entries outside it are left out."""
    found: dict[date, list[JournalEntry]] = {d: [] for d in dates}
    today = datetime.fromtimestamp(now, UTC).date()
    for entry in entries:
        day = entry_day(entry)
        if day is not None:
            day = min(day, today)
            if day in found:
                found[day].append(entry)
    return found


def throughput(entries: Sequence[JournalEntry], dates: Sequence[date], now: float,
               agents: Iterable[str] = ()) -> dict:
    """Per day and agent: completed (each merged PR once, core/performance.py), failed, reworked."""
    days = _by_day(entries, dates, now)
    done = {id(e) for e in completions(entries)}
    keys = writer_keys(entries, agents)
    per_agent = {a: {s: [0] * len(dates) for s in THROUGHPUT_SERIES} for a in sorted(set(keys.values()))}
    fleet = {s: [0] * len(dates) for s in THROUGHPUT_SERIES}
    for i, day in enumerate(dates):
        for entry in days[day]:
            series = ("completed" if id(entry) in done else "failed" if entry.event == FAILED_EVENT
                      else "reworked" if entry.event == JournalEvent.REWORKED else None)
            if series is not None:
                per_agent[keys[entry.agent]][series][i] += 1
                fleet[series][i] += 1
    return {"dates": [d.isoformat() for d in dates], "agents": per_agent, "fleet": fleet}


def _spread(seconds: list[float]) -> dict:
    """Count, median and p90 (nearest rank) of durations; None without any."""
    ordered = sorted(seconds)
    if not ordered:
        return {"count": 0, "median_seconds": None, "p90_seconds": None}
    p90 = ordered[max(0, math.ceil(0.9 * len(ordered)) - 1)]
    return {"count": len(ordered), "median_seconds": round(statistics.median(ordered), 1),
            "p90_seconds": round(p90, 1)}


def latency(entries: Sequence[JournalEntry]) -> dict:
    """Claim to PR: from an agent's last claim of an issue to the PR it then opened for it; PR to merge: from
    a PR's first `pr-opened` to its completion. Only pairs with both ends among `entries` count."""
    ordered = sorted(entries, key=lambda e: e.ts)
    claimed: dict[tuple[str, int], datetime] = {}
    opened: dict[int, datetime] = {}
    to_pr: list[float] = []
    for entry in ordered:
        if entry.event == JournalEvent.CLAIMED and entry.issue is not None and (moment := entry.moment):
            claimed[(entry.agent, entry.issue)] = moment
        elif (entry.event == JournalEvent.PR_OPENED and entry.pr is not None and entry.pr not in opened
              and (moment := entry.moment)):
            opened[entry.pr] = moment
            start = claimed.pop((entry.agent, entry.issue), None) if entry.issue is not None else None
            if start is not None and entry.outcome == Outcome.OPENED:  # an adopted PR was opened earlier
                to_pr.append((moment - start).total_seconds())
    to_merge = [(moment - opened[done.pr]).total_seconds() for done in completions(ordered)
                if done.pr is not None and done.pr in opened and (moment := done.moment)]
    return {"claim_to_pr": _spread(to_pr), "pr_to_merge": _spread([max(0.0, s) for s in to_merge])}


def caps_json(caps: Caps) -> dict:
    return {"tasks": caps.tasks, "minutes": caps.minutes, "cost_usd": caps.cost_usd}


def budget_series(entries: Sequence[JournalEntry], dates: Sequence[date], now: float, *, agent_caps: Caps,
                  fleet_caps: Caps, window: BudgetWindow, agents: Iterable[str] = ()) -> dict:
    """Spend per UTC day, per agent and for the fleet (tasks claimed, executor minutes, cost as reported),
    counted as budgets count it (core/memory.usage_in); the caps are per `window`."""
    days = _by_day(entries, dates, now)
    keys = writer_keys(entries, agents)
    names = sorted(set(keys.values()))
    per_agent: dict[str, dict[str, list]] = {a: {s: [] for s in BUDGET_SERIES} for a in names}
    fleet: dict[str, list] = {s: [] for s in BUDGET_SERIES}

    def add(series: dict[str, list], usage: Usage) -> None:
        for name, value in usage.to_json().items():
            series[name].append(value)

    for day in dates:
        start = datetime(day.year, day.month, day.day, tzinfo=UTC)
        span = Window(BudgetWindow.DAY, start, start + timedelta(days=1))
        groups: dict[str, list[JournalEntry]] = {a: [] for a in names}
        for entry in days[day]:
            groups[keys[entry.agent]].append(entry)
        usages = [usage_in(group, span, now) for group in groups.values()]
        for name, usage in zip(groups, usages, strict=True):
            add(per_agent[name], usage)
        add(fleet, Usage(sum(u.tasks for u in usages), sum(u.minutes for u in usages),
                         sum(u.cost_usd for u in usages)))
    return {"dates": [d.isoformat() for d in dates], "window": str(window),
            "caps": {"agent": caps_json(agent_caps), "fleet": caps_json(fleet_caps)},
            "agents": per_agent, "fleet": fleet}


IGNORED_REASONS = {"unreadable": "unreadable", "unsigned": "not signed by their agent"}  # key -> words


def ignored_lines(*, unreadable: int, unsigned: int) -> dict:
    """The document's count of the journal lines it left out, and why (IGNORED_REASONS)."""
    return {"ignored_journal_lines": unreadable + unsigned,
            "ignored_journal_reasons": {"unreadable": unreadable, "unsigned": unsigned}}


def ignored_note(count: object, reasons: object) -> str | None:
    """`N journal lines ignored: 2 unreadable, 1 not signed by their agent` for a person, from a document's
    fields (any JSON: the page renders documents it did not make); None when it says of none."""
    def number(value: object) -> int:
        return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0

    total = number(count)
    if not total:
        return None
    why = reasons if isinstance(reasons, dict) else {}
    parts = [f"{n} {words}" for key, words in IGNORED_REASONS.items() if (n := number(why.get(key)))]
    return f"{total} journal line{'' if total == 1 else 's'} ignored" + (f": {', '.join(parts)}" if parts else "")


@dataclass(frozen=True)
class HaltRecord:
    """A halt: a commit that set the kill switch (at its committer date), or an open issue labelled
    `agentmesh:halt` (at its creation: the forge does not say when the label came)."""

    at: float
    reason: str
    issue: int | None = None


def halt_issues(issues: Iterable[Issue]) -> list[HaltRecord]:
    """The open issues that halt the mesh, as halts."""
    return [HaltRecord(moment.timestamp(), issue.title, issue.number) for issue in issues
            if Label.HALT in issue.labels and (moment := parse_ts(issue.created_at)) is not None]


def _incident_kind(entry: JournalEntry) -> IncidentKind | None:
    if entry.event == JournalEvent.REAPED:
        return IncidentKind.REAP
    if entry.event == JournalEvent.FAILED and entry.outcome == Outcome.DEAD_LETTER:
        return IncidentKind.DEAD_LETTER
    if entry.event == JournalEvent.HANDED_OVER and entry.outcome == Outcome.NEEDS_HUMAN:
        return IncidentKind.NEEDS_HUMAN
    return None


def incidents(entries: Iterable[JournalEntry], halts: Iterable[HaltRecord], *, since: date, now: float,
              limit: int = INCIDENT_LIMIT) -> list[dict]:
    """Halts, reaps, dead letters and needs-human from `since` on, newest first, at most `limit`, each at its
    moment in UTC: one stamped later than `now` at `now`, or it would head every report until its day came."""
    found: list[tuple[float, dict]] = []
    for entry in entries:
        kind = _incident_kind(entry)
        if kind is not None and (moment := entry.moment) is not None and moment.date() >= since:
            at = min(moment.timestamp(), now)
            found.append((at, {"at": utc_ts(at), "kind": str(kind), "issue": entry.issue,
                               "agent": entry.agent, "reason": entry.summary or entry.outcome}))
    for halt in halts:
        at = min(max(0.0, halt.at), now)  # a commit date is its committer's word: even year 30000 (no datetime)
        if datetime.fromtimestamp(at, UTC).date() >= since:
            found.append((at, {"at": utc_ts(at), "kind": str(IncidentKind.HALT), "issue": halt.issue,
                               "agent": None, "reason": halt.reason}))
    found.sort(key=lambda item: item[0], reverse=True)
    return [item for _, item in found[:limit]]


@dataclass(frozen=True)
class OpenPull:
    """An open PR as the board links it: the issue and agent of its agentmesh marker (None: a person's PR)."""

    number: int
    issue: int | None
    agent: str | None
    url: str | None


def issue_column(issue: Issue, *, claimed: bool, open_issues: Collection[int],
                 eligible_labels: Collection[str]) -> BoardColumn | None:
    """Where an open issue is on the board; None: nowhere (not for agents, blocked, or waiting on another)."""
    for label, column in _LABEL_COLUMNS:
        if label in issue.labels:
            return column
    if claimed:
        return BoardColumn.CLAIMED
    # a dependency that is not open is done (or never was)
    states = {n: "open" if n in open_issues else "closed" for n in dependencies(issue)}
    reasons = exclusion_reasons(issue, agent="", eligible_labels=eligible_labels, dependency_states=states)
    return BoardColumn.ELIGIBLE if all(r.code in _PER_AGENT for r in reasons) else None


def board(issues: Sequence[Issue], *, claims: Mapping[int, str | None], pulls: Sequence[OpenPull],
          eligible_labels: Collection[str]) -> dict[str, list[dict]]:
    """Every open issue in its column (BoardColumn), by number: `claims` maps a claimed issue to its holder
    (None: not a valid claim), `pulls` are the open PRs, the newest one of an issue linked from its card."""
    numbers = {i.number for i in issues}
    pull_of: dict[int, OpenPull] = {}
    for pull in sorted(pulls, key=lambda p: p.number):
        if pull.issue is not None:
            pull_of[pull.issue] = pull
    columns: dict[str, list[dict]] = {str(c): [] for c in BoardColumn}
    for issue in sorted(issues, key=lambda i: i.number):
        column = issue_column(issue, claimed=issue.number in claims, open_issues=numbers,
                              eligible_labels=eligible_labels)
        if column is None:
            continue
        linked = pull_of.get(issue.number)
        columns[str(column)].append({
            "issue": issue.number, "title": issue.title, "url": issue.url or None,
            "agent": claims.get(issue.number) or (linked.agent if linked else None),
            "pr": linked.number if linked else None, "pr_url": linked.url if linked else None})
    return columns
