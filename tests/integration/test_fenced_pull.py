"""The local forge's PR push is fenced by the claim (issue 16): the work branch, the claim's renewal, the PR
(labelled, the issue's `review` stage) and the journal land in one atomic push, the claim pinned to the sha
the job holds. The remote's own pre-receive hook moves the claim while that push is in flight (another agent
reaped it, or reaped and re-claimed it), so only the server-side compare-and-swap can refuse it: no PR, no
work branch, no `review` stage, no `pr-opened` line, and the run reports the lost claim as it always did.
A journal the remote refuses does not hold the PR back: it stays queued for the run's own flush."""

from __future__ import annotations

import sys

import pytest

from agentmesh.agent.claim_task import claim_task
from agentmesh.core.vocab import Event, Label, Stage
from agentmesh.forge.base import PullFence, Relabel, Stale
from agentmesh.git.remote import RefUpdate
from tests.support import agent_forge, agent_mesh, demo_body, journal_entries, local_forge_remote, remote_refs

# pre-receive, once (the trigger file): when a push creates a PR's guard ref, move the claim the way another
# agent would, out of the push's quarantine (so the ref really moves before receive-pack's transaction)
MOVE_CLAIM = """#!{python}
import os, pathlib, subprocess, sys
trigger = pathlib.Path({trigger!r})
for line in sys.stdin:
    old, new, ref = line.split()
    if ref.startswith("refs/agentmesh/pull-heads/") and trigger.exists():
        trigger.unlink()
        env = {{k: v for k, v in os.environ.items() if not k.startswith(("GIT_QUARANTINE", "GIT_OBJECT",
                                                                        "GIT_ALTERNATE"))}}
        subprocess.run(["git", "update-ref", *{move!r}], env=env, check=True)
"""
# pre-receive: refuses every push that touches this agent's journal branch
REFUSE_JOURNAL = """#!/bin/sh
while read old new ref; do
    case "$ref" in refs/heads/agentmesh/journals/*) echo "no journals here"; exit 1;; esac
done
"""
STAGES = {s.value for s in Stage}


def one_tick(tmp_path, hook: str):
    remote = local_forge_remote(tmp_path / "remote.git")
    human = agent_forge(agent_mesh(remote, tmp_path / "hosts", "human"))
    issue = human.create_issue("Add notes", demo_body("notes.txt", "notes\n"), ["task"]).number
    script = remote / "hooks" / "pre-receive"
    script.write_text(hook.replace("CLAIM", f"refs/heads/claim/{issue}"))
    script.chmod(0o755)
    (tmp_path / "trigger").touch()
    mesh = agent_mesh(remote, tmp_path / "hosts", "ada")
    report = claim_task(mesh, agent_forge(mesh), env={"PATH": "/usr/bin:/bin"})
    return remote, human, issue, report


@pytest.mark.parametrize("move", [("-d", "CLAIM"), ("CLAIM", "refs/heads/main")], ids=["reaped", "re-claimed"])
def test_a_claim_moved_during_the_pr_push_creates_no_pr_and_no_branch(tmp_path, move):
    hook = MOVE_CLAIM.format(python=sys.executable, trigger=str(tmp_path / "trigger"), move=list(move))
    remote, human, issue, report = one_tick(tmp_path, hook)
    assert not (tmp_path / "trigger").exists()  # the claim moved while the push was in flight
    events = [line.event for line in report.events]
    assert Event.CLAIM_LOST in events and Event.PR_OPENED not in events and Event.PUSHED not in events, events
    [lost] = [line for line in report.events if line.event == Event.CLAIM_LOST]
    assert "the fence refused the push" in lost.detail
    assert human.list_pulls(state="all") == []  # no PR ...
    assert remote_refs(remote, "refs/heads/ada/") == {}  # ... no work branch ...
    assert remote_refs(remote, "refs/agentmesh/pull-heads/") == {}
    assert {label for label in human.get_issue(issue).labels if label in STAGES} == {Stage.WORKING}  # ... no review
    assert "pr-opened" not in [e.event for e in journal_entries(remote)]  # the run's flush kept its other lines


def test_a_journal_the_remote_refuses_does_not_hold_the_pr_back(tmp_path):
    remote, human, issue, report = one_tick(tmp_path, REFUSE_JOURNAL)
    events = [line.event for line in report.events]
    assert events[:4] == [Event.CLAIMED, Event.EXECUTED, Event.PUSHED, Event.PR_OPENED], events
    assert any(line.event == Event.WARNING and "journal not pushed yet" in line.detail for line in report.events)
    [pull] = human.list_pulls(state="open")
    assert Label.PR in pull.labels and remote_refs(remote, f"refs/heads/{pull.head}")
    assert {label for label in human.get_issue(issue).labels if label in STAGES} == {Stage.REVIEW}
    assert remote_refs(remote, "refs/heads/agentmesh/journals/") == {}


