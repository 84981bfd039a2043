"""Which issues this agent may take, and in which order to try claiming them.

Selection is pure so every agent on every host ranks the same backlog the
same way given the same inputs, and so a test can pin the rules. The caller
fetches the facts (claims, open PRs, attempt counts, the states of issues
referenced as dependencies) and passes the current time in.

Eligibility is conservative: an issue whose dependency state is unknown is
treated as blocked, because starting work too early wastes a claim while
waiting one tick costs almost nothing. Every exclusion carries machine-readable
reasons so the caller can log why an issue was skipped.

Ranking is a weighted sum. With the default weights a whole priority step
(10 points) outweighs the largest age bonus (AGE_CAP_DAYS days at 0.1 per
day = 9 points), so age only orders issues of similar priority, and each
previous failed attempt costs a fifth of a priority step.

Scores within TIE_BAND of each other tie, and ties go by a stable hash of
(agent, issue number): each agent orders them the same way every tick, but
different agents order them differently, so a fleet spreads over a backlog of
equal issues instead of all racing for the same one (a herd). A real backlog's
issues differ in age, so ties are rare: given the fleet's size, the ranking is
cut into windows of that many issues that differ in age alone (the same
priority, attempts and capability terms), each in the agent's hash order. N
agents then start at different issues among the oldest N rather than all at the
oldest one; age orders the windows, and priority still outranks every window.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from enum import StrEnum
from types import MappingProxyType

from agentmesh.core.model import Issue
from agentmesh.core.slug import is_agent_name
from agentmesh.core.vocab import BLOCKING_LABELS

PRIORITY_VALUES: Mapping[str, float] = MappingProxyType({"critical": 4.0, "high": 3.0, "medium": 2.0, "low": 1.0})
DEFAULT_PRIORITY = 1.5  # no priority label: between low and medium
AGE_CAP_DAYS = 90.0
PRIORITY_PREFIX = "priority:"
NEEDS_PREFIX = "needs:"



class Why(StrEnum):
    """Why an issue is not a candidate (Reason.code); stable strings for logs and metrics."""

    NOT_OPEN = "not_open"
    NO_ELIGIBLE_LABEL = "no_eligible_label"
    CLAIMED = "claimed"
    OPEN_PR = "open_pr"
    ASSIGNED_TO_OTHER = "assigned_to_other"
    BLOCKING_LABEL = "blocking_label"
    DEPENDS_ON_OPEN = "depends_on_open"
    MISSING_CAPABILITY = "missing_capability"
    LEGACY_LOCK = "legacy_lock"  # the old scripts hold it with a branch (core/legacy.py)


_NUMBER = r"#([1-9][0-9]{0,9})(?![0-9])"
# "Depends on #3", "blocked by: #4, #5 and #6". Optional groups start with a
# required character (":" or a separator) before their own blanks, so a long
# run of blanks cannot backtrack quadratically.
_DEPENDS = re.compile(
    r"\b(?:depends[ \t]+on|blocked[ \t]+by)[ \t]*(?::[ \t]*)?(#[0-9]+(?:[ \t]*(?:(?:,|&|and\b)[ \t]*)?#[0-9]+)*)",
    re.IGNORECASE,
)
_REF = re.compile(_NUMBER)
_OPEN_TASK = re.compile(rf"^[ \t]*[-*+][ \t]+\[ \][ \t]+{_NUMBER}\b", re.MULTILINE)


@dataclass(frozen=True)
class Weights:
    """Multipliers of the score terms. Plain data so config can map onto it."""

    priority: float = 10.0
    age: float = 0.1  # per day, up to AGE_CAP_DAYS
    attempts: float = 2.0  # subtracted per previous attempt
    capability: float = 1.0  # bonus when the issue needs capabilities and this agent has them all

    @classmethod
    def from_mapping(cls, data: Mapping[str, float]) -> Weights:
        """Weights from config; missing keys keep their defaults, unknown keys are an error."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown weight(s): {', '.join(unknown)} (known: {', '.join(sorted(known))})")
        return cls(**{key: float(value) for key, value in data.items()})


DEFAULT_WEIGHTS = Weights()


@dataclass(frozen=True)
class Reason:
    """Why an issue was excluded: a stable code and a detail (a label, `#12`, a capability)."""

    code: str
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.code}:{self.detail}" if self.detail else self.code


@dataclass(frozen=True)
class Score:
    """The weighted terms of a candidate's score; `total` is their sum."""

    priority: float
    age: float
    attempts: float
    capability: float

    @property
    def total(self) -> float:
        return self.priority + self.age + self.attempts + self.capability


@dataclass(frozen=True)
class Candidate:
    issue: Issue
    score: Score

    @property
    def number(self) -> int:
        return self.issue.number


@dataclass(frozen=True)
class Exclusion:
    issue: Issue
    reasons: tuple[Reason, ...]

    @property
    def number(self) -> int:
        return self.issue.number


