"""One issue, one merged PR, nothing left behind: each step after the claim is fenced, and a crash
or pause anywhere is finished by the next run. Interleavings are forced with remote git hooks and
the fake clock; every verdict is read from the remote with git plumbing.
"""

from __future__ import annotations

import sys
from contextlib import nullcontext
from functools import partial

import pytest
import yaml

from agentmesh.agent import monitor as monitor_module
from agentmesh.agent.claim_task import ClaimTask, TickReport, claim_task
from agentmesh.agent.lessons import lesson_branch, propose_lesson
from agentmesh.agent.monitor import monitor_prs
from agentmesh.agent.work import commit_message
from agentmesh.core.markers import marker_text
from agentmesh.core.memory import Lesson
from agentmesh.core.plan import Adopt
from agentmesh.core.slug import work_branch
from agentmesh.core.vocab import Stage
from agentmesh.host.lock import host_lock
from agentmesh.host.roster import ROSTER_PATH
from agentmesh.refs.heartbeat import Heartbeat, Keeper
from tests.support import (
    FakeClock,
    agent_forge,
    agent_mesh,
    demo_body,
    git,
    human_commit,
    journal_entries,
    local_forge_remote,
    path_only_env,
    remote_items,
    remote_refs,
    roster_yaml,
)

LEASE = {"seconds": 60, "renew_seconds": 20, "grace_seconds": 15}
STAGES = {s.label for s in Stage}



class Fleet:
    """Agents of one local-forge remote, each with its own host state and clock, run in-process."""

    def __init__(self, tmp_path, *, executor: dict | None = None, **extra_policy):
        self.executor = executor
        policy = {"review": {"ring": ["a", "b", "c"]}, "merge": {"auto": True}, "lease": LEASE, **extra_policy}
        self.tmp = tmp_path
        self.remote = local_forge_remote(tmp_path / "remote.git", yaml.safe_dump(policy))
        self.clocks = {agent: FakeClock() for agent in "abc"}
        self.human = agent_forge(agent_mesh(self.remote, tmp_path / "hosts", "human"))

    def mesh(self, agent):
        return agent_mesh(self.remote, self.tmp / "hosts", agent, clock=self.clocks.get(agent),
                          executor=self.executor)

    def tick(self, agent) -> TickReport:
        mesh = self.mesh(agent)
        return claim_task(mesh, agent_forge(mesh), env=path_only_env())

    def monitor(self, agent):
        mesh = self.mesh(agent)
        return monitor_prs(mesh, agent_forge(mesh), env=path_only_env())

    def issue(self, title="Add a file", path="f.txt") -> int:
        return self.human.create_issue(title, demo_body(path, f"{title}\n"), ["task"]).number

    def hook(self, name: str, script: str) -> None:
        path = self.remote / "hooks" / name
        path.write_text("#!/bin/sh\n" + script)
        path.chmod(0o755)

    # --- the remote, read with git plumbing ---------------------------------------------------

    def items(self) -> list[dict]:
        return list(remote_items(self.remote).values())

    def pulls_for(self, issue: int) -> list[dict]:
        return [i for i in self.items() if i["kind"] == "pull" and i["body"].startswith(f"Closes #{issue}\n")]

    def item(self, number: int) -> dict:
        return next(i for i in self.items() if i["number"] == number)

    def branches(self, prefix: str) -> list[str]:
        return sorted(remote_refs(self.remote, f"refs/heads/{prefix}"))

    def head(self, prefix: str) -> str:
        [sha] = remote_refs(self.remote, f"refs/heads/{prefix}").values()
        return sha

    def claims(self) -> list[str]:
        return self.branches("claim/")

    def journal(self) -> list[dict]:
        """Every entry on the journal branches (nothing is journaled on main)."""
        return [e.to_json() for e in journal_entries(self.remote)]


def events(report) -> list[tuple[str, int | None]]:
    return [(str(e.event), e.issue) for e in report.events]


