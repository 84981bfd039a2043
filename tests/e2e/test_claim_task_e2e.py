"""Several agent processes, one local-forge remote, the demo executor: the whole work loop."""

from __future__ import annotations

import json
import os
import re
import signal
import sys
import threading
import time
from pathlib import Path

import pytest

from agentmesh.agent.claim_task import claim_task
from agentmesh.core.errors import NotHolder
from tests.support import (
    FakeClock,
    agent_forge,
    agent_mesh,
    branch_files,
    demo_body,
    git,
    journal_entries,
    local_forge_remote,
    remote_refs,
    wait_for,
)
from tests.support.cli import run_json, start_cli, write_host_config


def test_three_agents_share_six_issues(tmp_path):
    remote = local_forge_remote(tmp_path / "remote.git")
    forge = agent_forge(agent_mesh(remote, tmp_path / "hosts", "human"))
    wanted = {}
    for i in range(1, 7):
        path, content = f"docs/note-{i}.md", f"note {i}\n" * i
        number = forge.create_issue(f"Write note {i}", demo_body(path, content), ["task"]).number
        wanted[number] = (path, content)
    agents = ["a1", "a2", "a3"]
    configs = {a: write_host_config(tmp_path, remote, a) for a in agents}
    reports: dict[str, list[dict]] = {a: [] for a in agents}

    def loop(agent: str) -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            report = run_json(configs[agent], "claim-task")
            reports[agent].append(report)
            if any(e["event"] == "idle" and e["detail"] == "no eligible issue" for e in report["events"]):
                return

    threads = [threading.Thread(target=loop, args=(a,)) for a in agents]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    pulls = forge.list_pulls(state="all")
    by_issue: dict[int, list] = {}
    for pull in pulls:
        match = re.fullmatch(r"(a[123])/(\d+)-[a-z0-9-]+", pull.head)
        assert match, pull.head
        assert pull.author == match[1]
        by_issue.setdefault(int(match[2]), []).append(pull)
    assert sorted(by_issue) == sorted(wanted)
    claims = remote_refs(remote, "refs/heads/claim/")
    for number, (path, content) in wanted.items():
        [pull] = by_issue[number]  # exactly one PR per issue
        assert f"Closes #{number}" in pull.body
        files = branch_files(remote, pull.head_sha)
        base = branch_files(remote, f"{pull.head_sha}^")
        assert {k: v for k, v in files.items() if base.get(k) != v} == {path: content.strip()}
        holder = git("log", "-1", "--format=%B", claims[f"refs/heads/claim/{number}"], cwd=remote)
        assert f"Agentmesh-Agent: {pull.author}" in holder  # the claim is held by the PR's author
    work_branches = [r for r in remote_refs(remote, "refs/heads/") if re.match(r"refs/heads/a[123]/", r)]
    assert len(work_branches) == 6
    claimed = [e["issue"] for rs in reports.values() for r in rs for e in r["events"] if e["event"] == "claimed"]
    assert sorted(claimed) == sorted(wanted)  # no issue was ever claimed twice
    assert sum(1 for a in agents if any(e["event"] == "pr-opened" for r in reports[a] for e in r["events"])) >= 2


