"""An operator's verbs on one issue: `issue cancel` and `issue requeue`.

Both are idempotent (a rerun after a crash finishes the job and posts nothing twice) and journaled.

cancel: a comment saying so, then the issue is closed. A holder whose executor runs stops at its
next heartbeat and pushes nothing (agent/watch.py). An open agent PR for the issue is taken down
here: its claim and its branch are deleted, each pinned to the sha read (a push meanwhile wins), and
the PR is closed last, so that a rerun still finds what is left to do.

requeue: failed attempts are counted from trusted attempt markers (agent/stages.py); a trusted
requeue marker restarts the count, and the failed and dead-letter labels go.
"""

from __future__ import annotations

from dataclasses import dataclass

from agentmesh.agent.base import AgentRun
from agentmesh.agent.report import Report
from agentmesh.agent.stages import set_stage
from agentmesh.core.markers import attempts_ever, closing_references, count_attempts, requeue_marker
from agentmesh.core.model import PullRequest
from agentmesh.core.sanitize import clean_text
from agentmesh.core.slug import is_work_branch
from agentmesh.core.vocab import Event, Label
from agentmesh.git.remote import RefUpdate, push


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
