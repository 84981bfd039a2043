"""An operator's verbs on one issue: `issue cancel` and `issue requeue`.

Both are idempotent (a rerun after a crash finishes the job and posts nothing twice) and journaled.

cancel: a comment saying so, then the issue is closed. A holder whose executor runs stops at its
next heartbeat and pushes nothing (agent/watch.py). An open agent PR for the issue is taken down
here: its claim and its branch are deleted, each pinned to the sha read (a push meanwhile wins), and
the PR is closed last, so that a rerun still finds what is left to do.

requeue: failed attempts are counted from trusted attempt markers (agent/stages.py); a trusted
requeue marker restarts the count, and the failed and dead-letter labels go.

ship: merge an open PR now, without waiting for the ring's approvals, pinned like every merge to the
head sha that was checked (a push meanwhile refuses the merge). It bypasses the wait only: the kill
switch, a failing required check and a conflict still stop it, and only a maintainer (the roster's,
or with no roster anyone with write access, who may not ship protected paths) may use it. The
maintainer's approval of the head is recorded first, so that a plain git server's pre-receive hook
(core/receive.py) accepts the signed merge.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from agentmesh.agent.base import AgentRun
from agentmesh.agent.halt import halt_reason
from agentmesh.agent.report import Report
from agentmesh.agent.stages import protected_list, set_stage
from agentmesh.core.errors import TemporaryError, UserError
from agentmesh.core.markers import attempts_ever, closing_references, count_attempts, requeue_marker
from agentmesh.core.model import PullRequest
from agentmesh.core.review import failing_checks
from agentmesh.core.sanitize import clean_text
from agentmesh.core.slug import is_work_branch
from agentmesh.core.vocab import Event, Label
from agentmesh.forge.base import Conflict, Forbidden, ForgeError, NotFound
from agentmesh.git.remote import RefUpdate, push
from agentmesh.git.worktree import changed_paths
from agentmesh.host.roster import MAINTAINER_PREFIX


class HeadMoved(Conflict):
    """The PR's head is not the sha that was checked: nothing was merged."""


@dataclass
class OperatorReport(Report):
    pass