@dataclass(frozen=True)
class Selection:
    """Candidates best first, and the excluded issues in input order."""

    candidates: tuple[Candidate, ...]
    excluded: tuple[Exclusion, ...]


def _labels(issue: Issue) -> frozenset[str]:
    return frozenset(label.strip().lower() for label in issue.labels)


def _suffixes(labels: Iterable[str], prefix: str) -> frozenset[str]:
    return frozenset(label[len(prefix):].strip() for label in labels if label.startswith(prefix)) - {""}


def explicit_dependencies(body: str) -> set[int]:
    """Numbers named by `Depends on #N` / `Blocked by #N` (case-insensitive, lists allowed)."""
    found: set[int] = set()
    for match in _DEPENDS.finditer(body or ""):
        found.update(int(n) for n in _REF.findall(match[1]))
    return found


def open_tasks(body: str) -> set[int]:
    """Numbers in unchecked task-list items `- [ ] #N`; checked items never block."""
    return {int(n) for n in _OPEN_TASK.findall(body or "")}


def dependencies(issue: Issue) -> set[int]:
    """Every issue whose state decides whether `issue` may start: fetch these states.

    Checked task-list items are not included: they cannot block.
    """
    return (explicit_dependencies(issue.body) | open_tasks(issue.body)) - {issue.number}


def dependency_map(issues: Iterable[Issue]) -> dict[int, set[int]]:
    """number -> `dependencies(issue)`: each body scanned once, for every decision of a tick to share."""
    return {issue.number: dependencies(issue) for issue in issues}


def needed_capabilities(issue: Issue) -> frozenset[str]:
    return _suffixes(_labels(issue), NEEDS_PREFIX)


def priority_value(issue: Issue) -> float:
    """The highest `priority:*` label's value; DEFAULT_PRIORITY without a known one."""
    values = [PRIORITY_VALUES[p] for p in _suffixes(_labels(issue), PRIORITY_PREFIX) if p in PRIORITY_VALUES]
    return max(values, default=DEFAULT_PRIORITY)


def is_priority_label(label: str) -> bool:
    """Whether `label` would rank its issue (`priority:*`, any case). Ranking is steering: the caller keeps
    only those a maintainer or roster agent set (core/overrides.counted) before ranking."""
    return label.strip().lower().startswith(PRIORITY_PREFIX)


def _as_utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def age_days(created_at: str, now: datetime | float) -> float:
    """Days since `created_at` (ISO 8601, `Z` allowed); 0 when unparsable or in the future."""
    current = datetime.fromtimestamp(now, tz=UTC) if isinstance(now, (int, float)) else _as_utc(now)
    text = (created_at or "").strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        created = _as_utc(datetime.fromisoformat(text))
        days = (current - created).total_seconds() / 86400.0
    except (ValueError, TypeError, OverflowError):
        return 0.0
    return max(0.0, days)


def exclusion_reasons(
    issue: Issue,
    *,
    agent: str,
    eligible_labels: Collection[str],
    claimed: Collection[int] = frozenset(),
    open_pr_issues: Collection[int] = frozenset(),
    capabilities: Collection[str] = frozenset(),
    dependency_states: Mapping[int, str] | None = None,
    legacy: Mapping[int, str] | None = None,
    depends: Collection[int] | None = None,
) -> tuple[Reason, ...]:
    """All reasons `agent` may not take `issue`; empty means eligible.

    Labels and capabilities compare case-insensitively; a dependency counts as
    done only when `dependency_states` says "closed". `legacy`: issue -> the
    branch by which the old scripts hold it, a claim like any other. `depends`:
    `dependencies(issue)`, when the caller has it already (a scan of the body).
    """
    labels = _labels(issue)
    states = dependency_states or {}
    have = {c.strip().lower() for c in capabilities}
    reasons: list[Reason] = []
    if issue.state != "open":
        reasons.append(Reason(Why.NOT_OPEN, issue.state))
    if not labels & {label.strip().lower() for label in eligible_labels}:
        reasons.append(Reason(Why.NO_ELIGIBLE_LABEL))
    if issue.number in claimed:
        reasons.append(Reason(Why.CLAIMED))
    if legacy and issue.number in legacy:
        reasons.append(Reason(Why.LEGACY_LOCK, legacy[issue.number]))
    if issue.number in open_pr_issues:
        reasons.append(Reason(Why.OPEN_PR))
    if issue.assignees and agent not in issue.assignees:
        reasons.append(Reason(Why.ASSIGNED_TO_OTHER, ",".join(issue.assignees)))
    reasons += [Reason(Why.BLOCKING_LABEL, label) for label in sorted(labels & BLOCKING_LABELS)]
    reasons += [
        Reason(Why.DEPENDS_ON_OPEN, f"#{n}") for n in sorted(dependencies(issue) if depends is None else depends)
        if states.get(n) != "closed"
    ]
    reasons += [Reason(Why.MISSING_CAPABILITY, cap) for cap in sorted(needed_capabilities(issue) - have)]
    return tuple(reasons)


