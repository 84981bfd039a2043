"""`agentmesh status`: the fleet as the remote and the forge show it. Gathers data; nothing here prints.

Everything comes from the remote and the forge (presence and claim refs, open issues and PRs,
reviews, CI, the journals on their branches), except what only this host knows: its config,
its local halt file, and its own observation clock (ages are how long this host has seen a ref
unchanged). Every listing is complete or raises, so an unreachable remote is an error, never an
empty fleet.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import timedelta

from agentmesh.agent.budget import budget_report
from agentmesh.agent.halt import halt_issue, switch_halt
from agentmesh.agent.legacy import BRANCHES, branches_of, observe_legacy, within_branches
from agentmesh.agent.mesh import Mesh
from agentmesh.agent.stages import inline_title
from agentmesh.core.legacy import LegacyLock
from agentmesh.core.markers import parse_pull_marker
from agentmesh.core.memory import JOURNALS_PREFIX, JournalEntry, budget_window, entries_since, utc_day, utc_ts
from agentmesh.core.moments import parse_ts
from agentmesh.core.performance import AgentPerformance, performance
from agentmesh.core.review import HeadReviews, head_reviews
from agentmesh.core.vocab import Label, Stage
from agentmesh.forge.base import Forge, Issue, PullRequest
from agentmesh.git.remote import RemoteRefs, ls_refs
from agentmesh.host.basics import PAUSE_REF
from agentmesh.host.config import MeshPolicy
from agentmesh.memory.journal import JournalRead
from agentmesh.refs.claims import ClaimView, RefMemo
from agentmesh.refs.identity import Identity
from agentmesh.refs.presence import PresenceView

PULL_LIMIT = 50  # PRs examined per run: each costs a reviews and a CI call
PERFORMANCE_DAYS = 7
LABELS_OF_INTEREST = (Label.NEEDS_HUMAN, Label.MEMORY)
FINAL_CI = ("success", "failure", "error")  # a head's CI in these states is not asked for again by a watch


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
    heartbeat_at: str | None = None  # that date itself, ISO UTC: the agent's last heartbeat by its own clock


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
    approved_head: str | None = None  # the commit of the newest approval, on any head: an older one means it moved


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
                    key.fingerprint if key else None, view.committed_seconds,
                    utc_ts(view.committed_at) if view.committed_at is not None else None)


def issue_stage(issue: Issue) -> str | None:
    label = next((s.label for s in Stage if s.label in issue.labels), None)
    return label.split(":", 1)[1] if label else None


def claim_row(view: ClaimView, stages: dict[int, str | None]) -> ClaimRow:
    c = view.claim
    return ClaimRow(view.issue, c.agent if c else None, c.host if c else None, c.work_branch if c else None,
                    round(view.observed_seconds, 1), round(max(0.0, view.lease_seconds - view.observed_seconds), 1),
                    view.expired, stages.get(view.issue), view.foreign)


def pull_row(forge: Forge, pull: PullRequest, now: float, memo: StatusMemo) -> PullRow:
    """A PR as status shows it. Its reviews are asked for only when its head or its update time changed since
    the memo saw it; its CI while the head's CI is not final (a check finishing does not touch the PR)."""
    key = (pull.head_sha, pull.updated_at)
    kept = memo.reviews.get(pull.number)
    if kept is None or kept[0] != key or not pull.updated_at:
        listed = forge.list_reviews(pull.number)
        approved = [x.commit_id for x in listed if x.state == "APPROVED"]  # oldest first
        kept = (key, head_reviews(listed, pull.head_sha), approved[-1] if approved else None)
        memo.reviews[pull.number] = kept
    _, reviews, approved_head = kept
    ci = memo.ci.get(pull.head_sha)
    if ci is None:
        ci = forge.ci_status(pull.head_sha).state
        if ci in FINAL_CI:
            memo.ci[pull.head_sha] = ci
    created = parse_ts(pull.created_at) if pull.created_at else None
    marker = parse_pull_marker(pull.body)
    return PullRow(pull.number, inline_title(pull.title), pull.author, pull.head, pull.head_sha,
                   marker.issue if marker else None,
                   round(max(0.0, now - created.timestamp()), 1) if created else None,
                   sorted(reviews.approved_by), sorted(reviews.changes_requested_by),
                   ci, [x for x in LABELS_OF_INTEREST if x in pull.labels], approved_head)


@dataclass
class StatusMemo:
    """What `status --watch` keeps from one gather to the next, so that what did not change is not read again
    (docs/operations.md, "Watching"): the refs' messages and dates by sha, each PR's reviews by (head, update
    time), final CI states by head, and the journal-derived figures by the journal heads and the day. A one-shot
    status starts from an empty one. Only this process holds it; the observation clock stays in the state dir."""

    refs: RefMemo = field(default_factory=RefMemo)
    reviews: dict[int, tuple[tuple[str, str], HeadReviews, str | None]] = field(default_factory=dict)
    ci: dict[str, str] = field(default_factory=dict)
    journal: tuple[tuple, tuple[list[JournalEntry], dict]] | None = None
    legacy: tuple[tuple, dict[int, LegacyLock]] | None = None

    def forget(self, pulls: list[PullRow]) -> None:
        """Keep only the PRs shown now: a watch that runs for days holds no closed PR's reviews."""
        self.reviews = {p.number: self.reviews[p.number] for p in pulls if p.number in self.reviews}
        self.ci = {p.head_sha: self.ci[p.head_sha] for p in pulls if p.head_sha in self.ci}


