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
from dataclasses import dataclass

from agentmesh.agent.base import AgentRun, guarded_run, journaled
from agentmesh.agent.gates import closes_issue_gate, diff_size_gate, run_gate, secret_gate
from agentmesh.agent.lessons import draft_lesson, lesson_branch, needed_rework, propose_lesson
from agentmesh.agent.report import Event, Report
from agentmesh.agent.rework import ReworkRequest, ReworkRequests, feedback_for, rework_round
from agentmesh.agent.stages import NEEDS_HUMAN, record_failure, set_stage
from agentmesh.refs.claims import ClaimView
from agentmesh.core.markers import PullMarker, marker_text
from agentmesh.core.memory import utc_day
from agentmesh.core.model import PullRequest
from agentmesh.core.review import (
    counted_approvals,
    head_reviews,
    merge_decision,
    mesh_pull,
    protected_hits,
    reviewers_for,
    ring_order,
    verdict,
)
from agentmesh.core.sanitize import clean_text
from agentmesh.core.errors import EXIT_TEMPORARY, NotHolder, TemporaryError, UserError
from agentmesh.forge.base import Conflict, Forge, ForgeError, NotMergeableYet
from agentmesh.git.remote import RefUpdate, ls_refs, push
from agentmesh.git.run import TOKEN_ENV, GitError
from agentmesh.git.worktree import Worktrees, changed_paths, work_diff
from agentmesh.agent.mesh import Mesh

REVIEW_CONTEXT = "agentmesh/review"
MERGE_RETRIES = (1.0, 2.0, 4.0)  # seconds between merge attempts while the forge computes mergeability


@dataclass
class MonitorReport(Report):
    status: str = "ok"  # busy | ok | halted (cleanup and reaping only)

    def add(self, event: str, pr: int | None = None, issue: int | None = None, detail: str = "", **extra) -> None:
        self.record(Event(event, issue, pr, detail, **extra))


def monitor_prs(mesh: Mesh, forge: Forge, *, dry_run: bool = False,
                env: Mapping[str, str] | None = None) -> MonitorReport:
    report = MonitorReport(mesh.host.agent)
    with guarded_run(mesh, forge, "monitor-prs", dry_run=dry_run) as (held, halted):
        if not held:
            report.status, report.reason = "busy", "another monitor-prs of this agent is running"
            return report
        if halted:
            report.status, report.reason = "halted", f"{halted}; only cleanup and reaping run"
        with journaled(mesh, report, dry_run=dry_run):
            Monitor(mesh, forge, report, dry_run=dry_run, env=os.environ if env is None else env).run(halted is None)
    return report