def in_review(fleet: Fleet, agent="a") -> tuple[int, dict]:
    """An issue worked by `agent` up to an open PR, with every agent's presence on the remote."""
    for name in "abc":
        fleet.monitor(name)
    number = fleet.issue()
    report = fleet.tick(agent)
    assert ("pr-opened", number) in events(report), report.events
    [pull] = fleet.pulls_for(number)
    return number, pull


# --- 1. two merged PRs for one issue ---------------------------------------------------------


def test_an_agent_whose_claim_was_reaped_during_its_push_opens_no_pr_and_a_left_branch_is_swept(tmp_path):
    """Case one: paused right before its work push, reaped meanwhile. On the local forge the work branch, the
    claim's renewal and the PR are one push (there is no moment between the branch and the PR any more): a
    pre-receive hook deletes the claim while that push is in flight, out of the push's quarantine, and the
    claim's compare-and-swap refuses all of it. A work branch left with no PR and no claim (what an earlier
    version's crash between its two pushes left, or a REST forge's) is swept."""
    fleet = Fleet(tmp_path)
    for name in "abc":
        fleet.monitor(name)
    number = fleet.issue()
    fleet.hook("pre-receive", f'while read old new ref; do case "$ref" in refs/heads/a/*) '
                              "env -u GIT_QUARANTINE_PATH -u GIT_OBJECT_DIRECTORY -u GIT_ALTERNATE_OBJECT_DIRECTORIES "
                              f"git update-ref -d refs/heads/claim/{number};; esac; done\n")
    report = fleet.tick("a")
    assert ("claim-lost", number) in events(report) and ("pr-opened", number) not in events(report)
    assert fleet.pulls_for(number) == [] and fleet.claims() == [] and fleet.branches("a/") == []
    (fleet.remote / "hooks" / "pre-receive").unlink()
    orphan = f"refs/heads/a/{number}-left-behind"  # a's work commit (without its trailers, an old script's lock)
    left = git("commit-tree", "main^{tree}", "-p", "main", "-m", "work left behind", "-m",
               f"Agentmesh-Issue: {number}\nAgentmesh-Agent: a", cwd=fleet.remote)
    git("update-ref", orphan, left, cwd=fleet.remote)

    # b redoes it: exactly one PR, one merge
    assert ("pr-opened", number) in events(fleet.tick("b"))
    fleet.monitor("c")  # b's ring reviewer
    assert ("merged", number) in events(fleet.monitor("b"))
    assert [p["state"] for p in fleet.pulls_for(number)] == ["merged"]

    # a's pushed work has no PR and no claim: swept after lease + grace by the observer's own clock
    fleet.monitor("c")
    assert orphan in fleet.branches("a/")
    fleet.clocks["c"].advance(60 + 15 + 1)
    swept = fleet.monitor("c")
    assert ("swept", number) in events(swept), swept.events
    assert fleet.branches("a/") == [] and fleet.branches("b/") == []
    assert any("orphan branch" in c.body for c in fleet.human.list_comments(number))


