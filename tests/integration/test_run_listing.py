"""What a run reads from its one listing (agent/base.guarded_run) instead of listing again, and what another writer
changes between that listing and the read: still seen wherever a decision or a write depends on it."""

from __future__ import annotations

import pytest

from agentmesh.agent.claim_task import claim_task
from agentmesh.agent.report import Report
from agentmesh.forge.local import LocalForge
from agentmesh.git.remote import ls_refs
from agentmesh.refs.claims import RefMemo
from tests.integration.test_whole_life import Fleet, events, reopen_issue
from tests.support import agent_forge, git, human_commit, make_remote, make_store, path_only_env
from tests.support.gitcount import counting_git


def hooked(mesh, before_carry) -> LocalForge:
    """agent_forge(mesh), which calls `before_carry` right before it builds the claim's carried stage change:
    after the run's listing, before the claim's push."""

    class Hooked(LocalForge):
        def carried(self, change):
            before_carry()
            return super().carried(change)

    return Hooked(mesh.cache, user=mesh.host.agent)


def commented_issue(tmp_path) -> tuple[Fleet, int, object]:
    """A ring of three, an issue a human commented on before any run: (the fleet, its number, a's mesh)."""
    fleet = Fleet(tmp_path)
    for name in "abc":
        fleet.monitor(name)
    number = fleet.issue()
    fleet.human.comment(number, "before the run: mind the trailing newline")
    return fleet, number, fleet.mesh("a")


def task_file(fleet: Fleet, agent: str, number: int) -> str:
    return (fleet.mesh(agent).state.tasks / f"issue-{number}.md").read_text()


def test_the_task_file_has_the_comments_posted_before_the_claim_and_after_the_runs_listing(tmp_path):
    """The comments are read from the run's listing as the claim's push left the issue's item; a comment that moved
    the item after the listing makes the claim's stage change stale, so the claim lands alone and the comments are
    listed afresh: the executor sees both."""
    fleet, number, mesh = commented_issue(tmp_path)
    forge = hooked(mesh, lambda: fleet.human.comment(number, "after the listing: and the encoding"))
    report = claim_task(mesh, forge, env=path_only_env())
    assert ("pr-opened", number) in events(report), report.events
    text = task_file(fleet, "a", number)
    assert "mind the trailing newline" in text and "and the encoding" in text


def test_the_task_file_read_from_the_runs_listing_has_the_issues_comments(tmp_path):
    fleet, number, mesh = commented_issue(tmp_path)
    with counting_git(tmp_path / "count") as count:
        report = claim_task(mesh, agent_forge(mesh), env=path_only_env())
    assert ("pr-opened", number) in events(report), report.events
    assert "mind the trailing newline" in task_file(fleet, "a", number)
    # the run's, the roster ref (who may write: the human's comment), the watch's, the fence's; the new issue's fetch
    assert count.commands()["upload-pack"] <= 5, count.argvs()


def test_a_pr_merged_after_the_runs_listing_closing_the_issue_is_seen_after_the_claim(tmp_path):
    """A human's PR closing the issue, merged (and the issue reopened, as a forge closing issues late leaves it)
    between the run's listing and the claim: the merge moved the issue's item, so the claim's stage change is stale
    and the merged PRs are listed afresh; the issue is closed, not redone."""
    fleet = Fleet(tmp_path)
    for name in "abc":
        fleet.monitor(name)
    number = fleet.issue()
    sha = human_commit(fleet.remote, {"fix.txt": "fixed\n"}, branch="human/fix", base="main")

    def merge_meanwhile() -> None:
        pull = fleet.human.create_pull(head="human/fix", base="main", title="Fix", body=f"Closes #{number}\n")
        fleet.human.merge_pull(pull.number, sha=sha)
        reopen_issue(fleet, number)

    mesh = fleet.mesh("a")
    report = claim_task(mesh, hooked(mesh, merge_meanwhile), env=path_only_env())
    assert ("claimed", number) in events(report) and ("executed", number) not in events(report), report.events
    assert fleet.item(number)["state"] == "closed" and fleet.claims() == []