class Monitor(AgentRun[MonitorReport]):
    def __init__(self, mesh: Mesh, forge: Forge, report: MonitorReport, *, dry_run: bool, env: Mapping[str, str]):
        super().__init__(mesh, forge, report, dry_run=dry_run, env=env)
        self.reviews_root = mesh.state.root / "review-worktrees"
        self._base_heads: dict[str, str | None] = {}  # base branch -> head, fetched once per run

    def run(self, active: bool) -> None:
        claims = self.store.list()
        pulls = self.forge.list_pulls(state="all")
        self.cleanup([v for v in claims if v.claim is not None and v.claim.agent == self.agent], pulls)
        if active:
            presence = self.mesh.presence().list()
            alive = {p.agent for p in presence if p.alive} | {self.agent}
            ring = ring_order(self.policy.review.ring, [p.agent for p in presence] + [self.agent])
            holders = {v.issue: v.claim.agent for v in claims if v.claim is not None}
            for pull in [p for p in pulls if p.state == "open"]:
                marker = mesh_pull(pull, ring=ring, bot_users=self.policy.review.bot_users)
                if marker is None:
                    continue  # a human's PR: never reviewed or merged automatically
                try:
                    if marker.agent == self.agent:
                        self.own_pull(pull, marker, ring, alive, holders.get(marker.issue))
                    else:
                        self.sibling_pull(pull, marker, ring, alive, holders.get(marker.issue))
                except TemporaryError as exc:
                    self.report.add("error", pull.number, marker.issue, f"{exc} (the next run retries)")
                    self.report.exit_code = EXIT_TEMPORARY
        self.reap()

    # --- cleanup ---------------------------------------------------------------------

    def cleanup(self, mine: list[ClaimView], pulls: list[PullRequest]) -> None:
        """Merged: drop the claim, the branch and the worktree, close the issue. Closed: release and
        count an attempt. Only for claims whose PR the complete listing shows."""
        for view in mine:
            branch = view.claim.work_branch if view.claim else None
            if not branch:
                continue
            pull = max((p for p in pulls if p.head == branch), key=lambda p: p.number, default=None)
            if pull is None or pull.state == "open":
                continue
            if self.dry_run:
                self.report.add(f"would-clean-up-{pull.state}", pull.number, view.issue)
            elif pull.state == "merged":
                self.finish_merged(view.issue, view.sha, pull)
            else:
                self.finish_closed(view, pull)

    def finish_merged(self, issue: int, claim_sha: str, pull: PullRequest) -> None:
        self.forge.close_issue(issue)
        set_stage(self.forge, issue, None)
        self.propose_lesson(issue, pull)  # before the claim goes: a rerun after a crash comes back here
        self.delete_branch(pull.head)
        self.release(issue, claim_sha)
        Worktrees(self.mesh.cache, self.mesh.state.root / "worktrees").remove(pull.head)
        self.report.add("cleaned-up", pull.number, issue, "merged: claim and branch deleted, issue closed")

    def finish_closed(self, view: ClaimView, pull: PullRequest) -> None:
        attempt = view.claim.attempt if view.claim else 1
        number, dead = record_failure(
            self.forge, view.issue, agent=self.agent, claim_attempt=attempt,
            reason=f"PR #{pull.number} was closed without merge", details="",
            max_attempts=self.policy.max_attempts, trusted=self.trusted)
        self.delete_branch(pull.head)
        self.release(view.issue, view.sha)
        self.report.add("dead-letter" if dead else "returned", pull.number, view.issue,
                        f"closed without merge (attempt {number})")

    def propose_lesson(self, number: int, pull: PullRequest) -> None:
        """After a PR that needed changes or rework passed: draft what was learned as a memory PR."""
        if not self.policy.memory.lessons:
            return
        reviews = self.forge.list_reviews(pull.number)
        blockers = {r.author for r in reviews if r.state == "CHANGES_REQUESTED" and self.trusted(r.author)}
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
            self.report.add("warning", pull.number, number, f"lesson not proposed: {exc}")
            return
        self.report.add("lesson-proposed", proposed.number, number, lesson.path,
                        summary=f"lesson {lesson.title!r} from PR #{pull.number}")

    def rework_paths(self, pull: PullRequest) -> list[str]:
        """Files changed by the PR's rework commits (all its files when it had none)."""
        log = self.mesh.cache.log_messages(f"{self.merge_base(pull)}..{pull.head_sha}")
        reworks = [sha for sha, message in log if rework_round(message) > 0]
        if not reworks:
            return self.changed_paths(pull)
        return list(dict.fromkeys(p for sha in reworks for p in changed_paths(
            self.mesh.git, self.mesh.cache.path, f"{sha}^", sha)))

    def release(self, issue: int, sha: str) -> None:
        try:
            self.store.release(issue, sha)
        except NotHolder as exc:
            self.report.add("claim-lost", issue=issue, detail=str(exc))

    def delete_branch(self, branch: str) -> None:
        """Delete a work branch with a CAS pinned to what it is now (a human's later push wins)."""
        ref = f"refs/heads/{branch}"
        current = ls_refs(self.mesh.git, self.mesh.remote, [ref]).get(ref)
        if current is not None:
            push(self.mesh.git, self.mesh.cache.path, self.mesh.remote, [RefUpdate(ref, None, current)])

    # --- own PRs ------------------------------------------------------------------------

    def own_pull(self, pull: PullRequest, marker: PullMarker, ring: list[str], alive: set[str],
                 claimer: str | None) -> None:
        if NEEDS_HUMAN in pull.labels:
            return  # handed over: a human decides
        if not self.head_is_ours(pull):
            self.hand_over(pull, marker)
            return
        required = self.policy.review.required_approvals
        all_reviews = self.forge.list_reviews(pull.number)
        reviews = head_reviews(all_reviews, pull.head_sha)
        wanted = reviewers_for(ring, self.agent, alive=alive, count=required, exclude={claimer} - {self.agent})
        missing = [r for r in wanted if r not in pull.requested_reviewers and r not in reviews.reviewed_by]
        if missing and not self.dry_run:
            try:
                self.forge.request_reviewers(pull.number, missing)
                self.report.add("review-requested", pull.number, marker.issue, ", ".join(missing))
            except ForgeError as exc:
                self.report.add("warning", pull.number, marker.issue, f"cannot request {missing}: {exc}")
        ci = self.forge.ci_status(pull.head_sha)
        failing = [c for c in ci.failing() if c.context != REVIEW_CONTEXT]
        if failing and not self.dry_run:
            names = ", ".join(clean_text(c.context, 100) for c in failing[:10])
            self.forge.ensure_comment(pull.number, f"ci/{pull.head_sha}",
                                      f"agentmesh: CI failed on `{pull.head_sha[:12]}`: {names}")
            self.report.add("ci-failed", pull.number, marker.issue, names)
        approvals = counted_approvals(reviews, author=self.agent, claimer=claimer if claimer != self.agent else None,
                                      reviewers=ring)
        protected = protected_hits(self.changed_paths(pull), self.policy.protected_paths)
        ci_state = "failure" if failing else ("pending" if ci.state == "pending" and
                                              any(c.context != REVIEW_CONTEXT for c in ci.contexts) else "success")
        # a change request counts from a ring agent or anyone with write access, never from a drive-by
        blockers = {a for a in reviews.changes_requested_by if a in ring or self.trusted(a)}
        decision = merge_decision(auto=self.policy.merge.auto, approvals=len(approvals), required=required,
                                  ci_state=ci_state, protected=protected, changes_requested=bool(blockers))
        if not decision.merge:
            self.report.add("waiting", pull.number, marker.issue, decision.reason)
            if blockers or failing:
                self.ask_rework(pull, marker, feedback_for(all_reviews, pull.head_sha, blockers, failing))
            return
        if self.dry_run:
            self.report.add("would-merge", pull.number, marker.issue)
            return
        self.merge(pull, marker)

    def ask_rework(self, pull: PullRequest, marker: PullMarker, feedback: tuple[tuple[str, str], ...]) -> None:
        """Queue a rework of this head for claim-task, or hand the PR to a human once `rework.max`
        reworks did not make it pass."""
        done = rework_round(self.head_message(pull))
        limit = self.policy.rework.max
        requests = ReworkRequests(self.mesh.state.root)
        if done >= limit:
            if self.dry_run:
                self.report.add("would-hand-over", pull.number, marker.issue, f"{done} rework(s) done")
                return
            self.forge.add_labels(pull.number, [NEEDS_HUMAN])
            self.forge.ensure_comment(
                pull.number, f"rework-exhausted/{pull.head_sha}",
                f"agentmesh: `{pull.head_sha[:12]}` still has changes requested or failing CI after {done} "
                f"rework(s) (`rework.max: {limit}`). A human must take it from here; agents will not touch "
                "this PR again.")
            self.report.add("needs-human", pull.number, marker.issue, f"{done} rework(s) did not make it pass")
            return
        queued = requests.load(marker.issue)
        if queued is not None and queued.head == pull.head_sha:
            return  # asked already; claim-task has not run yet
        if self.dry_run:
            self.report.add("would-queue-rework", pull.number, marker.issue, f"round {done + 1}")
            return
        requests.save(ReworkRequest(marker.issue, pull.number, pull.head_sha, done + 1, feedback))
        self.report.add("rework-queued", pull.number, marker.issue, f"round {done + 1} of {limit}")

    def merge(self, pull: PullRequest, marker: PullMarker) -> None:
        for delay in (*MERGE_RETRIES, None):
            try:
                self.forge.merge_pull(pull.number, sha=pull.head_sha, method=self.policy.merge.method)
                break
            except NotMergeableYet:
                if delay is None:
                    self.report.add("merge-pending", pull.number, marker.issue, "the forge is still computing")
                    return
                time.sleep(delay)
            except Conflict as exc:
                self.forge.add_labels(pull.number, [NEEDS_HUMAN])
                self.forge.ensure_comment(pull.number, f"conflict/{pull.head_sha}",
                                          f"agentmesh: cannot merge `{pull.head_sha[:12]}`: {exc}. A human must "
                                          f"resolve it; agents will not touch this PR again.")
                self.report.add("needs-human", pull.number, marker.issue, f"merge conflict: {exc}")
                return
        self.report.add("merged", pull.number, marker.issue)
        current = self.store.read(marker.issue)
        if current is not None and current[1] is not None and current[1].agent == self.agent:
            self.finish_merged(marker.issue, current[0], pull)

    def head_is_ours(self, pull: PullRequest) -> bool:
        """Whether the head commit is one this agent wrote (its trailers), not a human's push."""
        message = self.head_message(pull)
        return message is None or f"Agentmesh-Agent: {self.agent}\n" in message

    def hand_over(self, pull: PullRequest, marker: PullMarker) -> None:
        if self.dry_run:
            self.report.add("would-hand-over", pull.number, marker.issue)
            return
        self.forge.add_labels(pull.number, [NEEDS_HUMAN])
        self.forge.ensure_comment(pull.number, "handed-over",
                                  "agentmesh: someone else pushed to this branch, so it is theirs now. "
                                  "Agents will no longer review, update or merge this PR.")
        self.report.add("handed-over", pull.number, marker.issue, "a human pushed to the work branch")

    # --- siblings' PRs ---------------------------------------------------------------------

    def sibling_pull(self, pull: PullRequest, marker: PullMarker, ring: list[str], alive: set[str],
                     claimer: str | None) -> None:
        if NEEDS_HUMAN in pull.labels:
            return
        exclude = {claimer} if claimer and claimer != marker.agent else set()
        reviewers = reviewers_for(ring, marker.agent, alive=alive,
                                  count=self.policy.review.required_approvals, exclude=exclude)
        if self.agent not in reviewers or self.agent == claimer:
            return
        if self.agent in head_reviews(self.forge.list_reviews(pull.number), pull.head_sha).reviewed_by:
            return  # this head is reviewed already: a new push makes it due again
        if self.dry_run:
            self.report.add("would-review", pull.number, marker.issue)
            return
        self.review(pull, marker)

    def review(self, pull: PullRequest, marker: PullMarker) -> None:
        paths = self.changed_paths(pull)
        protected = protected_hits(paths, self.policy.protected_paths)
        if protected:
            self.forge.add_labels(pull.number, [NEEDS_HUMAN])
            self.forge.ensure_comment(pull.number, "protected-paths",
                                      "agentmesh: this PR changes protected paths, so no agent will approve it: "
                                      + ", ".join(f"`{clean_text(p, 200)}`" for p in protected[:20]))
            self.report.add("needs-human", pull.number, marker.issue, "protected paths")
            return
        diff = work_diff(self.mesh.git, self.mesh.cache.path, self.merge_base(pull), pull.head_sha) or ""
        results = [diff_size_gate(diff, self.policy.max_diff_lines), secret_gate(diff, self.known_secrets),
                   closes_issue_gate(pull, marker)]
        if all(r.passed for r in results) and self.policy.gates:
            results += self.run_gates(pull)
        event, body = verdict(results)
        try:
            self.forge.submit_review(pull.number, event=event, body=f"{body}\n\n{marker_text('review')}",
                                     commit_id=pull.head_sha)
        except Conflict:
            self.report.add("skipped", pull.number, marker.issue, "the head moved during the review")
            return
        if self.forge.kind == "local":
            self.forge.set_status(pull.head_sha, context=REVIEW_CONTEXT,
                                  state="success" if event == "approve" else "failure",
                                  description=f"{event} by {self.agent}")
        self.report.add("approved" if event == "approve" else "changes-requested", pull.number, marker.issue,
                        "; ".join(f"{r.name}: {r.summary}" for r in results if not r.passed))

    def run_gates(self, pull: PullRequest) -> list:
        worktrees = Worktrees(self.mesh.cache, self.reviews_root)
        path = worktrees.add(pull.head, pull.head_sha)
        forbidden = [self.mesh.host.forge.token_env, TOKEN_ENV]
        try:
            return [run_gate(gate, worktree=path, log_dir=self.mesh.state.root / "logs",
                             sandbox=self.mesh.host.executor.sandbox, base_env=self.env, forbidden_env=forbidden,
                             known_secrets=self.known_secrets, pull=pull.number)
                    for gate in self.policy.gates]
        finally:
            worktrees.remove(pull.head)

    # --- git facts about a PR ----------------------------------------------------------------

    def fetch_head(self, pull: PullRequest) -> bool:
        if not self.mesh.cache.has_object(pull.head_sha):
            self.mesh.cache.fetch([f"refs/heads/{pull.head}"])
        return self.mesh.cache.has_object(pull.head_sha)

    def head_message(self, pull: PullRequest) -> str | None:
        if not self.fetch_head(pull):
            return None
        return self.mesh.cache.commit_message(pull.head_sha)

    def merge_base(self, pull: PullRequest) -> str:
        if pull.base not in self._base_heads:
            self.mesh.cache.fetch([f"refs/heads/{pull.base}"])
            self._base_heads[pull.base] = self.mesh.cache.resolve(f"refs/mirror/heads/{pull.base}")
        base = self._base_heads[pull.base]
        return self.mesh.cache.merge_base(base or pull.head_sha, pull.head_sha) or pull.head_sha

    def changed_paths(self, pull: PullRequest) -> list[str]:
        if not self.fetch_head(pull):
            raise TemporaryError(f"PR #{pull.number}: head {pull.head_sha[:12]} is not on the remote")
        return changed_paths(self.mesh.git, self.mesh.cache.path, self.merge_base(pull), pull.head_sha)

    # --- reaping ------------------------------------------------------------------------------

    def reap(self) -> None:
        for result in self.store.reap(dry_run=self.dry_run):
            if not result.reaped:
                if self.dry_run:
                    self.report.add("would-reap", issue=result.issue, detail=result.holder or "")
                continue
            self.forge.ensure_comment(
                result.issue, f"reaped/{result.sha}",
                f"agentmesh: `{self.agent}` reaped the expired claim of `{result.holder or 'unknown'}` "
                f"(unchanged for {result.observed_seconds:.0f}s by this host's clock). The issue is back in "
                "the queue.")
            self.report.add("reaped", issue=result.issue, detail=f"claim of {result.holder}")
