"""`agentmesh claim-task`: one tick of the work loop (docs/design/architecture.md, "One claim-task tick").

host lock -> kill switch -> observe -> plan -> apply (or print, under --dry-run) -> run the jobs.

The plan comes from two pure decisions on what the tick observed: core/reconcile.py for the claims
this agent already holds (release, renew, adopt, resume, rework), and core/select.py's ranking for
new claims. Every step reads the remote and the forge first, so a run that crashed at any point is
finished by the next one. A seat is one executor slot: claims whose PR is open wait for review and
do not occupy one; with several seats, the jobs run in parallel (agent/jobs.py).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

from agentmesh.agent.base import AgentRun, Listed, guarded_run, journaled, sandbox_warning
from agentmesh.agent.budget import BudgetCheck, budgeted, check_budget
from agentmesh.agent.jobs import Job, Jobs
from agentmesh.agent.journaling import flush_journal
from agentmesh.agent.legacy import (
    BRANCHES,
    branches_of,
    create_mesh_locks,
    legacy_lock_of,
    observe_legacy,
    sync_mesh_locks,
)
from agentmesh.agent.mesh import Mesh
from agentmesh.agent.preempt import Preemption
from agentmesh.agent.report import Report
from agentmesh.agent.run import check_executors
from agentmesh.agent.stages import attempts_so_far, inline_title, set_stage, stage_change
from agentmesh.agent.work import is_checkpoint
from agentmesh.core.deps import Cycle, cycle_comment, cycle_keeper, find_cycles, open_graph, unsettled
from agentmesh.core.errors import NotHolder, TemporaryError
from agentmesh.core.legacy import LegacyLock
from agentmesh.core.markers import closing_references, marker_text
from agentmesh.core.model import Issue, PullRequest
from agentmesh.core.overrides import counted, not_trusted, setters
from agentmesh.core.plan import Action, Adopt, BlockCycle, Claim, DropRework, Release, Renew, Resume, Rework
from agentmesh.core.preempt import Preempt, RunningJob, is_urgent
from agentmesh.core.reconcile import HeldClaim, ReworkAsk, idle_reason, plan_reconcile, seats_taken
from agentmesh.core.select import (
    Candidate,
    Selection,
    Why,
    deal,
    deal_round,
    dependency_map,
    exclusion_reasons,
    fleet_members,
    free_agents,
    is_priority_label,
    priority_value,
    rank_issues,
    score,
)
from agentmesh.core.slug import work_branch
from agentmesh.core.vocab import Event, Label, RunStatus, Stage
from agentmesh.forge.base import Forge, ForgeError, NotFound
from agentmesh.git.remote import RefUpdate, RemoteRefs, ls_refs
from agentmesh.memory.journal import Journal
from agentmesh.refs.claims import ClaimView

MAX_CLAIM_TRIES = 10  # claims tried per tick; each lost race costs a push
SIGNED_PER_CLAIM = 2  # a claim and the `working` stage it carries (git/cache.py `signing`)
MAX_DEPENDENCY_LOOKUPS = 50  # dependencies not in the open list are looked up one by one
MAX_ATTEMPT_LOOKUPS = 20  # failed issues whose comments are read to rank them
STAGE_LABELS = frozenset(stage.value for stage in Stage)
MAX_PRIORITY_LOOKUPS = 20  # priority-labelled issues whose label events are read to rank them


def claimed_key(issue: int, attempt: int) -> str:
    return f"claimed-{issue}-a{attempt}"


@dataclass
class TickReport(Report):
    status: RunStatus = RunStatus.IDLE
    candidates: list[dict] = field(default_factory=list)
    excluded: list[dict] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {**super().to_json(), "candidates": self.candidates, "excluded": self.excluded}


@dataclass
class Observed:
    """What one tick saw, once: shared by reconcile and select."""

    claims: list[ClaimView]
    issues: list[Issue]  # open, this host's secrets scrubbed
    pulls: list[PullRequest]  # open
    held: list[HeldClaim]
    held_issues: dict[int, Issue]  # the issues of this agent's claims that exist
    legacy: dict[int, LegacyLock] = field(default_factory=dict)  # issues the old scripts hold by a branch
    branches: dict[str, str] = field(default_factory=dict)  # every branch on the remote, one listing


@dataclass
class TickPlan:
    reconcile: list[Action]
    claims: list[Claim]  # best first; tried until `seats` are won
    seats: int
    selection: Selection
    cycles: list[BlockCycle] = field(default_factory=list)  # the dependency cycles this agent blocks


def claim_task(mesh: Mesh, forge: Forge, *, dry_run: bool = False,
               env: Mapping[str, str] | None = None) -> TickReport:
    """One tick. Never raises for a problem with one issue: that becomes a report line. A host none of
    whose executors can start is refused first (ConfigError), before the tick writes anything (once it holds
    the host lock: a `script` executor's policy is read from the run's listing)."""
    env = os.environ if env is None else env
    report = TickReport(mesh.host.agent)
    warning = sandbox_warning(mesh)
    if warning is not None:
        report.add(Event.WARNING, detail=warning)
    with guarded_run(mesh, forge, "claim-task", dry_run=dry_run, issues=True,
                     check=lambda: check_executors(mesh, env)) as (held, halted, listed, heads):
        if not held:
            report.status, report.reason = RunStatus.BUSY, "another claim-task of this agent is running"
            return report
        if halted is not None:
            report.status, report.reason = RunStatus.HALTED, halted
            return report
        with journaled(mesh, report, dry_run=dry_run, forge=forge, env=env) as journal:
            ClaimTask(mesh, forge, report, dry_run=dry_run, env=env, journal=journal, listed=listed,
                      heads=heads).run()
    return report


class ClaimTask(AgentRun[TickReport]):
    def __init__(self, mesh: Mesh, forge: Forge, report: TickReport, *, dry_run: bool, env: Mapping[str, str],
                 journal: Journal | None = None, listed: Listed | None = None, heads: RemoteRefs | None = None):
        super().__init__(mesh, forge, report, dry_run=dry_run, env=env, journal=journal)
        self.listed = listed  # the open issues and PRs the halt check listed this run, for observe to reuse
        self.heads = heads  # the run's listing of every branch (agent/base.guarded_run), for observe to reuse
        self.attempts: dict[int, int] = {}  # failed attempts per issue, read from the forge once per tick
        self.legacy_held: dict[int, str] = {}  # issues the old scripts hold by a lock branch, seen this tick
        self.fleet: frozenset[str] = frozenset()  # the agents that rank this backlog, seen this tick (core/select)
        self.free: frozenset[str] = frozenset()  # those the candidates are dealt among (core/select.deal)
        self.dealing = 0  # the deal's round (core/select.deal_round), by the mesh's clock, once per tick
        # (from the run's listing?, issue -> merged PR closing it), listed once, after a claim
        self._merged: tuple[bool, dict[int, int]] | None = None
        self._urgency: dict[tuple[int, str, tuple[str, ...]], tuple[str, ...]] = {}  # see `vouched`
        self.jobs = Jobs(mesh, forge, report, dry_run=dry_run, env=env, journal=journal, budget=BudgetCheck(),
                         share=self)

    @property
    def budget(self) -> BudgetCheck:
        """The window's budget and the pause, as the jobs run under them (read in `observe`)."""
        return self.jobs.budget

    def run(self) -> None:
        if not self.dry_run:
            self.jobs.kill_leftovers()
        seen = self.observe()
        if not self.dry_run:
            self.jobs.sweep_local([h.branch for h in seen.held], [h.issue for h in seen.held])
            if self.policy.migration.lock_branches:
                sync_mesh_locks(self.mesh, [h.issue for h in seen.held if h.issue_open], seen.branches)
        plan = self.plan(seen)
        if self.dry_run:
            self.show(plan)
            return
        jobs = self.apply(plan, seen)
        if not jobs:
            self.report.add(Event.IDLE, detail=idle_reason(
                claims_allowed=self.budget.claims_allowed, paused=self.budget.paused is not None,
                candidates=len(plan.selection.candidates),
                free_seats=plan.seats))
            return
        self.report.status = RunStatus.WORKED
        self.run_jobs(jobs)

    # --- observe and plan --------------------------------------------------------------------

    def observe(self) -> Observed:
        # one listing of every branch (the run's) serves the claims (under refs/heads/ unless the policy
        # moved them), the journals, this agent's work branches and the old scripts' lock branches
        listing = self.heads or ls_refs(self.mesh.git, self.mesh.remote, [BRANCHES])
        views = self.store.list(listing=listing if self.store.prefix.startswith(BRANCHES) else None)
        if self.journal is not None:  # the journals and the legacy memory branches are branches too
            self.journal.use_listing(listing)
        # the halt check's listing (on the local forge one for both); this host's secrets are scrubbed from
        # titles and bodies once, so they reach no branch name, commit, PR title or executor
        listed, pulls = self.forge.list_open() if self.listed is None else self.listed
        issues = [self.jobs.scrubbed(i) for i in listed]
        self.jobs.budget = check_budget(self.mesh, self.journal or self.mesh.journal(), time.time())
        if self.budget.paused is not None:
            self.report.add(Event.SPENDING_PAUSED, detail=f"{self.budget.paused}: no new claims")
        if self.budget.breaches:
            self.report.add(Event.BUDGET_EXHAUSTED, detail=f"{self.budget}: no new claims"
                            + ("" if self.budget.executors_allowed else ", no executor runs"))
        mine = [v for v in views if v.claim is not None and v.claim.agent == self.agent]
        held, held_issues = self.observe_held(mine, issues, pulls, listing)
        branches = branches_of(listing)
        legacy = observe_legacy(self.mesh, self.forge, claimed={v.issue for v in views}, pulls=pulls,
                                branches=branches)
        return Observed(views, issues, pulls, held, held_issues, legacy, branches)

    def observe_held(self, mine: list[ClaimView], issues: list[Issue], pulls: list[PullRequest],
                     listing: RemoteRefs) -> tuple[list[HeldClaim], dict[int, Issue]]:
        """The facts reconcile decides on, for each of this agent's claims (`listing`: of every branch)."""
        by_number = {i.number: i for i in issues}
        by_head: dict[str, PullRequest] = {}
        for listed in pulls:
            by_head.setdefault(listed.head, listed)  # the first, as find_pull_for_head would pick
        found: dict[int, Issue] = {}
        for view in mine:
            try:
                found[view.issue] = by_number.get(view.issue) or self.jobs.scrubbed(self.forge.get_issue(view.issue))
            except NotFound:
                pass
        branches = {v.issue: self.branch_of(v, found.get(v.issue)) for v in mine}
        unpulled = [f"refs/heads/{b}" for n, b in branches.items() if n in found and b not in by_head]
        pushed = {ref: listing.refs[ref] for ref in unpulled if ref in listing.refs}
        held = []
        for view in mine:
            issue, branch = found.get(view.issue), branches[view.issue]
            pull = by_head.get(branch)
            request = self.jobs.reworks.load(view.issue) if pull is not None else None
            held.append(HeldClaim(
                issue=view.issue, sha=view.sha, attempt=view.claim.attempt if view.claim else 1, branch=branch,
                issue_open=None if issue is None else issue.state == "open",
                pull=pull.number if pull else None, pull_head=pull.head_sha if pull else "",
                pull_handed_over=pull is not None and Label.NEEDS_HUMAN in pull.labels,
                pushed_head=pushed.get(f"refs/heads/{branch}", ""),
                rework=None if request is None else ReworkAsk(request.pull, request.head, request.round,
                                                              request.feedback)))
        return held, found

    def branch_of(self, view: ClaimView, issue: Issue | None) -> str:
        claimed = view.claim.work_branch if view.claim else None
        if claimed or issue is None:
            return claimed or ""
        return work_branch(self.agent, issue.number, issue.title, view.claim.attempt if view.claim else 1)

    def plan(self, seen: Observed) -> TickPlan:
        actions = plan_reconcile(seen.held, seats=self.mesh.host.seats, executors_allowed=self.budget.executors_allowed,
                                 budget=str(self.budget))
        free = self.mesh.host.seats - seats_taken(actions) if self.budget.claims_allowed else 0
        self.legacy_held = {n: lock.branch for n, lock in seen.legacy.items()}
        self.fleet = self.fleet_members(seen)
        self.free = self.free_agents(seen.claims, seen.pulls)
        self.dealing = deal_round(self.mesh.clock().wall)
        depends = dependency_map(seen.issues)  # each body scanned once, for the ranking and the cycles
        selection = self.select(seen.issues, seen.pulls, {v.issue for v in seen.claims}, self.legacy_held, depends)
        claims = [self.claim_for(c.issue, f"score {c.score.total:.1f}")
                  for c in (selection.candidates[:MAX_CLAIM_TRIES] if free > 0 else [])]
        return TickPlan(actions, claims, max(free, 0), selection, self.plan_cycles(seen.issues, depends))

    def fleet_members(self, seen: Observed) -> frozenset[str]:
        """The agents that rank this backlog: those with a presence branch in the tick's listing (dead ones
        too: a card dealt to one waits a round at most), the configured review ring (a fleet starting at once
        has no presence yet), those holding claims, and this one."""
        return fleet_members(seen.branches, self.policy.presence.ref_prefix.removeprefix(BRANCHES),
                             [*self.policy.review.ring, *(v.claim.agent for v in seen.claims if v.claim is not None)],
                             self.agent)

    def free_agents(self, claims: list[ClaimView], pulls: list[PullRequest]) -> frozenset[str]:
        """The fleet less the agents working on a claim (one whose issue no open PR closes)."""
        return free_agents(self.fleet, [(v.issue, v.claim.agent) for v in claims if v.claim is not None],
                           {n for p in pulls for n in closing_references(p.body)}, self.agent)

    def plan_cycles(self, issues: list[Issue], depends: Mapping[int, set[int]]) -> list[BlockCycle]:
        """The dependency cycles among open issues not yet labelled blocked, those this agent keeps:
        one agent per cycle (the same for every agent that sees the same living ring), so two agents
        do not both comment. Presence is read only when some cycle is unsettled."""
        by_number = {i.number: i for i in issues}
        todo = unsettled(find_cycles(open_graph(issues, depends)), by_number, Label.BLOCKED)
        if not todo:
            return []
        presence = self.mesh.presence().list()
        ring = self.ring(presence)
        alive = {p.agent for p in presence if p.alive} | {self.agent}
        return [BlockCycle(issue=c.members[0], members=c.members, path=c.path, detail=f"dependency cycle {c}")
                for c in todo if cycle_keeper(c, ring, alive) == self.agent]

    def claim_for(self, issue: Issue, detail: str) -> Claim:
        attempt = 1 + (self.failed_attempts(issue) if Label.FAILED in issue.labels else 0)
        return Claim(issue=issue.number, branch=work_branch(self.agent, issue.number, issue.title, attempt),
                     attempt=attempt, detail=detail)

    def show(self, plan: TickPlan) -> None:
        """--dry-run: the plan, as `would-<act>` lines, and the ranking behind it."""
        self.report.status = RunStatus.DRY_RUN
        self.report.candidates = [{"issue": c.number, "score": round(c.score.total, 2),
                                   "title": inline_title(c.issue.title)} for c in plan.selection.candidates]
        self.report.excluded = [{"issue": x.number, "reasons": [str(r) for r in x.reasons]}
                                for x in plan.selection.excluded]
        for action in [*plan.reconcile, *plan.cycles, *plan.claims[:plan.seats]]:
            self.report.planned(action)

    # --- apply ----------------------------------------------------------------------------------

    def apply(self, plan: TickPlan, seen: Observed) -> list[Job]:
        """Carry out the plan; returns the jobs to run (resumed and reworked claims, then new ones)."""
        jobs: list[Job] = []
        for action in plan.reconcile:
            job = self.apply_one(action, seen.held_issues, {p.number: p for p in seen.pulls})
            if job is not None:
                jobs.append(job)
        for cycle in plan.cycles:
            self.block_cycle(Cycle(cycle.members, cycle.path))
        claimed = self.claim(plan.claims, plan.seats, {i.number: i for i in seen.issues},
                             again=lambda tried: self.redeal(plan.selection, seen.pulls, tried))
        if claimed and self.journal is not None and budgeted(self.mesh):
            flush_journal(self.journal, self.report)  # the fleet's budget counts these claims from now on
        return jobs + claimed

    def apply_one(self, action: Action, issues: dict[int, Issue],
                  pulls: Mapping[int, PullRequest] | None = None) -> Job | None:
        assert action.issue is not None
        if isinstance(action, (Renew, Adopt, Resume, Rework)):
            self.rerecord(action)
        match action:
            case Release(sha=sha, branch=branch):
                self.jobs.release(action.issue, sha, action.detail)
                if branch:
                    self.jobs.remove_worktree(branch)
            case Renew(sha=sha):
                self.renew(action.issue, sha, action.pr)
                self.settle_review(issues.get(action.issue), (pulls or {}).get(action.pr or 0))
            case Adopt(sha=sha, branch=branch, head=head):
                refused = self.unadoptable(issues[action.issue], branch, head)
                if refused:
                    self.report.add(Event.SKIPPED, issue=action.issue, detail=f"branch {branch} not adopted: {refused}")
                    self.jobs.release(action.issue, sha, refused)
                    return None
                pull = self.jobs.open_pull(issues[action.issue], sha, branch, head)
                if pull is not None:
                    self.report.add(Event.ADOPTED, issue=action.issue, pr=pull.number, key=f"pr-opened-{pull.number}",
                                    detail=f"opened the PR for pushed branch {branch}")
            case DropRework(head=head):
                self.jobs.reworks.drop(action.issue, head)
            case Resume(sha=sha, branch=branch, attempt=attempt):
                self.report.add(Event.RESUMED, issue=action.issue, detail=action.detail)
                return Job(issues[action.issue], sha, branch, attempt)
            case Rework():
                return Job(issues[action.issue], action.sha, action.branch, action.attempt,
                           rework=ReworkAsk(action.pr or 0, action.head, action.round, action.feedback))
        return None

    def block_cycle(self, cycle: Cycle) -> None:
        """One comment naming the cycle on each of its issues, then the blocked label on each (so a
        cycle whose issues are all labelled is done). A comment counts as posted when any trusted
        author posted its marker: a keeper that changed (an agent died) comments nothing twice."""
        tag = marker_text(cycle.marker)
        try:
            for number in cycle.members:
                comments = self.comments(number)
                if not any(tag in c.body and self.trusted(c.author) for c in comments):
                    self.forge.ensure_comment(number, cycle.marker, cycle_comment(cycle, agent=self.agent),
                                              comments=comments)
            for number in cycle.members:
                self.forge.add_labels(number, [Label.BLOCKED])
        except ForgeError as exc:
            self.report.error(exc, issue=cycle.members[0], detail=f"dependency cycle {cycle} not blocked: {exc}")
            return
        self.report.add(Event.CYCLE_BLOCKED, issue=cycle.members[0], detail=f"dependency cycle {cycle}")

    def unadoptable(self, issue: Issue, branch: str, head: str) -> str | None:
        """Why a pushed branch whose run died must not become a PR: the issue is no longer eligible
        (a human parked it), its head is a preempted job's checkpoint (the same branch claimed again
        and the run died before it pushed), or, with a roster, a commit on it is not signed by this agent."""
        blocking = [r for r in exclusion_reasons(issue, agent=self.agent, eligible_labels=self.policy.labels.eligible)
                    if r.code in (Why.NOT_OPEN, Why.NO_ELIGIBLE_LABEL, Why.BLOCKING_LABEL)]
        if blocking:
            return "the issue is not eligible now (" + ", ".join(str(r) for r in blocking) + ")"
        if not self.fetched(branch, head):
            raise TemporaryError(f"branch {branch} moved from {head[:12]} while adopting it")
        if is_checkpoint(self.mesh.cache.commit_message(head)):
            return "it holds a preempted job's unfinished work (a checkpoint), not a result"
        if self.mesh.roster is not None and not self.all_mine(self.mesh.base_head, head):
            return f"a commit on it is not signed by {self.agent}'s roster key"
        return None

    def rerecord(self, action: Renew | Adopt | Resume | Rework) -> None:
        """Journal what a killed run did but could not record: the claim and the PR (by key, once)."""
        assert action.issue is not None
        attempt = action.attempt if isinstance(action, (Resume, Rework)) else None
        if attempt is not None and not self.recorded(claimed_key(action.issue, attempt)):
            self.report.add(Event.CLAIMED, issue=action.issue, key=claimed_key(action.issue, attempt),
                            detail=f"recorded late (attempt {attempt})")
        if action.pr is not None and not self.recorded(f"pr-opened-{action.pr}"):
            self.report.add(Event.PR_OPENED, issue=action.issue, pr=action.pr, key=f"pr-opened-{action.pr}",
                            detail="recorded late")

    def settle_review(self, issue: Issue | None, pull: PullRequest | None) -> None:
        """A claim in review: its PR labelled as an agent's, its issue with the review stage only. A run that
        died between opening the PR and labelling them (Jobs.open_pull) left a stale stage, `working`; the
        listings of the tick show it, so a settled claim costs no request."""
        if pull is not None and Label.PR not in pull.labels:
            self.forge.add_labels(pull.number, [Label.PR])
        if issue is not None and {label for label in issue.labels if label in STAGE_LABELS} != {Stage.REVIEW}:
            set_stage(self.forge, issue.number, Stage.REVIEW)

    def renew(self, issue: int, sha: str, pr: int | None) -> None:
        """The PR is open: keep the claim alive until monitor-prs sees it merged or closed. A push only when
        the renewal is due (core/lease.renewal_due): a tick soon after the last one pushes nothing."""
        try:
            renewed = self.store.renew_if_due(issue, sha, renew_seconds=self.policy.lease.renew_seconds)
        except NotHolder as exc:
            self.report.add(Event.CLAIM_LOST, issue=issue, pr=pr, detail=str(exc))
            return
        self.jobs.keeper.keep(issue, renewed)  # and while this tick's executors run
        self.report.add(Event.IN_REVIEW, issue=issue, pr=pr)

    def claim(self, candidates: list[Claim], seats: int, issues: dict[int, Issue],
              again: Callable[[set[int]], list[Claim]] | None = None) -> list[Job]:
        """Try candidates best first until `seats` claims are won, MAX_CLAIM_TRIES pushes at most. After a
        lost race the tick's listing is stale: `again` (the issues tried) chooses anew from a fresh one."""
        jobs: list[Job] = []
        tried: set[int] = set()
        todo = list(candidates)
        while todo and len(jobs) < seats and len(tried) < MAX_CLAIM_TRIES:
            candidate = todo.pop(0)
            assert candidate.issue is not None
            tried.add(candidate.issue)
            # the job starts now: on the local forge the issue's `working` stage lands with the claim, both
            # signed by one ssh-keygen
            with self.mesh.cache.signing(SIGNED_PER_CLAIM):
                stage = self.forge.carried(stage_change(candidate.issue, Stage.WORKING))
                result = self.store.acquire(candidate.issue, work_branch=candidate.branch,
                                            attempt=candidate.attempt, carry=[stage] if stage is not None else [])
            if not result.won:
                holder = result.holder.agent if result.holder else "an invalid claim"
                self.report.add(Event.LOST_RACE, issue=candidate.issue, detail=f"already held by {holder}")
                if again is not None:
                    todo = again(tried)
                continue
            self.report.add(Event.CLAIMED, issue=candidate.issue, key=claimed_key(candidate.issue, candidate.attempt),
                            detail=f"{candidate.detail}, attempt {candidate.attempt}")
            listing = self.claimed_listing(stage if result.carried else None)
            if self.done_already(candidate.issue, result.sha or "", listing=listing):
                continue
            if self.policy.migration.lock_branches and not self.hold_mesh_lock(candidate.issue, result.sha or ""):
                if result.carried:
                    set_stage(self.forge, candidate.issue, None)
                continue
            # no `claimed` stage: the job starts now, with the issue labelled `working` (one write, not two)
            jobs.append(Job(issues[candidate.issue], result.sha or "", candidate.branch, candidate.attempt,
                            staged=result.carried, listing=listing))
        return jobs

    def claimed_listing(self, carried: RefUpdate | None) -> RemoteRefs | None:
        """The run's listing as the claim's push left it, the issue's item at the commit it `carried`: when the
        listing showed the item at the commit that one was built on (nothing moved it in between, no merge
        closing the issue either), the reads right after the claim need no listing of their own. None
        otherwise: they list afresh."""
        if carried is None or carried.new is None or self.heads is None or \
                self.heads.get(carried.ref) != carried.expect:
            return None
        return self.heads.moved(carried.ref, carried.new)

    def redeal(self, selection: Selection, pulls: list[PullRequest], tried: set[int]) -> list[Claim]:
        """The candidates not tried yet and not claimed now, dealt again among the agents free now (core/select.deal):
        one listing of the claims shows those the lost race ran into and who holds them."""
        views = self.store.list()
        taken = tried | {v.issue for v in views}
        self.free = self.free_agents(views, pulls)
        left = deal([c for c in selection.candidates if c.number not in taken], self.agent, self.free,
                    self.dealing)
        return [self.claim_for(c.issue, f"score {c.score.total:.1f}, dealt again") for c in left]

    def hold_mesh_lock(self, issue: int, claim_sha: str) -> bool:
        """Migrating: hold the lock branch the old scripts check (agent/legacy.py) before working, then look
        again for theirs: an old script that locked the issue since this tick's listing keeps it, and the
        claim is released (with the lock branch)."""
        create_mesh_locks(self.mesh, [issue])
        theirs = legacy_lock_of(self.mesh, self.forge, issue)
        if theirs is None:
            return True
        self.legacy_held[issue] = theirs.branch
        self.jobs.release(issue, claim_sha, f"the old scripts locked it meanwhile ({theirs.branch})")
        return False

    def done_already(self, issue: int, claim_sha: str, *, listing: RemoteRefs | None = None) -> bool:
        """Whether a merged PR closes `issue` though the issue is still open (a forge that closes
        issues after the merge, and a merger killed in between): then close it, and work on nothing.
        Checked under the claim, so no merge of a mesh PR for it can come later (merges are fenced).
        `listing`: `claimed_listing`'s, which shows every merge that closed the issue before the claim."""
        if self._merged is None or (self._merged[0] and listing is None):
            self._merged = (listing is not None, {n: p.number for p in self.forge.as_listed(listing).list_pulls(
                state="merged") for n in closing_references(p.body)})
        merged = self._merged[1]
        if issue not in merged:
            return False
        pr = merged[issue]
        tag = marker_text(f"merged-already/{pr}")
        if any(tag in c.body and self.trusted(c.author) for c in self.comments(issue, listing=listing)):
            return False  # closed for this PR once, and a human reopened it: there is more to do
        self.forge.comment(issue, f"{tag}\nagentmesh: PR #{pr} closing this issue is merged already; closing it.")
        self.forge.close_issue(issue)
        set_stage(self.forge, issue, None)
        self.jobs.release(issue, claim_sha, f"PR #{pr} closing it is merged already")
        return True

    def run_jobs(self, jobs: list[Job]) -> None:
        _ = self.mesh.base_branch, self.mesh.base_head  # resolve once, before any thread needs them
        self.jobs.preemption = Preemption(seats=self.mesh.host.seats, preempting=self.policy.preemption.labels,
                                          rank=self.rank_now, every_seconds=self.policy.lease.renew_seconds)
        if len(jobs) == 1:
            self.run_seat(jobs[0], self.jobs.preemption)
            return
        with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
            for future in [pool.submit(self.run_seat, job, self.jobs.preemption) for job in jobs]:
                future.result()

    # --- preemption (agent/preempt.py) ---------------------------------------------------------

    def run_seat(self, job: Job | None, preemption: Preemption) -> None:
        """One seat: its job, then the urgent issue the job made way for, if it was preempted."""
        while job is not None:
            number = job.issue.number
            tried = self.attempts.get(number, 0)
            try:
                ranked = self.vouched(job.issue)
            except TemporaryError:  # unread: the job counts as urgent, so it is not stopped
                ranked = job.issue
            preemption.started(RunningJob(number, score(ranked, now=time.time(), attempts=tried,
                                                        weights=self.policy.selection.weights.weights()).total,
                                          frozenset(ranked.labels), rework=job.rework is not None))
            try:
                self.jobs.run_safely(job)
            finally:
                made_way = preemption.ended(number)
            job = self.take_over(made_way) if made_way is not None else None

    def take_over(self, preempted: Preempt) -> Job | None:
        """Claim the urgent issue in the seat its preempted job left (None: gone, claimed meanwhile, ...)."""
        if not self.budget.claims_allowed:
            return None
        try:
            issue = self.jobs.scrubbed(self.forge.get_issue(preempted.urgent))
            if exclusion_reasons(issue, agent=self.agent, eligible_labels=self.policy.labels.eligible):
                return None
            claimed = self.claim([self.claim_for(issue, f"took the seat of #{preempted.victim}")], 1,
                                 {issue.number: issue})
        except NotFound:
            return None
        except TemporaryError as exc:
            self.report.error(exc, issue=preempted.urgent, detail=f"{exc} (the next run claims it)")
            return None
        return claimed[0] if claimed else None

    def rank_now(self) -> list[Candidate]:
        """What this agent may claim now, best first; read only when an open issue carries a preempting
        label (otherwise one listing is all a heartbeat costs). Nothing when the budget allows no claim:
        the freed seat could not take the urgent issue."""
        if not self.budget.claims_allowed:
            return []
        issues = [self.jobs.scrubbed(i) for i in self.forge.list_issues(state="open")]
        if not any(is_urgent(i.labels, self.policy.preemption.labels) for i in issues):
            return []
        claimed = {v.issue for v in self.store.list()}
        selection = self.select(issues, self.forge.list_pulls(state="open"), claimed, self.legacy_held)
        return [replace(c, issue=self.vouched(c.issue)) for c in selection.candidates]

    def steers(self, label: str) -> bool:
        """Whether `label` preempts (core/preempt.py) or ranks (core/select.py): only a trusted setter's counts."""
        return is_urgent([label], self.policy.preemption.labels) or is_priority_label(label)

    def vouched(self, issue: Issue) -> Issue:
        """`issue` without the preempting and priority labels that no maintainer or roster agent set. Its
        label events are read only when it carries one, once per change of the issue; what is ignored is
        reported (and journaled) once, as an ignored override is."""
        if not any(self.steers(label) for label in issue.labels):
            return issue
        key = (issue.number, issue.updated_at, issue.labels)
        if key not in self._urgency:
            who = setters(self.label_events(issue.number))
            kept, dropped = counted(issue.labels, self.steers, who, self.trusted)
            if dropped:
                why = "; ".join(f"{label}: {not_trusted(who.get(label))}" for label in dropped)
                self.report.add(Event.OVERRIDE, issue=issue.number, detail=f"ignored {why}",
                                key=f"override-ignored-{issue.number}-{issue.updated_at}")
            self._urgency[key] = kept
            self._urgency[(issue.number, issue.updated_at, kept)] = kept  # vouching it again reads nothing
        return replace(issue, labels=self._urgency[key])

    # --- select ------------------------------------------------------------------------------

    def select(self, issues: list[Issue], pulls: list[PullRequest], claimed: set[int],
               legacy: Mapping[int, str], depends: Mapping[int, set[int]] | None = None) -> Selection:
        """`depends`: `dependency_map(issues)`, when the caller has it."""
        depends = dependency_map(issues) if depends is None else depends
        open_numbers = {i.number for i in issues}
        needed = set().union(*depends.values())
        states = dict.fromkeys(needed & open_numbers, "open")
        for number in sorted(needed - open_numbers)[:MAX_DEPENDENCY_LOOKUPS]:
            try:
                states[number] = self.forge.get_issue(number).state
            except NotFound:
                pass  # unknown counts as open: waiting a tick is cheap, starting too early is not
        for issue in [i for i in issues if Label.FAILED in i.labels][:MAX_ATTEMPT_LOOKUPS]:
            self.attempts[issue.number] = attempts_so_far(self.comments(issue.number), self.trusted)
        return rank_issues(
            self.trusted_priorities(issues),
            agent=self.agent,
            eligible_labels=self.policy.labels.eligible,
            now=time.time(),
            claimed=claimed,
            open_pr_issues={n for p in pulls for n in closing_references(p.body)},
            capabilities=self.mesh.host.capabilities,
            attempts=self.attempts,
            dependency_states=states,
            weights=self.policy.selection.weights.weights(),
            legacy=legacy,
            free=self.free,
            depends=depends,
            dealing=self.dealing,
        )

    def trusted_priorities(self, issues: list[Issue]) -> list[Issue]:
        """`issues` as they rank: a `priority:` label counts only when a maintainer or roster agent set it
        (`vouched`). Who set them is read for MAX_PRIORITY_LOOKUPS issues at most, the highest labelled first;
        the others rank as if they had no priority label (the conservative side)."""
        labelled = sorted((i for i in issues if any(is_priority_label(label) for label in i.labels)),
                          key=lambda i: (-priority_value(i), i.number))
        ranked = {i.number: self.vouched(i) for i in labelled[:MAX_PRIORITY_LOOKUPS]}
        for unread in labelled[MAX_PRIORITY_LOOKUPS:]:
            ranked[unread.number] = replace(unread, labels=tuple(x for x in unread.labels if not is_priority_label(x)))
        return [ranked.get(i.number, i) for i in issues]

    def failed_attempts(self, issue: Issue) -> int:
        if issue.number not in self.attempts:  # beyond MAX_ATTEMPT_LOOKUPS when ranking
            self.attempts[issue.number] = attempts_so_far(self.comments(issue.number), self.trusted)
        return self.attempts[issue.number]