def test_crash_mid_run_is_reaped_and_completed_by_another_agent(tmp_path):
    """SIGKILL the agent while its executor runs; after lease + grace by B's clock, B reaps and
    finishes the issue; A's late push is refused by the fence; A's next run kills its orphan."""
    remote = local_forge_remote(tmp_path / "remote.git")
    forge = agent_forge(agent_mesh(remote, tmp_path / "hosts", "human"))
    n = forge.create_issue("Write the note", demo_body("note.md", "done\n"), ["task"]).number
    sleeper = {"kind": "command", "command": [sys.executable, "-c", "import time; time.sleep(300)"],
               "sandbox": "off"}
    config = write_host_config(tmp_path, remote, "alice", sleeper)
    proc = start_cli("--config", str(config), "claim-task", cwd=config.parent)
    pidfile = tmp_path / "hosts" / "alice" / "running" / f"issue-{n}.json"
    wait_for(pidfile.exists, "the executor to start")
    orphan = json.loads(pidfile.read_text())["pgid"]
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    stale_sha = remote_refs(remote, f"refs/heads/claim/{n}")[f"refs/heads/claim/{n}"]

    clock = FakeClock()
    bob = agent_mesh(remote, tmp_path / "hosts", "bob", clock=clock)
    store = bob.claims()
    assert store.reap() == []  # first sighting starts bob's own count
    clock.advance(1800 + 300 + 1)  # default lease + grace, by bob's clock
    [reaped] = store.reap()
    assert reaped.reaped and reaped.holder == "alice"
    report = claim_task(bob, agent_forge(bob), env={"PATH": os.environ["PATH"]})
    assert [e.event for e in report.events][:4] == ["claimed", "executed", "pushed", "pr-opened"], report.events
    [pull] = forge.list_pulls()
    assert pull.author == "bob"

    alice = agent_mesh(remote, tmp_path / "hosts", "alice")
    late = alice.cache.commit_tree(alice.cache.empty_tree(), [], "late work\n")
    before = remote_refs(remote)
    with pytest.raises(NotHolder):
        alice.claims().fenced_push(n, stale_sha, f"refs/heads/alice/{n}-write-the-note", late, None)
    assert remote_refs(remote) == before

    assert os.path.exists(f"/proc/{orphan}")  # the executor outlived its agent ...
    again = claim_task(alice, agent_forge(alice), env={"PATH": os.environ["PATH"]})
    assert "killed-leftover" in [e.event for e in again.events]
    wait_for(lambda: not _alive(orphan), "the orphan to die", 10)  # ... until the agent's next run


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def test_a_crash_after_the_work_push_finds_its_pr_opened_with_it(tmp_path):
    """On the local forge the work branch and the PR land in one push (agent/jobs.py `fenced_pull`): there is
    no moment when the work is pushed without its PR (a branch pushed alone is adopted: test_whole_life.py)."""
    remote = local_forge_remote(tmp_path / "remote.git")
    forge = agent_forge(agent_mesh(remote, tmp_path / "hosts", "human"))
    n = forge.create_issue("Write the note", demo_body("note.md", "done\n"), ["task"]).number
    hook = remote / "hooks" / "post-receive"
    hook.write_text("#!/bin/sh\nif grep -q ' refs/heads/alice/'; then sleep 30; fi\n")
    hook.chmod(0o755)
    config = write_host_config(tmp_path, remote, "alice")
    proc = start_cli("--config", str(config), "claim-task", cwd=config.parent)
    wait_for(lambda: any(r.startswith("refs/heads/alice/") for r in remote_refs(remote)), "the work push")
    proc.send_signal(signal.SIGKILL)  # the push landed, the PR with it; the run never saw it
    proc.communicate()
    hook.unlink()
    [opened] = forge.list_pulls()
    stages = {"agentmesh:claimed", "agentmesh:working", "agentmesh:review"}
    assert stages & set(forge.get_issue(n).labels) == {"agentmesh:review"}
    assert stages & set(forge.get_pull(opened.number).labels) == set()
    report = run_json(config, "claim-task")
    assert ("in-review", n) in [(e["event"], e["issue"]) for e in report["events"]]
    assert stages & set(forge.get_issue(n).labels) == {"agentmesh:review"}
    [pull] = forge.list_pulls(state="all")
    assert pull.head == f"alice/{n}-write-the-note"
    assert branch_files(remote, pull.head_sha)["note.md"] == "done"
    # the PR's line landed with it; the entries the killed run left queued were found there, not written twice
    entries = journal_entries(remote)
    assert [e.pr for e in entries if e.event == "pr-opened"] == [pull.number]
    assert len({e.id for e in entries}) == len(entries)