def test_a_pr_opened_after_the_claim_passed_to_another_agent_is_withdrawn_in_the_same_run(tmp_path):
    """Paused between reading the claim and creating the PR, reaped, and the issue taken by b: only the
    local forge could fence the creation itself, so the PR is read against the claim once it exists. A
    post-receive hook hands the claim to b (a claim commit b made earlier) as the PR's item lands. The local
    forge creates a new branch's PR in the push that renews the claim (test_fenced_pull.py); a branch that
    had a PR before (a human's, closed) takes the two steps every forge takes, which this test needs."""
    fleet = Fleet(tmp_path)
    for name in "abc":
        fleet.monitor(name)
    number = fleet.issue()
    branch = f"refs/heads/{work_branch('a', number, 'Add a file')}"
    git("update-ref", branch, git("commit-tree", "main^{tree}", "-p", "main", "-m", "a try", cwd=fleet.remote),
        cwd=fleet.remote)
    fleet.human.close_pull(fleet.human.create_pull(head=branch.removeprefix("refs/heads/"), base="main",
                                                   title="A try").number)
    git("update-ref", "-d", branch, cwd=fleet.remote)
    claim = f"refs/heads/claim/{number}"
    b_claim = fleet.mesh("b").claims().acquire(number).sha
    git("update-ref", "-d", claim, cwd=fleet.remote)  # b's claim commit stays in the remote's objects
    trigger = tmp_path / "armed"
    trigger.touch()
    fleet.hook("post-receive", f'while read old new ref; do case "$old $ref" in 0000000*" refs/agentmesh/items/"*) '
                               f'[ "$ref" != refs/agentmesh/items/{number} ] && rm {trigger} 2>/dev/null && '
                               f"git update-ref {claim} {b_claim};; esac; done\n")
    report = fleet.tick("a")
    assert not trigger.exists(), "the PR was never created"
    assert ("withdrawn", number) in events(report) and ("pr-opened", number) not in events(report), report.events
    [pull] = fleet.pulls_for(number)
    assert pull["state"] == "closed" and fleet.branches("a/") == []
    assert remote_refs(fleet.remote, claim) == {claim: b_claim}  # b's claim untouched: b redoes the issue
    assert any("while it was being opened" in c.body for c in fleet.human.list_comments(pull["number"]))
    assert Stage.REVIEW.label not in fleet.item(number)["labels"]  # moved only past the fence: b's issue


def test_a_pr_whose_claim_another_agent_holds_is_withdrawn_not_merged(tmp_path):
    fleet = Fleet(tmp_path)
    number, pull = in_review(fleet)
    assert ("approved", number) in events(fleet.monitor("b"))
    # a's claim is reaped and b claims the issue again, as after a pause of a past lease + grace
    git("update-ref", "-d", f"refs/heads/claim/{number}", cwd=fleet.remote)
    assert fleet.mesh("b").claims().acquire(number).won
    report = fleet.monitor("a")
    assert ("withdrawn", number) in events(report) and ("merged", number) not in events(report)
    assert fleet.item(pull["number"])["state"] == "closed"
    assert fleet.branches("a/") == []
    assert not [i for i in fleet.items() if i["kind"] == "pull" and i["state"] == "merged"]


def test_a_pr_whose_claim_was_lost_is_reclaimed_and_then_merged(tmp_path):
    fleet = Fleet(tmp_path)
    number, pull = in_review(fleet)
    fleet.monitor("b")
    git("update-ref", "-d", f"refs/heads/claim/{number}", cwd=fleet.remote)
    first = fleet.monitor("a")
    assert ("reclaimed", number) in events(first) and ("merged", number) not in events(first)
    assert fleet.claims() == [f"refs/heads/claim/{number}"]
    assert ("merged", number) in events(fleet.monitor("a"))
    assert fleet.item(pull["number"])["state"] == "merged" and fleet.claims() == []


def test_closing_the_issue_withdraws_its_pr_and_leaves_nothing_behind(tmp_path):
    fleet = Fleet(tmp_path)
    number, pull = in_review(fleet)
    fleet.monitor("b")  # approved: it would merge next
    fleet.human.close_issue(number)
    report = fleet.monitor("a")
    assert ("withdrawn", number) in events(report) and ("merged", number) not in events(report)
    assert fleet.item(pull["number"])["state"] == "closed"
    assert fleet.claims() == [] and fleet.branches("a/") == []
    assert not set(fleet.item(number)["labels"]) & STAGES


def test_the_local_forge_closes_the_issue_in_the_merges_own_push(tmp_path):
    """Case two: no moment when the work is on main and its issue is open and claimable. A
    pre-receive hook logs every push's refs: the base branch and the issue move in one."""
    fleet = Fleet(tmp_path)
    number, pull = in_review(fleet)
    fleet.monitor("b")
    log = tmp_path / "pushes.log"
    fleet.hook("pre-receive", f'refs=""; while read old new ref; do refs="$refs $ref"; done; '
                              f'echo "$refs" >> {log}\n')
    fleet.human.merge_pull(pull["number"], sha=fleet.head("a/"))
    [merge_push] = [line.split() for line in log.read_text().splitlines() if "refs/heads/main" in line.split()]
    assert f"refs/agentmesh/items/{number}" in merge_push
    assert f"refs/agentmesh/items/{pull['number']}" in merge_push
    assert fleet.item(number)["state"] == "closed"


