"""How many git processes agentmesh starts: a claim-task tick on the local forge (counted with git's trace2,
tests/support/gitcount.py), objects written without git, and the remote's gc run only when it needs one."""

from __future__ import annotations

import os
import time

import pytest

from agentmesh.git.cache import CacheClone, TreeEntry
from agentmesh.git.objects import object_id, tree_data
from agentmesh.git.remote import gc_if_needed, gc_needed
from agentmesh.git.run import Git
from tests.support import agent_forge, agent_mesh, git, load_benchmark, local_forge_remote, make_remote, wait_for
from tests.support.gitcount import counting_git

bench = load_benchmark("bench_git_processes")


def test_a_tick_starts_few_git_processes(tmp_path):
    counts = bench.measure(tmp_path, issues=10)
    idle, working, review = counts["idle"], counts["working"], counts["idle, claim in review"]
    assert idle["events"] == ["idle"] and working["events"] == ["claimed", "executed", "pushed", "pr-opened"]
    # 2, 30 and 3 now; 32 working before the run's listing served the reads after the claim (the merged PRs and the
    # new issue's comments, each listed apart); 35 before one `cat-file` served a run's every read (4 of them); 4, 38
    # and 6 before session 13 (the work commit's `commit-tree`; each run's set-up listings apart: HEAD and the
    # switches, this agent's presence ref, the items, the branches); before issue 16, 30 idle
    # (presence pushed every run, items fetched and read 3 times, claims fetched) and 282 working (12 of them a `gc
    # --auto` per push); 120 and 21 before session 10 (8 pushes: a `claimed` stage, the `working` one, the PR label
    # and the `review` stage apart; the claims fetched again after our own claim push); 84 before session 11 (a `for-
    # each-ref` of the remote's every ref inside each push, an `update-ref` of the mirror after each, the worktree's
    # prune and branch, two diffs, the labels registry fetched apart, the items listed twice at the start and twice at
    # the watch's last gate, a new issue read twice); 55 before session 12 (the work branch with the claim, then the
    # PR, then the journal: three pushes; the PR step's four listings and the fence's; the journals listed apart; the
    # watch's halt ref apart from its items). The margins keep this from being flaky (a guess older than a few seconds
    # is listed again), not from failing on those numbers.
    assert idle["processes"] <= 4, idle
    assert working["processes"] <= 32, working  # issue 16's target: 40
    commands = working["commands"]
    # the claim with the `working` stage; the work branch, the claim's renewal, the PR with its label, the
    # issue's `review` stage and the journal: each its push, receive-pack, pack-objects, unpack-objects, rev-list
    assert commands["push"] <= 2 and commands["receive-pack"] == commands["push"], commands
    # listings (3: the run's, the watch's last gate, the PR's fence; 5 before, 7 before session 13), and the new
    # issue's fetch
    assert commands["upload-pack"] <= 4, commands
    assert commands["fetch"] <= 1, commands  # the new issue, and the labels registry with it
    assert "gc" not in commands and "hash-object" not in commands and "mktree" not in commands, commands
    assert "commit-tree" not in commands, commands  # the work commit too is signed and written without git
    # the mirror moved by the pushes themselves, the worktree detached (its `update-ref HEAD`), no prune or
    # branch to delete, the change's patch and paths in one diff, the remote's refs never all listed
    assert commands["update-ref"] <= 1 and commands["worktree"] <= 2 and "branch" not in commands, commands
    assert commands["diff"] <= 1 and "for-each-ref" not in commands, commands  # the mirror read from its files
    # the task's memory: the journals' directories through the run's cat-file (an ls-tree of the default branch's
    # agents until session 15, 3 before)
    assert "ls-tree" not in commands, commands
    # every object read of the run through one long-lived `cat-file --batch-command` (was one per read)
    assert commands["cat-file"] <= 1 and review["commands"].get("cat-file", 0) <= 1, (commands, review)
    # our own pushes moved the mirror: the claim is not fetched again in the next tick (nor renewed: not due)
    assert review["events"] == ["in-review", "idle"] and "fetch" not in review["commands"], review
    assert review["processes"] <= 5, review


