"""claim-task's last part: run the jobs (claims this agent must work on now), each in a seat.

A job runs the executors in a fresh worktree, renewing its claim meanwhile, turns what they left
into one checked commit (no secret, no protected path), and publishes it with the fence: the
claim's renewal and the work branch in one atomic push, then the PR. A rework job does the same on
top of the PR's head. Every other ending (failed, stopped, claim lost, protected paths: a human's)
is recorded on the forge and releases or keeps the claim as the next tick needs it.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path

from agentmesh.agent import executor as executors
from agentmesh.agent.base import AgentRun
from agentmesh.agent.budget import BudgetCheck
from agentmesh.agent.journaling import entry_fields
from agentmesh.agent.legacy import drop_mesh_locks
from agentmesh.agent.mesh import Mesh
from agentmesh.agent.preempt import Preemption
from agentmesh.agent.report import Line, Report
from agentmesh.agent.rework import ReworkRequests
from agentmesh.agent.run import host_executors, run_executors
from agentmesh.agent.stages import (
    LOG_TAIL_CHARS,
    code_span,
    inline_title,
    log_tail,
    needs_human_key,
    protected_list,
    pull_body,
    record_failure,
    secret_report,
    set_stage,
    stage_change,
    work_title,
)
from agentmesh.agent.trust import review_logins
from agentmesh.agent.watch import Watch
from agentmesh.agent.work import commit_message
from agentmesh.core.errors import ConfigError, NotHolder, TemporaryError, UserError
from agentmesh.core.lease import Claim, Clock
from agentmesh.core.model import Issue, PullRequest
from agentmesh.core.overrides import Overrides, distrusted, is_override, parse_overrides, setters
from agentmesh.core.plan import Feedback, Withdraw
from agentmesh.core.pulls import OwnPull, plan_fence
from agentmesh.core.reconcile import ReworkAsk
from agentmesh.core.review import reviewers_for
from agentmesh.core.sanitize import fence, render_task_context
from agentmesh.core.secrets import scan_diff
from agentmesh.core.slug import is_work_branch
from agentmesh.core.vocab import Event, Label, Stage, StopReason
from agentmesh.forge.base import Forbidden, Forge, PullFence, Stale
from agentmesh.git.remote import RefUpdate, RemoteRefs
from agentmesh.git.run import GitError, GitTimeout
from agentmesh.git.signing import SIGNED_PER_PUSH
from agentmesh.git.worktree import Worktrees, commit_work, sealed_git, work_changes
from agentmesh.host.files import write_atomic
from agentmesh.host.process import ProcessOutcome
from agentmesh.host.process import log_tail as read_log_tail
from agentmesh.memory.journal import CarriedJournal, Journal
from agentmesh.memory.lessons import context_for
from agentmesh.refs.claims import ClaimStore
from agentmesh.refs.heartbeat import Heartbeat, Keeper

NO_CHANGE = "the executor made no change"


@dataclass(frozen=True)
class Job:
    """A claim this agent holds and must now work on."""

    issue: Issue
    claim_sha: str
    branch: str
    attempt: int
    rework: ReworkAsk | None = None  # set: address the feedback on the open PR instead
    staged: bool = False  # the issue's `working` stage landed with the claim already
    listing: RemoteRefs | None = None  # the run's listing, the issue's item as the claim's push left it (if known)


def opened_line(job: Job, paths: Sequence[str], number: int, url: str | None) -> Line:
    """The run's line of a PR opened for `job` (the journal's `pr-opened`, written before the number is known
    when the PR's own push carries it)."""
    return Line(Event.PR_OPENED, job.issue.number, number, url or job.branch, paths=tuple(paths[:20]),
                key=f"pr-opened-{number}", summary=f"{inline_title(job.issue.title)} ({len(paths)} file(s) changed)")