class Operator(AgentRun[OperatorReport]):
    def cancel(self, number: int, reason: str) -> None:
        issue = self.forge.get_issue(number)
        why = " ".join(clean_text(reason, 500).split()) or "cancelled by an operator"
        self.ensure_comment(number, "cancelled", f"agentmesh: `{self.agent}` cancelled this issue: {why}. "
                            "An agent working on it stops at its next heartbeat and publishes nothing; "
                            "its open PR is closed.")
        if issue.state == "open":
            self.forge.close_issue(number)
        for pull in self.agent_pulls(number):
            self.take_down(number, pull)
        self.report.add(Event.CANCELLED, issue=number, key=f"cancelled-{number}", detail=why)

    def agent_pulls(self, number: int) -> list[PullRequest]:
        """The open PRs an agent opened for the issue (a human's PR that closes it is left alone)."""
        return [p for p in self.forge.list_pulls(state="open")
                if number in closing_references(p.body) and Label.PR in p.labels and is_work_branch(p.head)]

    def take_down(self, number: int, pull: PullRequest) -> None:
        held = self.store.read(number)
        if held is not None and held[1] is not None and held[1].work_branch in (pull.head, None):
            self.delete(self.store.ref(number), held[0])
        self.delete(f"refs/heads/{pull.head}", pull.head_sha)
        self.ensure_comment(pull.number, f"cancelled/{pull.head_sha}",
                            f"agentmesh: issue #{number} was cancelled; `{self.agent}` closed this PR unmerged.")
        self.forge.close_pull(pull.number)
        self.report.add(Event.WITHDRAWN, issue=number, pr=pull.number, key=f"withdrawn-{pull.number}",
                        detail=f"issue #{number} cancelled: PR closed, branch {pull.head} and claim removed")

    def delete(self, ref: str, sha: str) -> None:
        """Pinned to `sha`: a ref that moved meanwhile (or is gone) stays as it is."""
        push(self.mesh.git, self.mesh.cache.path, self.mesh.remote, [RefUpdate(ref, None, sha)])

    def requeue(self, number: int) -> None:
        issue = self.forge.get_issue(number)
        comments = self.comments(number)
        trusted = {c.author for c in comments if self.trusted(c.author)}
        failed = count_attempts(comments, trusted)
        if failed:
            self.ensure_comment(number, requeue_marker(attempts_ever(comments, trusted)),
                                f"agentmesh: `{self.agent}` requeued this issue: its {failed} failed attempt(s) no "
                                "longer count.")
        stale = [label for label in (Label.DEAD_LETTER, Label.FAILED) if label in issue.labels]
        if stale:
            self.forge.remove_labels(number, [Label.DEAD_LETTER])
            set_stage(self.forge, number, None)  # failed is a stage label
        if failed or stale:
            self.report.add(Event.REQUEUED, issue=number, key=f"requeued-{number}-{attempts_ever(comments, trusted)}",
                            detail=f"{failed} failed attempt(s) cleared")
        else:
            self.report.add(Event.SKIPPED, issue=number, detail="nothing to requeue: no failed attempt counts")

    # --- ship ------------------------------------------------------------------------------

    def ship(self, number: int, sha: str | None = None) -> None:
        pull = self.forge.get_pull(number)
        if pull.state == "merged":
            self.report.add(Event.SKIPPED, pr=number, detail=f"already merged (at {pull.head_sha[:12]})")
            return
        if pull.state != "open":
            raise UserError(f"PR #{number} is closed without merge: reopen it before shipping it")
        head = pull.head_sha
        if sha is not None and not re.fullmatch(r"[0-9a-fA-F]{7,40}", sha):
            raise UserError(f"--sha: not a commit sha (7 to 40 hex digits): {clean_text(sha, 60)!r}")
        if sha is not None and not head.startswith(sha.lower()):
            raise HeadMoved(f"PR #{number} head is {head[:12]}, not {sha[:12]}: it moved; nothing was merged")
        who, protected = self.check_shippable(pull)
        issues = closing_references(pull.body)
        self.approve(pull, who)
        self.ensure_comment(number, f"shipped/{head}",
                            f"agentmesh: `{who}` shipped `{head[:12]}` without waiting for the ring's approvals."
                            + (f"\n\nIt changes protected paths:\n\n{protected_list(protected)}" if protected else ""))
        try:
            self.forge.merge_pull(number, sha=head, method=self.policy.merge.method)
        except Conflict as exc:
            if self.forge.get_pull(number).head_sha != head:
                raise HeadMoved(f"PR #{number} moved while it was shipped ({exc}); nothing was merged") from None
            raise
        except Forbidden as exc:
            raise Forbidden(f"PR #{number} not shipped: {exc}") from None
        self.report.add(Event.SHIPPED, issue=issues[0] if issues else None, pr=number, key=f"shipped-{number}",
                        detail=f"{head[:12]} merged by {who} without the ring's approvals")

    def check_shippable(self, pull: PullRequest) -> tuple[str, list[str]]:
        """(who ships, the protected paths it changes) when this operator may ship it now; UserError otherwise."""
        halted = halt_reason(self.mesh, self.forge)
        if halted:
            raise UserError(f"not shipped: {halted}; `pr ship` does not override the kill switch (resume first)")
        who, maintainer = self.operator()
        if self.mesh.roster is not None and not maintainer:
            raise UserError(f"only a maintainer in the roster may ship a PR; `{who}` is not one "
                            "(this host's key, or the forge token's login, is not a maintainer's)")
        if not maintainer and not self.may_write(who):
            raise UserError(f"`{who}` has no write access to the repository: it may not ship a PR")
        protected = self.protected(self.pull_paths(pull))
        if protected and not maintainer:
            raise UserError(f"PR #{pull.number} changes protected paths, which only a maintainer in the roster may "
                            f"ship: {', '.join(protected[:5])}")
        failing = failing_checks(self.forge.ci_status(pull.head_sha).contexts, self.policy.review.required_checks)
        if failing:
            raise UserError(f"PR #{pull.number}: required checks fail on {pull.head_sha[:12]}: {', '.join(failing)}")
        return who, protected

    def operator(self) -> tuple[str, bool]:
        """(who runs this, whether the roster names them a maintainer). On the local forge what counts is
        this host's key, as the pre-receive hook sees its signatures; on Gitea/GitHub the token's login."""
        roster = self.mesh.roster
        if self.forge.kind == "local":
            principal = self.mesh.key_principal
            return (principal, principal.startswith(MAINTAINER_PREFIX)) if principal else (self.agent, False)
        login = self.forge.current_user()
        if roster is not None and roster.is_maintainer(login):
            return MAINTAINER_PREFIX + login, True
        return login, False

    def may_write(self, user: str) -> bool:
        try:
            return self.forge.permission(user.removeprefix(MAINTAINER_PREFIX)) in ("admin", "write")
        except (NotFound, Forbidden):
            return False

    def pull_paths(self, pull: PullRequest) -> list[str]:
        """The paths the PR changes from its merge base with the base branch to its head."""
        cache = self.mesh.cache
        if not self.fetched(pull.head, pull.head_sha):
            raise TemporaryError(f"PR #{pull.number}: head {pull.head_sha[:12]} is not on the remote")
        cache.fetch([f"refs/heads/{pull.base}"])
        base = cache.resolve(f"refs/mirror/heads/{pull.base}") or pull.head_sha
        return changed_paths(self.mesh.git, cache.path, cache.merge_base(base, pull.head_sha) or pull.head_sha,
                             pull.head_sha)

    def approve(self, pull: PullRequest, who: str) -> None:
        """The operator's approval of the head, once: the hook merges nothing that no maintainer or
        sibling approved, and the PR shows who let it through."""
        if any(r.author == who and r.state == "APPROVED" and r.commit_id == pull.head_sha
               for r in self.reviews(pull.number)):
            return
        try:
            self.forge.submit_review(pull.number, event="approve", commit_id=pull.head_sha,
                                     body=f"agentmesh: shipped by `{who}` without waiting for the ring.")
        except (ForgeError, UserError) as exc:  # e.g. GitHub refuses an approval of one's own PR
            self.report.add(Event.WARNING, pr=pull.number, detail=f"approval not recorded: {exc}")
