"""Journals on a real remote: concurrent writers, crashes mid-push, rotation, redaction, each writer's
own journal branch, and the journals earlier versions left on the shared memory branch and on the
default branch."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import yaml

from agentmesh.core.memory import journal_month, parse_journal
from agentmesh.core.record import replace
from tests.support import JOURNALS, agent_mesh, git, human_commit, journal_entries, local_forge_remote, remote_refs
from tests.support.gitcount import counting_git

MEMORY = "agentmesh/memory"  # the shared branch of earlier versions: read, never written

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
gave_up = 0
for i in range(int(count)):
    journal.record("test", issue=i + 1, summary=f"{agent} entry {i + 1}")
    try:
        journal.flush()
    except TemporaryError:
        gave_up += 1
print(gave_up)
"""


def all_entries(remote: Path) -> list:
    return journal_entries(remote)


def own_ref(agent: str) -> str:
    return JOURNALS + agent


def test_eight_concurrent_writers_never_race_and_each_line_lands_once(tmp_path):
    remote = local_forge_remote(tmp_path / "remote.git")
    main = git("rev-parse", "main", cwd=remote)
    go = tmp_path / "go"
    agents = [f"w{i:02d}" for i in range(8)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(remote), str(tmp_path / "hosts"), a, str(go), "4"],
                              env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for a in agents]
    time.sleep(1.0)  # let every writer start before the race begins
    go.touch()
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        assert out.split() == ["0"], out  # no flush gave up: nobody else writes an agent's branch
    entries = all_entries(remote)
    assert sorted((e.agent, e.issue) for e in entries) == sorted((a, i) for a in agents for i in range(1, 5))
    assert len({e.id for e in entries}) == len(entries)  # every line exactly once
    assert sorted(remote_refs(remote, JOURNALS)) == [own_ref(a) for a in agents]
    for agent in agents:
        assert not list((tmp_path / "hosts" / agent).glob("**/outbox/*.json"))
        assert git("ls-tree", "-r", "--name-only", own_ref(agent), cwd=remote).split("/")[:3] == \
            ["ai-memory", "agents", agent]  # only its own directory
        assert git("rev-list", "--count", own_ref(agent), cwd=remote) == "4"  # one commit a flush, none lost
    assert git("rev-parse", "main", cwd=remote) == main
    assert MEMORY not in git("branch", "--list", cwd=remote)


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
    ref = own_ref("a")
    names = git("ls-tree", "--name-only", ref, "--", "ai-memory/agents/a/journal/", cwd=remote).splitlines()
    names.sort(key=lambda n: journal_month(n.rsplit("/", 1)[1]))
    assert names[:3] == [f"ai-memory/agents/a/journal/2026-11{part}.jsonl" for part in ("", ".1", ".2")]
    sizes = [len(git("cat-file", "blob", f"{ref}:{n}", cwd=remote).encode()) for n in names]
    assert all(size <= 4096 for size in sizes), sizes
    in_order = [e.issue for n in names for e in parse_journal(git("cat-file", "blob", f"{ref}:{n}", cwd=remote))]
    assert in_order == list(range(40))  # appended in order across the parts
    journal.record("test", issue=99, summary="next month", now=datetime(2026, 12, 1, tzinfo=UTC).timestamp())
    journal.flush()
    assert "ai-memory/agents/a/journal/2026-12.jsonl" in git("ls-tree", "-r", "--name-only", ref, cwd=remote)


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
    raw = "".join(git("cat-file", "blob", f"{own_ref('a')}:{n}", cwd=remote) for n in git(
        "ls-tree", "-r", "--name-only", own_ref("a"), "--", "ai-memory/agents/", cwd=remote).splitlines())
    assert token not in raw and "sk-ant-api03" not in raw and "\x1b" not in raw and "\u202e" not in raw
    assert "[REDACTED]" in raw
    [entry] = [json.loads(line) for line in raw.splitlines()]
    assert entry["event"] == "failed" and entry["issue"] == 3


def test_a_writers_branch_is_created_on_first_write_as_a_root_and_main_never_moves(tmp_path):
    remote = local_forge_remote(tmp_path / "remote.git")
    main = git("rev-parse", "main", cwd=remote)
    journal = agent_mesh(remote, tmp_path / "hosts", "a").journal()
    journal.record("claimed", issue=1, summary="first")
    journal.flush()
    journal.record("claimed", issue=2, summary="second")
    journal.flush()
    assert git("rev-parse", "main", cwd=remote) == main
    assert [e.issue for e in all_entries(remote)] == [1, 2]
    ref = own_ref("a")
    assert git("rev-list", "--max-parents=0", ref, cwd=remote) != main  # an orphan: no code, no CI
    assert git("ls-tree", "-r", "--name-only", ref, cwd=remote).splitlines() == [
        "ai-memory/agents/a/journal/" + journal.entries(datetime.now(UTC).date())[0].ts[:7] + ".jsonl"]
    assert [e.issue for e in journal.entries(datetime.now(UTC).date())] == [1, 2]
    assert journal.flush() == 0 and git("rev-list", "--count", ref, cwd=remote) == "2"