@pytest.mark.parametrize("readers_marker", [False, True], ids=["plain", "a-readers-merged-already-marker"])
def test_a_claim_on_an_issue_a_merged_pr_already_closes_redoes_nothing(tmp_path, readers_marker):
    """A forge that closes issues after the merge, and the merger killed in between: the issue is
    open and unclaimed though its PR is merged. Whoever claims it closes it instead of redoing it.
    The `merged-already` marker (an agent closed it so once, then a human reopened it) counts only
    from someone trusted: a reader who posts it cannot make an agent redo merged work."""
    fleet = Fleet(tmp_path)
    number, pull = in_review(fleet)
    fleet.monitor("b")
    fleet.human.merge_pull(pull["number"], sha=fleet.head("a/"))
    reopen_issue(fleet, number)
    git("update-ref", "-d", f"refs/heads/claim/{number}", cwd=fleet.remote)  # a's claim reaped meanwhile
    if readers_marker:
        fleet.human.set_permission("visitor", "read")
        visitor = agent_forge(agent_mesh(fleet.remote, tmp_path / "hosts", "visitor"))
        tag = marker_text(f"merged-already/{pull['number']}")
        visitor.comment(number, f"{tag}\nreopened, redo it")
    report = fleet.tick("c")
    assert ("claimed", number) in events(report) and ("pr-opened", number) not in events(report)
    assert fleet.item(number)["state"] == "closed"
    assert len(fleet.pulls_for(number)) == 1 and fleet.claims() == []


def reopen_issue(fleet: Fleet, number: int) -> None:
    """What an issue looks like before a late-closing forge closes it: open again (a test-only write)."""
    forge = fleet.human

    def change(item):
        from agentmesh.forge.local.store import Edit

        return Edit({**item.meta, "state": "open"}, "issue: reopen (test)")

    forge.store.update(number, change)


# --- 2. live agents keep their in-review claims ----------------------------------------------


def test_every_heartbeat_keeps_the_in_review_claims_alive(tmp_path):
    fleet = Fleet(tmp_path)
    number, _ = in_review(fleet)
    store = fleet.mesh("a").claims()
    ref = f"refs/heads/claim/{number}"
    before = remote_refs(fleet.remote, ref)[ref]
    working = store.acquire(99).sha
    now = [0.0]
    keeper = Keeper(store, renew_seconds=20, now=lambda: now[0])
    keeper.keep(number, before)
    beat = Heartbeat(store, 99, working, renew_seconds=20, lease_seconds=60, now=lambda: now[0], keeper=keeper)
    observer = fleet.mesh("c").claims()
    observer.list()  # c sees the in-review claim at `before`
    for step in range(1, 5):  # 80 s of executor run: longer than lease + grace
        now[0] = 20.0 * step
        fleet.clocks["a"].advance(20)  # renewals are due by the store's clock (core/lease.renewal_due)
        assert beat.beat() is None
        fleet.clocks["c"].advance(20)
        assert not [d for d in observer.reap_due() if d.issue == number], f"reapable after {now[0]}s"
    assert remote_refs(fleet.remote, ref)[ref] != before
    git("update-ref", "-d", ref, cwd=fleet.remote)  # lost after all: the keeper drops it at its next renewal
    now[0] = 100.0
    fleet.clocks["a"].advance(20)
    assert beat.beat() is None and number not in keeper.claims


WAIT_FOR_RENEWAL = """
import pathlib, subprocess, sys, time
remote, before = sys.argv[1], pathlib.Path(sys.argv[2])
deadline = time.monotonic() + 3
while before.exists() and time.monotonic() < deadline:
    ref, sha = before.read_text().split()
    now = subprocess.run(["git", "--git-dir", remote, "rev-parse", "-q", "--verify", ref],
                         capture_output=True, text=True).stdout.strip()
    if now != sha:
        break
    time.sleep(0.1)
"""