def test_the_counter_counts_children(tmp_path):
    remote = make_remote(tmp_path / "remote.git")
    with counting_git(tmp_path / "count") as count:
        git("clone", "--quiet", str(remote), str(tmp_path / "clone"))
    assert count.calls() == 1 and count.processes() >= 2  # the clone, and the upload-pack it spoke to
    assert count.commands()["clone"] == 1 and count.commands()["upload-pack"] == 1


def test_objects_written_without_git_are_the_ones_git_writes(tmp_path):
    cache = CacheClone(Git(), tmp_path / "cache.git", "unused").ensure()
    blob = cache.write_blob(b"hello\n")
    assert blob == git("hash-object", "--stdin", input="hello\n") == object_id("blob", b"hello\n")
    sub = cache.make_tree([TreeEntry("100644", "z.txt", blob)])
    entries = [TreeEntry("100644", "b-file", blob), TreeEntry("40000", "b", sub), TreeEntry("100755", "a", blob),
               TreeEntry("100644", "ünï", blob)]
    tree = cache.make_tree(entries)
    listing = "".join(f"{e.mode.zfill(6)} {e.type} {e.sha}\t{e.name}\n" for e in entries)
    assert tree == git("mktree", cwd=cache.path, input=listing)
    git("fsck", "--strict", "--no-dangling", cwd=cache.path)
    assert cache.make_tree([]) == "4b825dc642cb6eb9a060e54bf8d69288fbee4904"
    with pytest.raises(ValueError):
        tree_data([("100644", "a", blob), ("100644", "a", blob)])
    with pytest.raises(ValueError):
        tree_data([("100644", "a/b", blob)])


def test_the_remote_is_collected_once_when_it_needs_it(tmp_path):
    remote = make_remote(tmp_path / "remote.git")
    cache = CacheClone(Git(), remote, str(remote))
    assert not gc_if_needed(Git(), str(remote), loose_limit=1000)  # a small remote: no process at all
    blobs = [TreeEntry("100644", f"{n}.txt", cache.write_blob(b"loose %d\n" % n)) for n in range(3000)]
    commit = cache.commit_tree(cache.make_tree(blobs), [], "many files\n")
    git("update-ref", "refs/heads/many", commit, cwd=remote)  # reachable: gc packs them
    assert gc_needed(remote, loose_limit=1000)
    assert gc_if_needed(Git(), str(remote), loose_limit=1000)
    wait_for(lambda: not gc_needed(remote, loose_limit=1000), "the detached gc")
    assert not gc_if_needed(Git(), str(remote), loose_limit=1000)


def test_the_watch_reads_the_issue_and_the_halt_issues_from_one_listing(tmp_path):
    from agentmesh.agent.halt import halt_issue
    from agentmesh.agent.watch import Unwanted, Watch
    from agentmesh.core.vocab import Label, StopReason
    from tests.support import agent_forge, agent_mesh, local_forge_remote

    remote = local_forge_remote(tmp_path / "remote.git")
    mesh = agent_mesh(remote, tmp_path / "hosts", "ada")
    forge = agent_forge(mesh)
    issue = forge.create_issue("Work", "", ["task"]).number
    watch = Watch(mesh, forge, issue, agent="ada", eligible=("task",), every_seconds=60)
    assert watch.unwanted() is None  # the first reads the default branch's old HALT file too, kept per sha
    with counting_git(tmp_path / "count") as count:
        assert watch.unwanted() is None
        # the halt ref with the items, once for the issue and the halt issues (two listings before session
        # 12; one each before session 11)
        assert count.commands()["upload-pack"] == 1, count.argvs()
    halting = forge.create_issue("Stop everything", "", [Label.HALT]).number
    assert watch.unwanted() == Unwanted(StopReason.MESH_HALTED, halt_issue(forge, [forge.get_issue(halting)]))
    assert watch.unwanted(halt_issues=False) is None  # between the checks that list the halt issues
    forge.close_issue(halting)
    forge.close_issue(issue)
    closed = watch.unwanted()
    assert closed is not None and closed.stop == StopReason.CANCELLED and "no longer wanted" in closed.reason
    gone = Watch(mesh, forge, 999, agent="ada", eligible=("task",), every_seconds=60)
    assert gone.unwanted() == Unwanted(StopReason.CANCELLED, "issue #999 is gone")
    assert gone.unwanted(halt_issues=False) == Unwanted(StopReason.CANCELLED, "issue #999 is gone")


