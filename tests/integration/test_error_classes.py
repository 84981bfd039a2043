"""Failures outside agentmesh are temporary (exit 75), never bugs (exit 3): a ref lock another git
process holds, a remote that went away, a read-only or full state dir. Real git throughout."""

import threading

import pytest

from agentmesh.core.errors import EXIT_BUG, TemporaryError
from agentmesh.git.branch_edit import commit_on_branch
from agentmesh.git.cache import CacheClone, mirror_ref
from agentmesh.git.run import Git, GitError
from tests.support import git, make_remote, wait_for

MAIN = "refs/heads/main"


@pytest.fixture
def clone(tmp_path):
    remote = make_remote(tmp_path / "remote.git")
    cache = CacheClone(Git(), tmp_path / "cache.git", str(remote)).ensure()
    cache.fetch_default_branch()
    return cache


def _hold_git_lock(clone: CacheClone, ref: str):
    """What a concurrent git process holds while it updates `ref`: its `<ref>.lock` file."""
    lock = clone.path / f"{ref}.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    lock.touch()
    return lock


def _advance(remote: str) -> str:
    """A new commit on the remote's main, as another agent would push it."""
    head = git("commit-tree", "main^{tree}", "-p", "main", "-m", "moved", cwd=remote)
    git("update-ref", MAIN, head, cwd=remote)
    return head


# --- 1. ref writes in the cache clone ----------------------------------------------------------


def test_a_ref_lock_held_by_another_git_is_temporary_not_a_bug(clone):
    new = clone.commit_tree(clone.empty_tree(), [], "x\n")
    _hold_git_lock(clone, mirror_ref(MAIN))
    with pytest.raises(TemporaryError, match=r"main\.lock': File exists") as raised:
        clone.update_ref(mirror_ref(MAIN), new)
    assert isinstance(raised.value, GitError) and raised.value.exit_code == 75
    _advance(clone.url)
    with pytest.raises(TemporaryError, match=r"main\.lock"):  # a fetch racing the same lock: the crash
        clone.fetch([MAIN])
    _hold_git_lock(clone, "packed-refs")
    with pytest.raises(TemporaryError, match=r"packed-refs\.lock"):
        clone.run("pack-refs", "--all")


def test_a_persistent_git_failure_is_still_a_bug(clone):
    head = clone.resolve(mirror_ref(MAIN))
    with pytest.raises(GitError, match="reference already exists") as raised:
        clone.create_ref(mirror_ref(MAIN), head)
    assert not isinstance(raised.value, TemporaryError) and raised.value.exit_code == EXIT_BUG


def test_commit_on_branch_waits_for_the_clone_lock_before_moving_the_mirror(clone):
    """The mirror update after a landed push must not race a fetch: it waits for the clone's lock."""
    remote = clone.url
    before = clone.resolve(mirror_ref(MAIN))
    done: list[str | None] = []
    holder = CacheClone(clone.git, clone.path, clone.url)  # another fetcher of this clone (its own lock handle)
    with holder.locked():
        worker = threading.Thread(target=lambda: done.append(
            commit_on_branch(clone, MAIN, lambda _head: {"f.txt": b"1\n"}, "add f\n")))
        worker.start()
        wait_for(lambda: git("rev-parse", "main", cwd=remote) != before, "the push to land")
        worker.join(timeout=2)
        assert worker.is_alive(), "the mirror ref was written without the clone's lock"
        assert clone.resolve(mirror_ref(MAIN)) == before
    worker.join(timeout=60)
    assert done == [git("rev-parse", "main", cwd=remote)]
    assert clone.resolve(mirror_ref(MAIN)) == done[0]


def test_commit_on_branch_succeeds_when_only_the_mirror_update_is_blocked(clone):
    """The push landed: a mirror ref git cannot lock right now is a stale cache, not a failure."""
    _hold_git_lock(clone, mirror_ref(MAIN))
    new = commit_on_branch(clone, MAIN, lambda _head: {"f.txt": b"1\n"}, "add f\n")
    assert new == git("rev-parse", "main", cwd=clone.url)
    (clone.path / f"{mirror_ref(MAIN)}.lock").unlink()
    clone.fetch([MAIN])
    assert clone.resolve(mirror_ref(MAIN)) == new