@pytest.mark.parametrize("claim_task_running", [False, True], ids=["daemon-idle", "claim-task-running"])
def test_a_long_review_gate_keeps_the_reviewers_own_claims_in_review_alive(tmp_path, monkeypatch,
                                                                           claim_task_running):
    """A daemon reviewing a sibling's PR runs no claim-task meanwhile: its gates renew its own claims
    in review. The gate waits until a's claim moves on the remote (3 s at most; no sandbox, so it
    can read the remote), the keeper's clock makes every poll a check, and a's clock, a renew interval
    after the claim's last push, makes the renewal due. While a claim-task
    of a's runs on the host, renewing is that run's job (its pinned renewals would race ours): the
    claim must stay unmoved."""
    before = tmp_path / "before"
    script = tmp_path / "wait.py"
    script.write_text(WAIT_FOR_RENEWAL)
    fleet = Fleet(tmp_path, executor={"kind": "demo", "sandbox": "off"}, gates=[{"name": "slow", "timeout_seconds": 60,
                                    "run": [sys.executable, str(script), str(tmp_path / "remote.git"), str(before)]}])
    for name in "abc":
        fleet.monitor(name)
    mine, theirs = fleet.issue("Mine", "a.txt"), fleet.issue("Theirs", "c.txt")
    assert ("pr-opened", mine) in events(fleet.tick("a"))
    assert ("pr-opened", theirs) in events(fleet.tick("c"))
    ref = f"refs/heads/claim/{mine}"
    claimed = remote_refs(fleet.remote, ref)[ref]
    before.write_text(f"{ref} {claimed}")
    ticks = iter(range(0, 10 ** 9, 10 ** 3))
    monkeypatch.setattr(monitor_module, "Keeper", partial(monitor_module.Keeper, now=lambda: next(ticks)))
    fleet.clocks["a"].advance(LEASE["renew_seconds"])
    with host_lock(fleet.mesh("a").state, "claim-task") if claim_task_running else nullcontext(True) as held:
        assert held
        report = fleet.monitor("a")
    assert ("approved", theirs) in events(report), report.events
    after = remote_refs(fleet.remote, ref)[ref]
    assert (after != claimed) is not claim_task_running
    assert fleet.mesh("b").claims().read(mine)[1].agent == "a"


# --- 3. no second PR for a branch that was just merged ----------------------------------------


def test_a_stale_adopt_never_opens_a_second_pr_for_a_merged_head(tmp_path):
    """reconcile saw the branch pushed and no open PR; the PR merged before adopt ran."""
    fleet = Fleet(tmp_path)
    number, pull = in_review(fleet)
    head = fleet.head("a/")
    claim_sha = remote_refs(fleet.remote, f"refs/heads/claim/{number}")[f"refs/heads/claim/{number}"]
    fleet.human.merge_pull(pull["number"], sha=head)
    mesh = fleet.mesh("a")
    forge = agent_forge(mesh)
    task = ClaimTask(mesh, forge, TickReport("a"), dry_run=False, env=path_only_env())
    issue = forge.get_issue(number)
    task.apply_one(Adopt(issue=number, sha=claim_sha, branch=pull["head"], head=head), {number: issue})
    assert ("skipped", number) in events(task.report)
    assert len(fleet.pulls_for(number)) == 1


