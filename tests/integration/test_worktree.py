"""Worktrees from one cache clone, including 8 processes adding at once."""

import multiprocessing
import shutil
from pathlib import Path

import pytest

from agentmesh.core.errors import UserError
from agentmesh.git.cache import CacheClone
from agentmesh.git.run import Git
from agentmesh.git.worktree import Changes, Worktrees, commit_work, work_changes
from tests.support import make_remote
from tests.support.gitcount import counting_git

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


def test_a_worktree_is_detached_and_costs_no_prune_unless_one_is_stale(tmp_path):
    remote = make_remote(tmp_path / "remote.git", {"README.md": "hi\n"})
    cache = _cache(tmp_path, remote)
    trees = Worktrees(cache, tmp_path / "worktrees")
    cache.run("branch", "a/1-old", cache.default_head())  # the local branch an earlier version made
    with counting_git(tmp_path / "count") as count:
        path = trees.add("a/2-new", cache.default_head())
        assert count.commands()["worktree"] == 1 and "branch" not in count.commands(), count.argvs()  # no prune
        count.reset()
        trees.remove("a/2-new")
        assert count.argvs() == [[f"--git-dir={cache.path}", "worktree", "remove", "--force", "--force", str(path)]]
    assert cache.run("rev-parse", "--verify", "--quiet", "refs/heads/a/2-new", check=False).returncode != 0
    stale = trees.add("a/1-old", cache.default_head())
    shutil.rmtree(stale)  # a folder deleted by hand: its entry is pruned by the next add
    with counting_git(tmp_path / "count") as count:
        trees.add("a/3-next", cache.default_head())
        assert "prune" in [a[2] for a in count.argvs() if a[1] == "worktree"], count.argvs()
    trees.remove("a/1-old")  # and the earlier version's branch goes with it
    assert cache.run("rev-parse", "--verify", "--quiet", "refs/heads/a/1-old", check=False).returncode != 0
    assert trees.list() == [trees.path_for("a/3-next")]


def test_one_diff_gives_the_patch_and_every_path(tmp_path):
    names = ["a b.txt", "tab\tname", 'quote"d.md', "new\nline", "ünï/cödé.txt", "-dash"]
    remote = make_remote(tmp_path / "remote.git", dict.fromkeys(names[:3], "1\n"))
    cache = _cache(tmp_path, remote)
    trees = Worktrees(cache, tmp_path / "worktrees")
    base = cache.default_head()
    path = trees.add("a/1-fix", base)
    (path / names[0]).write_text("2\n")
    (path / names[1]).unlink()
    for name in names[3:]:
        (path / name).parent.mkdir(exist_ok=True)
        (path / name).write_text("new\n")
    commit = commit_work(cache.git, path, base, "work\n")
    assert commit is not None
    changes = work_changes(cache.git, path, base, commit)
    listed = cache.run("diff", "--name-only", "-z", "--no-renames", base, commit).stdout.split("\0")
    assert changes.paths == [p for p in listed if p] and set(changes.paths) == set(names) - {names[2]}
    plain = cache.run("diff", "--text", "--no-color", "--no-renames", base, commit).stdout
    assert changes.diff == plain and "+2" in plain
    assert work_changes(cache.git, path, base, base) == Changes("", [])