def test_the_claims_mirror_read_for_the_run_is_fetched_when_the_remote_moved_since(tmp_path):
    """RefMemo.of_mirror: the claims' and the presence refs' mirror in one for-each-ref; a claim another agent pushed
    after it is fetched and seen, and a memo equal to the listing reads nothing more."""
    remote = make_remote(tmp_path / "remote.git")
    ada, bob = (make_store(str(remote), tmp_path / "hosts", name, clock=None) for name in ("ada", "bob"))
    assert ada.acquire(1).won and [v.issue for v in ada.list()] == [1]  # in the mirror now
    memo = RefMemo.of_mirror(ada.cache, [ada.prefix, "refs/heads/agentmesh/agents/"])
    assert {ref.rsplit("/", 1)[1] for ref in memo.messages[ada.prefix]} == {"1"}
    assert bob.acquire(2).won  # after the mirror was read
    listing = ls_refs(ada.git, ada.url, ["refs/heads/"])
    assert [(v.issue, v.claim.agent if v.claim else None) for v in ada.list(listing=listing, memo=memo)] == \
        [(1, "ada"), (2, "bob")]
    memo = RefMemo.of_mirror(ada.cache, [ada.prefix])
    with counting_git(tmp_path / "count") as count:
        assert [v.issue for v in ada.list(listing=listing, memo=memo)] == [1, 2]
    assert "for-each-ref" not in count.commands() and "fetch" not in count.commands(), count.argvs()


def test_a_branch_is_fetched_only_when_its_mirror_is_not_at_the_listed_head(tmp_path):
    remote = make_remote(tmp_path / "remote.git")
    cache = make_store(str(remote), tmp_path / "hosts", "ada").cache
    head = git("rev-parse", "refs/heads/main", cwd=remote)
    assert cache.fetched_at("refs/heads/main", head) == head  # not mirrored yet: fetched
    with counting_git(tmp_path / "count") as count:
        assert cache.fetched_at("refs/heads/main", head) == head
    assert "fetch" not in count.commands(), count.argvs()
    moved = human_commit(remote, {"other.txt": "x\n"})
    assert cache.fetched_at("refs/heads/main", moved) == moved  # someone else moved it: fetched
    assert cache.resolve("refs/mirror/heads/main") == moved
    listing = ls_refs(cache.git, cache.url, ["HEAD", "refs/heads/"])
    assert cache.fetch_default_branch(listing=listing) == moved  # MIRROR_HEAD is set by a fetch
    with counting_git(tmp_path / "count-default") as count:
        assert cache.fetch_default_branch(listing=listing) == moved
        assert cache.fetch_default_branch(listing=ls_refs(cache.git, cache.url, ["HEAD"])) == moved  # HEAD alone
    assert "fetch" not in count.commands(), count.argvs()  # where the mirror is, and MIRROR_HEAD names it
    again = human_commit(remote, {"other.txt": "y\n"})
    assert cache.fetch_default_branch(listing=ls_refs(cache.git, cache.url, ["HEAD", "refs/heads/"])) == again
    assert cache.default_head() == again and cache.tree_of(again)  # fetched: the commit is here


def own_pull(tmp_path, **issue) -> tuple[Fleet, int, dict]:
    """A lone agent (a ring of one, no approval needed) whose PR for a new issue is open: (the fleet, the
    issue's number, the PR's item)."""
    fleet = Fleet(tmp_path, review={"ring": ["a"], "required_approvals": 0})
    fleet.monitor("a")
    number = fleet.issue(**issue)
    assert ("pr-opened", number) in events(fleet.tick("a"))
    [pull] = fleet.pulls_for(number)
    return fleet, number, pull


def monitor_with(fleet: Fleet, meanwhile) -> Report:
    """a's monitor-prs run, with `meanwhile` done after the run's listing, before the merge (in observe_own,
    when it reads the PR's CI status)."""
    from agentmesh.agent.monitor import monitor_prs

    class Hooked(LocalForge):
        def ci_status(self, sha):
            meanwhile()
            return super().ci_status(sha)

    mesh = fleet.mesh("a")
    return monitor_prs(mesh, Hooked(mesh.cache, user="a"), env=path_only_env())