@pytest.mark.parametrize("checkpoint", [True, False])
def test_a_checkpoint_under_a_held_claim_is_never_adopted(tmp_path, checkpoint):
    """The same branch claimed again after a preemption, and the run died before it pushed: the
    branch still holds the checkpoint, which is not a result. Without the trailer it is adopted."""
    fleet = Fleet(tmp_path)
    number = fleet.human.create_issue("Add a module", demo_body("pkg/mod.py", "VALUE = 1\n"), ["task"]).number
    mesh = fleet.mesh("a")
    store = mesh.claims()
    branch = work_branch("a", number, "Add a module")
    held = store.acquire(number, work_branch=branch)
    base = mesh.base_head
    blob = mesh.cache.run("hash-object", "-w", "--stdin", input=b"partial\n").stdout.strip()
    tree = mesh.cache.run("mktree", input=f"100644 blob {blob}\tpartial.txt\n".encode()).stdout.strip()
    work = mesh.cache.commit_tree(tree, [base], commit_message("Add a module (#1)", issue=number, agent="a",
                                                               host="h", claim_sha=held.sha, attempt=1,
                                                               checkpoint=checkpoint))
    store.fenced_push(number, held.sha or "", f"refs/heads/{branch}", work, None)
    report = fleet.tick("a")
    assert (("skipped", number) in events(report)) is checkpoint, report.events
    assert (fleet.pulls_for(number) == []) is checkpoint
    assert (fleet.claims() == []) is checkpoint


# --- 4. nothing left behind, whoever ran what -------------------------------------------------


def test_cleanup_runs_from_the_remote_even_after_claim_task_released_the_claim(tmp_path):
    """The PR merged (here by a human), claim-task saw the issue closed and released the claim
    before monitor-prs ran: the branch, the stage label and the journal are still finished."""
    fleet = Fleet(tmp_path)
    number, pull = in_review(fleet)
    head = fleet.head("a/")
    fleet.human.merge_pull(pull["number"], sha=head)
    released = fleet.tick("a")
    assert ("released", number) in events(released)
    assert fleet.claims() == [] and fleet.branches("a/")
    report = fleet.monitor("a")
    assert ("cleaned-up", number) in events(report), report.events
    assert fleet.branches("a/") == []
    assert not set(fleet.item(number)["labels"]) & STAGES
    fleet.monitor("a")
    entries = [e for e in fleet.journal() if e.get("pr") == pull["number"]]
    assert sorted(e["event"] for e in entries if e["event"] in ("merged", "cleaned-up")) == ["cleaned-up", "merged"]


def away_rounds(fleet: Fleet, agent: str, count: int) -> list[tuple[str, int | None]]:
    """`count` monitor-prs runs of `agent`, each a lease + grace after the last by its clock."""
    seen = []
    for _ in range(count):
        seen += events(fleet.monitor(agent))
        fleet.clocks[agent].advance(60 + 15 + 1)
    return seen


def test_a_pr_its_author_left_open_for_good_is_withdrawn_by_a_sibling_once_its_issue_is_closed(tmp_path):
    """a's host is gone for good with its PR in review. While the issue is open nobody touches the PR;
    once it is closed (here by a human), c withdraws it after a's absence outlasts lease + grace by c's
    own clock: nothing is left behind by an agent that never comes back."""
    fleet = Fleet(tmp_path)
    number, pull = in_review(fleet)
    assert ("reaped", number) in away_rounds(fleet, "c", 4)  # a's claim reaped, a's presence gone
    assert fleet.item(pull["number"])["state"] == "open" and fleet.branches("a/")
    fleet.human.close_issue(number)
    assert ("withdrawn", number) not in events(fleet.monitor("c"))  # first seen stale: a gets its turn
    fleet.clocks["c"].advance(60 + 15 + 1)
    report = fleet.monitor("c")
    assert ("withdrawn", number) in events(report), report.events
    assert fleet.item(pull["number"])["state"] == "closed" and fleet.branches("a/") == [] and fleet.claims() == []
    assert not set(fleet.item(number)["labels"]) & STAGES
    assert any("has been away" in c.body for c in fleet.human.list_comments(pull["number"]))
    assert report.exit_code == 0 and fleet.monitor("a").exit_code == 0  # a coming back finds nothing to do


