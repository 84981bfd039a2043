"""The cache clone's one long-lived `cat-file --batch-command` (git/batch.py): one process serves a run's
reads, sees what fetches change under it, is shared by threads, stops at the run's end, and fails
clearly (never hangs) when git dies or stalls."""

from __future__ import annotations

import gc
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from agentmesh.git.cache import CacheClone
from agentmesh.git.run import Git, GitError, GitTimeout
from agentmesh.ops.daemon import Cadence, Daemon
from tests.support import agent_forge, agent_mesh, demo_body, git, local_forge_remote, make_remote
from tests.support.gitcount import counting_git


def _push(work: Path, remote: Path, files: dict[str, str], message: str) -> str:
    for name, text in files.items():
        (work / name).parent.mkdir(parents=True, exist_ok=True)
        (work / name).write_text(text)
    git("add", "-A", cwd=work)
    git("commit", "-q", "-m", message, cwd=work)
    git("push", "-q", str(remote), "HEAD:refs/heads/main", cwd=work)
    return git("rev-parse", "HEAD", cwd=work)


def _setup(tmp_path: Path, git_runner: Git | None = None) -> tuple[Path, Path, CacheClone]:
    remote = make_remote(tmp_path / "remote.git", {"f.txt": "v1\n"})
    work = tmp_path / "work"
    git("clone", "-q", str(remote), str(work))
    cache = CacheClone(git_runner or Git(), tmp_path / "cache.git", str(remote)).ensure()
    cache.fetch(["refs/heads/main"])
    return remote, work, cache


def _gone(pid: int) -> bool:
    """Reaped: no process, not even a zombie, holds the pid."""
    return not Path(f"/proc/{pid}").exists()


def test_a_run_reads_through_one_cat_file(tmp_path):
    _, _, cache = _setup(tmp_path)
    head = cache.resolve("refs/mirror/heads/main")
    assert head is not None
    cache.close()  # `resolve` reads through the reader too: the count starts with none running
    with counting_git(tmp_path / "count") as count:
        for _ in range(5):
            assert cache.read_file("refs/mirror/heads/main", "f.txt") == "v1\n"
            assert cache.read_file(head, "absent.txt") is None
            assert cache.has_object(head) and not cache.has_object("0" * 40)
            assert cache.commit_message(head).startswith("tree ")
            assert [o.type if o else None for o in cache.cat_objects([head, f"{head}:f.txt", "refs/nope"])] == \
                ["commit", "blob", None]
            assert [e.name for e in cache.tree_entries(cache.tree_of(head))] == ["f.txt"]
            info = cache.object_info([f"{head}:f.txt"])[0]
            assert info is not None and info.type == "blob" and info.size == 3
        with pytest.raises(GitError, match="cat-file commit"):
            cache.commit_message("0" * 40)
        pid = cache.reader.pid
        assert pid is not None
        cache.close()
    assert cache.reader.pid is None and _gone(pid)
    # 35 reads, one `cat-file`, no rev-parse (`tree_of` and `resolve` read through it too)
    assert count.commands()["cat-file"] == 1 and not count.commands()["rev-parse"], count.commands()


def test_a_fetch_mid_run_is_seen_by_the_running_process(tmp_path):
    """git resolves every request anew: a ref a fetch moved (loose, then packed), objects that arrived loose or
    in a new pack, a missing object that arrived later, a symbolic ref retargeted."""
    remote, work, cache = _setup(tmp_path)
    main = "refs/mirror/heads/main"
    assert cache.read_file(main, "f.txt") == "v1\n"
    pid = cache.reader.pid
    second = _push(work, remote, {"f.txt": "v2\n"}, "two")
    assert cache.cat_objects([second])[0] is None  # not fetched yet
    cache.fetch(["refs/heads/main"])
    assert cache.read_file(main, "f.txt") == "v2\n" and cache.cat_objects([second])[0] is not None
    # over transfer.unpackLimit: the fetch keeps a pack, which the process has not opened
    packs = set((cache.path / "objects/pack").glob("*.pack"))
    _push(work, remote, {**{f"d/{i}.txt": f"unique {i}\n" for i in range(150)}, "f.txt": "v3\n"}, "three")
    cache.fetch(["refs/heads/main"])
    assert set((cache.path / "objects/pack").glob("*.pack")) - packs, "the fetch kept no pack"
    assert cache.read_file(main, "f.txt") == "v3\n" and cache.read_file(main, "d/7.txt") == "unique 7\n"
    cache.run("pack-refs", "--all")  # the ref is in packed-refs only now
    assert not (cache.path / main).exists()
    assert cache.read_file(main, "f.txt") == "v3\n"
    _push(work, remote, {"f.txt": "v4\n"}, "four")
    cache.fetch(["refs/heads/main"])  # a loose ref over the packed one
    assert cache.read_file(main, "f.txt") == "v4\n"
    cache.run("pack-refs", "--all")
    cache.update_ref(main, second)  # back, loose again, then packed again: packed-refs rewritten
    cache.run("pack-refs", "--all")
    assert cache.read_file(main, "f.txt") == "v2\n"
    cache.update_ref("refs/mirror/heads/side", second)
    cache.run("symbolic-ref", "refs/mirror/HEAD", "refs/mirror/heads/side")
    assert cache.read_file("refs/mirror/HEAD", "f.txt") == "v2\n"
    cache.fetch_default_branch("main")  # points refs/mirror/HEAD at main, which the fetch moves
    assert cache.read_file("refs/mirror/HEAD", "f.txt") == "v4\n"
    assert cache.reader.pid == pid  # all of it through the one process
    cache.close()