@pytest.mark.parametrize("meanwhile", ["head-pushed", "claim-reaped"])
def test_what_moved_after_the_runs_listing_fences_the_merge(tmp_path, meanwhile):
    """monitor-prs decides on its own PR from the run's listing (the issue, the PR's reviews); the merge lists what it
    pins again: a push to the PR's branch, or the claim reaped, after that listing stops it."""
    fleet, number, pull = own_pull(tmp_path)

    def move() -> None:
        if meanwhile == "head-pushed":
            human_commit(fleet.remote, {"late.txt": "late\n"}, branch=pull["head"])
        else:
            git("update-ref", "-d", f"refs/heads/claim/{number}", cwd=fleet.remote)

    report = monitor_with(fleet, move)
    assert ("merged", number) not in events(report), report.events
    assert fleet.item(pull["number"])["state"] == "open"
    assert "late.txt" not in git("ls-tree", "--name-only", "main", cwd=fleet.remote).split()


def test_a_base_moved_after_the_runs_listing_loses_the_merges_first_push_and_the_merge_lands_on_it(tmp_path):
    """The merge's first round pins the base as the run's listing showed it; a human's push to main since makes that
    push lose, and the next round lists afresh and merges on top of it (nothing of the human's is lost)."""
    fleet, number, _ = own_pull(tmp_path, path="work.txt")
    with counting_git(tmp_path / "count") as count:
        report = monitor_with(fleet, lambda: human_commit(fleet.remote, {"late.txt": "late\n"}))
    assert ("merged", number) in events(report), report.events
    assert {"late.txt", "work.txt"} <= set(git("ls-tree", "--name-only", "main", cwd=fleet.remote).split())
    assert fleet.item(number)["state"] == "closed" and fleet.claims() == []
    merges = [argv for argv in count.argvs() if any(a.startswith("--force-with-lease=refs/heads/main:") for a in argv)]
    assert len(merges) == 2, count.argvs()  # the lost one, on the run's listing, and the one that landed


@pytest.mark.parametrize("meanwhile", ["issue-closed", "changes-requested", "commented"])
def test_what_the_merge_was_decided_on_must_hold_when_its_first_push_loses(tmp_path, meanwhile):
    """monitor-prs decides from the run's listing; a change after it loses the merge's first push (the PR's or the
    issue's item moved). The next round must not merge over what the decision missed: an issue closed meanwhile
    (a maintainer's "won't do", or their own PR: a second merged PR) or a review (a change request) puts the merge
    off to the next run, which decides again; a comment changes nothing of it, and the merge lands."""
    fleet, number, pull = own_pull(tmp_path)

    def move() -> None:
        if meanwhile == "issue-closed":
            fleet.human.close_issue(number)
        elif meanwhile == "changes-requested":
            fleet.human.submit_review(pull["number"], event="request_changes", body="not like this",
                                      commit_id=pull["head_sha"])
        else:
            fleet.human.comment(number, "a word after the listing")

    report = monitor_with(fleet, move)
    merged = ("merged", number) in events(report)
    assert merged is (meanwhile == "commented"), report.events
    assert fleet.item(pull["number"])["state"] == ("merged" if merged else "open")
    if not merged:
        assert ("merge-pending", number) in events(report), report.events


def test_a_runs_set_up_brings_in_what_others_changed_in_one_fetch(tmp_path):
    """agent/base.guarded_run (Plumbing.mirror_run): new issues, another agent's claim and presence, and a moved
    default branch come in one fetch of the listed shas; the reads after it fetch nothing; unchanged, nothing."""
    fleet = Fleet(tmp_path)
    fleet.monitor("a")  # its first run: the policy's prefixes are kept from now on
    fleet.monitor("b")
    first, second = fleet.issue(), fleet.issue("Another", "g.txt")
    assert fleet.mesh("b").claims().acquire(first).won
    human_commit(fleet.remote, {"notes.txt": "moved\n"})
    with counting_git(tmp_path / "count") as count:
        fleet.monitor("a")
    fetches = [argv for argv in count.argvs() if "fetch" in argv]
    assert len(fetches) == 1, fetches
    assert any(f"refs/mirror/heads/claim/{first}" in spec for spec in fetches[0])
    assert any(spec.endswith(f"refs/mirror/agentmesh/items/{second}") for spec in fetches[0])
    assert any(spec.endswith(":refs/mirror/heads/main") for spec in fetches[0])
    with counting_git(tmp_path / "idle") as count:
        fleet.monitor("a")
    assert "fetch" not in count.commands(), count.argvs()
