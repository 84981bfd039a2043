"""Worktrees from one cache clone, including 8 processes adding at once."""

import multiprocessing
from pathlib import Path

import pytest

from agentmesh.core.errors import UserError
from agentmesh.git.cache import CacheClone
from agentmesh.git.run import Git
from agentmesh.git.worktree import Worktrees
from tests.support import make_remote

CTX = multiprocessing.get_context("fork")


def _cache(tmp_path: Path, remote: Path) -> CacheClone:
    cache = CacheClone(Git(author_name="a", author_email="a@x.invalid"), tmp_path / "cache.git", str(remote)).ensure()
    cache.fetch_default_branch()
    return cache


def test_add_is_isolated_and_remove_cleans_up(tmp_path):
    remote = make_remote(tmp_path / "remote.git", {"README.md": "hi\n"})
    cache = _cache(tmp_path, remote)
    trees = Worktrees(cache, tmp_path / "worktrees")
    path = trees.add("a/1-fix", cache.default_head())
    assert (path / "README.md").read_text() == "hi\n"
    (path / "README.md").write_text("changed\n")
    again = trees.add("a/1-fix", cache.default_head())  # a rerun starts clean
    assert again == path and (path / "README.md").read_text() == "hi\n"
    assert trees.list() == [path]
    trees.remove("a/1-fix")
    assert not path.exists() and trees.list() == []
    trees.remove("a/1-fix")  # idempotent
    with pytest.raises(UserError):
        trees.path_for("../../etc")


def _add_many(cache_path: str, url: str, root: str, worker: int, errors) -> None:
    cache = CacheClone(Git(author_name="a", author_email="a@x.invalid"), Path(cache_path), url)
    trees = Worktrees(cache, Path(root))
    for n in range(20):
        try:
            branch = f"a/{worker * 100 + n + 1}-x"
            trees.add(branch, cache.default_head())
            cache.fetch_default_branch()
            trees.remove(branch)
        except Exception as exc:  # noqa: BLE001 - collected, so the test names every failure
            errors.put(repr(exc))


def test_concurrent_adds_and_fetches_on_one_clone_never_fail(tmp_path):
    remote = make_remote(tmp_path / "remote.git")
    cache = _cache(tmp_path, remote)
    errors = CTX.Queue()
    procs = [CTX.Process(target=_add_many, args=(str(cache.path), str(remote), str(tmp_path / "wt"), i, errors))
             for i in range(8)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(300)
    found = []
    while not errors.empty():
        found.append(errors.get())
    assert found == [] and all(p.exitcode == 0 for p in procs)
