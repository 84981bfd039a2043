"""`agentmesh monitor-prs`: review siblings' PRs, watch and merge our own, clean up, reap.

One run, in order, each step acting only on listings that succeeded:
1. host lock (separate from claim-task's), presence refresh, kill switch;
2. cleanup of this agent's claims whose PR was merged or closed;
3. unless halted: review the siblings' PRs this agent is the ring reviewer
   of, and for its own PRs request reviewers, report CI failures once per
   head, ask claim-task for a rework when changes are requested or CI
   fails (agent/rework.py), and merge by policy;
4. reap other agents' expired claims (also when halted).
Every write is idempotent (marker comments, reviews keyed by head sha), so
a run killed at any step is finished by the next one without duplicates.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import partial

from agentmesh.agent.base import AgentRun, guarded_run, journaled, sandbox_warning
from agentmesh.agent.gates import closes_issue_gate, diff_size_gate, run_gate, secret_gate
from agentmesh.agent.journaling import entry_fields
from agentmesh.agent.legacy import BRANCHES, drop_mesh_locks, observe_legacy, remote_branches, within_branches
from agentmesh.agent.lessons import draft_lesson, lesson_branch, needed_rework, propose_lesson
from agentmesh.agent.llm_review import LlmRun, run_llm_review
from agentmesh.agent.mesh import Mesh
from agentmesh.agent.report import Line, Report
from agentmesh.agent.rework import ReworkRequest, ReworkRequests, feedback_for, rework_round
from agentmesh.agent.run import forbidden_env, host_executors
from agentmesh.agent.stages import needs_human_key, protected_list, record_failure, set_stage, stage_change
from agentmesh.agent.trust import agent_logins, maintainers, review_logins
from agentmesh.agent.work import agent_git_files, guarded_git
from agentmesh.core.errors import ConfigError, NotHolder, TemporaryError, UserError
from agentmesh.core.lease import Claim, Clock, ReapDecision
from agentmesh.core.legacy import mesh_lock_branch
from agentmesh.core.llm_review import combine, no_verdict, render_review_task
from agentmesh.core.markers import PullMarker, marker_text
from agentmesh.core.memory import utc_day
from agentmesh.core.model import PullRequest, ReviewEvent, StatusContext
from agentmesh.core.model import Review as PullReview
from agentmesh.core.plan import (
    Action,
    CleanUpClosed,
    CleanUpMerged,
    GiveUp,
    HandOver,
    Merge,
    QueueRework,
    Reap,
    Reclaim,
    ReportCI,
    RequestReview,
    Review,
    Sweep,
    Wait,
    Withdraw,
)
from agentmesh.core.pulls import FinishedClaim, OwnPull, cleanup_heads, plan_cleanup, plan_own_pull, review_due
from agentmesh.core.review import (
    GateResult,
    counted_approvals,
    head_reviews,
    mesh_pull,
    reviewers_for,
    unmet_checks,
)
from agentmesh.core.sanitize import clean_text
from agentmesh.core.slug import is_lesson_branch
from agentmesh.core.sweep import StalePull, orphan_branches, plan_stale_pulls, plan_sweep
from agentmesh.core.vocab import Event, Label, LlmReview, ReviewVerdict, RunStatus
from agentmesh.forge.base import (
    Carried,
    Conflict,
    DecidedOnStale,
    Forbidden,
    Forge,
    ForgeError,
    MergeFence,
    NotFound,
    NotMergeableYet,
)
from agentmesh.git.remote import RefUpdate, RemoteRefs, ls_refs
from agentmesh.git.run import TOKEN_ENV, GitError
from agentmesh.git.worktree import Worktrees, changed_paths, work_diff
from agentmesh.host.lock import host_lock
from agentmesh.memory.journal import CarriedJournal, Journal
from agentmesh.refs.claims import ClaimStore, ClaimView, RefMemo
from agentmesh.refs.heartbeat import Keeper

REVIEW_CONTEXT = "agentmesh/review"
CLEANED_UP = "merged: issue closed, stage cleared, branch and claim deleted"


def review_key(pull: PullRequest) -> str:
    """One review per reviewer and head: its journal key."""
    return f"reviewed-{pull.number}-{pull.head_sha[:16]}"


def monitor_prs(mesh: Mesh, forge: Forge, *, dry_run: bool = False,
                env: Mapping[str, str] | None = None, flush: bool = True) -> Report:
    """One monitor-prs run. `flush=False`: its journal entries stay queued for the caller to publish
    (`agentmesh tick` publishes them with claim-task's, in one push)."""
    report = Report(mesh.host.agent)
    warning = sandbox_warning(mesh)
    if warning is not None:
        report.add(Event.WARNING, detail=warning)
    with guarded_run(mesh, forge, "monitor-prs", dry_run=dry_run, pulls=True) as (held, halted, listed, heads):
        if not held:
            report.status, report.reason = RunStatus.BUSY, "another monitor-prs of this agent is running"
            return report
        if halted:
            report.status, report.reason = RunStatus.HALTED, f"{halted}; only cleanup and reaping run"
        elif dry_run:
            report.status = RunStatus.DRY_RUN
        env = os.environ if env is None else env
        with journaled(mesh, report, dry_run=dry_run, forge=forge, env=env, flush=flush) as journal:
            Monitor(mesh, forge, report, dry_run=dry_run, env=env, journal=journal).run(
                halted is None, listed[1] if listed is not None else None, heads)
    return report


class JournalCarried(Carried):
    """The journal's queued entries and `lines`, carried by the write they record (a review, its line queued
    before it; a merge, its own lines)."""

    def __init__(self, journal: Journal, lines: tuple[Line, ...] = ()):
        self.journal = journal
        self.lines = lines
        self.refs = (journal.own_ref,)
        self._carried: CarriedJournal | None = None

    def updates(self, listed: Mapping[str, str]) -> list[RefUpdate]:
        extra = [entry for line in self.lines
                 if (fields := entry_fields(line)) is not None and (entry := self.journal.entry(**fields))]
        self._carried = self.journal.carried(listed.get(self.journal.own_ref), extra)
        return [self._carried.update] if self._carried is not None else []

    def landed(self) -> None:
        if self._carried is not None:
            self.journal.sent(self._carried)


class FinishFence(MergeFence):
    """What this agent's merge carries on the local forge: the claim's release, pinned to the claim as the
    merge's listing shows it (this agent's, or nothing is pushed), and the journal's queued entries with the
    merge's own `lines`. `keep`: the claim's renewal instead, and no journal: the caller records the merge and
    cleans up after it (a lesson to draft first, or a journal the remote refused)."""

    def __init__(self, store: ClaimStore, journal: Journal | None, issue: int, lines: tuple[Line, ...], *,
                 keep: bool = False):
        self.store = store
        self.journal = JournalCarried(journal, lines) if journal is not None and not keep else None
        self.keep = keep
        self.issue = issue
        self.refs = (store.ref(issue), *(self.journal.refs if self.journal is not None else ()))
        self._renewal: tuple[Claim, Clock] | None = None

    def updates(self, listed: Mapping[str, str]) -> list[RefUpdate]:
        release = self.store.release_update(self.issue, listed)  # NotHolder: nothing is pushed
        if self.keep:
            # the claim stays, so that a run killed before the rest comes back to it (finish_merged releases it);
            # renewed, not pinned unchanged, which git would not send, and the server would then not check
            update, claim = self.store.renewal(self.issue, listed[release.ref], listed)
            self._renewal = (claim, self.store.clock())
            return [update]
        return [release, *(self.journal.updates(listed) if self.journal is not None else ())]

    def landed(self) -> None:
        if self._renewal is not None:
            self.store.renewed(self.issue, *self._renewal)
            return
        self.store.released(self.issue)
        if self.journal is not None:
            self.journal.landed()


@dataclass
class Seen:
    """The PRs a run observed, by number, for apply to act on."""

    pulls: dict[int, PullRequest] = field(default_factory=dict)
    markers: dict[int, PullMarker] = field(default_factory=dict)
    reaps: dict[str, ReapDecision] = field(default_factory=dict)
    stale: list[StalePull] = field(default_factory=list)  # siblings' PRs left open on closed issues


class Monitor(AgentRun[Report]):
    def __init__(self, mesh: Mesh, forge: Forge, report: Report, *, dry_run: bool, env: Mapping[str, str],
                 journal: Journal | None = None):
        super().__init__(mesh, forge, report, dry_run=dry_run, env=env, journal=journal)
        self.reviews_root = mesh.state.review_worktrees
        self.requests = ReworkRequests(mesh.state.root)
        self._base_heads: dict[str, str | None] = {}  # base branch -> head, fetched once per run
        self._merge_bases: dict[tuple[str, str], str] = {}  # (base head, PR head) -> their fork point
        self._own_reviews: dict[int, list[PullReview]] = {}  # own PR -> its reviews, as this run observed them
        self._messages: dict[str, str] = {}  # commit -> its message: what a commit says never changes
        self.heads: RemoteRefs | None = None  # the run's listing of every branch (`run`)
        self.listed: RemoteRefs | None = None  # the same with the forge's items, when guarded_run made it
        # this agent's claims in review, renewed while gates run (a long review must not let them lapse)
        self.keeper = Keeper(self.store, renew_seconds=self.policy.lease.renew_seconds,
                             guard=partial(host_lock, mesh.state, "claim-task"))

    def run(self, active: bool, open_pulls: list[PullRequest] | None = None, heads: RemoteRefs | None = None) -> None:
        """Observe, decide in core (cleanup, own PRs, siblings' PRs, reaping, sweeping), then apply or show.
        `open_pulls`: the open PRs the halt check listed, if it did; `heads`: the run's listing of every branch."""
        # claims, presence and branches: one listing, the run's
        self.listed = heads  # with the forge's items (guarded_run): what this run's observation reads them from
        heads = self.heads = heads or ls_refs(self.mesh.git, self.mesh.remote, [BRANCHES])
        observer = self.mesh.presence()
        # the claims' and the presence refs' mirror in one for-each-ref (each fetched only when it differs)
        memo = RefMemo.of_mirror(self.mesh.cache, [self.store.prefix, observer.prefix])
        claims = self.store.list(listing=within_branches(heads, self.store.prefix), memo=memo)
        listed = self.forge.list_pulls(state="open") if open_pulls is None else open_pulls
        branches = remote_branches(self.mesh, heads)
        pulls = list({p.number: p for p in [*listed, *self.finished_pulls(claims, listed, branches)]}.values())
        presence = observer.list(listing=within_branches(heads, observer.prefix), memo=memo)
        ring = self.ring(presence)
        seen = Seen(pulls={p.number: p for p in pulls})
        plan = self.plan_cleanup(claims, pulls, branches, ring)
        open_pulls = [p for p in pulls if p.state == "open"]
        if active:
            alive = {p.agent for p in presence if p.alive} | {self.agent}
            plan += self.plan_open_pulls(claims, open_pulls, seen, ring, alive)
        plan += self.plan_reaps(seen, claims)
        plan += self.plan_sweeps(claims, open_pulls, branches, agents=set(ring) | {p.agent for p in presence},
                                 stale=seen.stale)
        # reviews last: their gates renew claims, so every write pinned to a listed claim sha goes first
        plan.sort(key=lambda action: isinstance(action, Review))
        for action in plan:
            if self.dry_run:
                self.report.planned(action)
            else:
                self.apply(action, seen)

    def finished_pulls(self, claims: list[ClaimView], open_pulls: list[PullRequest],
                       branches: dict[str, str]) -> list[PullRequest]:
        """The PRs, in any state, of this agent's branches without an open PR: asked for by branch, so an
        idle run costs no request however many PRs were ever closed."""
        claimed = [v.claim.work_branch for v in claims
                   if v.claim is not None and v.claim.agent == self.agent and v.claim.work_branch]
        heads = cleanup_heads(self.agent, claimed=claimed, branches=branches, open_heads={p.head for p in open_pulls})
        return [p for head in heads for p in self.forge.pulls_for_head(head, base=self.mesh.base_branch)]

    def plan_cleanup(self, claims: list[ClaimView], pulls: list[PullRequest], branches: dict[str, str],
                     ring: list[str]) -> list[Action]:
        """Cleanup after this agent's merged or closed PRs, driven by what the remote still shows."""
        mine = [FinishedClaim(v.issue, v.sha, v.claim.work_branch, v.claim.attempt) for v in claims
                if v.claim is not None and v.claim.agent == self.agent and v.claim.work_branch]
        own = [p for p in pulls if (m := self.marker(p, ring)) and m.agent == self.agent]
        return plan_cleanup(mine, own, branches)

    def marker(self, pull: PullRequest, ring: list[str]) -> PullMarker | None:
        """The PR's marker when a mesh agent opened it under its own forge account (core/review.py)."""
        return mesh_pull(pull, ring=ring, bot_users=self.policy.review.bot_users,
                         logins=agent_logins(self.mesh.roster, local=self.forge.kind == "local"))

    def plan_sweeps(self, claims: list[ClaimView], pulls: list[PullRequest], branches: dict[str, str], *,
                    agents: set[str], stale: list[StalePull]) -> list[Action]:
        legacy = observe_legacy(self.mesh, self.forge, claimed={v.issue for v in claims}, pulls=pulls,
                                branches=branches)
        orphans = orphan_branches(branches, agents=agents, open_heads={p.head for p in pulls},
                                  claimed={v.claim.work_branch for v in claims if v.claim and v.claim.work_branch}
                                  | {mesh_lock_branch(v.claim.agent, v.issue) for v in claims if v.claim},
                                  held={lock.branch for lock in legacy.values()})
        lease = self.policy.lease
        with self.mesh.state.observations_lock():
            now = self.mesh.clock()
            stored = self.mesh.state.load_observations()
            sweeps, observations = plan_sweep(orphans, stored, now, lease_seconds=lease.seconds,
                                              grace_seconds=lease.grace_seconds)
            withdrawals, observations = plan_stale_pulls(stale, observations, now, lease_seconds=lease.seconds,
                                                         grace_seconds=lease.grace_seconds)
            if not self.dry_run:
                self.mesh.state.save_observations(observations, stored)
        return [*sweeps, *withdrawals]

    def plan_open_pulls(self, claims: list[ClaimView], pulls: list[PullRequest], seen: Seen, ring: list[str],
                        alive: set[str]) -> list[Action]:
        holders = {v.issue: v for v in claims if v.claim is not None}
        plan: list[Action] = []
        for pull in pulls:
            marker = self.marker(pull, ring)
            if marker is None:
                continue  # a human's PR: never reviewed or merged automatically
            seen.markers[pull.number] = marker
            view = holders.get(marker.issue)
            claimer = view.claim.agent if view is not None and view.claim is not None else None
            # a lesson is drafted once its issue is done (agent/lessons.py): a human's to merge, never fenced
            lesson = is_lesson_branch(pull.head)
            try:
                if marker.agent == self.agent:
                    if not lesson:
                        plan += plan_own_pull(self.observe_own(pull, marker, ring, alive, view))
                elif not lesson and self.stranded(pull, marker, alive, claimer):
                    seen.stale.append(StalePull(pull.number, marker.issue, pull.head_sha, marker.agent))
                elif self.sibling_review_due(pull, marker, ring, alive, claimer):
                    plan.append(Review(issue=marker.issue, pr=pull.number, head=pull.head_sha))
            except TemporaryError as exc:
                self.report.error(exc, issue=marker.issue, pr=pull.number, detail=f"{exc} (the next run retries)")
        return plan

    def plan_reaps(self, seen: Seen, claims: list[ClaimView]) -> list[Action]:
        plan: list[Action] = []
        for due in self.store.reap_due(claims):
            seen.reaps[due.ref] = due
            plan.append(Reap(issue=due.issue, ref=due.ref, sha=due.sha, holder=due.holder,
                             observed_seconds=due.observed_seconds, detail=due.holder or ""))
        return plan

    def apply(self, action: Action, seen: Seen) -> None:
        """Carry out one action; a temporary failure is reported and the next run retries it."""
        pull = seen.pulls.get(action.pr or 0)
        marker = seen.markers.get(action.pr or 0)
        try:
            match action:
                case CleanUpMerged() if pull is not None and action.issue is not None:
                    self.finish_merged(action.issue, action.sha, pull)
                case CleanUpClosed() if pull is not None and action.issue is not None:
                    self.finish_closed(action.issue, action.sha, action.attempt, pull)
                case Reap():
                    self.reap(seen.reaps[action.ref])
                case Sweep():
                    self.sweep(action)
                case _ if pull is not None and marker is not None:
                    self.apply_to_pull(action, pull, marker)
        except TemporaryError as exc:
            self.report.error(exc, issue=action.issue, pr=action.pr, detail=f"{exc} (the next run retries)")

    def apply_to_pull(self, action: Action, pull: PullRequest, marker: PullMarker) -> None:
        match action:
            case Review():
                self.review(pull, marker)
            case RequestReview(reviewers=reviewers):
                try:
                    self.forge.request_reviewers(pull.number, review_logins(self.mesh.roster, reviewers))
                    self.report.add(Event.REVIEW_REQUESTED, issue=marker.issue, pr=pull.number, detail=action.detail)
                except ForgeError as exc:
                    self.report.add(Event.WARNING, issue=marker.issue, pr=pull.number,
                                    detail=f"cannot request {list(reviewers)}: {exc}")
            case ReportCI():
                self.ensure_comment(pull.number, f"ci/{pull.head_sha}",
                                    f"agentmesh: CI failed on `{pull.head_sha[:12]}`: {action.detail}")
                self.report.add(Event.CI_FAILED, issue=marker.issue, pr=pull.number, detail=action.detail)
            case Wait():
                self.report.add(Event.WAITING, issue=marker.issue, pr=pull.number, detail=action.detail)
            case QueueRework(head=head, round=round_, feedback=feedback):
                self.requests.save(ReworkRequest(marker.issue, pull.number, head, round_, feedback))
                self.report.add(Event.REWORK_QUEUED, issue=marker.issue, pr=pull.number,
                                detail=f"round {round_} of {self.policy.rework.max}")
            case GiveUp(done=done):
                self.give_up(pull, marker, done)
            case HandOver():
                self.hand_over(pull, marker)
            case Merge():
                self.merge(pull, marker)
            case Withdraw(sha=sha, issue_closed=issue_closed):
                self.withdraw(pull, marker.issue, sha, action.detail, issue_closed=issue_closed)
            case Reclaim(branch=branch, attempt=attempt):
                self.reclaim(marker.issue, pull, branch, attempt)

    # --- cleanup ---------------------------------------------------------------------

    def finish_merged(self, issue: int, claim_sha: str | None, pull: PullRequest) -> None:
        """Every step is idempotent and the last one (the branch, then the claim) is what makes the next
        run come back here: a run killed anywhere is finished by the next, which journals it once."""
        if not self.recorded(f"merged-{pull.number}"):  # the merging run was killed before it said so
            self.report.add(Event.MERGED, issue=issue, pr=pull.number, key=f"merged-{pull.number}",
                            detail="recorded late")
        self.report.add(Event.CLEANED_UP, issue=issue, pr=pull.number, key=f"cleaned-up-{pull.number}",
                        detail=CLEANED_UP)
        self.forge.close_issue(issue)
        set_stage(self.forge, issue, None)
        self.propose_lesson(issue, pull)  # before the branch and claim go: a rerun after a crash comes back here
        self.delete_branch(pull.head, pull.head_sha)
        if claim_sha is not None:
            self.let_go(issue, claim_sha)
        Worktrees(self.mesh.cache, self.mesh.state.worktrees).remove(pull.head)

    def finish_closed(self, issue: int, claim_sha: str | None, attempt: int, pull: PullRequest) -> None:
        if claim_sha is not None:
            failure = record_failure(
                self.forge, issue, self.comments(issue), agent=self.agent, claim_attempt=attempt,
                reason=f"PR #{pull.number} was closed without merge", details="",
                max_attempts=self.policy.max_attempts, trusted=self.trusted)
            self.report.add(Event.DEAD_LETTER if failure.dead else Event.RETURNED, issue=issue, pr=pull.number,
                            key=f"returned-{pull.number}", detail=f"closed without merge (attempt {failure.attempt})",
                            attempt=failure.attempt)
        set_stage(self.forge, issue, None)
        self.delete_branch(pull.head, pull.head_sha)
        if claim_sha is not None:
            self.let_go(issue, claim_sha)

    def reclaim(self, issue: int, pull: PullRequest, branch: str, attempt: int) -> None:
        result = self.store.acquire(issue, work_branch=branch, attempt=attempt)
        if result.won:
            self.report.add(Event.RECLAIMED, issue=issue, pr=pull.number, detail="the PR's claim was lost; taken again")
        else:
            holder = result.holder.agent if result.holder else "an invalid claim"
            self.report.add(Event.LOST_RACE, issue=issue, pr=pull.number,
                            detail=f"held by {holder}; this PR is withdrawn next run")

    def sweep(self, action: Sweep) -> None:
        """Delete an orphan branch pinned to the sha that was observed (a push meanwhile wins)."""
        if not self.delete_branch(action.branch, action.sha):
            return
        if action.issue is not None:
            self.ensure_comment(
                action.issue, f"swept/{action.sha}",
                f"agentmesh: `{self.agent}` deleted the orphan branch `{action.branch}` (at `{action.sha[:12]}`): "
                f"it had {action.detail} by this host's clock.")
            set_stage(self.forge, action.issue, None)
        self.report.add(Event.SWEPT, issue=action.issue, detail=f"{action.branch}: {action.detail}",
                        key=f"swept-{action.sha[:16]}")

    def propose_lesson(self, number: int, pull: PullRequest) -> None:
        """After a PR that needed changes or rework passed: draft what was learned as a memory PR."""
        if not self.policy.memory.lessons:
            return
        reviews = self.reviews(pull.number)
        blockers = self.lesson_blockers(reviews)
        if not needed_rework(reviews, self.head_message(pull), blockers):
            return
        try:
            issue = self.forge.get_issue(number)
            lesson = draft_lesson(issue, pull, reviews=reviews, fixed_paths=self.rework_paths(pull), agent=self.agent,
                                  today=utc_day(time.time()), days=self.policy.memory.lesson_days, blockers=blockers,
                                  known_secrets=self.known_secrets)
            proposed = propose_lesson(self.mesh, self.forge, lesson, branch=lesson_branch(self.agent, lesson),
                                      issue=number, anchor_sha=pull.head_sha,
                                      summary=f"Drafted by `{self.agent}` after PR #{pull.number} needed changes.")
        except (ForgeError, UserError, TemporaryError, GitError) as exc:
            self.report.add(Event.WARNING, issue=number, pr=pull.number, detail=f"lesson not proposed: {exc}")
            return
        self.report.add(Event.LESSON_PROPOSED, issue=number, pr=proposed.number, detail=lesson.path,
                        summary=f"lesson {lesson.title!r} from PR #{pull.number}")

    def rework_paths(self, pull: PullRequest) -> list[str]:
        """Files changed by the PR's rework commits (all its files when it had none)."""
        log = self.mesh.cache.log_messages(f"{self.merge_base(pull)}..{pull.head_sha}")
        reworks = [sha for sha, message in log if rework_round(message) > 0]
        if not reworks:
            return self.changed_paths(pull)
        return list(dict.fromkeys(p for sha in reworks for p in changed_paths(
            self.mesh.git, self.mesh.cache.path, f"{sha}^", sha)))

    # --- own PRs ------------------------------------------------------------------------

    def observe_own(self, pull: PullRequest, marker: PullMarker, ring: list[str], alive: set[str],
                    view: ClaimView | None) -> OwnPull:
        """What the decision on one of this agent's PRs needs; nothing more is read past a handed-over
        or foreign head, a closed issue or a claim that is not this agent's. The issue and the PR's reviews are
        read as the run's listing shows them (the merge's own listing fences what moved since)."""
        if Label.NEEDS_HUMAN in pull.labels or not self.head_is_authors(pull, self.agent):
            return OwnPull(pull.number, marker.issue, pull.head_sha, handed_over=Label.NEEDS_HUMAN in pull.labels,
                           head_is_ours=False)
        claimer = view.claim.agent if view is not None and view.claim is not None else None
        fence = OwnPull(pull.number, marker.issue, pull.head_sha, handed_over=False, me=self.agent,
                        issue_open=self.issue_open(marker.issue, listing=self.listed), claimer=claimer,
                        claim=view.sha if view is not None and claimer == self.agent else None, branch=pull.head,
                        attempt=view.claim.attempt if view is not None and view.claim is not None else 1)
        if not fence.issue_open or fence.claim is None:
            return fence
        self.keeper.keep(marker.issue, fence.claim)
        required = self.policy.review.required_approvals
        all_reviews = self._own_reviews[pull.number] = self.reviews(pull.number, listing=self.listed)
        reviews = head_reviews(all_reviews, pull.head_sha)
        roster = self.mesh.roster
        others = {claimer} - {self.agent} if claimer else set()
        wanted = reviewers_for(ring, self.agent, alive=alive, count=required, exclude=others)
        ci = self.forge.ci_status(pull.head_sha)
        failing = [c for c in ci.failing() if c.context != REVIEW_CONTEXT]
        # a change request counts from a ring agent or anyone with write access, never from a drive-by
        blockers = {a for a in reviews.changes_requested_by if a in ring or self.trusted(a)}
        queued = self.requests.load(marker.issue)
        return replace(
            fence,
            missing_reviewers=tuple(r for r, login in zip(wanted, review_logins(roster, wanted), strict=True)
                                    if login not in pull.requested_reviewers and r not in reviews.reviewed_by),
            failing_ci=tuple(clean_text(c.context, 100) for c in failing[:10]),
            ci_pending=ci.state == "pending" and any(c.context != REVIEW_CONTEXT for c in ci.contexts),
            unmet_checks=tuple(unmet_checks(ci.contexts, self.policy.review.required_checks)),
            approvals=len(counted_approvals(reviews, author=self.agent,
                                            claimer=claimer if claimer != self.agent else None,
                                            reviewers=[*ring, *maintainers(roster)])),
            required=required,
            protected=tuple(self.protected(self.changed_paths(pull))),
            changes_requested=bool(blockers), auto_merge=self.policy.merge.auto,
            reworks_done=rework_round(self.head_message(pull)), rework_max=self.policy.rework.max,
            rework_queued=queued is not None and queued.head == pull.head_sha,
            feedback=feedback_for(all_reviews, pull.head_sha, blockers, failing) if blockers or failing else ())

    def give_up(self, pull: PullRequest, marker: PullMarker, done: int) -> None:
        """`rework.max` reworks did not make it pass: a human takes it from here."""
        self.forge.add_labels(pull.number, [Label.NEEDS_HUMAN])
        self.ensure_comment(
            pull.number, f"rework-exhausted/{pull.head_sha}",
            f"agentmesh: `{pull.head_sha[:12]}` still has changes requested or failing CI after {done} "
            f"rework(s) (`rework.max: {self.policy.rework.max}`). A human must take it from here; agents will "
            "not touch this PR again.")
        self.report.add(Event.NEEDS_HUMAN, issue=marker.issue, pr=pull.number,
                        key=needs_human_key(pull.number, pull.head_sha),
                        detail=f"{done} rework(s) did not make it pass")

    def merge(self, pull: PullRequest, marker: PullMarker) -> None:
        """Merge pinned to the head sha (the forge retries while it computes mergeability), fenced by the
        claim: read right before, it must still be this agent's. On the local forge the clean-up lands in the
        merge's own push (`fenced_merge`), unless a lesson is due: it is drafted before the claim goes, so that
        a run killed before it comes back to it (the merge's push renews the claim then)."""
        lines = (Line(Event.MERGED, marker.issue, pull.number, key=f"merged-{pull.number}"),
                 Line(Event.CLEANED_UP, marker.issue, pull.number, CLEANED_UP, key=f"cleaned-up-{pull.number}"))
        try:
            landed = self.fenced_merge(pull, marker, lines, keep=self.lesson_due(pull))
            if landed is not None and not landed.keep:
                for line in lines:  # journaled already, by the merge's push: the journal keeps each key once
                    self.report.record(line)
                if self.policy.migration.lock_branches:
                    drop_mesh_locks(self.mesh, [marker.issue])
                Worktrees(self.mesh.cache, self.mesh.state.worktrees).remove(pull.head)
                return
            if landed is None:
                self.store.check_held(marker.issue)
                self.forge.merge_pull(pull.number, sha=pull.head_sha, method=self.policy.merge.method)
        except NotHolder as exc:
            self.report.add(Event.SKIPPED, issue=marker.issue, pr=pull.number, detail=f"not merged: {exc}")
            return
        except NotMergeableYet as exc:
            self.report.add(Event.MERGE_PENDING, issue=marker.issue, pr=pull.number,
                            detail=str(exc) if isinstance(exc, DecidedOnStale) else "the forge is still computing")
            return
        except Forbidden as exc:  # e.g. the server's pre-receive hook: the other PRs of this run go on
            self.report.add(Event.WARNING, issue=marker.issue, pr=pull.number, detail=f"not merged: {exc}")
            return
        except Conflict as exc:
            self.forge.add_labels(pull.number, [Label.NEEDS_HUMAN])
            self.ensure_comment(pull.number, f"conflict/{pull.head_sha}",
                                f"agentmesh: cannot merge `{pull.head_sha[:12]}`: {exc}. A human must "
                                f"resolve it; agents will not touch this PR again.")
            self.report.add(Event.NEEDS_HUMAN, issue=marker.issue, pr=pull.number, detail=f"merge conflict: {exc}",
                            key=needs_human_key(pull.number, pull.head_sha))
            return
        self.report.record(lines[0])
        current = self.store.read(marker.issue)
        mine = current is not None and current[1] is not None and current[1].agent == self.agent
        self.finish_merged(marker.issue, current[0] if mine and current else None, pull)

    def fenced_merge(self, pull: PullRequest, marker: PullMarker, lines: tuple[Line, ...], *,
                     keep: bool = False) -> FinishFence | None:
        """On a forge whose PRs are refs of the mesh's remote (the local forge): the merge, its issue closed with
        its stages cleared, the work branch deleted, the claim released (pinned to this agent's claim: the
        fence) and the journal with `lines`, in one atomic push (forge/base.MergeFence); the fence that landed.
        Refused by the remote's hook, or with `keep` (a lesson to draft first), the push carries no journal and
        renews the claim instead (still the fence; the caller records the merge and cleans up step by step).
        None: not done (`Forge.merge_fenced_pull`), or refused both ways: then the steps apart, so that a server
        refusing one of them does not stop the merge, and one refusing the merge itself refuses it there."""
        for kept in (True,) if keep else (False, True):
            fence = FinishFence(self.store, self.journal, marker.issue, lines, keep=kept)
            try:
                landed = self.forge.merge_fenced_pull(fence, pull.number, sha=pull.head_sha,
                                                      method=self.policy.merge.method, close=[marker.issue],
                                                      relabel=[stage_change(marker.issue, None)],
                                                      listing=self.listed)
                return fence if landed else None
            except Forbidden:
                continue
        return None

    def lesson_due(self, pull: PullRequest) -> bool:
        """Whether merging `pull` drafts a lesson (`propose_lesson`), from the reviews this run observed."""
        if not self.policy.memory.lessons:
            return False
        reviews = self._own_reviews[pull.number] if pull.number in self._own_reviews else self.reviews(pull.number)
        return needed_rework(reviews, self.head_message(pull), self.lesson_blockers(reviews))

    def lesson_blockers(self, reviews: list[PullReview]) -> set[str]:
        return {r.author for r in reviews if r.state == "CHANGES_REQUESTED" and self.trusted(r.author)}

    def head_is_authors(self, pull: PullRequest, author: str) -> bool:
        """Whether agent `author` wrote the head, not someone who pushed to its branch. With a roster: every
        commit from the merge base to the head verifies as its; no message text counts."""
        if self.mesh.roster is not None:
            if not self.fetch_head(pull):
                raise TemporaryError(f"PR #{pull.number}: head {pull.head_sha[:12]} is not on the remote")
            return self.all_mine(self.merge_base(pull), pull.head_sha, signer=author)
        message = self.head_message(pull)
        return message is None or f"Agentmesh-Agent: {author}\n" in message

    def hand_over(self, pull: PullRequest, marker: PullMarker) -> None:
        self.forge.add_labels(pull.number, [Label.NEEDS_HUMAN])
        self.ensure_comment(pull.number, "handed-over",
                            "agentmesh: someone else pushed to this branch, so it is theirs now. "
                            "Agents will no longer review, update or merge this PR.")
        self.report.add(Event.HANDED_OVER, issue=marker.issue, pr=pull.number,
                        detail="a human pushed to the work branch")

    # --- siblings' PRs ---------------------------------------------------------------------

    def stranded(self, pull: PullRequest, marker: PullMarker, alive: set[str], claimer: str | None) -> bool:
        """A sibling's PR whose author is away (no presence, no claim on its issue) and whose issue is
        closed: nobody else would ever close it (the issue is read only for an away author's PR). Not one
        whose head someone else wrote: its author would hand that over, not withdraw it."""
        return (marker.agent not in alive and claimer != marker.agent and Label.NEEDS_HUMAN not in pull.labels
                and not self.issue_open(marker.issue, listing=self.listed) and self.head_is_authors(pull, marker.agent))

    def sibling_review_due(self, pull: PullRequest, marker: PullMarker, ring: list[str], alive: set[str],
                           claimer: str | None) -> bool:
        """This agent reviews the sibling's PR when the ring names it and this head is not reviewed yet
        (a new push makes it due again)."""
        if not review_due(me=self.agent, author=marker.agent, claimer=claimer, ring=ring, alive=alive,
                          required=self.policy.review.required_approvals,
                          handed_over=Label.NEEDS_HUMAN in pull.labels):
            return False
        reviews = head_reviews(self.reviews(pull.number, listing=self.listed), pull.head_sha)
        if self.agent not in reviews.reviewed_by:
            return True
        key = review_key(pull)
        if not self.recorded(key):  # reviewed by a run that was killed before it said so
            event = Event.APPROVED if self.agent in reviews.approved_by else Event.CHANGES_REQUESTED
            self.report.add(event, issue=marker.issue, pr=pull.number, key=key, detail="recorded late")
        return False

    def review(self, pull: PullRequest, marker: PullMarker) -> None:
        paths = self.changed_paths(pull)
        protected = self.protected(paths)
        if protected:
            self.forge.add_labels(pull.number, [Label.NEEDS_HUMAN])
            self.ensure_comment(pull.number, "protected-paths",
                                "agentmesh: this PR changes protected paths, so no agent will approve it:\n\n"
                                + self.public(protected_list(protected)))
            self.report.add(Event.NEEDS_HUMAN, issue=marker.issue, pr=pull.number, detail="protected paths",
                            key=needs_human_key(pull.number, pull.head_sha))
            return
        diff = work_diff(self.mesh.git, self.mesh.cache.path, self.merge_base(pull), pull.head_sha) or ""
        results = [diff_size_gate(diff, self.policy.max_diff_lines), secret_gate(diff, self.known_secrets),
                   closes_issue_gate(pull, marker)]
        if all(r.passed for r in results) and self.policy.gates:
            results += self.run_gates(pull, paths)
        ran = LlmRun(None)  # asked only when every gate passed: a failing gate requests changes whatever it says
        if self.policy.review.llm is LlmReview.ON and all(r.passed for r in results):
            ran = self.llm_review(pull, marker, diff, results)
        llm = ran.verdict
        combined = combine(results, llm)
        key = review_key(pull)
        if combined.outcome is ReviewVerdict.ESCALATE:
            self.escalate(pull, marker, combined.body, key, ran)
            return
        event: ReviewEvent = "approve" if combined.outcome is ReviewVerdict.APPROVE else "request_changes"
        body = combined.body
        # journaled first: a kill or an outage after the review lands, with the PR merged before this
        # agent runs again, would otherwise leave it unrecorded; a review that did not land is redone
        # under the same key, and one the forge refused is taken back
        failed = [f"{r.name}: {r.summary}" for r in results if not r.passed]
        if llm is not None and llm.verdict is ReviewVerdict.REQUEST_CHANGES:
            failed.append("LLM review: request-changes")
        self.report.add(Event.APPROVED if event == "approve" else Event.CHANGES_REQUESTED, issue=marker.issue,
                        pr=pull.number, key=key, detail="; ".join(failed), duration_s=ran.duration_s,
                        cost_usd=ran.cost_usd)
        text = f"{self.public(body)}\n\n{marker_text('review')}"
        try:
            if self.forge.kind == "local":
                self.submit_with_status(pull, event, text)
            else:
                self.forge.submit_review(pull.number, event=event, body=text, commit_id=pull.head_sha)
        except (Conflict, Forbidden) as exc:
            if self.journal is not None:
                self.journal.discard(key)
            if isinstance(exc, Forbidden):  # the remote's hook or the token: the run's other steps go on
                self.report.add(Event.WARNING, issue=marker.issue, pr=pull.number,
                                detail=f"the review was refused, verdict withdrawn: {exc}")
            else:
                self.report.add(Event.SKIPPED, issue=marker.issue, pr=pull.number,
                                detail="the head moved during the review: verdict withdrawn")
            return

    def submit_with_status(self, pull: PullRequest, event: ReviewEvent, text: str) -> None:
        """The review, the head's status (no CI on the local forge: the review's verdict is the head's check) and the
        journal, its line queued already, in one push. A journal the remote's hook refuses is left for the run's
        flush."""
        status = StatusContext(REVIEW_CONTEXT, "success" if event == "approve" else "failure",
                               f"{event} by {self.agent}")
        for carried in (JournalCarried(self.journal), None) if self.journal is not None else (None,):
            try:
                self.forge.submit_review_with_status(pull.number, event=event, body=text, commit_id=pull.head_sha,
                                                     status=status, carried=carried)
                return
            except Forbidden:
                if carried is None:
                    raise

    def llm_review(self, pull: PullRequest, marker: PullMarker, diff: str, gates: list[GateResult]) -> LlmRun:
        """The verdict of this host's review executor (agent/llm_review.py), in a worktree of the merge base."""
        try:
            issue = self.forge.get_issue(marker.issue)
        except NotFound:
            return LlmRun(no_verdict(f"issue #{marker.issue} is not found"))
        try:
            specs = host_executors(self.mesh, review=True)
        except ConfigError as exc:
            return LlmRun(no_verdict(f"this host cannot make its review executor: {exc}"))
        task = render_review_task(issue, pr=pull.number, diff=diff, gates=gates)
        worktrees = Worktrees(self.mesh.cache, self.reviews_root)
        path = worktrees.add(pull.head, self.merge_base(pull))
        try:
            files = agent_git_files(self.mesh.cache.path, self.mesh.state.bin_dir, path)
            with guarded_git(files, who="the review executor") as changed:
                found = run_llm_review(specs, worktree=path, task=task, log_dir=self.mesh.state.logs,
                                       pull=pull.number, base_env=self.env,
                                       forbidden_env=forbidden_env(self.mesh, self.env), private=self.mesh.private,
                                       beat=self.keeper.beat)
        finally:
            worktrees.remove(pull.head)
        for note in changed:
            self.report.add(Event.WARNING, pr=pull.number, detail=note)
        return found

    def escalate(self, pull: PullRequest, marker: PullMarker, body: str, key: str, ran: LlmRun) -> None:
        """The LLM review escalated, or gave no verdict: a human decides, and agents leave the PR alone."""
        problem = ran.verdict.problem if ran.verdict is not None else None  # may quote the CLI: public text
        self.report.add(Event.NEEDS_HUMAN, issue=marker.issue, pr=pull.number, key=key,
                        detail=self.public(problem) if problem else "escalated by the LLM review",
                        duration_s=ran.duration_s, cost_usd=ran.cost_usd)
        self.forge.add_labels(pull.number, [Label.NEEDS_HUMAN])
        self.ensure_comment(pull.number, f"llm-review/{pull.head_sha}",
                            f"agentmesh: `{self.agent}`'s review of `{pull.head_sha[:12]}` goes to a human; agents "
                            f"will not touch this PR again.\n\n{self.public(body)}")

    def run_gates(self, pull: PullRequest, paths: list[str]) -> list:
        """The policy's gates on the PR head; `paths` are the files it changes (the syntax gate's)."""
        worktrees = Worktrees(self.mesh.cache, self.reviews_root)
        path = worktrees.add(pull.head, pull.head_sha)
        forbidden = [self.mesh.host.forge.token_env, TOKEN_ENV]
        try:
            files = agent_git_files(self.mesh.cache.path, self.mesh.state.bin_dir, path)
            with guarded_git(files, who="a gate") as changed:
                results = [run_gate(gate, worktree=path, log_dir=self.mesh.state.logs,
                                    sandbox=self.mesh.host.executor.sandbox, base_env=self.env,
                                    forbidden_env=forbidden, public=self.public, pull=pull.number,
                                    changed=paths, private=self.mesh.private, beat=self.keeper.beat)
                           for gate in self.policy.gates]
        finally:
            worktrees.remove(pull.head)
        for note in changed:
            self.report.add(Event.WARNING, pr=pull.number, detail=note)
        return results

    # --- git facts about a PR ----------------------------------------------------------------

    def fetch_head(self, pull: PullRequest) -> bool:
        return self.fetched(pull.head, pull.head_sha)

    def head_message(self, pull: PullRequest) -> str | None:
        if pull.head_sha not in self._messages:
            if not self.fetch_head(pull):
                return None
            self._messages[pull.head_sha] = self.mesh.cache.commit_message(pull.head_sha)
        return self._messages[pull.head_sha]

    def merge_base(self, pull: PullRequest) -> str:
        if pull.base not in self._base_heads:
            ref = f"refs/heads/{pull.base}"
            listed = self.heads.get(ref) if self.heads is not None else None
            self._base_heads[pull.base] = self.mesh.cache.fetched_at(ref, listed)
        pair = (self._base_heads[pull.base] or pull.head_sha, pull.head_sha)
        if pair not in self._merge_bases:  # asked by each check of a PR; commits never change
            self._merge_bases[pair] = self.mesh.cache.merge_base(*pair) or pull.head_sha
        return self._merge_bases[pair]

    def changed_paths(self, pull: PullRequest) -> list[str]:
        if not self.fetch_head(pull):
            raise TemporaryError(f"PR #{pull.number}: head {pull.head_sha[:12]} is not on the remote")
        return changed_paths(self.mesh.git, self.mesh.cache.path, self.merge_base(pull), pull.head_sha)

    # --- reaping ------------------------------------------------------------------------------

    def reap(self, due: ReapDecision) -> None:
        result = self.store.reap_one(due)
        if not result.reaped:
            return
        self.ensure_comment(
            result.issue, f"reaped/{result.sha}",
            f"agentmesh: `{self.agent}` reaped the expired claim of `{result.holder or 'unknown'}` "
            f"(unchanged for {result.observed_seconds:.0f}s by this host's clock). The issue is back in "
            "the queue.")
        self.report.add(Event.REAPED, issue=result.issue, detail=f"claim of {result.holder}")
