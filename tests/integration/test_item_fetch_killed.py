"""A fetch killed while it unpacked (SIGKILL, a run's timeout) can leave an item's commit in the cache clone without
its tree and blobs: git writes a pack's commits first, and its refs only once every object is in. Such an item
is fetched again, never read as gone or without its comments."""

from __future__ import annotations

import subprocess

from agentmesh.forge.local.schema import item_ref
from agentmesh.git.remote import ls_refs
from tests.integration.test_local_forge import make_forge, new_remote


def test_an_item_whose_commit_came_without_its_tree_is_fetched_again(tmp_path):
    remote = new_remote(tmp_path / "remote.git")
    alice = make_forge(str(remote), tmp_path, "alice")
    bob = make_forge(str(remote), tmp_path, "bob")
    number = alice.create_issue("the issue", "its body").number
    alice.comment(number, "mind the encoding")
    bob.list_issues()  # bob knows the items as they were
    alice.comment(number, "and the trailing newline")
    sha = ls_refs(bob.store.git, str(remote), [item_ref(number)]).refs[item_ref(number)]
    commit = subprocess.run(["git", "cat-file", "commit", sha], cwd=remote, check=True, capture_output=True).stdout
    written = subprocess.run(["git", "hash-object", "-t", "commit", "-w", "--stdin"], cwd=bob.store.cache.path,
                             input=commit, check=True, capture_output=True).stdout.decode().strip()
    assert written == sha  # what the killed fetch left: the commit alone
    fresh = make_forge(str(remote), tmp_path, "bob")  # the next run
    assert [issue.number for issue in fresh.list_issues()] == [number]  # not gone
    assert [c.body for c in fresh.list_comments(number)] == ["mind the encoding", "and the trailing newline"]