class WorkFence(PullFence):
    """What a job's PR carries on the local forge: the claim's renewal, pinned to the claim the job holds;
    the work branch, pinned to what it held a moment ago; the journal's queued entries and the PR's line."""

    def __init__(self, store: ClaimStore, journal: Journal | None, issue: int, claim_sha: str, work_ref: str,
                 commit: str, line: Callable[[int], Line]):
        self.store = store
        self.journal = journal
        self.issue = issue
        self.claim_sha = claim_sha
        self.work_ref = work_ref
        self.head_sha = commit
        self.line = line
        self.refs = (store.ref(issue), work_ref, *((journal.own_ref,) if journal is not None else ()))
        self._renewal: tuple[RefUpdate, Claim] | None = None
        self._carried: CarriedJournal | None = None
        self._at: Clock | None = None

    def updates(self, listed: Mapping[str, str], number: int) -> Sequence[RefUpdate]:
        if self._renewal is None:  # NotHolder when the listing shows the claim moved: nothing is pushed
            self._renewal = self.store.renewal(self.issue, self.claim_sha, listed)
        self._at = self.store.clock()
        updates = [self._renewal[0], RefUpdate(self.work_ref, self.head_sha, listed.get(self.work_ref))]
        self._carried = None
        if self.journal is not None:
            fields = entry_fields(self.line(number))
            extra = self.journal.entry(**fields) if fields is not None else None
            self._carried = self.journal.carried(listed.get(self.journal.own_ref), [extra] if extra else [])
            if self._carried is not None:
                updates.append(self._carried.update)
        return updates

    def landed(self, number: int) -> None:
        assert self._renewal is not None and self._at is not None  # `updates` built what landed
        self.store.renewed(self.issue, self._renewal[1], self._at)
        if self.journal is not None and self._carried is not None:
            self.journal.sent(self._carried)


STOP_EVENTS = {StopReason.CANCELLED: Event.CANCELLED, StopReason.MESH_HALTED: Event.HALT_STOPPED}


class Ending(StrEnum):
    """How a job's executor run ended."""

    COMMIT = "commit"  # a checked commit, ready to push
    FAILED = "failed"  # counts as a failed attempt
    STOPPED = "stopped"  # budget, halt: no attempt counted
    UNAVAILABLE = "unavailable"  # no executor could start: no attempt counted
    LOST = "lost"  # the claim was lost meanwhile: nothing is published
    PROTECTED = "protected"  # the commit touches protected paths: not pushed, a human takes the issue


@dataclass(frozen=True)
class Produced:
    outcome: Ending
    claim_sha: str  # the claim as the heartbeat last renewed it
    reason: str
    log_path: Path | None = None
    details: str = ""
    commit: str | None = None
    stop: StopReason | None = None
    paths: tuple[str, ...] = ()  # what the commit changes
    scratch: tuple[str, ...] = ()  # what the executor leaves besides the change: never committed


