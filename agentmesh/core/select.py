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
different agents order them differently.

A fleet that ticks together must not race for the same issue (a herd): a
real backlog's issues differ in age, so every agent would rank the same one
first. So the candidates are dealt like cards (`dealt`, `deal`): in the
fleet's shared order (score, then number), each goes to the free agent that
ranks it highest by a hash of (agent, issue, round), one card an agent, until
the free agents run out. Every agent computes the same deal from the same
listing, tries its own card first, and so N agents starting in the same
second claim N different issues. The deal survives a listing that lags by a
claim: removing a card and the agent that took it leaves every other card
where it was. The free agents are the fleet (presence branches, the ring,
claim holders) less those working on a claim without a PR; one that never
comes back holds its card only until the round changes (DEAL_SECONDS).
Priority is kept: within a run of candidates that differ in age alone the
agent's card goes first, then the undealt ones, then the others' cards, and
runs keep their score order, so nobody tries a lower-ranked run first.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from enum import StrEnum
from types import MappingProxyType

from agentmesh.core.digest import sha256
from agentmesh.core.model import Issue
from agentmesh.core.pattern import LazyPattern
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
_DEPENDS = LazyPattern(
    r"\b(?:depends[ \t]+on|blocked[ \t]+by)[ \t]*(?::[ \t]*)?(#[0-9]+(?:[ \t]*(?:(?:,|&|and\b)[ \t]*)?#[0-9]+)*)",
    re.IGNORECASE,
)
_REF = LazyPattern(_NUMBER)
_OPEN_TASK = LazyPattern(rf"^[ \t]*[-*+][ \t]+\[ \][ \t]+{_NUMBER}\b", re.MULTILINE)


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
    return int.from_bytes(sha256(f"{agent}\0{number}".encode()).digest()[:8], "big")


def rank_key(candidate: Candidate, agent: str) -> tuple[int, int, int]:
    """Best first: the score's band, then the agent's tie order (the number only if two hashes collide)."""
    return -round(candidate.score.total / TIE_BAND), tie_order(agent, candidate.number), candidate.number


DEAL_SECONDS = 300  # a round of the deal: a card dealt to an agent that does not claim it is dealt anew after this
DEAL_OFFSET = 150  # rounds turn at 2:30 past each 5 minutes, never on the minute, when cron starts a fleet


def deal_round(now: datetime | float) -> int:
    """The deal's round at `now`: the same for every agent whose clock is within the round."""
    seconds = now if isinstance(now, (int, float)) else _as_utc(now).timestamp()
    return int((seconds - DEAL_OFFSET) // DEAL_SECONDS)


def _deal_hash(agent: str, number: int, round_: int) -> int:
    return int.from_bytes(sha256(f"{agent}\0{number}\0{round_}".encode()).digest()[:8], "big")


def dealt(candidates: Iterable[Candidate], agents: Collection[str], round_: int) -> dict[int, str]:
    """Issue number -> the agent it is dealt to. The candidates go in the fleet's shared order (score, best
    first, then number: no agent's own tie order), each to the agent that ranks it highest by hash of
    (agent, issue, round) among those holding no card yet, until every agent holds one. The same for every
    agent that lists the same candidates and agents; one that lists a claimed card and its claimer too
    deals the others' cards the same (they were dealt before that card, or without that agent)."""
    left = set(agents)
    cards: dict[int, str] = {}
    for candidate in sorted(candidates, key=lambda c: (-c.score.total, c.number)):
        if not left:
            break
        who = max(left, key=lambda a: (_deal_hash(a, candidate.number, round_), a))
        cards[candidate.number] = who
        left.discard(who)
    return cards


def deal(candidates: Iterable[Candidate], agent: str, agents: Collection[str], round_: int) -> list[Candidate]:
    """The order in which `agent` tries `candidates`, dealt among the free `agents` (`agent` always one):
    ranked (`rank_key`) and cut into runs whose scores differ in age alone; within a run, the agent's own
    card, then the candidates dealt to nobody, then those dealt to other agents (each part in rank order).
    Runs keep their order: a higher-ranked run is tried first, whoever holds its cards. Alone, the agent
    keeps the ranking: its own tie order still spreads it from agents it does not know of."""
    ranked = sorted(candidates, key=lambda c: rank_key(c, agent))
    if not set(agents) - {agent}:
        return ranked
    cards = dealt(ranked, {*agents, agent}, round_)

    def part(candidate: Candidate) -> int:
        holder = cards.get(candidate.number)
        return 0 if holder == agent else 1 if holder is None else 2

    out: list[Candidate] = []
    run: list[Candidate] = []
    for candidate in ranked:
        if run and _class(run[0]) != _class(candidate):
            out += sorted(run, key=part)  # stable: rank order within each part
            run = []
        run.append(candidate)
    return out + sorted(run, key=part)


def fleet_members(branches: Iterable[str], presence_prefix: str, known: Iterable[str], agent: str) -> frozenset[str]:
    """The agents that rank this backlog: those with a presence branch (`presence_prefix` + name) among
    `branches` (dead ones too: a card dealt to one waits a round at most), the `known` ones (claim holders,
    the configured ring: a fleet starting at once has pushed no presence yet), and `agent`."""
    present = {b[len(presence_prefix):] for b in branches if b.startswith(presence_prefix)}
    return frozenset({name for name in present if is_agent_name(name)} | set(known) | {agent})


def free_agents(members: Iterable[str], claims: Iterable[tuple[int, str]], in_review: Collection[int],
                agent: str) -> frozenset[str]:
    """Who takes a card: the `members` but those holding a claim (issue, holder) whose issue has no open PR
    (`in_review`): they are working, their seat taken. `agent` is choosing, so it is free."""
    working = {holder for issue, holder in claims if issue not in in_review}
    return frozenset(set(members) - working | {agent})


def _class(candidate: Candidate) -> tuple[float, float, float]:
    """The score's terms but age: candidates that differ only in age may swap places within a run (`deal`)."""
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
    free: Collection[str] = (),
    depends: Mapping[int, Collection[int]] | None = None,
    dealing: int | None = None,
) -> Selection:
    """Split `issues` into ranked candidates (best first) and exclusions with reasons.

    `open_pr_issues`: numbers of issues an open PR closes. `dependency_states`:
    number -> "open"/"closed" for the numbers `dependencies()` returned;
    missing numbers count as open. `free`: the agents the candidates are dealt
    among (`deal`; `agent` is always one of them: alone, the order is the ranking).
    `depends`: number -> `dependencies(issue)`, as the caller computed them once (`dependency_map`).
    `dealing`: the deal's round, `deal_round(now)` when None.
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
    dealing = deal_round(now) if dealing is None else dealing
    return Selection(tuple(deal(candidates, agent, free, dealing)), tuple(excluded))
