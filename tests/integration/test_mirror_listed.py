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


def test_the_mirror_follows_the_listing_in_one_fetch(setup, tmp_path):
    remote, cache = setup
    moved = human_commit(remote, {"c1": "moved\n"}, branch="claim/1")
    human_commit(remote, {"c4": "x\n"}, branch="claim/4", base="main")
    main = human_commit(remote, {"README.md": "changed\n"})
    listing = ls_refs(cache.git, cache.url, ["HEAD", "refs/heads/"])
    with counting_git(tmp_path / "count") as count:
        cache.mirror_listed(listing, [CLAIMS], ["refs/heads/main"])
    [fetch] = [argv for argv in count.argvs() if "fetch" in argv]
    assert {spec for spec in fetch if spec.startswith("+")} == {  # by name, only what changed
        "+refs/heads/claim/1:refs/mirror/heads/claim/1", "+refs/heads/claim/4:refs/mirror/heads/claim/4",
        "+refs/heads/main:refs/mirror/heads/main"}
    assert mirrored(cache) == listed(cache) and mirrored(cache)["refs/mirror/heads/claim/1"] == moved
    assert cache.resolve("refs/mirror/heads/main") == main and cache.tree_of(main)  # its objects came along
    with counting_git(tmp_path / "again") as count:
        cache.mirror_listed(listing, [CLAIMS], ["refs/heads/main"])
    assert count.argvs() == []  # equal already: read from the files, no git process at all


def test_a_ref_the_remote_deleted_prunes_its_prefix(setup, tmp_path):
    remote, cache = setup
    git("update-ref", "-d", "refs/heads/claim/2", cwd=remote)
    with counting_git(tmp_path / "count") as count:
        cache.mirror_listed(ls_refs(cache.git, cache.url, [CLAIMS]), [CLAIMS])
    [fetch] = [argv for argv in count.argvs() if "fetch" in argv]
    assert "--prune" in fetch and "+refs/heads/claim/*:refs/mirror/heads/claim/*" in fetch, fetch
    assert mirrored(cache) == listed(cache) and "refs/mirror/heads/claim/2" not in mirrored(cache)


def test_what_another_run_of_this_host_mirrored_after_the_listing_is_never_rewound(setup):
    """claim-task and monitor-prs hold host locks of their own: one may push (and mirror its push) between the
    other's listing and its set-up. The set-up fetches by name: the mirror gets the remote's newer word."""
    remote, cache = setup
    listing = ls_refs(cache.git, cache.url, [CLAIMS])
    ahead = human_commit(remote, {"c3": "pushed by the other run\n"}, branch="claim/3")
    cache.fetch(["refs/heads/claim/3"])  # what that run's push left in the mirror
    human_commit(remote, {"c1": "moved\n"}, branch="claim/1")
    cache.mirror_listed(ls_refs(cache.git, cache.url, [CLAIMS]).moved("refs/heads/claim/3", listing.refs[
        "refs/heads/claim/3"]), [CLAIMS])
    assert mirrored(cache)["refs/mirror/heads/claim/3"] == ahead
    assert mirrored(cache) == listed(cache)


def test_a_ref_deleted_since_the_listing_leaves_the_mirror_to_its_readers(setup):
    """Listed, then deleted before the fetch by name: git refuses the whole fetch. Not the remote's failure: the
    run goes on, and each reader fetches what it misses (compared with its listing) as it did before."""
    remote, cache = setup
    before = mirrored(cache)
    human_commit(remote, {"c1": "moved\n"}, branch="claim/1")
    human_commit(remote, {"c3": "moved\n"}, branch="claim/3")
    listing = ls_refs(cache.git, cache.url, [CLAIMS])
    git("update-ref", "-d", "refs/heads/claim/1", cwd=remote)
    cache.mirror_listed(listing, [CLAIMS])
    assert mirrored(cache) == before


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


def test_a_ref_lock_a_killed_fetch_left_is_removed_once_stale(setup):
    """A fetch SIGKILLed while it moved the mirror leaves `<ref>.lock`: git refuses every later fetch of that ref,
    and every run's set-up fetches it. Held by nobody (the clone's lock is ours) and older than any live write, it
    is removed and the fetch runs again; a young one is some git's at work: temporary."""
    import os
    import time

    from agentmesh.core.errors import TemporaryError

    remote, cache = setup
    moved = human_commit(remote, {"c1": "moved\n"}, branch="claim/1")
    listing = ls_refs(cache.git, cache.url, [CLAIMS])
    lock = cache.path / "refs/mirror/heads/claim/1.lock"
    lock.write_text("")
    with pytest.raises(TemporaryError):
        cache.mirror_listed(listing, [CLAIMS])
    old = time.time() - 3600
    os.utime(lock, (old, old))
    cache.mirror_listed(listing, [CLAIMS])
    assert mirrored(cache)["refs/mirror/heads/claim/1"] == moved and not lock.exists()


def test_a_new_hosts_thousands_of_items_come_in_one_pattern_fetch(setup, tmp_path):
    """A new host (or one long away) on a forge with thousands of items: named one by one, their refspecs outgrow
    the kernel's argument limit (E2BIG: git cannot start, exit 3 for every run of that host; ~30000 items at the
    usual 8 MiB stack limit, here lowered to reach it with fewer), and git matches each against every ref."""
    import resource
    import subprocess

    remote, cache = setup
    main = git("rev-parse", "refs/heads/main", cwd=remote).strip()
    items = "refs/agentmesh/items/"
    subprocess.run(["git", "update-ref", "--stdin"], cwd=remote, check=True, text=True,
                   input="".join(f"create {items}{n} {main}\n" for n in range(1, 5001)))
    listing = ls_refs(cache.git, cache.url, ["HEAD", "refs/heads/", items])
    soft, hard = resource.getrlimit(resource.RLIMIT_STACK)
    resource.setrlimit(resource.RLIMIT_STACK, (1 << 20, hard))  # argv + environment: a quarter of it, 256 KiB
    try:
        with counting_git(tmp_path / "count") as count:
            cache.mirror_listed(listing, [CLAIMS, items], ["refs/heads/main"])
    finally:
        resource.setrlimit(resource.RLIMIT_STACK, (soft, hard))
    [fetch] = [argv for argv in count.argvs() if "fetch" in argv]
    assert f"+{items}*:refs/mirror/agentmesh/items/*" in fetch and len(fetch) < 20, len(fetch)
    assert len(mirrored(cache, "refs/mirror/agentmesh/items/")) == 5000


def test_a_packed_refs_lock_a_killed_pack_left_is_removed_once_stale(setup):
    """`pack-refs` SIGKILLed leaves packed-refs.lock: every later pack (and every prune) of the clone is refused."""
    import os
    import subprocess
    import time

    remote, cache = setup
    main = git("rev-parse", "refs/heads/main", cwd=remote).strip()
    items = "refs/agentmesh/items/"
    subprocess.run(["git", "update-ref", "--stdin"], cwd=remote, check=True, text=True,
                   input="".join(f"create {items}{n} {main}\n" for n in range(1, 101)))
    lock = cache.path / "packed-refs.lock"
    lock.write_text("")
    old = time.time() - 3600
    os.utime(lock, (old, old))
    cache.mirror_listed(ls_refs(cache.git, cache.url, [items]), [items])
    assert len(mirrored(cache, "refs/mirror/agentmesh/items/")) == 100 and not lock.exists()
    assert not list((cache.path / "refs/mirror/agentmesh").rglob("*"))  # packed