def test_a_packed_ref_rewritten_within_a_second_is_read_anew(tmp_path):
    """A long-running git keeps packed-refs in memory while its stat data look unchanged: rewritten twice in the
    same second at the same size, the second time into the inode the first freed, it reads an old value (seen
    on git 2.39 without this). Refs are read from the files here, anew each time."""
    remote, work, cache = _setup(tmp_path)
    main = "refs/mirror/heads/main"
    shas = [cache.resolve(main), _push(work, remote, {"f.txt": "v2\n"}, "two"),
            _push(work, remote, {"f.txt": "v3\n"}, "three")]
    cache.fetch(["refs/heads/main"])
    cache.close()  # `resolve` reads through the reader too: the count starts with none running
    with counting_git(tmp_path / "count") as count:
        for turn in range(40):
            for sha in (shas[2 * turn % 3], shas[(2 * turn + 1) % 3]):  # a value the last read did not see
                cache.update_ref(main, sha)  # a loose ref over the packed one
                cache.run("pack-refs", "--all")  # packed-refs rewritten, the same size; the loose file gone
            want = (2 * turn + 1) % 3
            found = cache.cat_objects([main, f"{main}:f.txt", "refs/mirror/HEAD", "HEAD"])
            assert found[0] is not None and found[0].sha == shas[want], turn
            assert found[1] is not None and found[1].data == f"v{want + 1}\n".encode(), turn
            assert found[2:] == [None, None]  # no such ref; HEAD is unborn
        cache.close()
    assert count.commands()["cat-file"] == 1, count.commands()


def test_other_names_are_read_by_a_process_of_their_own(tmp_path):
    _, _, cache = _setup(tmp_path)
    head = cache.resolve("refs/mirror/heads/main")
    cache.close()  # `resolve` reads through the reader too: the count starts with none running
    with counting_git(tmp_path / "count") as count:
        found = cache.cat_objects(["mirror/heads/main:f.txt", f"{head}:f.txt", f"{head[:12]}",
                                   "refs/mirror/heads/main@{0}"])
        assert [o.data if o else None for o in found[:2]] == [b"v1\n", b"v1\n"]
        assert found[2] is not None and found[2].sha == head and found[3] is None  # no reflog in a bare clone
        cache.close()
    assert count.commands()["cat-file"] == 2, count.commands()  # the running one, and the one-shot


def test_names_git_dies_on_are_missing_without_asking_it(tmp_path):
    _, _, cache = _setup(tmp_path)
    main = "refs/mirror/heads/main"
    assert cache.read_file(main, "f.txt") == "v1\n"
    pid = cache.reader.pid
    found = cache.cat_objects([f"{main}:./f.txt", f"{main}:f.txt", ":../f.txt", ":0:./f.txt", f"{main}@{{0}}:../f"])
    assert [o.data if o else None for o in found] == [None, b"v1\n", None, None, None]
    assert cache.read_file(main, "./f.txt") is None and cache.reader.pid == pid  # the process lives on
    cache.close()


