"""Journals on a real remote: concurrent writers, crashes mid-push, rotation, redaction, the memory
branch and the journals an earlier version left on the default branch."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import yaml

from agentmesh.core.memory import journal_month, parse_journal
from tests.support import agent_mesh, git, human_commit, local_forge_remote

MEMORY = "agentmesh/memory"

ROOT = Path(__file__).resolve().parents[2]

WRITER = """
import sys, time
from pathlib import Path
from agentmesh.core.errors import TemporaryError
from tests.support import agent_mesh

remote, root, agent, go, count = sys.argv[1:6]
journal = agent_mesh(Path(remote), Path(root), agent).journal()
while not Path(go).exists():
    time.sleep(0.01)
for i in range(int(count)):
    journal.record("test", issue=i + 1, summary=f"{agent} entry {i + 1}")
    try:
        journal.flush()
    except TemporaryError:
        pass  # stays queued: the next flush takes it along
for _ in range(100):  # the agent's next runs
    try:
        journal.flush()
        break
    except TemporaryError:
        time.sleep(0.2)
"""


def all_entries(remote: Path, branch: str = MEMORY) -> list:
    if not git("branch", "--list", branch, cwd=remote):
        return []
    names = git("ls-tree", "-r", "--name-only", branch, "--", "ai-memory/agents/", cwd=remote).splitlines()
    return [e for n in names for e in parse_journal(git("cat-file", "blob", f"{branch}:{n}", cwd=remote))]


def test_eight_concurrent_writers_lose_and_duplicate_nothing(tmp_path):
    # eight, not sixteen: on a 2-core CI worker sixteen took 150 s, all of it the same retries
    remote = local_forge_remote(tmp_path / "remote.git")
    go = tmp_path / "go"
    agents = [f"w{i:02d}" for i in range(8)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(remote), str(tmp_path / "hosts"), a, str(go), "10"],
                              env=env, cwd=ROOT, stderr=subprocess.PIPE, text=True) for a in agents]
    time.sleep(1.0)  # let every writer start and clone before the race begins
    go.touch()
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
    entries = all_entries(remote)
    assert len(entries) == 80
    assert len({e.id for e in entries}) == 80
    assert sorted((e.agent, e.issue) for e in entries) == sorted((a, i) for a in agents for i in range(1, 11))
    for agent in agents:
        assert not list((tmp_path / "hosts" / agent).glob("**/outbox/*.json"))
    attributes = git("cat-file", "blob", f"{MEMORY}:ai-memory/.gitattributes", cwd=remote)
    assert attributes.splitlines() == ["agents/*/journal/*.jsonl merge=union"]


def run_killed_in_push(tmp_path, remote: Path, hook_name: str) -> None:
    """Record one entry, then SIGKILL the flushing process while the remote runs `hook_name`."""
    flag = tmp_path / "in-hook"  # holds the hook's pid once the push reached it
    hook = remote / "hooks" / hook_name
    hook.write_text(f"#!/bin/sh\ncat >/dev/null\n"
                    f"echo $$ >'{flag}.tmp' && mv '{flag}.tmp' '{flag}'\nexec sleep 30\n")
    hook.chmod(0o755)
    script = ("import sys; from pathlib import Path; from tests.support import agent_mesh\n"
              "j = agent_mesh(Path(sys.argv[1]), Path(sys.argv[2]), 'a').journal()\n"
              "j.record('claimed', issue=7, summary='the entry that must survive')\nj.flush()\n")
    proc = subprocess.Popen([sys.executable, "-c", script, str(remote), str(tmp_path / "hosts")],
                            env={**os.environ, "PYTHONPATH": str(ROOT)}, cwd=ROOT, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while not flag.exists():
            assert proc.poll() is None and time.monotonic() < deadline, "the push never reached the hook"
            time.sleep(0.02)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        hook.unlink()
    # git runs in a session of its own, so the hook outlives the writer: end it (it is `sleep` by now)
    os.kill(int(flag.read_text()), signal.SIGKILL)


def test_a_writer_killed_before_its_push_lands_pushes_the_entry_next_run(tmp_path):
    remote = local_forge_remote(tmp_path / "remote.git")
    run_killed_in_push(tmp_path, remote, "pre-receive")
    assert all_entries(remote) == []
    journal = agent_mesh(remote, tmp_path / "hosts", "a").journal()
    assert [e.summary for _, e in journal.pending()] == ["the entry that must survive"]
    assert journal.flush() == 1
    assert [(e.event, e.issue) for e in all_entries(remote)] == [("claimed", 7)]


def test_a_writer_killed_after_its_push_landed_does_not_write_twice(tmp_path):
    remote = local_forge_remote(tmp_path / "remote.git")
    run_killed_in_push(tmp_path, remote, "post-receive")
    assert [(e.event, e.issue) for e in all_entries(remote)] == [("claimed", 7)]
    journal = agent_mesh(remote, tmp_path / "hosts", "a").journal()
    assert len(journal.pending()) == 1  # killed before it could clear its queue
    journal.flush()
    assert [(e.event, e.issue) for e in all_entries(remote)] == [("claimed", 7)]
    assert journal.pending() == []


def test_a_journal_over_its_size_limit_rotates(tmp_path):
    remote = local_forge_remote(tmp_path / "remote.git",
                                yaml.safe_dump({"memory": {"max_journal_bytes": 4096, "max_entry_bytes": 1024}}))
    journal = agent_mesh(remote, tmp_path / "hosts", "a").journal()
    now = datetime(2026, 11, 22, 12, tzinfo=UTC).timestamp()
    for i in range(40):
        journal.record("test", issue=i, summary="x" * 200, now=now + i)
    journal.flush()
    names = git("ls-tree", "--name-only", MEMORY, "--", "ai-memory/agents/a/journal/", cwd=remote).splitlines()
    names.sort(key=lambda n: journal_month(n.rsplit("/", 1)[1]))
    assert names[:3] == [f"ai-memory/agents/a/journal/2026-11{part}.jsonl" for part in ("", ".1", ".2")]
    sizes = [len(git("cat-file", "blob", f"{MEMORY}:{n}", cwd=remote).encode()) for n in names]
    assert all(size <= 4096 for size in sizes), sizes
    in_order = [e.issue for n in names for e in parse_journal(git("cat-file", "blob", f"{MEMORY}:{n}", cwd=remote))]
    assert in_order == list(range(40))  # appended in order across the parts
    journal.record("test", issue=99, summary="next month", now=datetime(2026, 12, 1, tzinfo=UTC).timestamp())
    journal.flush()
    assert "ai-memory/agents/a/journal/2026-12.jsonl" in git("ls-tree", "-r", "--name-only", MEMORY, cwd=remote)


def test_secrets_and_control_characters_never_reach_the_journal(tmp_path):
    remote = local_forge_remote(tmp_path / "remote.git")
    token = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"
    mesh = agent_mesh(remote, tmp_path / "hosts", "a", env={"AGENTMESH_TOKEN": token})
    journal = mesh.journal()
    leaked = f"pushed with {token} and sk-ant-api03-{'Ab3dEf9Hk2' * 4}\x1b[31m\u202e done"
    journal.record("failed", issue=3, summary=leaked, outcome="token=" + token)
    queued = (tmp_path / "hosts" / "a").glob("**/outbox/*.json")
    assert all(token not in p.read_text() for p in queued)  # redacted before it even touches the disk
    journal.flush()
    raw = "".join(git("cat-file", "blob", f"{MEMORY}:{n}", cwd=remote) for n in git(
        "ls-tree", "-r", "--name-only", MEMORY, "--", "ai-memory/agents/", cwd=remote).splitlines())
    assert token not in raw and "sk-ant-api03" not in raw and "\x1b" not in raw and "\u202e" not in raw
    assert "[REDACTED]" in raw
    [entry] = [json.loads(line) for line in raw.splitlines()]
    assert entry["event"] == "failed" and entry["issue"] == 3


def test_the_memory_branch_is_created_on_first_write_as_a_root_and_main_never_moves(tmp_path):
    remote = local_forge_remote(tmp_path / "remote.git")
    main = git("rev-parse", "main", cwd=remote)
    journal = agent_mesh(remote, tmp_path / "hosts", "a").journal()
    journal.record("claimed", issue=1, summary="first")
    journal.flush()
    journal.record("claimed", issue=2, summary="second")
    journal.flush()
    assert git("rev-parse", "main", cwd=remote) == main
    assert [e.issue for e in all_entries(remote)] == [1, 2]
    assert git("rev-list", "--max-parents=0", MEMORY, cwd=remote) != main  # an orphan: no code, no CI
    assert git("ls-tree", "-r", "--name-only", MEMORY, cwd=remote).splitlines() == [
        "ai-memory/.gitattributes", "ai-memory/agents/a/journal/" + journal.entries(
            datetime.now(UTC).date())[0].ts[:7] + ".jsonl"]
    assert [e.issue for e in journal.entries(datetime.now(UTC).date())] == [1, 2]


def test_a_configured_memory_branch_is_used(tmp_path):
    remote = local_forge_remote(tmp_path / "remote.git", yaml.safe_dump({"memory": {"branch": "ops/journals"}}))
    journal = agent_mesh(remote, tmp_path / "hosts", "a").journal()
    journal.record("claimed", issue=1, summary="first")
    journal.flush()
    assert [e.issue for e in all_entries(remote, "ops/journals")] == [1]
    assert MEMORY not in git("branch", "--list", cwd=remote)


def test_journals_an_earlier_version_left_on_main_are_still_read_once_each(tmp_path):
    """An upgraded mesh keeps its history: entries on main's ai-memory/agents/ count (budgets, log,
    context) beside the memory branch's, and an entry on both (a flush that landed on main, then
    was queued again) counts once."""
    remote = local_forge_remote(tmp_path / "remote.git")
    old = agent_mesh(remote, tmp_path / "old-hosts", "a")
    journal = old.journal()
    journal.record("claimed", issue=1, summary="on main, before the upgrade")
    [(_, twice)] = journal.pending()
    other = replace(twice, id="b-" + twice.id, agent="b")
    legacy = {f"ai-memory/agents/{e.agent}/journal/{e.ts[:7]}.jsonl": e.to_line() + "\n" for e in (twice, other)}
    human_commit(remote, legacy, message="journals of an earlier version")
    journal.record("claimed", issue=2, summary="after the upgrade")
    journal.flush()  # the entry already on main goes to the memory branch too: read once
    assert sorted(e.issue for e in all_entries(remote)) == [1, 2]
    seen = agent_mesh(remote, tmp_path / "hosts", "c").journal().entries(datetime.now(UTC).date())
    assert sorted((e.agent, e.issue) for e in seen) == [("a", 1), ("a", 2), ("b", 1)]
    assert len({e.id for e in seen}) == 3