def test_journals_earlier_versions_left_on_main_and_the_memory_branch_are_still_read_once_each(tmp_path):
    """An upgraded mesh keeps its history: entries on main's ai-memory/agents/ and on the shared memory
    branch count (budgets, log, context) beside each writer's branch, and an entry in several places (a
    flush that landed on the old branch, then was queued again) counts once."""
    remote = local_forge_remote(tmp_path / "remote.git")
    journal = agent_mesh(remote, tmp_path / "old-hosts", "a").journal()
    journal.record("claimed", issue=1, summary="on main, before the upgrade")
    journal.record("claimed", issue=3, summary="on the memory branch, before the upgrade")
    queued = {e.issue: e for _, e in journal.pending()}  # the queue's order within one second is its ids'
    twice, shared = queued[1], queued[3]
    other = replace(twice, id="b-" + twice.id, agent="b")
    legacy = {f"ai-memory/agents/{e.agent}/journal/{e.ts[:7]}.jsonl": e.to_line() + "\n" for e in (twice, other)}
    human_commit(remote, legacy, message="journals of an earlier version")
    old_head = human_commit(remote, {f"ai-memory/agents/a/journal/{shared.ts[:7]}.jsonl": shared.to_line() + "\n"},
                 branch=MEMORY, base="main", message="the shared memory branch of an earlier version")
    journal.record("claimed", issue=2, summary="after the upgrade")
    journal.flush()  # the entries already on the old branches go to a's own branch too: read once
    assert sorted(e.issue for e in all_entries(remote)) == [1, 2, 3]
    assert git("rev-parse", MEMORY, cwd=remote) == old_head  # read, never written
    seen = agent_mesh(remote, tmp_path / "hosts", "c").journal().entries(datetime.now(UTC).date())
    assert sorted((e.agent, e.issue) for e in seen) == [("a", 1), ("a", 2), ("a", 3), ("b", 1)]
    assert len({e.id for e in seen}) == 4


def test_a_flush_is_a_handful_of_git_calls_and_a_read_does_not_grow_with_the_writers(tmp_path):
    remote = local_forge_remote(tmp_path / "remote.git")
    journals = [agent_mesh(remote, tmp_path / "hosts", a).journal() for a in ("a", "b", "c")]
    for journal in journals:
        journal.record("claimed", issue=1)
        journal.flush()
    a = journals[0]
    reader = agent_mesh(remote, tmp_path / "readers", "r").journal()
    reader.entries(datetime.now(UTC).date())  # the reader's cache is warm: its later reads fetch nothing
    with counting_git(tmp_path / "count") as count:
        a.record("executed", issue=1)
        assert a.flush() == 1
        flushed, flush_calls = count.commands(), count.calls()
        count.reset()
        assert len(reader.entries(datetime.now(UTC).date())) == 4
        read = count.calls()
    assert flush_calls <= 7  # 4 cat-file --batch, commit-tree, push, update-ref
    assert flushed["push"] == 1  # one push, no retry: nobody else writes a's branch
    assert read <= 6  # one listing, one fetch of a's new head, the legacy main's tree, two batches


class OutboxSiblingPublishes:
    """The outbox as a sibling job of the same run sees it: its listing is taken, then the sibling's `sent`
    removes `gone` before this job reads it (claim_task runs a run's jobs in threads)."""

    def __init__(self, outbox: Path, gone: Path):
        self.outbox, self.gone = outbox, gone

    def glob(self, pattern: str):
        listed = list(self.outbox.glob(pattern))
        self.gone.unlink()
        return listed


def test_an_entry_a_sibling_job_published_between_listing_and_reading_is_skipped_not_a_crash(tmp_path):
    remote = local_forge_remote(tmp_path / "remote.git")
    journal = agent_mesh(remote, tmp_path / "hosts", "a").journal()
    journal.record("claimed", issue=1, key="claimed-1-a1")
    journal.record("claimed", issue=2, key="claimed-2-a1")
    (journal.outbox / "2026-01-01T00:00:00Z-0-a-broken.json").write_text("{not json")
    [published] = journal.outbox.glob("*-a-claimed-2-a1.json")
    outbox, journal.outbox = journal.outbox, OutboxSiblingPublishes(journal.outbox, published)
    left = journal.pending()
    journal.outbox = outbox
    assert [e.issue for _, e in left] == [1]
    assert [p.name for p in outbox.glob("*.bad")] == ["2026-01-01T00:00:00Z-0-a-broken.bad"]  # still kept for a human
