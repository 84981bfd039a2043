"""git's `merge-tree` reads a tree it cannot find as an empty one: it prints an error and exits 0 with a merged
tree that drops every file of that side (git 2.39). A cache clone can hold a commit without its tree: git's
`unpack-objects` writes a fetch's commits before their trees, so another run of the host reading during a
fetch (the daemon's two loops, two cron lines) or after a fetch killed mid-unpack finds one. Session 16 found a
fleet's main emptied this way. Fetches now keep their pack (seen all at once, when its index is in place); a
merge or the policy read that meets a tree it cannot read fetches its commits whole again (`--refetch`), and
stops with a temporary error, pushing nothing, when that fails; a tree edit stops at once."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from agentmesh.agent.halt import switch_halt
from agentmesh.core.errors import EXIT_TEMPORARY
from agentmesh.forge.local.schema import META, ROSTER_REF, item_ref
from agentmesh.git import cache as cache_module
from agentmesh.git.cache import PACKS_KEPT, CacheClone, IncompleteClone, TreeEntry
from agentmesh.git.remote import gc_needed
from agentmesh.git.run import Git, GitError
from tests.integration.test_local_forge import forge_env, make_forge  # noqa: F401 -- the fixture
from tests.support import JOURNALS, agent_mesh, git, journal_entries, local_forge_remote, remote_refs


def files_of(repo: Path, rev: str) -> list[str]:
    return git("ls-tree", "-r", "--name-only", rev, cwd=repo).split()


def commit_alone(clone: Path, remote: Path, sha: str) -> None:
    """Write the commit `sha` into `clone` without its tree: what a fetch killed, or read, mid-unpack leaves."""
    commit = subprocess.run(["git", "cat-file", "commit", sha], cwd=remote, check=True, capture_output=True).stdout
    written = subprocess.run(["git", "hash-object", "-t", "commit", "-w", "--stdin"], cwd=clone, input=commit,
                             check=True, capture_output=True).stdout.decode().strip()
    assert written == sha


def packs_of_earlier_fetches(clone: Path, count: int) -> None:
    """`count` packs of one object each in `clone`, as that many fetches leave them."""
    for i in range(count):
        blob = subprocess.run(["git", "hash-object", "-w", "--stdin"], cwd=clone, input=f"{i}\n".encode(),
                              check=True, capture_output=True).stdout.strip()
        subprocess.run(["git", "pack-objects", "--quiet", "objects/pack/pack"], cwd=clone, input=blob + b"\n",
                       check=True, capture_output=True)


def test_git_merge_tree_merges_a_missing_tree_as_an_empty_one(tmp_path):
    """The trap itself: should git ever fail here instead, the guard below costs nothing."""
    repo = tmp_path / "repo"
    git("init", "--quiet", "-b", "main", str(repo), cwd=tmp_path)
    for name in ("a", "b"):
        (repo / name).write_text(name)
        git("add", name, cwd=repo)
        git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "--quiet", "-m", name, cwd=repo)
    git("branch", "side", "HEAD~1", cwd=repo)
    tree = git("rev-parse", "main^{tree}", cwd=repo)
    (repo / ".git" / "objects" / tree[:2] / tree[2:]).unlink()
    result = subprocess.run(["git", "merge-tree", "--write-tree", "--no-messages", "main", "side"], cwd=repo,
                            capture_output=True, text=True)
    assert result.returncode == 0 and "error: Could not read" in result.stderr
    assert files_of(repo, result.stdout.split()[0]) == []  # `a` and `b` both dropped


def test_a_merge_onto_a_base_commit_without_its_tree_fetches_it_whole_again(forge_env, tmp_path):  # noqa: F811
    """What an older agentmesh's fetch, killed mid-unpack, left: a plain fetch sends nothing for a commit the
    clone has, so the merge fetches the two commits again with `--refetch` and merges whole."""
    forge = forge_env.forge
    head = forge_env.push_branch("feature/x", {"x.txt": "x\n"})
    pull = forge.create_pull(head="feature/x", base="main", title="Add x")
    base = forge_env.push_branch("main", {"other.txt": "o\n"})  # main moved since the merger's clone fetched it
    commit_alone(forge.cache.path, forge_env.remote, base)
    forge.merge_pull(pull.number, sha=head)
    assert files_of(forge_env.remote, "main") == ["README.md", "other.txt", "src/app.txt", "x.txt"]
    assert git("rev-parse", "main^", cwd=forge_env.remote) == base


def test_a_merge_that_cannot_read_a_tree_and_cannot_fetch_it_stops(tmp_path):
    clone = CacheClone(Git(timeout=30), tmp_path / "cache.git", (tmp_path / "gone.git").as_uri()).ensure()
    root = clone.edit_tree_files(None, {"a.md": b"a", "docs/b.md": b"b"})
    base = clone.commit_tree(root, [], "base")
    ours = clone.commit_tree(clone.edit_tree_files(root, {"a.md": b"ours"}), [base], "ours")
    theirs = clone.commit_tree(clone.edit_tree_files(root, {"c.md": b"c"}), [base], "theirs")
    tree = git("rev-parse", f"{ours}^{{tree}}", cwd=clone.path)
    (clone.path / "objects" / tree[:2] / tree[2:]).unlink()
    with pytest.raises(IncompleteClone, match="lacks objects") as raised:  # the remote cannot send it again
        clone.merge_trees(ours, theirs)
    assert raised.value.exit_code == EXIT_TEMPORARY


def test_a_tree_that_cannot_be_read_is_not_edited_as_an_empty_one(tmp_path):
    clone = CacheClone(Git(timeout=30), tmp_path / "cache.git", (tmp_path / "none.git").as_uri()).ensure()
    inner = clone.edit_tree_files(None, {"docs/a.md": b"a", "docs/deep/b.md": b"b", "top.md": b"t"})
    assert files_of(clone.path, inner) == ["docs/a.md", "docs/deep/b.md", "top.md"]
    assert files_of(clone.path, clone.edit_tree_files(inner, {"docs/new/c.md": b"c"})) == [
        "docs/a.md", "docs/deep/b.md", "docs/new/c.md", "top.md"]  # a folder the tree lacks is made, as before
    docs = git("rev-parse", f"{inner}:docs", cwd=clone.path)
    (clone.path / "objects" / docs[:2] / docs[2:]).unlink()
    with pytest.raises(IncompleteClone, match="docs cannot be read"):
        clone.edit_tree_files(inner, {"docs/deep/b.md": b"changed"})
    with pytest.raises(IncompleteClone, match="its root cannot be read"):
        clone.edit_tree_files("1" * 40, {"top.md": b"changed"})


def test_a_fetch_keeps_its_pack_and_the_clone_rolls_its_small_packs_up(forge_env, tmp_path):  # noqa: F811
    forge = forge_env.forge
    clone = forge.cache.path
    packs_of_earlier_fetches(clone, PACKS_KEPT + 1)
    issue = make_forge(forge_env.remote.as_uri(), tmp_path, "bob").create_issue("new on the remote")
    assert [i.number for i in forge.list_issues()] == [issue.number]  # fetched: its item commit
    sha = remote_refs(forge_env.remote, "refs/agentmesh/items/")[f"refs/agentmesh/items/{issue.number}"]
    assert not (clone / "objects" / sha[:2] / sha[2:]).exists()  # in a pack, not loose
    packs = list((clone / "objects" / "pack").glob("*.pack"))
    assert len(packs) <= 2, packs  # repacked after the fetch, which left the run no gc behind


def test_a_policy_file_the_clone_lacks_is_not_read_as_no_policy(tmp_path):
    """The policy snapshot reads `.agentmesh/mesh.yaml` by path: a blob missing from the clone would have read as
    a repository without a policy, whose defaults then ruled the run."""
    clone = CacheClone(Git(timeout=30), tmp_path / "cache.git", (tmp_path / "none.git").as_uri()).ensure()
    tree = clone.edit_tree_files(None, {".agentmesh/mesh.yaml": b"review: {required: 2}\n", "README.md": b"r"})
    commit = clone.commit_tree(tree, [], "policy")
    root, found = clone.read_paths(commit, [".agentmesh/mesh.yaml", ".agentmesh/roster.yaml", "HALT"])
    assert root.sha == tree and found[".agentmesh/mesh.yaml"].data == b"review: {required: 2}\n"
    assert found[".agentmesh/roster.yaml"] is None and found["HALT"] is None  # absent paths stay absent
    blob = git("rev-parse", f"{commit}:.agentmesh/mesh.yaml", cwd=clone.path)
    (clone.path / "objects" / blob[:2] / blob[2:]).unlink()
    with pytest.raises(IncompleteClone, match=r"\.agentmesh/mesh\.yaml cannot be read"):
        clone.read_paths(commit, [".agentmesh/mesh.yaml", "HALT"])
    folder = git("rev-parse", f"{commit}:.agentmesh", cwd=clone.path)
    (clone.path / "objects" / folder[:2] / folder[2:]).unlink()
    with pytest.raises(IncompleteClone, match=r"\.agentmesh cannot be read"):
        clone.read_paths(commit, [".agentmesh/mesh.yaml"])


def object_alone(clone: Path, remote: Path, sha: str) -> None:
    """Write the object `sha` (a commit, a tree) of `remote` into `clone`, and nothing it points to."""
    kind = git("cat-file", "-t", sha, cwd=remote)
    data = subprocess.run(["git", "cat-file", kind, sha], cwd=remote, check=True, capture_output=True).stdout
    written = subprocess.run(["git", "hash-object", "-t", kind, "-w", "--stdin"], cwd=clone, input=data,
                             check=True, capture_output=True).stdout.decode().strip()
    assert written == sha


def test_a_local_forge_document_the_clone_lacks_is_not_read_as_an_empty_one(forge_env, tmp_path):  # noqa: F811
    """The roster, labels and statuses documents: read as `{}`, the roster gave every user the default `write`,
    and the next `set_permission` pushed a roster of that one user (every other entry dropped)."""
    forge_env.forge.set_permission("alice", "admin")
    forge_env.forge.set_permission("mallory", "none")
    roster = remote_refs(forge_env.remote, ROSTER_REF)[ROSTER_REF]
    carol = make_forge(forge_env.remote.as_uri(), tmp_path, "carol")
    for sha in (roster, git("rev-parse", f"{roster}^{{tree}}", cwd=forge_env.remote)):
        object_alone(carol.cache.path, forge_env.remote, sha)  # the commit and its tree, not the document
    assert carol.permission("mallory") == "none"  # its commit fetched whole again (--refetch), not read as {}
    carol.set_permission("carol", "write")
    fresh = make_forge(forge_env.remote.as_uri(), tmp_path / "fresh", "dave")
    assert [fresh.permission(user) for user in ("alice", "mallory", "carol")] == ["admin", "none", "write"]


def test_a_journal_file_the_clone_lacks_is_not_rewritten_with_the_new_entries_alone(tmp_path):
    remote = local_forge_remote(tmp_path / "remote.git")
    mesh = agent_mesh(remote, tmp_path / "hosts", "a")
    journal = mesh.journal()
    journal.record("claimed", issue=1, summary="first")
    journal.flush()
    ref = f"{JOURNALS}a"
    [name] = git("ls-tree", "-r", "--name-only", ref, cwd=remote).splitlines()
    blob = git("rev-parse", f"{ref}:{name}", cwd=remote)
    (mesh.cache.path / "objects" / blob[:2] / blob[2:]).unlink()  # written loose by this clone, then lost
    journal = agent_mesh(remote, tmp_path / "hosts", "a").journal()
    journal.record("claimed", issue=2, summary="second")
    with pytest.raises(IncompleteClone, match="cannot be read"):
        journal.flush()
    assert [e.issue for e in journal_entries(remote)] == [1]  # the month's file as it was


def test_a_repack_that_outlasts_its_timeout_does_not_fail_the_fetch(forge_env, tmp_path, monkeypatch):  # noqa: F811
    """A big clone's repack outlasted git's timeout: the GitTimeout failed the fetch (as a remote that did not
    answer), and, the packs still past the limit, every later fetch the same way."""
    forge = forge_env.forge
    clone = forge.cache.path
    packs_of_earlier_fetches(clone, PACKS_KEPT + 1)
    monkeypatch.setattr(cache_module, "REPACK_TIMEOUT", 0.001)  # the repack is stopped at once
    issue = make_forge(forge_env.remote.as_uri(), tmp_path, "bob").create_issue("new on the remote")
    assert [i.number for i in forge.list_issues()] == [issue.number]  # fetched all the same


def test_gc_needed_counts_loose_objects_as_git_does(tmp_path):
    """git gc --auto repacks past DIV_ROUND_UP(gc.auto, 256) loose objects in objects/17, not at it: a gc
    started at exactly that many did nothing, after every fetch."""
    repo = tmp_path / "repo.git"
    (repo / "objects" / "17").mkdir(parents=True)
    for i in range(27):  # DIV_ROUND_UP(6700, 256)
        (repo / "objects" / "17" / f"{i:038x}").touch()
    assert not gc_needed(repo)
    (repo / "objects" / "17" / f"{27:038x}").touch()
    assert gc_needed(repo)


def loosen(clone: Path) -> None:
    """The clone's packs written out as loose objects, as git's `unpack-objects` leaves a fetch (older versions)."""
    for pack in (clone / "objects" / "pack").glob("*.pack"):
        data = pack.read_bytes()
        for part in pack.parent.glob(pack.stem + ".*"):
            part.unlink()
        subprocess.run(["git", "unpack-objects", "-q"], cwd=clone, input=data, check=True, capture_output=True)


def test_a_halt_file_the_clone_lacks_on_a_base_branch_not_the_default_is_not_read_as_none(tmp_path):
    """With the policy's `default_branch` another branch than the remote's HEAD, the base branch's files are read
    by path (no snapshot): a HALT file whose blob the clone lacks read as no halt, and the mesh worked on."""
    remote = local_forge_remote(tmp_path / "remote.git", "default_branch: dev\n")
    work = tmp_path / "work"
    git("clone", "--quiet", str(remote), str(work), cwd=tmp_path)
    git("checkout", "--quiet", "-b", "dev", cwd=work)
    (work / ".agentmesh" / "HALT").write_text("stop: a bad release\n")
    git("add", ".agentmesh/HALT", cwd=work)
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "--quiet", "-m", "halt", cwd=work)
    git("push", "--quiet", "origin", "dev", cwd=work)
    mesh = agent_mesh(remote, tmp_path / "hosts", "a")
    assert mesh.base_branch == "dev" and "stop: a bad release" in (switch_halt(mesh) or "")
    mesh.cache.close()
    loosen(mesh.cache.path)
    blob = git("rev-parse", "dev:.agentmesh/HALT", cwd=remote)
    (mesh.cache.path / "objects" / blob[:2] / blob[2:]).unlink()
    mesh = agent_mesh(remote, tmp_path / "hosts", "a")
    assert "stop: a bad release" in (switch_halt(mesh) or "")  # its commit fetched whole again, not read as none


def test_an_item_whose_comments_the_clone_lacks_is_not_edited_without_them(forge_env, tmp_path):  # noqa: F811
    """An item's comments folder read as none: its next commit (a label, a close) dropped every comment."""
    issue = forge_env.forge.create_issue("with a comment")
    forge_env.forge.comment(issue.number, "keep me")
    ref = item_ref(issue.number)
    sha = remote_refs(forge_env.remote, ref)[ref]
    carol = make_forge(forge_env.remote.as_uri(), tmp_path, "carol")
    for spec in (sha, f"{sha}^{{tree}}", f"{sha}:{META}"):  # not the comments folder
        object_alone(carol.cache.path, forge_env.remote, git("rev-parse", spec, cwd=forge_env.remote))
    with pytest.raises(IncompleteClone, match="comments cannot be read"):
        carol.add_labels(issue.number, ["later"])
    assert remote_refs(forge_env.remote, ref)[ref] == sha  # nothing pushed
    shutil.rmtree(carol.cache.path)
    carol = make_forge(forge_env.remote.as_uri(), tmp_path, "carol")
    carol.add_labels(issue.number, ["later"])
    assert [c.body for c in carol.list_comments(issue.number)] == ["keep me"]