def test_threads_share_the_process(tmp_path):
    remote, work, cache = _setup(tmp_path)
    _push(work, remote, {f"f{i}.txt": f"{i}\n" * (i * 500) for i in range(20)}, "many")
    cache.fetch(["refs/heads/main"])
    wrong: list[str] = []

    def reader() -> None:
        for _ in range(30):
            got = cache.cat_objects([f"refs/mirror/heads/main:f{i}.txt" for i in range(20)])
            if [o.data if o else None for o in got] != [f"{i}\n".encode() * (i * 500) for i in range(20)]:
                wrong.append("mismatch")

    with counting_git(tmp_path / "count") as count:
        threads = [threading.Thread(target=reader) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        cache.close()
    assert not wrong and count.commands()["cat-file"] == 1, count.commands()


def _in_time(call, seconds: float = 20.0):
    """`call()`'s result or exception, failing the test if it takes longer than `seconds` (a hang)."""
    found: dict = {}

    def run() -> None:
        try:
            found["value"] = call()
        except BaseException as exc:  # noqa: BLE001 -- handed back to the test
            found["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"still waiting after {seconds}s"
    if "error" in found:
        raise found["error"]
    return found["value"]


def test_a_killed_cat_file_is_started_again_once(tmp_path):
    _, _, cache = _setup(tmp_path)
    assert cache.read_file("refs/mirror/heads/main", "f.txt") == "v1\n"
    first = cache.reader.pid
    assert first is not None
    os.kill(first, signal.SIGKILL)
    with counting_git(tmp_path / "count") as count:
        assert _in_time(lambda: cache.read_file("refs/mirror/heads/main", "f.txt")) == "v1\n"
    assert count.commands()["cat-file"] == 1 and cache.reader.pid != first and _gone(first)
    cache.close()


def test_a_cat_file_that_cannot_answer_fails_clearly(tmp_path):
    _, _, cache = _setup(tmp_path)
    assert cache.read_file("refs/mirror/heads/main", "f.txt") == "v1\n"
    first = cache.reader.pid
    assert first is not None
    (cache.path / "objects").rename(tmp_path / "objects")  # the one started again finds no repository
    os.kill(first, signal.SIGKILL)
    with pytest.raises(GitError) as failed:
        _in_time(lambda: cache.cat_objects(["refs/mirror/heads/main:f.txt"]))
    message = str(failed.value)
    assert "cat-file --batch-command exited 128" in message and "not a git repository" in message, message
    assert not isinstance(failed.value, GitTimeout) and failed.value.exit_code == 3
    assert cache.reader.pid is None and _gone(first)


def test_a_stalled_cat_file_times_out_and_is_killed(tmp_path):
    _, _, cache = _setup(tmp_path, Git(timeout=1.0))
    assert cache.read_file("refs/mirror/heads/main", "f.txt") == "v1\n"
    pid = cache.reader.pid
    assert pid is not None
    os.kill(pid, signal.SIGSTOP)
    started = time.monotonic()
    with pytest.raises(GitTimeout) as failed:
        _in_time(lambda: cache.read_file("refs/mirror/heads/main", "f.txt"))
    assert time.monotonic() - started < 10 and failed.value.exit_code == 75
    assert cache.reader.pid is None and _gone(pid)
    assert cache.read_file("refs/mirror/heads/main", "f.txt") == "v1\n"  # the next read starts another
    cache.close()


def test_closing_leaves_no_process_nor_descriptor(tmp_path):
    _, _, cache = _setup(tmp_path)
    gc.collect()  # another test's leftovers, closed now rather than during this one
    before = set(os.listdir("/proc/self/fd"))
    pids = []
    for _ in range(3):  # runs of a daemon: each starts its process and closes it
        assert cache.read_file("refs/mirror/heads/main", "f.txt") == "v1\n"
        pids.append(cache.reader.pid)
        cache.close()
    assert len(set(pids)) == 3 and all(pid is not None and _gone(pid) for pid in pids)
    assert set(os.listdir("/proc/self/fd")) <= before  # none left open


def test_a_forgotten_reader_stops_its_process_when_collected(tmp_path):
    _, _, cache = _setup(tmp_path)
    assert cache.read_file("refs/mirror/heads/main", "f.txt") == "v1\n"
    pid = cache.reader.pid
    assert pid is not None
    del cache
    assert _gone(pid)


def _children() -> list[str]:
    """The command lines of this process's children, zombies included."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            stat = (entry / "stat").read_text()
            if int(stat.rpartition(")")[2].split()[1]) == os.getpid():
                found.append((entry / "cmdline").read_bytes().replace(b"\0", b" ").decode() or stat)
        except (OSError, ValueError, IndexError):
            continue
    return found


def test_a_daemon_run_stops_its_cat_file(tmp_path):
    remote = local_forge_remote(tmp_path / "remote.git")
    agent_forge(agent_mesh(remote, tmp_path / "hosts", "human")).create_issue(
        "One", demo_body("one.md", "1\n"), ["task"])
    reports = []
    daemon = Daemon(lambda: agent_mesh(remote, tmp_path / "hosts", "alice"), Cadence(1, 1, 0),
                    on_report=lambda name, report: reports.append(report))
    before = _children()  # another test's reader, kept by its traceback, is not this one's
    with counting_git(tmp_path / "count") as count:
        daemon.claim()
        assert _children() == before  # checked before the mesh could be collected: closed, not just dropped
        daemon.monitor()
        assert _children() == before
    assert [e.event for e in reports[0].events][-1] == "pr-opened", reports[0].events
    assert 1 <= count.commands()["cat-file"] <= 2, count.commands()  # at most one a run
