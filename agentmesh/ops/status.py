"""`agentmesh status`: the fleet as the remote and the forge show it. Gathers data; nothing here prints.

Everything comes from the remote and the forge (presence and claim refs, open issues and PRs,
reviews, CI, the journals on their branches), except what only this host knows: its config,
its local halt file, and its own observation clock (ages are how long this host has seen a ref
unchanged). Every listing is complete or raises, so an unreachable remote is an error, never an
empty fleet.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from agentmesh.agent.budget import budget_report
from agentmesh.agent.halt import halt_reason
from agentmesh.agent.legacy import observe_legacy
from agentmesh.agent.mesh import Mesh
from agentmesh.agent.stages import inline_title
from agentmesh.core.legacy import LegacyLock
from agentmesh.core.markers import parse_pull_marker
from agentmesh.core.memory import parse_ts
from agentmesh.core.performance import AgentPerformance, performance
from agentmesh.core.review import head_reviews
from agentmesh.core.vocab import Label, Stage
from agentmesh.forge.base import Forge, Issue, PullRequest
from agentmesh.host.config import MeshPolicy
from agentmesh.refs.claims import ClaimView
from agentmesh.refs.identity import Identity
from agentmesh.refs.presence import PresenceView

PULL_LIMIT = 50  # PRs examined per run: each costs a reviews and a CI call
PERFORMANCE_DAYS = 7
LABELS_OF_INTEREST = (Label.NEEDS_HUMAN, Label.MEMORY)


@dataclass(frozen=True)
class AgentRow:
    agent: str
    host: str
    version: str
    executor: str
    capabilities: list[str]
    age_seconds: float  # since this host first saw the presence ref at its current sha
    alive: bool
    verified: bool  # its presence is signed by its roster key (True while the mesh has no roster)
    key: str | None  # the roster key's fingerprint; None: not in the roster (or no roster)
    committed_seconds: float | None = None  # since the presence commit's own date, by the agent's clock


@dataclass(frozen=True)
class ClaimRow:
    issue: int
    holder: str | None  # None: the ref is not a valid claim commit
    host: str | None
    work_branch: str | None
    age_seconds: float
    lease_left_seconds: float
    expired: bool
    stage: str | None  # claimed|working|review|failed from the open issue's agentmesh:* label; None: none or closed
    foreign: str | None = None  # the agent an unsigned or forged claim names (never adopted; reaped as usual)


@dataclass(frozen=True)
class PullRow:
    number: int
    title: str
    author: str
    head: str
    head_sha: str
    issue: int | None  # from the PR's agentmesh marker; None for a human's PR
    age_seconds: float | None  # None when the forge gives no creation time
    approved_by: list[str]
    changes_requested_by: list[str]
    ci: str
    labels: list[str]  # only the labels status cares about


@dataclass(frozen=True)
class Status:
    agent: str
    remote: str
    agents: list[AgentRow]
    claims: list[ClaimRow]
    pulls: list[PullRow]
    pulls_open: int
    pulls_limit: int
    performance: dict[str, AgentPerformance]
    halted: str | None
    budget: dict = field(default_factory=dict)
    legacy: list[LegacyLock] = field(default_factory=list)  # issues the old scripts hold by a branch

    @property
    def pulls_capped(self) -> bool:
        return self.pulls_open > len(self.pulls)

    def to_json(self) -> dict:
        return {"agent": self.agent, "remote": self.remote,
                "agents": [asdict(a) for a in self.agents],
                "claims": [asdict(c) for c in self.claims],
                "pulls": [asdict(p) for p in self.pulls],
                "pulls_open": self.pulls_open, "pulls_limit": self.pulls_limit, "pulls_capped": self.pulls_capped,
                "performance": {a: p.to_json() for a, p in self.performance.items()},
                "performance_days": PERFORMANCE_DAYS,
                "halted": self.halted, "budget": self.budget,
                "legacy_locks": [lock.to_json() for lock in self.legacy]}


def silent_after(policy: MeshPolicy) -> float:
    """Twice lease + grace: judged by another host's clock, so with room for the two clocks to disagree."""
    return 2.0 * (policy.lease.seconds + policy.lease.grace_seconds)


def agent_row(view: PresenceView, identity: Identity, silent_after: float) -> AgentRow:
    """An agent as status shows it. This host's observation decides liveness, but one that only started
    watching cannot tell a stopped agent from a live one: then a presence commit older than `silent_after`
    by its own date (the agent's clock) shows the agent as dead too. Display only: nothing acts on it."""
    key = identity.key_of(view.agent)
    silent = view.committed_seconds is not None and view.committed_seconds > silent_after
    return AgentRow(view.agent, view.host, view.version, view.executor, list(view.capabilities),
                    round(view.observed_seconds, 1), view.alive and not silent, view.verified,
                    key.fingerprint if key else None, view.committed_seconds)


def issue_stage(issue: Issue) -> str | None:
    label = next((s.label for s in Stage if s.label in issue.labels), None)
    return label.split(":", 1)[1] if label else None


def claim_row(view: ClaimView, stages: dict[int, str | None]) -> ClaimRow:
    c = view.claim
    return ClaimRow(view.issue, c.agent if c else None, c.host if c else None, c.work_branch if c else None,
                    round(view.observed_seconds, 1), round(max(0.0, view.lease_seconds - view.observed_seconds), 1),
                    view.expired, stages.get(view.issue), view.foreign)


def pull_row(forge: Forge, pull: PullRequest, now: float) -> PullRow:
    reviews = head_reviews(forge.list_reviews(pull.number), pull.head_sha)
    created = parse_ts(pull.created_at) if pull.created_at else None
    marker = parse_pull_marker(pull.body)
    return PullRow(pull.number, inline_title(pull.title), pull.author, pull.head, pull.head_sha,
                   marker.issue if marker else None,
                   round(max(0.0, now - created.timestamp()), 1) if created else None,
                   sorted(reviews.approved_by), sorted(reviews.changes_requested_by),
                   forge.ci_status(pull.head_sha).state, [x for x in LABELS_OF_INTEREST if x in pull.labels])


def gather(mesh: Mesh, forge: Forge, now: float, *, pull_limit: int = PULL_LIMIT) -> Status:
    """The fleet now; raises (TemporaryError: exit 75) when any listing fails."""
    presence = mesh.presence().list()
    claims = mesh.claims().list()
    stages = {i.number: issue_stage(i) for i in forge.list_issues(state="open")}
    open_pulls = sorted(forge.list_pulls(state="open"), key=lambda p: p.number, reverse=True)
    pulls = [pull_row(forge, p, now) for p in open_pulls[:pull_limit]]  # the newest ones
    active: dict[str, int] = {}
    for view in claims:
        if view.claim is not None:
            active[view.claim.agent] = active.get(view.claim.agent, 0) + 1
    entries = mesh.journal().recent(PERFORMANCE_DAYS, now)
    legacy = observe_legacy(mesh, forge, claimed={v.issue for v in claims}, pulls=open_pulls)
    return Status(
        agent=mesh.host.agent, remote=mesh.remote,
        agents=[agent_row(v, mesh.identity, silent_after(mesh.policy)) for v in presence],
        claims=[claim_row(v, stages) for v in claims],
        pulls=pulls, pulls_open=len(open_pulls), pulls_limit=pull_limit,
        performance=performance(entries, active=active, agents=[v.agent for v in presence]),
        halted=halt_reason(mesh, forge),
        budget=budget_report(mesh, mesh.journal(), now),
        legacy=[legacy[n] for n in sorted(legacy)],
    )