def test_an_idle_monitor_prs_lists_the_branches_once(tmp_path):
    """One listing of `refs/heads/` serves the claims, the presence refs, the branches and the reaping
    (four listings before session 12). c is no reviewer of a's PR in review: it only looks."""
    from tests.integration.test_whole_life import Fleet, in_review

    fleet = Fleet(tmp_path)
    in_review(fleet)
    fleet.monitor("c")
    with counting_git(tmp_path / "count") as count:
        report = fleet.monitor("c")
    commands = count.commands()
    assert report.events == [], report.events
    # 5 now: the run's one listing (HEAD, the branches, the items) serves the switches, this agent's presence,
    # the halt issues and the open PRs, the PR's head and the branches; 9 with 5 listings before session 13 (each
    # of those apart but the halt issues and the PRs), 18 with 9 listings before session 12
    assert commands["upload-pack"] == 1, commands
    # the claims' and the presence refs' mirror from their files and the run's cat-file (1 for-each-ref before
    # session 15, 3 before session 14)
    assert "for-each-ref" not in commands, commands
    assert count.processes() <= 3, dict(commands)


def test_an_object_already_stored_is_freshened_not_written_again(tmp_path):
    """write_loose touches an object it finds (a concurrent `gc --prune` must keep it) and leaves the file, and
    makes a fan-out folder only for its first object: no temporary file is left either way."""
    cache = CacheClone(Git(), tmp_path / "cache.git", "unused").ensure()
    blob = cache.write_blob(b"hello\n")
    stored = cache.path / "objects" / blob[:2] / blob[2:]
    hour_ago = time.time() - 3600
    os.utime(stored, (hour_ago, hour_ago))
    inode = stored.stat().st_ino
    assert cache.write_blob(b"hello\n") == blob
    assert stored.stat().st_ino == inode and stored.stat().st_mtime > hour_ago + 1800
    assert stored.stat().st_mode & 0o777 == 0o444
    # another object in the same fan-out folder, which exists now
    sibling = next(data for n in range(100000) if object_id("blob", data := f"{n}\n".encode())[:2] == blob[:2])
    assert cache.write_blob(sibling) == git("hash-object", "--stdin", input=sibling.decode())
    assert not list((cache.path / "objects").rglob("tmp_obj_*"))
    git("fsck", "--strict", "--no-dangling", cwd=cache.path)


def test_a_host_checks_the_commits_it_signed_itself_without_ssh_keygen(tmp_path):
    """With a roster, an agent's monitor-prs run after its working tick checks its own claim, work commit and
    journal: from its record of what it signed (refs/identity.Identity._own), not two ssh-keygens a commit."""
    from agentmesh.host.roster import ROSTER_PATH
    from tests.integration.test_whole_life import Fleet, events
    from tests.support import human_commit, roster_yaml

    fleet = Fleet(tmp_path)
    human_commit(fleet.remote, {ROSTER_PATH: roster_yaml([fleet.mesh(name) for name in "abc"])}, message="roster")
    for name in "abca":  # a checks b's and c's presence once (remembered), then sees only its own commits
        fleet.monitor(name)
    number = fleet.issue()
    assert ("pr-opened", number) in events(fleet.tick("a"))
    with counting_git(tmp_path / "count") as count:
        fleet.monitor("a")
    verifying = [argv for argv in count.argvs() if "--no-walk=unsorted" in argv]
    # none now; 2 `git log`s with 4 ssh-keygens before (the claim, the PR's head)
    assert not verifying and "ssh-keygen" not in count.spawned(), (verifying, count.spawned())