def test_a_merge_of_unrelated_histories_is_no_incomplete_clone(tmp_path):
    """git dies with `fatal: refusing to merge unrelated histories`: a git error as before, not "the clone lacks
    objects" (exit 75, retried for ever, the clone removed for nothing)."""
    clone = CacheClone(Git(timeout=30), tmp_path / "cache.git", (tmp_path / "none.git").as_uri()).ensure()
    one = clone.commit_tree(clone.edit_tree_files(None, {"a": b"a"}), [], "one")
    other = clone.commit_tree(clone.edit_tree_files(None, {"b": b"b"}), [], "other")
    with pytest.raises(GitError, match="unrelated histories") as raised:
        clone.merge_trees(one, other)
    assert not isinstance(raised.value, IncompleteClone)


def test_a_file_or_a_submodule_where_a_folder_is_wanted_is_still_replaced_not_an_incomplete_clone(tmp_path):
    """Both read back as no tree at that path, and neither is an object the clone lacks."""
    clone = CacheClone(Git(timeout=30), tmp_path / "cache.git", (tmp_path / "none.git").as_uri()).ensure()
    tree = clone.edit_tree_files(None, {"docs": b"a file", "top.md": b"t"})
    assert files_of(clone.path, clone.edit_tree_files(tree, {"docs/a.md": b"a"})) == ["docs/a.md", "top.md"]
    gitlink = TreeEntry("160000", "vendor", "1" * 40)  # a submodule: its commit is in another repository
    tree = clone.make_tree([*clone.tree_entries(tree), gitlink])
    assert files_of(clone.path, clone.edit_tree_files(tree, {"vendor/x.md": b"x"})) == [
        "docs", "top.md", "vendor/x.md"]
    commit = clone.commit_tree(tree, [], "with a submodule")
    assert clone.read_paths(commit, ["vendor/x.md"])[1] == {"vendor/x.md": None}