class BranchFence(PullFence):
    """The least a caller's fence is: the PR's head branch created with it (and `more` updates, as built)."""

    def __init__(self, branch: str, commit: str, more: tuple[RefUpdate, ...] = ()):
        self.refs = (f"refs/heads/{branch}", *(u.ref for u in more))
        self.head_sha = commit
        self.more = more
        self.landed_as: int | None = None

    def updates(self, listed, number):
        return [RefUpdate(self.refs[0], self.head_sha, listed.get(self.refs[0])), *self.more]

    def landed(self, number):
        self.landed_as = number


def test_the_local_forge_creates_a_fenced_pr_once_and_refuses_a_stale_fence(tmp_path):
    remote = local_forge_remote(tmp_path / "remote.git")
    mesh = agent_mesh(remote, tmp_path / "hosts", "ada")
    forge = agent_forge(mesh)
    base = mesh.base_head
    commit = mesh.cache.commit_tree(mesh.cache.tree_of(base), [base], "work\n")
    issue = forge.create_issue("Do it").number

    def create(fence):
        return forge.create_fenced_pull(fence, head="ada/1-do-it", base=mesh.base_branch, title="Do it (#1)",
                                        labels=[Label.PR], relabel=[Relabel(issue, add=(Stage.REVIEW,))])

    # a stale update of the caller's: nothing lands, and the error names it
    stale = BranchFence("ada/1-do-it", commit, (RefUpdate("refs/heads/other", commit, base),))
    with pytest.raises(Stale) as refused:
        create(stale)
    assert refused.value.refs == ("refs/heads/other",) and stale.landed_as is None
    assert forge.list_pulls(state="all") == [] and remote_refs(remote, "refs/heads/ada/") == {}
    assert remote_refs(remote, "refs/agentmesh/pull-heads/") == {}

    fence = BranchFence("ada/1-do-it", commit)
    pull = create(fence)
    assert pull is not None and fence.landed_as == pull.number and pull.head_sha == commit
    assert remote_refs(remote, "refs/heads/ada/1-do-it") == {"refs/heads/ada/1-do-it": commit}
    assert forge.get_pull(pull.number).labels == (Label.PR,) and Stage.REVIEW in forge.get_issue(issue).labels
    # the head has a PR now: not done, nothing pushed (the caller pushes, then adopts or opens it)
    again = BranchFence("ada/1-do-it", mesh.cache.commit_tree(mesh.cache.tree_of(base), [base], "more\n"))
    assert create(again) is None and again.landed_as is None
    assert remote_refs(remote, "refs/heads/ada/1-do-it") == {"refs/heads/ada/1-do-it": commit}
    assert [p.number for p in forge.list_pulls(state="all")] == [pull.number]


def test_an_item_created_after_the_runs_listing_does_not_cost_the_pr_a_lost_push(tmp_path):
    """The PR takes its number from the listing right before its push (the items counted in it), not from the run's
    listing: an issue filed while the executor ran took the number the run's listing would offer."""
    from agentmesh.forge.local import LocalForge
    from tests.support.gitcount import counting_git

    remote = local_forge_remote(tmp_path / "remote.git")
    human = agent_forge(agent_mesh(remote, tmp_path / "hosts", "human"))
    issue = human.create_issue("Add notes", demo_body("notes.txt", "notes\n"), ["task"]).number
    mesh = agent_mesh(remote, tmp_path / "hosts", "ada")

    class FiledMeanwhile(LocalForge):
        def create_fenced_pull(self, fence, **kwargs):
            human.create_issue("Filed while the executor ran", "later", [])
            return super().create_fenced_pull(fence, **kwargs)

    with counting_git(tmp_path / "count") as count:
        report = claim_task(mesh, FiledMeanwhile(mesh.cache, user="ada"), env={"PATH": "/usr/bin:/bin"})
    assert Event.PR_OPENED in [line.event for line in report.events]
    pr_pushes = [argv for argv in count.argvs() if "push" in argv and any("pull-heads" in a for a in argv)]
    assert len(pr_pushes) == 1, pr_pushes
    [pull] = human.list_pulls(state="open")
    assert pull.number == issue + 2  # after the issue filed meanwhile
