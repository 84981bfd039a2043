"""A run's set-up brings the cache clone's mirror to its listing in at most one fetch (CacheClone.mirror_listed), and
reads refs from the files without a git process (git/batch.read_refs). Real git, real remotes; processes counted
from git's own trace."""

from __future__ import annotations

import pytest

from agentmesh.git.batch import read_refs
from agentmesh.git.remote import ls_refs
from tests.support import git, human_commit, make_remote, make_store
from tests.support.gitcount import counting_git

CLAIMS = "refs/heads/claim/"


def mirrored(cache, prefix: str = "refs/mirror/heads/claim/") -> dict[str, str]:
    """The mirror as git itself reads it."""
    out = git("for-each-ref", "--format=%(refname) %(objectname)", prefix, cwd=cache.path)
    return dict(line.split(" ") for line in out.splitlines())


def listed(cache, prefix: str = CLAIMS) -> dict[str, str]:
    """The remote's refs under `prefix`, named as their mirror refs."""
    refs = ls_refs(cache.git, cache.url, [prefix]).refs
    return {"refs/mirror/" + ref[len("refs/"):]: sha for ref, sha in refs.items()}


@pytest.fixture
def setup(tmp_path):
    remote = make_remote(tmp_path / "remote.git")
    cache = make_store(str(remote), tmp_path / "hosts", "ada").cache
    for n in (1, 2, 3):
        human_commit(remote, {f"c{n}": "x\n"}, branch=f"claim/{n}", base="main")
    cache.fetch([CLAIMS + "*", "refs/heads/main"], prune=True)
    return remote, cache


def test_the_mirror_follows_the_listing_in_one_fetch_and_one_update_ref(setup, tmp_path):
    remote, cache = setup
    moved = human_commit(remote, {"c1": "moved\n"}, branch="claim/1")
    new = human_commit(remote, {"c4": "x\n"}, branch="claim/4", base="main")
    git("update-ref", "-d", "refs/heads/claim/2", cwd=remote)
    main = human_commit(remote, {"README.md": "changed\n"})
    listing = ls_refs(cache.git, cache.url, ["HEAD", "refs/heads/"])
    with counting_git(tmp_path / "count") as count:
        cache.mirror_listed(listing, [CLAIMS], ["refs/heads/main"])
    assert count.commands()["fetch"] == 1 and count.commands()["update-ref"] == 1, count.argvs()
    assert mirrored(cache) == listed(cache)
    assert mirrored(cache)["refs/mirror/heads/claim/1"] == moved and "refs/mirror/heads/claim/4" in mirrored(cache)
    assert "refs/mirror/heads/claim/2" not in mirrored(cache) and new  # the remote's deletion is mirrored
    assert cache.resolve("refs/mirror/heads/main") == main and cache.tree_of(main)  # its objects came along
    with counting_git(tmp_path / "again") as count:
        cache.mirror_listed(listing, [CLAIMS], ["refs/heads/main"])
    assert count.argvs() == []  # equal already: read from the files, no git process at all


def test_objects_the_clone_holds_move_the_mirror_without_a_fetch(setup, tmp_path):
    remote, cache = setup
    moved = human_commit(remote, {"c3": "moved\n"}, branch="claim/3")
    cache.fetch(["refs/heads/claim/3"])  # the objects are here (as after this host's own push)...
    cache.update_refs({"refs/mirror/heads/claim/3": git("rev-parse", "refs/heads/main", cwd=remote)})  # ...not the ref
    listing = ls_refs(cache.git, cache.url, [CLAIMS])
    with counting_git(tmp_path / "count") as count:
        cache.mirror_listed(listing, [CLAIMS])
    assert "fetch" not in count.commands() and count.commands()["update-ref"] == 1, count.argvs()
    assert mirrored(cache)["refs/mirror/heads/claim/3"] == moved


def test_a_listed_sha_the_remote_no_longer_has_leaves_its_ref_to_its_reader(setup):
    """Listed, then moved on and collected before the fetch: upload-pack answers "not our ref". Nothing is lost:
    the refs the clone could bring in moved, that one stays as it was and its reader fetches it by name."""
    remote, cache = setup
    before = mirrored(cache)
    gone = human_commit(remote, {"c1": "soon gone\n"}, branch="claim/1")
    listing = ls_refs(cache.git, cache.url, [CLAIMS])
    git("update-ref", "refs/heads/claim/1", before["refs/mirror/heads/claim/1"], cwd=remote)
    git("reflog", "expire", "--expire=now", "--all", cwd=remote)
    git("gc", "--quiet", "--prune=now", cwd=remote)
    assert gone not in git("cat-file", "--batch-all-objects", "--batch-check=%(objectname)", cwd=remote)
    git("update-ref", "-d", "refs/heads/claim/2", cwd=remote)
    cache.mirror_listed(ls_refs(cache.git, cache.url, [CLAIMS]).moved("refs/heads/claim/1", gone), [CLAIMS])
    after = mirrored(cache)
    assert after["refs/mirror/heads/claim/1"] == before["refs/mirror/heads/claim/1"]
    assert "refs/mirror/heads/claim/2" not in after and listing


def test_the_remote_down_is_temporary_and_changes_nothing(setup, tmp_path):
    from agentmesh.core.errors import TemporaryError

    remote, cache = setup
    before = mirrored(cache)
    human_commit(remote, {"c1": "moved\n"}, branch="claim/1")
    listing = ls_refs(cache.git, cache.url, [CLAIMS])
    remote.rename(tmp_path / "away.git")
    with pytest.raises(TemporaryError):
        cache.mirror_listed(listing, [CLAIMS])
    assert mirrored(cache) == before


def test_read_refs_reads_loose_and_packed_refs_as_git_does(setup):
    _, cache = setup
    git("pack-refs", "--all", cwd=cache.path)
    main = cache.resolve("refs/mirror/heads/main")
    cache.update_refs({"refs/mirror/heads/claim/1": main, "refs/mirror/heads/claim/2": None,
                       "refs/mirror/heads/claim/sub/9": main})  # loose over packed; a deletion; a subfolder
    (cache.path / "refs/mirror/heads/claim/7.lock").write_text(main + "\n")  # a ref being written: not a ref
    assert read_refs(cache.path, "refs/mirror/heads/claim/") == mirrored(cache)
    assert read_refs(cache.path, "refs/mirror/heads/nothing/") == {}
    for bad in ("refs/mirror/heads/claim", "refs/../", "refs/a.lock/"):
        with pytest.raises(ValueError):
            read_refs(cache.path, bad)