def test_a_review_the_clone_lacks_is_not_skipped(forge_env, tmp_path):  # noqa: F811
    """A review whose blob the clone lacks was left out: a reviewer's later 'request changes' read as missing left
    their approval standing."""
    head = forge_env.push_branch("feature/r", {"r.txt": "r\n"})
    pull = forge_env.forge.create_pull(head="feature/r", base="main", title="R")
    forge_env.forge.submit_review(pull.number, event="approve", body="ok", commit_id=head)
    forge_env.forge.submit_review(pull.number, event="request_changes", body="no, wait", commit_id=head)
    ref = item_ref(pull.number)
    sha = remote_refs(forge_env.remote, ref)[ref]
    reviews = git("ls-tree", "--name-only", f"{sha}:reviews", cwd=forge_env.remote).split()
    carol = make_forge(forge_env.remote.as_uri(), tmp_path, "carol")
    for spec in (sha, f"{sha}^{{tree}}", f"{sha}:{META}", f"{sha}:reviews", f"{sha}:reviews/{reviews[0]}"):
        object_alone(carol.cache.path, forge_env.remote, git("rev-parse", spec, cwd=forge_env.remote))
    for read in (lambda: carol.get_pull(pull.number), lambda: carol.list_pulls(state="open")):
        with pytest.raises(IncompleteClone, match="lacks objects"):
            read()