@pytest.mark.parametrize("prefix", ["refs/heads/agentmesh/agents/", "refs/agentmesh/agents/"])
def test_a_runs_set_up_is_one_listing_that_shows_its_own_presence_push(tmp_path, prefix):
    """guarded_run lists HEAD, the branches and the items once, after the host lock; the presence refresh reads
    this agent's ref from it and the listing shows the commit it pushed (the run's presence, claims and branches
    come from it). A presence prefix outside the branches is not in it: that ref is listed apart, never read as
    missing from a listing that does not hold it."""
    import yaml

    from agentmesh.agent.base import guarded_run
    from tests.support import agent_forge, agent_mesh, local_forge_remote, remote_refs

    remote = local_forge_remote(tmp_path / "remote.git", yaml.safe_dump({"presence": {"ref_prefix": prefix}}))
    ref = prefix + "ada"
    for run in range(2):  # the first pushes a presence commit; the second finds it fresh and pushes nothing
        mesh = agent_mesh(remote, tmp_path / "hosts", "ada")
        forge = agent_forge(mesh)
        with (counting_git(tmp_path / f"count-{run}") as count,
              guarded_run(mesh, forge, "monitor-prs", dry_run=False, pulls=True) as (held, halted, listed, heads)):
            assert held and halted is None and listed is not None and heads is not None
        [sha] = remote_refs(remote, ref).values()
        listings = [argv for argv in count.argvs() if argv[0] == "upload-pack"]  # not a fetch's child
        pushes = [argv for argv in count.argvs() if "push" in argv]
        if prefix.startswith("refs/heads/"):
            assert heads.get(ref) == sha and len(listings) == 1, count.argvs()
        else:
            assert ref not in heads and len(listings) == 2, count.argvs()
        assert len(pushes) == (1 if run == 0 else 0), count.argvs()


def test_a_merging_monitor_prs_reads_its_pr_from_the_runs_listing_and_fetches_nothing(tmp_path):
    """observe_own reads the issue and the PR's reviews from the run's listing, the base branch's head is the one our
    own claim-task fetched (or our merge pushed: the mirror moved with it), and the claims' and the presence refs'
    mirror is read from its files; the next claim-task run finds the merge it pushed in the mirror too."""
    from tests.integration.test_whole_life import Fleet, events

    fleet = Fleet(tmp_path, review={"ring": ["a"], "required_approvals": 0})
    fleet.monitor("a")
    number = fleet.issue()
    assert ("pr-opened", number) in events(fleet.tick("a"))
    with counting_git(tmp_path / "count-merge") as count:
        report = fleet.monitor("a")
    assert ("merged", number) in events(report), report.events
    commands = count.commands()
    # 2 now: the run's (the merge pins what it showed) and the head's CI status; 5 listings and a fetch of the base
    # branch before (the issue's item, the PR's and the merge's own apart)
    assert commands["upload-pack"] == 2 and "fetch" not in commands, count.argvs()
    assert "for-each-ref" not in commands, count.argvs()  # 1 before session 15; 3 before: claims, presence, dates
    with counting_git(tmp_path / "count-next") as count:
        fleet.tick("a")
    assert "fetch" not in count.commands(), count.argvs()  # the merge our push made is the policy's head: no fetch


def test_comments_cost_a_git_log_only_when_there_are_some_and_once_an_item_commit(tmp_path):
    remote = local_forge_remote(tmp_path / "remote.git")
    forge = agent_forge(agent_mesh(remote, tmp_path / "hosts", "human"))
    plain = forge.create_issue("No talk", "", ["task"]).number
    talked = forge.create_issue("Talk", "", ["task"]).number
    forge.comment(talked, "first")
    forge.comment(talked, "second")
    forge.get_issue(talked), forge.get_issue(plain)  # the items fetched, out of the count
    with counting_git(tmp_path / "count") as count:
        assert forge.list_comments(plain) == []
        assert count.commands()["log"] == 0, count.argvs()  # nothing to attribute: no walk of the item's history
        for _ in range(3):
            assert [c.body for c in forge.list_comments(talked)] == ["first", "second"]
        assert count.commands()["log"] == 1, count.argvs()  # that item commit's writers, walked once