def test_claims_and_presence_outside_the_branches_are_listed_by_monitor_prs(tmp_path):
    """monitor-prs reads claims and presence from its one listing of `refs/heads/` only when their
    configured prefixes are in it: elsewhere a listing that does not hold them must not read as "none"
    (a's claim would look lost and be taken again; no claim would ever be reaped)."""
    fleet = Fleet(tmp_path, claims={"ref_prefix": "refs/agentmesh/claims/"},
                  presence={"ref_prefix": "refs/agentmesh/agents/"})
    number, _ = in_review(fleet)
    assert remote_refs(fleet.remote, "refs/agentmesh/claims/")
    assert ("approved", number) in events(fleet.monitor("b"))
    report = fleet.monitor("a")
    assert ("merged", number) in events(report) and ("reclaimed", number) not in events(report), report.events
    assert remote_refs(fleet.remote, "refs/agentmesh/claims/") == {}
    other = fleet.issue("Another file", "g.txt")
    assert fleet.mesh("c").claims().acquire(other).won  # then c's host is gone: b reaps it after lease + grace
    fleet.monitor("b")
    fleet.clocks["b"].advance(60 + 15 + 1)
    assert ("reaped", other) in events(fleet.monitor("b"))


def test_a_stranded_pr_someone_pushed_to_is_theirs_and_no_sibling_withdraws_it(tmp_path):
    """Its author would hand it over, not withdraw it, and away it cannot say so with the label: a
    sibling leaves alone a PR whose head the author did not write, its issue closed or not."""
    fleet = Fleet(tmp_path)
    number, pull = in_review(fleet)
    head = human_commit(fleet.remote, {"f.txt": "a person's take\n"}, branch=pull["head"])
    assert ("reaped", number) in away_rounds(fleet, "c", 4)
    fleet.human.close_issue(number)
    assert ("withdrawn", number) not in away_rounds(fleet, "c", 3)
    assert fleet.item(pull["number"])["state"] == "open" and fleet.head(pull["head"]) == head


def test_with_a_roster_a_stranded_pr_is_withdrawn_only_at_a_head_its_author_signed(tmp_path):
    """The author's own test of its head: with a roster, a trailer naming a is no signature of a's."""
    fleet = Fleet(tmp_path)
    human_commit(fleet.remote, {ROSTER_PATH: roster_yaml([fleet.mesh(name) for name in "abc"])}, message="roster")
    number, pull = in_review(fleet)
    second = fleet.issue("Another file", "g.txt")
    assert ("pr-opened", second) in events(fleet.tick("a"))
    human_commit(fleet.remote, {"f.txt": "a person's take\n"}, branch=pull["head"],
                 message=f"more work\n\nAgentmesh-Agent: a\nAgentmesh-Issue: {number}\n")
    away_rounds(fleet, "c", 4)
    fleet.human.close_issue(number)
    fleet.human.close_issue(second)
    seen = away_rounds(fleet, "c", 2)
    assert ("withdrawn", second) in seen and ("withdrawn", number) not in seen, seen
    assert fleet.item(pull["number"])["state"] == "open"


def test_a_lesson_pr_on_its_done_issue_waits_for_a_human_whether_its_author_is_there_or_away(tmp_path):
    """A lesson is drafted once its issue is done (agent/lessons.py): its PR carries the marker of a
    closed issue, and is a human's to merge, not a second piece of work for the issue to withdraw."""
    fleet = Fleet(tmp_path)
    number = fleet.issue()
    fleet.human.close_issue(number)
    mesh = fleet.mesh("a")

    def lesson_pull(slug: str) -> int:
        lesson = Lesson(path=f"ai-memory/lessons/{number}-{slug}.md", id=slug, title=slug, body="Learned.\n")
        return propose_lesson(mesh, agent_forge(mesh), lesson, branch=lesson_branch("a", lesson), issue=number,
                              anchor_sha=mesh.base_head, summary="").number

    first = lesson_pull("there")
    assert ("withdrawn", number) not in events(fleet.monitor("a"))  # before any reviewer saw it
    away_rounds(fleet, "c", 2)  # c routes the first to a human; a is away by c's clock after
    second = lesson_pull("away")
    assert ("withdrawn", number) not in away_rounds(fleet, "c", 2)
    assert [fleet.item(n)["state"] for n in (first, second)] == ["open", "open"]
    assert all("agentmesh:needs-human" in fleet.item(n)["labels"] for n in (first, second))