def _journal_figures(mesh: Mesh, listing: RemoteRefs, now: float, memo: StatusMemo, read: JournalRead | None,
                     agents: Sequence[str]) -> tuple[list[JournalEntry], dict]:
    """The last days' journal entries and the budget report, read again only when a journal branch, the pause,
    the default branch (the caps), the day (the windows) or the agents with a presence (the budget's first
    rows) changed; taken from `read` when the caller has it."""
    journal = mesh.journal()
    if read is not None:
        first = utc_day(now) - timedelta(days=PERFORMANCE_DAYS - 1)
        entries = entries_since(read.entries, first)
        return entries, budget_report(mesh, journal, now, read=read, agents=agents)
    heads = tuple(sorted((ref, sha) for ref, sha in listing.refs.items()
                         if ref.startswith(JOURNALS_PREFIX) or ref in journal.legacy_refs))
    key = (heads, listing.get(PAUSE_REF), listing.get("HEAD"), utc_day(now).isoformat(),
           budget_window(mesh.policy.budgets.window, now).to_json(), tuple(sorted(agents)))
    if memo.journal is None or memo.journal[0] != key:
        memo.journal = (key, (journal.recent(PERFORMANCE_DAYS, now), budget_report(mesh, journal, now, agents=agents)))
    return memo.journal[1]


def _legacy(mesh: Mesh, forge: Forge, listing: RemoteRefs, claimed: set[int], pulls: list[PullRequest],
            memo: StatusMemo) -> dict[int, LegacyLock]:
    branches = branches_of(listing)
    key = (tuple(sorted(branches.items())), tuple(sorted(claimed)),
           tuple((p.number, p.head, p.head_sha) for p in pulls))
    if memo.legacy is None or memo.legacy[0] != key:
        memo.legacy = (key, observe_legacy(mesh, forge, claimed=claimed, pulls=pulls, branches=branches))
    return memo.legacy[1]


def gather(mesh: Mesh, forge: Forge, now: float, *, pull_limit: int = PULL_LIMIT, memo: StatusMemo | None = None,
           open_issues: Sequence[Issue] | None = None, open_pulls: Sequence[PullRequest] | None = None,
           journal: JournalRead | None = None) -> Status:
    """The fleet now; raises (TemporaryError: exit 75) when any listing fails. The remote's branches are
    listed once (HEAD and refs/heads/: the switches, presence, claims, journals, the old scripts' branches);
    with the `memo` of the previous gather, only what changed since is read again. `open_issues`,
    `open_pulls`: the forge's complete listings, and `journal`, the journals from the budget window's start
    and the last PERFORMANCE_DAYS on (agent/budget.journal_since), when the caller has them already
    (`agentmesh report`)."""
    memo = memo if memo is not None else StatusMemo()
    listing = ls_refs(mesh.git, mesh.remote, ["HEAD", BRANCHES])
    mesh.use_listing(listing)
    presence = mesh.presence()
    presence_views = presence.list(listing=within_branches(listing, presence.prefix), memo=memo.refs)
    store = mesh.claims()
    claims = store.list(listing=within_branches(listing, store.prefix), memo=memo.refs)
    issues = forge.list_issues(state="open") if open_issues is None else open_issues
    stages = {i.number: issue_stage(i) for i in issues}
    listed = forge.list_pulls(state="open") if open_pulls is None else open_pulls
    open_pulls = sorted(listed, key=lambda p: p.number, reverse=True)
    pulls = [pull_row(forge, p, now, memo) for p in open_pulls[:pull_limit]]  # the newest ones
    memo.forget(pulls)
    active: dict[str, int] = {}
    for view in claims:
        if view.claim is not None:
            active[view.claim.agent] = active.get(view.claim.agent, 0) + 1
    present = [v.agent for v in presence_views]
    entries, budget = _journal_figures(mesh, listing, now, memo, journal, present)
    legacy = _legacy(mesh, forge, listing, {v.issue for v in claims}, open_pulls, memo)
    return Status(
        agent=mesh.host.agent, remote=mesh.remote,
        agents=[agent_row(v, mesh.identity, silent_after(mesh.policy)) for v in presence_views],
        claims=[claim_row(v, stages) for v in claims],
        pulls=pulls, pulls_open=len(open_pulls), pulls_limit=pull_limit,
        performance=performance(entries, active=active, agents=present),
        halted=switch_halt(mesh, listing=listing) or halt_issue(forge, issues),
        budget=budget,
        legacy=[legacy[n] for n in sorted(legacy)],
    )
