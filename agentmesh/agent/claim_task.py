"""`agentmesh claim-task`: one tick of the work loop (docs/design/architecture.md, "One claim-task tick").

host lock -> kill switch -> reconcile this agent's claims -> select -> claim
-> worktree + task file -> executor with a heartbeat -> commit -> secret scan
-> fenced push -> PR.

Every step reads the remote and the forge first, so a run that crashed at
any point is finished by the next one: a claim without work is resumed, a
pushed branch without a PR is adopted, an orphaned executor is killed.
A seat is one executor slot: claims whose PR is open wait for review and do
not occupy one. With several seats, the claimed tasks run in parallel.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

from agentmesh.agent import executor as executors
from agentmesh.agent.base import AgentRun, guarded_run, journaled
from agentmesh.agent.budget import BUDGET_STOP, BudgetCheck, check_budget
from agentmesh.refs.heartbeat import Heartbeat
from agentmesh.agent.journaling import flush_journal
from agentmesh.agent.report import Event, Report
from agentmesh.agent.rework import ReworkRequest, ReworkRequests
from agentmesh.agent.run import run_executors
from agentmesh.agent.stages import (
    CLAIMED,
    FAILED,
    NEEDS_HUMAN,
    PR_LABEL,
    REVIEW,
    WORKING,
    attempts_so_far,
    inline_title,
    log_tail,
    pull_body,
    pull_title,
    record_failure,
    secret_report,
    set_stage,
)
from agentmesh.agent.work import commit_message
from agentmesh.git.worktree import changed_paths, commit_work, work_diff
from agentmesh.refs.claims import ClaimView
from agentmesh.core.markers import closing_references
from agentmesh.core.model import Issue, PullRequest
from agentmesh.core.sanitize import fence, render_task_context
from agentmesh.core.secrets import scan_diff
from agentmesh.core.select import Selection, dependencies, rank_issues
from agentmesh.core.slug import work_branch
from agentmesh.core.errors import EXIT_TEMPORARY, EXIT_USER, NotHolder, TemporaryError, UserError
from agentmesh.host.files import write_atomic
from agentmesh.forge.base import Forge, NotFound
from agentmesh.git.remote import ls_refs
from agentmesh.git.run import GitError
from agentmesh.git.worktree import Worktrees
from agentmesh.memory.journal import Journal
from agentmesh.memory.lessons import context_for
from agentmesh.agent.mesh import Mesh

MAX_CLAIM_TRIES = 10  # claims tried per tick; each lost race costs a push
MAX_DEPENDENCY_LOOKUPS = 50  # dependencies not in the open list are looked up one by one
MAX_ATTEMPT_LOOKUPS = 20  # failed issues whose comments are read to rank them


@dataclass
class TickReport(Report):
    status: str = "idle"  # busy | halted | idle | worked | dry-run
    candidates: list[dict] = field(default_factory=list)
    excluded: list[dict] = field(default_factory=list)

    def add(self, event: str, issue: int | None = None, detail: str = "", pr: int | None = None, **extra) -> None:
        self.record(Event(event, issue, pr, detail, **extra))

    def to_json(self) -> dict:
        return {**super().to_json(), "candidates": self.candidates, "excluded": self.excluded}


@dataclass(frozen=True)
class Job:
    """A claim this agent holds and must now work on."""

    issue: Issue
    claim_sha: str
    branch: str
    attempt: int
    rework: ReworkRequest | None = None  # set: address the feedback on the open PR instead


@dataclass(frozen=True)
class Produced:
    """How an executor run ended: `commit` (checked, ready to push), or failed, stopped, unavailable, lost."""

    outcome: str
    claim_sha: str  # the claim as the heartbeat last renewed it
    reason: str
    log_path: Path | None = None
    details: str = ""
    commit: str | None = None


def claim_task(mesh: Mesh, forge: Forge, *, dry_run: bool = False,
               env: Mapping[str, str] | None = None) -> TickReport:
    """One tick. Never raises for a problem with one issue: that becomes an event."""
    report = TickReport(mesh.host.agent)
    with guarded_run(mesh, forge, "claim-task", dry_run=dry_run) as (held, halted):
        if not held:
            report.status, report.reason = "busy", "another claim-task of this agent is running"
            return report
        if halted is not None:
            report.status, report.reason = "halted", halted
            return report
        with journaled(mesh, report, dry_run=dry_run) as journal:
            Tick(mesh, forge, report, dry_run=dry_run, env=os.environ if env is None else env,
                 journal=journal).run()
    return report


class Tick(AgentRun[TickReport]):
    def __init__(self, mesh: Mesh, forge: Forge, report: TickReport, *, dry_run: bool, env: Mapping[str, str],
                 journal: Journal | None = None):
        super().__init__(mesh, forge, report, dry_run=dry_run, env=env)
        self.journal = journal
        self.worktrees = Worktrees(mesh.cache, mesh.state.root / "worktrees")
        self.attempts: dict[int, int] = {}  # failed attempts per issue, read from the forge once per tick
        self.reworks = ReworkRequests(mesh.state.root)
        self.budget = BudgetCheck()

    # --- the tick ------------------------------------------------------------------

    def run(self) -> None:
        if not self.dry_run:
            self.kill_leftovers()
        views = self.store.list()
        # one listing each, shared by reconcile and select; this host's secrets scrubbed from titles and
        # bodies once, so they reach no branch name, commit, PR title or executor
        issues = [self.scrubbed(i) for i in self.forge.list_issues(state="open")]
        pulls = self.forge.list_pulls(state="open")
        self.budget = check_budget(self.mesh, self.journal or self.mesh.journal(), time.time())
        if self.budget.breaches:
            self.report.add("budget-exhausted", detail=f"{self.budget}: no new claims"
                            + ("" if self.budget.executors_allowed else ", no executor runs"))
        resumed = self.reconcile([v for v in views if v.claim is not None and v.claim.agent == self.agent],
                                 issues, pulls)
        free = self.mesh.host.seats - len(resumed) if self.budget.claims_allowed else 0
        selection = self.select(issues, pulls, {v.issue for v in views})
        if self.dry_run:
            self.report.status = "dry-run"
            self.report.candidates = [{"issue": c.number, "score": round(c.score.total, 2),
                                       "title": inline_title(c.issue.title)} for c in selection.candidates]
            self.report.excluded = [{"issue": x.number, "reasons": [str(r) for r in x.reasons]}
                                    for x in selection.excluded]
            for candidate in selection.candidates[:max(free, 0)]:
                self.report.add("would-claim", candidate.number, f"score {candidate.score.total:.1f}")
            return
        claimed = self.claim(selection, free) if free > 0 else []
        if claimed and self.journal is not None:
            flush_journal(self.journal, self.report)  # the fleet's budget counts these claims from now on
        jobs = resumed + claimed
        if not jobs:
            self.report.add("idle", detail="budget exhausted" if not self.budget.claims_allowed else
                            f"{len(selection.candidates)} candidate(s), none claimed"
                            if selection.candidates and free > 0 else
                            "all seats busy" if selection.candidates else "no eligible issue")
            return
        self.report.status = "worked"
        _ = self.mesh.base_branch, self.mesh.base_head  # resolve once, before any thread needs them
        if len(jobs) == 1:
            self.work_safely(jobs[0])
        else:
            with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
                for future in [pool.submit(self.work_safely, job) for job in jobs]:
                    future.result()

    # --- reconcile -----------------------------------------------------------------

    def reconcile(self, mine: list[ClaimView], open_issues: list[Issue], open_pulls: list[PullRequest]) -> list[Job]:
        """Finish what earlier runs of this agent left: release, renew, adopt or resume each claim."""
        jobs: list[Job] = []
        by_number = {i.number: i for i in open_issues}
        by_head: dict[str, PullRequest] = {}
        for pull in open_pulls:
            by_head.setdefault(pull.head, pull)  # the first, as find_pull_for_head would pick
        for view in mine:
            claim = view.claim
            assert claim is not None
            try:
                issue = by_number.get(view.issue) or self.scrubbed(self.forge.get_issue(view.issue))
            except NotFound:
                self.release(view.issue, view.sha, "issue not found")
                continue
            branch = claim.work_branch or work_branch(self.agent, issue.number, issue.title)
            if issue.state != "open":
                self.release(view.issue, view.sha, "issue is closed")
                self.remove_worktree(branch)
                continue
            pull = by_head.get(branch)
            if pull is not None:
                request = self.rework_due(view.issue, pull) if self.budget.executors_allowed else None
                if request is not None and len(jobs) < self.mesh.host.seats:
                    jobs.append(Job(issue, view.sha, branch, claim.attempt, rework=request))
                else:
                    self.keep_for_review(view, pull)
                continue
            pushed = self.remote_branch(branch)
            if pushed is not None:
                self.adopt(issue, view.sha, branch)
                continue
            if self.dry_run:
                self.report.add("would-resume", issue.number)
                continue
            if not self.budget.executors_allowed:
                self.release(issue.number, view.sha, f"{BUDGET_STOP} ({self.budget}); nothing was published")
            elif len(jobs) < self.mesh.host.seats:
                self.report.add("resumed", issue.number, "a crashed run published nothing yet")
                jobs.append(Job(issue, view.sha, branch, claim.attempt))
            else:
                self.release(issue.number, view.sha, "more claims than seats")
        return jobs

    def rework_due(self, issue: int, pull: PullRequest) -> ReworkRequest | None:
        """The rework monitor-prs asked for on this PR's current head, if any (a stale one is dropped)."""
        request = self.reworks.load(issue)
        if request is None:
            return None
        if request.pull != pull.number or request.head != pull.head_sha or NEEDS_HUMAN in pull.labels:
            if not self.dry_run:
                self.reworks.drop(issue, request.head)
            return None
        if self.dry_run:
            self.report.add("would-rework", issue, f"round {request.round}", pull.number)
            return None
        return request

    def kill_leftovers(self) -> None:
        """Kill executors a crashed run left behind. Holding the host lock, no run of ours is alive,
        so every pidfile is stale, whether or not the claim it worked for still exists."""
        for pidfile in sorted(self.running_dir.glob("issue-*.json")):
            if executors.kill_leftover(pidfile):
                self.report.add("killed-leftover", detail=f"executor of a crashed run ({pidfile.stem})")

    def keep_for_review(self, view: ClaimView, pull: PullRequest) -> None:
        """The PR is open: keep the claim alive until monitor-prs sees it merged or closed."""
        if self.dry_run:
            self.report.add("would-renew", view.issue, "in review", pull.number)
            return
        try:
            self.store.renew(view.issue, view.sha)
        except NotHolder as exc:
            self.report.add("claim-lost", view.issue, str(exc), pull.number)
            return
        self.report.add("in-review", view.issue, pr=pull.number)

    def adopt(self, issue: Issue, claim_sha: str, branch: str) -> None:
        """The work was pushed but no PR exists (a crash in between): open it now."""
        if self.dry_run:
            self.report.add("would-adopt", issue.number, branch)
            return
        pull = self.open_pull(issue, claim_sha, branch)
        self.report.add("adopted", issue.number, f"opened the PR for pushed branch {branch}", pull.number)

    def release(self, issue: int, sha: str, why: str) -> None:
        if self.dry_run:
            self.report.add("would-release", issue, why)
            return
        try:
            self.store.release(issue, sha)
        except NotHolder as exc:
            self.report.add("claim-lost", issue, str(exc))
            return
        self.report.add("released", issue, why)

    # --- select and claim --------------------------------------------------------------

    def select(self, issues: list[Issue], pulls: list[PullRequest], claimed: set[int]) -> Selection:
        open_numbers = {i.number for i in issues}
        needed = set().union(*(dependencies(i) for i in issues)) if issues else set()
        states = {n: "open" for n in needed & open_numbers}
        for number in sorted(needed - open_numbers)[:MAX_DEPENDENCY_LOOKUPS]:
            try:
                states[number] = self.forge.get_issue(number).state
            except NotFound:
                pass  # unknown counts as open: waiting a tick is cheap, starting too early is not
        for issue in [i for i in issues if FAILED in i.labels][:MAX_ATTEMPT_LOOKUPS]:
            self.attempts[issue.number] = attempts_so_far(self.forge, issue.number, self.trusted)
        return rank_issues(
            issues,
            agent=self.agent,
            eligible_labels=self.policy.labels.eligible,
            now=time.time(),
            claimed=claimed,
            open_pr_issues={n for p in pulls for n in closing_references(p.body)},
            capabilities=self.mesh.host.capabilities,
            attempts=self.attempts,
            dependency_states=states,
            weights=self.policy.selection.weights.weights(),
        )

    def claim(self, selection: Selection, seats: int) -> list[Job]:
        """Try candidates best first until `seats` claims are won."""
        jobs: list[Job] = []
        for candidate in selection.candidates[:MAX_CLAIM_TRIES]:
            if len(jobs) >= seats:
                break
            issue = candidate.issue
            branch = work_branch(self.agent, issue.number, issue.title)
            attempt = 1 + (self.failed_attempts(issue) if FAILED in issue.labels else 0)
            result = self.store.acquire(issue.number, work_branch=branch, attempt=attempt)
            if not result.won:
                holder = result.holder.agent if result.holder else "an invalid claim"
                self.report.add("lost-race", issue.number, f"already held by {holder}")
                continue
            self.report.add("claimed", issue.number, f"score {candidate.score.total:.1f}, attempt {attempt}")
            set_stage(self.forge, issue.number, CLAIMED)
            jobs.append(Job(issue, result.sha or "", branch, attempt))
        return jobs

    def failed_attempts(self, issue: Issue) -> int:
        if issue.number not in self.attempts:  # beyond MAX_ATTEMPT_LOOKUPS when ranking
            self.attempts[issue.number] = attempts_so_far(self.forge, issue.number, self.trusted)
        return self.attempts[issue.number]

    # --- work --------------------------------------------------------------------------

    def work_safely(self, job: Job) -> None:
        """Work on one job; a temporary failure is reported, and the next tick resumes the claim."""
        try:
            if job.rework is not None:
                self.rework(job, job.rework)
            else:
                self.work(job)
        except TemporaryError as exc:
            self.report.add("error", job.issue.number, f"{exc} (the next run resumes)")
            self.report.exit_code = EXIT_TEMPORARY

    def work(self, job: Job) -> None:
        number = job.issue.number
        set_stage(self.forge, number, WORKING)
        base = self.mesh.base_head
        produced = self.produce(job, base, self.write_task_file(job.issue))
        if produced.outcome in ("stopped", "unavailable"):
            if produced.reason.startswith(BUDGET_STOP):
                self.forge.ensure_comment(number, f"budget/{job.claim_sha}",
                                          f"agentmesh: `{self.agent}` stopped work on this issue: {produced.reason}. "
                                          "Nothing was published and no attempt is counted; the issue is back in "
                                          "the queue.")
                self.report.add("budget-stopped", number, produced.reason)
            self.release(number, produced.claim_sha, produced.reason)
            set_stage(self.forge, number, None)
        elif produced.outcome == "failed":
            self.fail(job, produced.claim_sha, produced.reason, produced.log_path, details=produced.details)
            return
        elif produced.commit is not None:
            self.publish(job, produced.claim_sha, produced.commit,
                         changed_paths(self.mesh.git, self.mesh.cache.path, base, produced.commit))
            return
        self.remove_worktree(job.branch)

    def produce(self, job: Job, base: str, task_file: Path, *, rework: int = 0) -> Produced:
        """Run the executors in a fresh worktree at `base` and turn what they left into one checked
        commit. Every other outcome ends the job; the caller decides what it means."""
        number = job.issue.number
        worktree = self.worktrees.add(job.branch, base)
        heartbeat = Heartbeat(self.store, number, job.claim_sha, renew_seconds=self.policy.lease.renew_seconds,
                              lease_seconds=self.policy.lease.seconds)
        left = self.budget.minutes_left
        result, notes = run_executors(self.mesh, worktree=worktree, task_file=task_file, issue=number, base=base,
                                      heartbeat=heartbeat, env=self.env, pidfile=self.pidfile(number),
                                      budget_seconds=None if left is None else left * 60)
        for note in notes:
            self.report.add("warning", number, note)
        self.report.add("executed", number, f"{result.outcome} ({result.name})", duration_s=result.duration_s,
                        cost_usd=result.cost_usd)

        def end(outcome: str, reason: str, *, log: bool = True, details: str = "") -> Produced:
            return Produced(outcome, heartbeat.sha, reason, result.log_path if log else None, details)

        if heartbeat.lost:
            self.report.add("claim-lost", number, f"{heartbeat.lost}; nothing was published")
            return end("lost", heartbeat.lost)
        if result.outcome == "stopped":
            return end("stopped", result.stop_reason or "stopped")
        if result.outcome == "unavailable":
            self.report.exit_code = EXIT_USER
            return end("unavailable", "no executor could start (see the log); no attempt counted")
        if not result.ok:
            return end("failed", f"executor {result.name} {result.outcome}"
                       + (f" (exit {result.returncode})" if result.outcome == "failed" else ""))
        subject = f"{inline_title(job.issue.title)} (#{number})"
        try:
            commit = commit_work(self.mesh.git, worktree, base, commit_message(
                subject, issue=number, agent=self.agent, host=self.mesh.host.host, claim_sha=job.claim_sha,
                attempt=job.attempt, rework=rework))
        except GitError as exc:  # e.g. a path git refuses to track (`.GIT/config`): the change is unusable
            return end("failed", f"git cannot commit the executor's files: {exc}")
        if commit is None:
            return end("failed", "the executor made no change")
        diff = work_diff(self.mesh.git, worktree, base, commit)
        if diff is None:
            return end("failed", "the change is too large to publish")
        findings = scan_diff(diff, self.known_secrets)
        if findings:
            return end("failed", "the change contains a secret", log=False, details=secret_report(findings))
        return Produced("commit", heartbeat.sha, "", commit=commit)

    def rework(self, job: Job, request: ReworkRequest) -> None:
        """Address the feedback on the PR's head: run the executors on top of it and push the result
        with the fence (the work branch pinned to that head, so a human's push wins)."""
        number = job.issue.number
        self.report.add("reworking", number, f"round {request.round} of {self.policy.rework.max}", request.pull)
        task_file = self.write_task_file(job.issue, feedback=request.feedback)
        produced = self.produce(job, request.head, task_file, rework=request.round)
        if produced.outcome in ("stopped", "unavailable"):  # the request stays: the next tick tries again
            self.report.add("rework-postponed", number, produced.reason, request.pull)
        elif produced.outcome != "lost":
            self.reworks.drop(number, request.head)
            if produced.commit is not None:
                self.push_rework(job, request, produced.claim_sha, produced.commit)
            else:
                self.give_up_rework(job, request, produced)
        self.remove_worktree(job.branch)

    def push_rework(self, job: Job, request: ReworkRequest, claim_sha: str, commit: str) -> None:
        number = job.issue.number
        try:
            self.store.fenced_push(number, claim_sha, f"refs/heads/{job.branch}", commit, request.head)
        except NotHolder as exc:
            self.report.add("claim-lost", number, f"{exc}; the fence refused the push", request.pull)
            return
        except UserError as exc:  # the branch moved since the review: whoever pushed wins
            self.report.add("skipped", number, f"rework not pushed: {exc}", request.pull)
            return
        self.forge.ensure_comment(
            request.pull, f"rework/{commit}",
            f"agentmesh: `{self.agent}` pushed rework {request.round} of {self.policy.rework.max} "
            f"(`{commit[:12]}`) to address the review and CI of `{request.head[:12]}`.")
        self.report.add("reworked", number, f"round {request.round}: pushed {commit[:12]}", request.pull)

    def give_up_rework(self, job: Job, request: ReworkRequest, produced: Produced) -> None:
        """A rework that produced nothing usable hands the PR to a human (no loop of failing reruns)."""
        details = produced.details or self.log_excerpt(produced.log_path)
        self.forge.add_labels(request.pull, [NEEDS_HUMAN])
        self.forge.ensure_comment(
            request.pull, f"rework-failed/{request.head}",
            f"agentmesh: rework {request.round} by `{self.agent}` failed: {produced.reason}. A human must take "
            f"it from here; agents will not touch this PR again.\n\n{details}")
        self.report.add("needs-human", job.issue.number, f"rework failed: {produced.reason}", request.pull)

    def write_task_file(self, issue: Issue, *, feedback: tuple[tuple[str, str], ...] = ()) -> Path:
        """The executor never sees this host's token, even when someone pasted it into the issue."""
        comments = [replace(c, body=self.scrub(c.body)) for c in self.forge.list_comments(issue.number)]
        feedback = tuple((source, self.scrub(text)) for source, text in feedback)
        writers = {c.author for c in comments if self.trusted(c.author)}
        memory = context_for(self.mesh.cache, self.mesh.base_head, self.journal or self.mesh.journal(), issue,
                             context_bytes=self.policy.memory.context_bytes).text
        text = render_task_context(issue, comments, write_access=writers, memory_section=memory, feedback=feedback)
        path = self.mesh.state.root / "tasks" / f"issue-{issue.number}.md"
        write_atomic(path, text)
        return path

    # --- publish or fail ------------------------------------------------------------------

    def publish(self, job: Job, claim_sha: str, commit: str, paths: list[str]) -> None:
        """The fenced push (claim renewal and work branch in one atomic push), then the PR."""
        number = job.issue.number
        ref = f"refs/heads/{job.branch}"
        try:
            claim = self.store.fenced_push(number, claim_sha, ref, commit, self.remote_branch(job.branch))
        except NotHolder as exc:
            self.report.add("claim-lost", number, f"{exc}; the fence refused the push")
            self.remove_worktree(job.branch)
            return
        self.report.add("pushed", number, f"{job.branch} ({len(paths)} file(s) changed)")
        pull = self.open_pull(job.issue, claim.sha or claim_sha, job.branch)
        self.report.add("pr-opened", number, pull.url or job.branch, pull.number, paths=tuple(paths[:20]),
                        summary=f"{inline_title(job.issue.title)} ({len(paths)} file(s) changed)")
        self.remove_worktree(job.branch)

    def open_pull(self, issue: Issue, claim_sha: str, branch: str) -> PullRequest:
        """Create the PR, or adopt the open one for this branch; label it and move the issue to review."""
        pull = self.forge.create_pull(head=branch, base=self.mesh.base_branch, title=pull_title(issue),
                                      body=pull_body(issue, agent=self.agent, host=self.mesh.host.host,
                                                     claim_sha=claim_sha))
        self.forge.add_labels(pull.number, [PR_LABEL])
        set_stage(self.forge, issue.number, REVIEW)
        return pull

    def fail(self, job: Job, claim_sha: str, reason: str, log_path: Path | None, *, details: str = "") -> None:
        """Record a failed attempt on the issue (once per claim), release the claim, clean up."""
        number = job.issue.number
        details = details or self.log_excerpt(log_path)
        attempt, dead = record_failure(self.forge, number, agent=self.agent, claim_attempt=job.attempt, reason=reason,
                                       details=details, max_attempts=self.policy.max_attempts,
                                       trusted=self.trusted)
        self.report.add("dead-letter" if dead else "failed", number, f"attempt {attempt}: {reason}")
        self.release(number, claim_sha, "attempt failed")
        self.remove_worktree(job.branch)

    # --- small helpers -------------------------------------------------------------------

    def scrubbed(self, issue: Issue) -> Issue:
        return replace(issue, title=self.scrub(issue.title), body=self.scrub(issue.body)) if self.known_secrets \
            else issue

    def scrub(self, text: str) -> str:
        """Forge text without this host's secrets (they would otherwise reach branch names and executors)."""
        for secret in self.known_secrets:  # only ours: other secrets are the diff scan's to catch
            text = text.replace(secret, "[REDACTED]")
        return text

    def log_excerpt(self, log_path: Path | None) -> str:
        if log_path is None:
            return ""
        try:
            text = log_path.read_text(errors="replace")
        except OSError:
            text = ""
        return "Log tail (secrets redacted):\n\n" + fence(log_tail(text, self.known_secrets))

    def remote_branch(self, branch: str) -> str | None:
        ref = f"refs/heads/{branch}"
        return ls_refs(self.mesh.git, self.mesh.remote, [ref]).get(ref)

    def remove_worktree(self, branch: str) -> None:
        if not self.dry_run:
            self.worktrees.remove(branch)

    @property
    def running_dir(self) -> Path:
        return self.mesh.state.root / "running"

    def pidfile(self, issue: int) -> Path:
        return self.running_dir / f"issue-{issue}.json"