# --- 6. journal entries survive a kill between the write and the record -----------------------


def test_a_merge_whose_run_died_before_journaling_it_is_journaled_once(tmp_path):
    fleet = Fleet(tmp_path)
    number, pull = in_review(fleet)
    fleet.monitor("b")
    head = fleet.head("a/")
    forge = agent_forge(fleet.mesh("a"))
    forge.merge_pull(pull["number"], sha=head)  # a merged, then was SIGKILLed: nothing recorded
    for _ in range(3):
        fleet.monitor("a")
    counts: dict[str, int] = {}
    for entry in fleet.journal():
        if entry.get("pr") == pull["number"] or entry.get("issue") == number:
            counts[entry["event"]] = counts.get(entry["event"], 0) + 1
    assert counts.get("merged") == 1 and counts.get("cleaned-up") == 1, counts
    assert counts.get("claimed") == 1 and counts.get("pr-opened") == 1, counts
    ids = [e["id"] for e in fleet.journal()]
    assert len(ids) == len(set(ids))


def test_a_cleanup_interrupted_before_its_last_write_is_finished_and_journaled_once(tmp_path):
    """The cleanup after a merge made apart from it (a REST forge's merge, or here a run killed right after its
    merge, before anything else: the local forge's own merge run cleans up in the merge's push): the branch
    deletion fails once (a pre-receive hook refuses it, as a kill or an outage would stop it), and the next
    run comes back from the branch, finishes, and records nothing twice."""
    fleet = Fleet(tmp_path)
    number, pull = in_review(fleet)
    fleet.monitor("b")
    agent_forge(fleet.mesh("a")).merge_pull(pull["number"], sha=fleet.head("a/"))
    once = tmp_path / "refused-once"
    fleet.hook("pre-receive", f'while read old new ref; do case "$ref" in refs/heads/a/*) '
                              f'if [ "$new" = "{"0" * 40}" ] && [ ! -e {once} ]; then touch {once}; exit 1; fi;; '
                              f"esac; done\n")
    first = fleet.monitor("a")
    assert ("merged", number) in events(first) and once.exists()
    assert fleet.branches("a/"), "the refused deletion left the branch"
    fleet.monitor("a")
    assert fleet.branches("a/") == [] and fleet.claims() == []
    fleet.monitor("a")
    counts: dict[str, int] = {}
    for entry in fleet.journal():
        if entry.get("pr") == pull["number"]:
            counts[entry["event"]] = counts.get(entry["event"], 0) + 1
    assert counts.get("merged") == 1 and counts.get("cleaned-up") == 1, counts



def test_worktrees_and_task_files_of_claims_no_longer_held_are_removed(tmp_path):
    """A claim reaped while its agent was down: the agent's next tick removes what it left locally."""
    fleet = Fleet(tmp_path)
    number, _ = in_review(fleet)  # held, in review: its files stay
    mesh = fleet.mesh("a")
    from agentmesh.git.worktree import Worktrees

    worktrees = Worktrees(mesh.cache, mesh.state.worktrees)
    left = worktrees.add("a/77-reaped-work", mesh.base_head)
    (mesh.state.tasks / "issue-77.md").write_text("task\n")
    (mesh.state.tasks / f"issue-{number}.md").write_text("task\n")
    fleet.tick("a")
    assert not left.exists() and not (mesh.state.tasks / "issue-77.md").exists()
    assert (mesh.state.tasks / f"issue-{number}.md").exists()


def test_a_pr_whose_issue_is_gone_is_withdrawn_not_merged_and_the_run_goes_on(tmp_path):
    fleet = Fleet(tmp_path)
    number, pull = in_review(fleet)
    fleet.monitor("b")
    git("update-ref", "-d", f"refs/agentmesh/items/{number}", cwd=fleet.remote)  # deleted on the forge
    report = fleet.monitor("a")
    assert report.exit_code == 0 and ("withdrawn", number) in events(report), report.events
    assert fleet.item(pull["number"])["state"] == "closed" and fleet.branches("a/") == []