def score(issue: Issue, *, now: datetime | float, attempts: int = 0, weights: Weights = DEFAULT_WEIGHTS) -> Score:
    """The score of an eligible issue (its capability needs are assumed met)."""
    return Score(
        priority=weights.priority * priority_value(issue),
        age=weights.age * min(age_days(issue.created_at, now), AGE_CAP_DAYS),
        attempts=-weights.attempts * max(0, attempts),
        capability=weights.capability if needed_capabilities(issue) else 0.0,
    )


TIE_BAND = 0.5  # points (5 days of age with the default weights): closer scores count as equal


def tie_order(agent: str, number: int) -> int:
    """Where issue `number` goes among equal scores for `agent`: stable across ticks and hosts (no
    process-salted hash()), different from one agent to the next."""
    return int.from_bytes(hashlib.sha256(f"{agent}\0{number}".encode()).digest()[:8], "big")


def rank_key(candidate: Candidate, agent: str) -> tuple[int, int, int]:
    """Best first: the score's band, then the agent's tie order (the number only if two hashes collide)."""
    return -round(candidate.score.total / TIE_BAND), tie_order(agent, candidate.number), candidate.number


def spread(ranked: Sequence[Candidate], agent: str, width: int) -> list[Candidate]:
    """`ranked` (best first) cut into runs of at most `width` candidates whose scores differ in age alone,
    each run in `agent`'s tie order: the issues a fleet of `width` agents would take in one round, started
    from a different one by each agent. `width` <= 1 keeps `ranked` as it is."""
    if width <= 1:
        return list(ranked)
    out: list[Candidate] = []
    run: list[Candidate] = []
    for candidate in ranked:
        if run and (len(run) == width or _class(run[0]) != _class(candidate)):
            out += sorted(run, key=lambda c: (tie_order(agent, c.number), c.number))
            run = []
        run.append(candidate)
    return out + sorted(run, key=lambda c: (tie_order(agent, c.number), c.number))


def fleet_size(branches: Iterable[str], presence_prefix: str, known: Iterable[str], agent: str) -> int:
    """How many agents rank the backlog: those with a presence branch (`presence_prefix` + name) among
    `branches`, dead ones too (a wider window costs only age order), the `known` ones (claim holders, the
    configured ring), and `agent`."""
    present = {b[len(presence_prefix):] for b in branches if b.startswith(presence_prefix)}
    return len({name for name in present if is_agent_name(name)} | set(known) | {agent})


def _class(candidate: Candidate) -> tuple[float, float, float]:
    """The score's terms but age: candidates that differ only in age may swap places within a window."""
    s = candidate.score
    return s.priority, s.attempts, s.capability


def rank_issues(
    issues: Iterable[Issue],
    *,
    agent: str,
    eligible_labels: Collection[str],
    now: datetime | float,
    claimed: Collection[int] = frozenset(),
    open_pr_issues: Collection[int] = frozenset(),
    capabilities: Collection[str] = frozenset(),
    attempts: Mapping[int, int] | None = None,
    dependency_states: Mapping[int, str] | None = None,
    weights: Weights = DEFAULT_WEIGHTS,
    legacy: Mapping[int, str] | None = None,
    fleet: int = 1,
    depends: Mapping[int, Collection[int]] | None = None,
) -> Selection:
    """Split `issues` into ranked candidates (best first) and exclusions with reasons.

    `open_pr_issues`: numbers of issues an open PR closes. `dependency_states`:
    number -> "open"/"closed" for the numbers `dependencies()` returned;
    missing numbers count as open. `fleet`: how many agents rank this backlog
    (`spread`); 1 orders strictly by score band. `depends`: number -> `dependencies(issue)`,
    as the caller computed them once (`dependency_map`).
    """
    tries = attempts or {}
    candidates: list[Candidate] = []
    excluded: list[Exclusion] = []
    for issue in issues:
        reasons = exclusion_reasons(
            issue,
            agent=agent,
            eligible_labels=eligible_labels,
            claimed=claimed,
            open_pr_issues=open_pr_issues,
            capabilities=capabilities,
            dependency_states=dependency_states,
            legacy=legacy,
            depends=None if depends is None else depends.get(issue.number),
        )
        if reasons:
            excluded.append(Exclusion(issue, reasons))
        else:
            tried = tries.get(issue.number, 0)
            candidates.append(Candidate(issue, score(issue, now=now, attempts=tried, weights=weights)))
    candidates.sort(key=lambda c: rank_key(c, agent))
    return Selection(tuple(spread(candidates, agent, fleet)), tuple(excluded))