class Jobs(AgentRun[Report]):
    """Runs jobs, and the publishing steps reconcile shares with them (release, open a PR)."""

    def __init__(self, mesh: Mesh, forge: Forge, report: Report, *, dry_run: bool, env: Mapping[str, str],
                 journal: Journal | None, budget: BudgetCheck, share: AgentRun | None = None):
        super().__init__(mesh, forge, report, dry_run=dry_run, env=env, journal=journal, share=share)
        self.budget = budget
        self.worktrees = Worktrees(mesh.cache, mesh.state.worktrees)
        self.reworks = ReworkRequests(mesh.state.root)
        self.keeper = Keeper(self.store, renew_seconds=self.policy.lease.renew_seconds)  # claims in review
        self.preemption: Preemption | None = None  # set by claim-task: its seats' shared view

    def run_safely(self, job: Job) -> None:
        """Work on one job; a temporary failure is reported, and the next tick resumes the claim."""
        try:
            if job.rework is not None:
                self.rework(job, job.rework)
            else:
                self.work(job)
        except TemporaryError as exc:
            self.report.error(exc, issue=job.issue.number, detail=f"{exc} (the next run resumes)")

    # --- new work --------------------------------------------------------------------------

    def work(self, job: Job) -> None:
        with ExitStack() as signing:  # from the work commit on (`produce`): its commits and the PR push's
            self._work(job, signing)

    def _work(self, job: Job, signing: ExitStack) -> None:
        number = job.issue.number
        if not job.staged:
            set_stage(self.forge, number, Stage.WORKING)
        base = self.mesh.base_head
        produced = self.produce(job, base, self.write_task_file(job.issue, listing=job.listing), signing=signing)
        if produced.stop == StopReason.PREEMPTED and produced.outcome == Ending.STOPPED:
            self.make_way(job, base, produced)
        elif produced.outcome in (Ending.STOPPED, Ending.UNAVAILABLE):
            if produced.stop == StopReason.BUDGET:
                self.ensure_comment(number, f"budget/{job.claim_sha}",
                                    f"agentmesh: `{self.agent}` stopped work on this issue: {produced.reason}. "
                                    "Nothing was published and no attempt is counted; the issue is back in "
                                    "the queue.")
                self.report.add(Event.BUDGET_STOPPED, issue=number, detail=produced.reason)
            elif produced.stop in STOP_EVENTS:
                self.report.add(STOP_EVENTS[produced.stop], issue=number,
                                detail=f"{produced.reason}; nothing was published")
            self.release(number, produced.claim_sha, produced.reason)
            set_stage(self.forge, number, None)
        elif produced.outcome == Ending.FAILED:
            self.fail(job, produced.claim_sha, produced.reason, produced.log_path, details=produced.details)
            return
        elif produced.outcome == Ending.PROTECTED:
            self.hand_issue_over(job, produced)
        elif produced.commit is not None:
            self.publish(job, produced.claim_sha, produced.commit, list(produced.paths))
            return
        self.remove_worktree(job.branch)

    def produce(self, job: Job, base: str, task_file: Path, *, rework: int = 0,
                signing: ExitStack | None = None) -> Produced:
        """Run the executors in a fresh worktree at `base` and turn what they left into one checked
        commit. Every other outcome ends the job; the caller decides what it means. With `signing`, the
        commits from the work commit on are signed by one ssh-keygen until the caller closes it (the work
        commit and the PR's push: git/cache.py `signing`)."""
        number = job.issue.number
        worktree = self.worktrees.add(job.branch, base)
        heartbeat = Heartbeat(self.store, number, job.claim_sha, renew_seconds=self.policy.lease.renew_seconds,
                              lease_seconds=self.policy.lease.seconds, keeper=self.keeper)
        watch = Watch(self.mesh, self.forge, number, agent=self.agent, eligible=self.policy.labels.eligible,
                      every_seconds=self.policy.lease.renew_seconds, preemption=self.preemption)
        left = self.budget.minutes_left
        ran = run_executors(self.mesh, worktree=worktree, task_file=task_file, issue=number, base=base,
                            heartbeat=heartbeat, env=self.env, pidfile=self.pidfile(number),
                            budget_seconds=None if left is None else left * 60, watch=watch,
                            overrides=self.overrides(job))
        result = ran.result
        for note in ran.notes:
            self.report.add(Event.WARNING, issue=number, detail=note)
        self.report.add(Event.EXECUTED, issue=number, detail=f"{result.outcome} ({result.name})",
                        duration_s=result.duration_s, cost_usd=result.cost_usd)

        def end(outcome: Ending, reason: str, *, log: bool = True, details: str = "") -> Produced:
            return Produced(outcome, heartbeat.sha, reason, result.log_path if log else None, details, stop=ran.stop,
                            scratch=ran.scratch)

        if heartbeat.lost:
            self.report.add(Event.CLAIM_LOST, issue=number, detail=f"{heartbeat.lost}; nothing was published")
            return end(Ending.LOST, heartbeat.lost)
        if result.outcome == ProcessOutcome.STOPPED:
            return end(Ending.STOPPED, result.stop_reason or "stopped")
        if result.outcome == ProcessOutcome.UNAVAILABLE:
            why = "no executor could start (see the log); no attempt counted"
            self.report.error(ConfigError(why), issue=number)
            return end(Ending.UNAVAILABLE, why)
        said = f": {code_span(result.message)}" if result.message else ""  # the CLI's own words
        if not result.ok:
            return end(Ending.FAILED, f"executor {result.name} {result.outcome}"
                       + (f" (exit {result.returncode})" if result.outcome == ProcessOutcome.FAILED else "") + said)
        if signing is not None:  # started after the executors: none idles while they run
            signing.enter_context(self.mesh.cache.signing(1 + SIGNED_PER_PUSH))
        commit, failure, details, changed = self.checked_commit(job, worktree, base, rework, ran.scratch)
        if commit is None:
            return end(Ending.FAILED, failure + (said if failure == NO_CHANGE else ""), log=not details,
                       details=details)
        paths = tuple(changed)
        protected = self.protected(list(paths))
        if protected:  # checked before any push: forge CI runs whatever reaches a branch
            return Produced(Ending.PROTECTED, heartbeat.sha, "the change touches protected paths",
                            details="The change was not pushed: only a human may change these protected paths:\n\n"
                            + protected_list(protected), paths=paths)
        late = watch.unwanted()  # the last gate before anything goes public
        if late is not None:
            return Produced(Ending.STOPPED, heartbeat.sha, late.reason, stop=late.stop)
        return Produced(Ending.COMMIT, heartbeat.sha, "", commit=commit, paths=paths)

    def overrides(self, job: Job) -> Overrides | None:
        """The issue's `timeout:`/`executor:` labels that a maintainer or roster agent set (core/overrides.py);
        what applies and what is ignored, and why, is journaled. Label events are read only for an
        issue that has such a label."""
        issue = job.issue
        labels = [label for label in issue.labels if is_override(label)]
        if not labels:
            return None
        who = setters(self.label_events(issue.number))
        found = parse_overrides(labels, executors=[spec.name for spec in host_executors(self.mesh)],
                                distrusted=distrusted(labels, who, self.trusted))
        for verdict, said in (("applied", found.applied), ("ignored", found.ignored)):
            if said:
                self.report.add(Event.OVERRIDE, issue=issue.number, key=f"override-{verdict}-{job.claim_sha[:16]}",
                                detail=f"{verdict} {'; '.join(said)}")
        return found

    def checked_commit(self, job: Job, worktree: Path, base: str, rework: int, scratch: Sequence[str] = (), *,
                       checkpoint: bool = False) -> tuple[str | None, str, str, list[str]]:
        """Commit what the executor left, as the agent, without its `scratch` files, and check it:
        (commit, "", "", the paths it changes) when it is ready to push, else (None, why not, details for
        the issue, [])."""
        number = job.issue.number
        listed = self.mesh.default_branch
        try:
            sealed = sealed_git(self.mesh.git, worktree)  # read once: the worktree's config, for both calls
            commit = commit_work(self.mesh.git, worktree, base, commit_message(
                work_title(job.issue), issue=number, agent=self.agent, host=self.mesh.host.host,
                claim_sha=job.claim_sha, attempt=job.attempt, rework=rework, checkpoint=checkpoint), exclude=scratch,
                sealed=sealed, base_tree=listed.tree if listed is not None and listed.head == base else None,
                cache=self.mesh.cache)
        except (GitTimeout, TemporaryError):
            raise  # temporary (a timeout, a lock another git holds, a full disk): the next tick resumes the claim
        except GitError as exc:  # e.g. a path git refuses to track (`.GIT/config`): the change is unusable
            return None, f"git cannot commit the executor's files: {exc}", "", []
        if commit is None:
            return None, NO_CHANGE, "", []
        changes = work_changes(self.mesh.git, worktree, base, commit, sealed=sealed)  # the diff and its paths
        if changes.diff is None:
            return None, "the change is too large to publish", "", []
        findings = scan_diff(changes.diff, self.known_secrets)
        if findings:
            return None, "the change contains a secret", secret_report(findings), []
        return commit, "", "", changes.paths

    # --- rework ------------------------------------------------------------------------------

    def rework(self, job: Job, request: ReworkAsk) -> None:
        """Address the feedback on the PR's head: run the executors on top of it and push the result
        with the fence (the work branch pinned to that head, so a human's push wins)."""
        number = job.issue.number
        self.report.add(Event.REWORKING, issue=number, pr=request.pull,
                        detail=f"round {request.round} of {self.policy.rework.max}")
        task_file = self.write_task_file(job.issue, feedback=request.feedback)
        produced = self.produce(job, request.head, task_file, rework=request.round)
        if produced.outcome in (Ending.STOPPED, Ending.UNAVAILABLE):  # the request stays: the next tick tries again
            self.report.add(Event.REWORK_POSTPONED, issue=number, pr=request.pull, detail=produced.reason)
        elif produced.outcome != Ending.LOST:
            self.reworks.drop(number, request.head)
            if produced.commit is not None:
                self.push_rework(job, request, produced.claim_sha, produced.commit)
            else:
                self.give_up_rework(job, request, produced)
        self.remove_worktree(job.branch)

    def push_rework(self, job: Job, request: ReworkAsk, claim_sha: str, commit: str) -> None:
        number = job.issue.number
        try:
            self.store.fenced_push(number, claim_sha, f"refs/heads/{job.branch}", commit, request.head)
        except NotHolder as exc:
            self.report.add(Event.CLAIM_LOST, issue=number, pr=request.pull,
                            detail=f"{exc}; the fence refused the push")
            return
        except UserError as exc:  # the branch moved since the review: whoever pushed wins
            self.report.add(Event.SKIPPED, issue=number, pr=request.pull, detail=f"rework not pushed: {exc}")
            return
        self.ensure_comment(
            request.pull, f"rework/{commit}",
            f"agentmesh: `{self.agent}` pushed rework {request.round} of {self.policy.rework.max} "
            f"(`{commit[:12]}`) to address the review and CI of `{request.head[:12]}`.")
        self.report.add(Event.REWORKED, issue=number, pr=request.pull,
                        detail=f"round {request.round}: pushed {commit[:12]}")

    def give_up_rework(self, job: Job, request: ReworkAsk, produced: Produced) -> None:
        """A rework that produced nothing usable hands the PR to a human (no loop of failing reruns)."""
        details = self.public(produced.details) if produced.details else self.log_excerpt(produced.log_path)
        self.forge.add_labels(request.pull, [Label.NEEDS_HUMAN])
        self.ensure_comment(
            request.pull, f"rework-failed/{request.head}",
            f"agentmesh: rework {request.round} by `{self.agent}` failed: {self.public(produced.reason)}. "
            f"A human must take it from here; agents will not touch this PR again.\n\n{details}")
        self.report.add(Event.NEEDS_HUMAN, issue=job.issue.number, pr=request.pull,
                        detail=f"rework failed: {produced.reason}", key=needs_human_key(request.pull, request.head))

    def write_task_file(self, issue: Issue, *, feedback: Feedback = (), listing: RemoteRefs | None = None) -> Path:
        """The executor never sees this host's token, even when someone pasted it into the issue. `listing`: the
        issue's item as the claim's push just left it (Job.listing), read without a listing of its own."""
        comments = [replace(c, body=self.scrub(c.body)) for c in self.comments(issue.number, listing=listing)]
        feedback = tuple((source, self.scrub(text)) for source, text in feedback)
        writers = {c.author for c in comments if self.trusted(c.author)}
        memory = context_for(self.mesh.cache, self.mesh.base_head, self.journal or self.mesh.journal(), issue,
                             context_bytes=self.policy.memory.context_bytes).text
        text = render_task_context(issue, comments, write_access=writers, memory_section=memory, feedback=feedback)
        path = self.mesh.state.tasks / f"issue-{issue.number}.md"
        write_atomic(path, text)
        return path

    # --- publish or fail ------------------------------------------------------------------

    def publish(self, job: Job, claim_sha: str, commit: str, paths: list[str]) -> None:
        """The fenced push (claim renewal and work branch in one atomic push), then the PR; on the local
        forge the PR and the journal land in that same push."""
        number = job.issue.number
        ref = f"refs/heads/{job.branch}"
        try:
            pull = self.fenced_pull(job, claim_sha, commit, paths)
            if pull is None:  # the REST forges, or a PR of this branch exists: push, then open or adopt
                claim = self.store.fenced_push(number, claim_sha, ref, commit)
        except NotHolder as exc:
            self.report.add(Event.CLAIM_LOST, issue=number, detail=f"{exc}; the fence refused the push")
            self.remove_worktree(job.branch)
            return
        self.report.add(Event.PUSHED, issue=number, detail=f"{job.branch} ({len(paths)} file(s) changed)")
        if pull is None:
            pull = self.open_pull(job.issue, claim.sha or claim_sha, job.branch, commit)
        if pull is not None:
            self.report.record(opened_line(job, paths, pull.number, pull.url))
        self.remove_worktree(job.branch)

    def fenced_pull(self, job: Job, claim_sha: str, commit: str, paths: list[str]) -> PullRequest | None:
        """On a forge whose PRs are refs of the mesh's remote (the local forge): the work branch, the claim's
        renewal pinned to `claim_sha`, the PR (labelled, the issue moved to review) and the journal with the
        PR's line in one atomic push (forge/base.PullFence), so a PR is never created by an agent whose claim
        was lost. NotHolder: the claim moved, nothing was pushed. None: not done (`Forge.create_fenced_pull`).
        No `fenced_after`: the PR appeared with the claim's renewal, so it was ours then (a claim lost later is
        monitor-prs's, as for any PR in review). A journal that cannot ride along (moved, or refused by the
        remote's hook) is left for the run's flush."""
        issue = job.issue
        # read once, and only where the PR's own push asks them: a REST forge opens its PR by a call of its own
        reviewers = self.ring_reviewers() if self.forge.kind == "local" else []
        for journal in (self.journal, None) if self.journal is not None else (None,):
            fence = WorkFence(self.store, journal, issue.number, claim_sha, f"refs/heads/{job.branch}", commit,
                              lambda number: opened_line(job, paths, number, None))
            try:
                return self.forge.create_fenced_pull(
                    fence, head=job.branch, base=self.mesh.base_branch, title=work_title(issue),
                    body=pull_body(issue, agent=self.agent, host=self.mesh.host.host, claim_sha=claim_sha),
                    labels=[Label.PR], relabel=[stage_change(issue.number, Stage.REVIEW)],
                    reviewers=reviewers)
            except Stale as exc:
                if self.store.ref(issue.number) in exc.refs:
                    raise NotHolder(f"claim #{issue.number} was lost before the work was published") from None
                if journal is None or journal.own_ref not in exc.refs:
                    raise UserError(f"work branch {job.branch} changed on the remote; nothing was published") from None
            except Forbidden:
                if journal is None:
                    raise
        return None  # not reached: the last round has no journal, and returns or raises

    def ring_reviewers(self) -> list[str]:
        """The logins a new PR of this agent asks for a review, asked in the PR's own push instead of a push of their
        own: the next agents of a ring that does not come from presence refs (configured, or the roster's), read
        without a git process. No one when the ring is the agents with a presence ref. monitor-prs asks whom this
        missed: the living reviewers, when one of these is away."""
        if not self.policy.review.ring and self.mesh.roster is None:
            return []
        ring = self.ring([])
        return review_logins(self.mesh.roster, reviewers_for(ring, self.agent, alive=ring,
                                                             count=self.policy.review.required_approvals))

    def open_pull(self, issue: Issue, claim_sha: str, branch: str, head_sha: str) -> PullRequest | None:
        """Create the PR, or adopt the open one for this branch; label it and move the issue to review.

        Fenced: the claim must still be ours at `claim_sha` right before, so an agent paused after its
        push whose claim was reaped and re-done opens nothing. A merged or closed PR of this very head
        is never followed by a second one (None: monitor-prs cleans up after it)."""
        number = issue.number
        latest = self.forge.latest_pull_for_head(branch, base=self.mesh.base_branch)
        if latest is not None and latest.state != "open" and latest.head_sha == head_sha:
            self.report.add(Event.SKIPPED, issue=number, pr=latest.number,
                            detail=f"PR #{latest.number} of {branch} at this head is {latest.state} already")
            return None
        try:
            self.store.check_held(number, claim_sha)
        except NotHolder as exc:
            self.report.add(Event.CLAIM_LOST, issue=number, detail=f"{exc}; no PR opened")
            return None
        if latest is not None and latest.state == "open":
            self.forge.add_labels(latest.number, [Label.PR])
            set_stage(self.forge, number, Stage.REVIEW)
            return latest
        pull = self.forge.create_pull(
            head=branch, base=self.mesh.base_branch, title=work_title(issue),
            body=pull_body(issue, agent=self.agent, host=self.mesh.host.host, claim_sha=claim_sha),
            labels=[Label.PR])
        fenced = self.fenced_after(number, pull)
        if fenced is not None:  # past the fence only: never over the stage of another agent holding the issue
            set_stage(self.forge, number, Stage.REVIEW)
        return fenced

    def fenced_after(self, number: int, pull: PullRequest) -> PullRequest | None:
        """The claim read again once the PR exists: paused between the check and the creation, this agent
        may have lost it, and its issue may even be done by another agent. Such a PR is withdrawn now, as
        monitor-prs would on its next run (a run that may never come); a claim merely reaped, on an open
        issue, is monitor-prs's to take again (core/pulls.plan_fence)."""
        current = self.store.read(number)
        claimer = current[1].agent if current is not None and current[1] is not None else None
        if claimer == self.agent:
            return pull
        seen = OwnPull(pull.number, number, pull.head_sha, handed_over=False, me=self.agent,
                       issue_open=self.issue_open(number), claimer=claimer, branch=pull.head)
        match plan_fence(seen):
            case [Withdraw(issue_closed=issue_closed, detail=why)]:
                self.withdraw(pull, number, None, f"{why} while it was being opened", issue_closed=issue_closed)
                return None
        return pull

    def make_way(self, job: Job, base: str, produced: Produced) -> None:
        """Preempted (agent/preempt.py): no attempt is counted. What the executor left, checked as any
        work (no secret, no protected path), goes to the work branch as a checkpoint in the same atomic
        push that releases the claim; the issue is back in the queue at once."""
        number = job.issue.number
        commit, _, _, paths = self.checked_commit(job, self.worktrees.path_for(job.branch), base, 0, produced.scratch,
                                                  checkpoint=True)
        if commit is not None and self.protected(paths):
            commit = None  # only a human may change those: nothing is pushed
        kept = "nothing to keep"
        if commit is not None:
            try:
                self.store.release_publishing(number, produced.claim_sha, f"refs/heads/{job.branch}", commit)
                kept = f"checkpoint {commit[:12]} pushed to {job.branch}"
            except NotHolder as exc:
                self.report.add(Event.CLAIM_LOST, issue=number, detail=f"{exc}; the fence refused the checkpoint")
                return
            except UserError as exc:  # the branch moved meanwhile: whoever pushed wins
                kept = f"checkpoint not pushed: {exc}"
                commit = None
        if commit is None:
            self.release(number, produced.claim_sha, produced.reason)
        set_stage(self.forge, number, None)
        self.ensure_comment(number, f"preempted/{produced.claim_sha}",
                            f"agentmesh: `{self.agent}` stopped work on this issue: {produced.reason}. No attempt "
                            f"is counted and the issue is back in the queue ({kept}).")
        self.report.add(Event.PREEMPTED, issue=number, detail=f"{produced.reason}; {kept}")

    def hand_issue_over(self, job: Job, produced: Produced) -> None:
        """A change only a human may make: say so on the issue, label it for a human (agents no longer
        claim it; no attempt is counted) and release the claim. Nothing was pushed."""
        number = job.issue.number
        self.ensure_comment(number, f"protected/{produced.claim_sha}",
                            f"agentmesh: `{self.agent}` stopped work on this issue: {produced.reason}. The "
                            f"issue is labelled `{Label.NEEDS_HUMAN}` for a human to take.\n\n"
                            f"{self.public(produced.details)}")
        self.forge.add_labels(number, [Label.NEEDS_HUMAN])
        set_stage(self.forge, number, None)
        protected = self.protected(list(produced.paths))
        self.report.add(Event.NEEDS_HUMAN, issue=number, key=needs_human_key(number, produced.claim_sha),
                        detail=f"not pushed: protected paths {', '.join(protected[:5])}"[:300])
        self.release(number, produced.claim_sha, "protected paths: handed to a human")

    def fail(self, job: Job, claim_sha: str, reason: str, log_path: Path | None, *, details: str = "") -> None:
        """Record a failed attempt on the issue (once per claim), release the claim, clean up."""
        number = job.issue.number
        details = self.public(details) if details else self.log_excerpt(log_path)
        failure = record_failure(self.forge, number, self.comments(number), agent=self.agent,
                                 claim_attempt=job.attempt, reason=self.public(reason), details=details,
                                 max_attempts=self.policy.max_attempts, trusted=self.trusted)
        self.report.add(Event.DEAD_LETTER if failure.dead else Event.FAILED, issue=number,
                        detail=f"attempt {failure.attempt}: {reason}", key=f"failed-{number}-{failure.ever}",
                        attempt=failure.attempt)
        self.release(number, claim_sha, "attempt failed")
        self.remove_worktree(job.branch)

    def release(self, issue: int, sha: str, why: str) -> None:
        try:
            self.store.release(issue, sha)
        except NotHolder as exc:
            self.report.add(Event.CLAIM_LOST, issue=issue, detail=str(exc))
            return
        if self.policy.migration.lock_branches:
            drop_mesh_locks(self.mesh, [issue])
        self.report.add(Event.RELEASED, issue=issue, detail=why)

    # --- small helpers -------------------------------------------------------------------

    def kill_leftovers(self) -> None:
        """Kill executors a crashed run left behind. Holding the host lock, no run of ours is alive,
        so every pidfile is stale, whether or not the claim it worked for still exists."""
        for pidfile in sorted(self.mesh.state.running.glob("issue-*.json")):
            if executors.kill_leftover(pidfile):
                self.report.add(Event.KILLED_LEFTOVER, detail=f"executor of a crashed run ({pidfile.stem})")

    def sweep_local(self, held: Collection[str], issues: Collection[int]) -> None:
        """Worktrees and task files of claims this agent no longer holds (reaped while it was away, or
        released by a run killed before it removed them), and its records of their pushes. Holding the
        host lock, none is in use."""
        self.store.forget_pushes(keep=issues)
        if not self.mesh.state.worktrees.is_dir():
            return
        keep = {self.worktrees.path_for(b) for b in held if b}
        for path in sorted(self.mesh.state.worktrees.iterdir()):
            branch = path.name.replace("--", "/", 1)
            if path not in keep and is_work_branch(branch):
                self.worktrees.remove(branch)
        for task in self.mesh.state.tasks.glob("issue-*.md"):
            number = task.stem.removeprefix("issue-")
            if number.isdigit() and int(number) not in issues:
                task.unlink(missing_ok=True)

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
        text = read_log_tail(log_path, 4 * LOG_TAIL_CHARS)  # bytes: enough for LOG_TAIL_CHARS characters
        return "Log tail (secrets and host paths redacted):\n\n" + fence(log_tail(text, self.public))

    def remove_worktree(self, branch: str) -> None:
        if not self.dry_run:
            self.worktrees.remove(branch)

    def pidfile(self, issue: int) -> Path:
        return self.mesh.state.running / f"issue-{issue}.json"
