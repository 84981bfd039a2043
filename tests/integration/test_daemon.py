"""`agentmesh tick` and `agentmesh daemon`: one turn, the schedule, and the drain on SIGTERM."""

from __future__ import annotations

import json
import signal
import time

import yaml

from agentmesh.agent.drain import release_unworked
from agentmesh.cli.tick_verbs import combined_exit
from agentmesh.core.memory import journal_ref
from agentmesh.ops.daemon import host_offset
from tests.support import agent_forge, agent_mesh, demo_body, git, local_forge_remote, remote_refs
from tests.support.cli import run_cli, start_cli


def test_combined_exit_keeps_the_worst_outcome():
    assert combined_exit(0, 0) == 0
    assert combined_exit(75, 0) == 75 and combined_exit(0, 75) == 75
    assert combined_exit(75, 1) == 1 and combined_exit(3, 75) == 3


def test_host_offsets_are_stable_and_within_the_jitter():
    offsets = [host_offset(f"a{i}", "h", 60) for i in range(50)]
    assert offsets == [host_offset(f"a{i}", "h", 60) for i in range(50)]
    assert all(0 <= o < 60 for o in offsets) and len(set(offsets)) == 50
    assert max(offsets) - min(offsets) > 30  # spread, not bunched


def test_tick_reviews_and_merges_then_claims_the_next_issue(tmp_path):
    remote = local_forge_remote(tmp_path / "remote.git",
                                yaml.safe_dump({"review": {"ring": ["alice", "bob"]}, "merge": {"auto": True}}))
    human = agent_forge(agent_mesh(remote, tmp_path / "hosts", "human"))
    first = human.create_issue("One", demo_body("one.md", "1\n"), ["task"]).number
    alice, bob = ["--remote", str(remote), "--agent", "alice"], ["--remote", str(remote), "--agent", "bob"]
    turn = run_cli(*alice, "tick", "--json", cwd=tmp_path)
    assert turn.returncode == 0, turn.stderr
    data = json.loads(turn.stdout)
    assert [e["event"] for e in data["claim-task"]["events"]][-1] == "pr-opened"
    assert data["monitor-prs"]["status"] == "ok"
    assert run_cli(*bob, "tick", cwd=tmp_path).returncode == 0  # bob reviews alice's PR
    second = human.create_issue("Two", demo_body("two.md", "2\n"), ["task"]).number
    turn = json.loads(run_cli(*alice, "tick", "--json", cwd=tmp_path).stdout)
    assert ("merged", first) in [(e["event"], e["issue"]) for e in turn["monitor-prs"]["events"]]
    assert ("claimed", second) in [(e["event"], e["issue"]) for e in turn["claim-task"]["events"]]
    assert human.get_issue(first).state == "closed"
    # monitor-prs left its entries queued; claim-task's flush published both halves' in one push
    journal = git("log", "-p", "--format=%s", journal_ref("alice"), cwd=remote)
    assert "merged" in journal and "pr-opened" in journal, journal


def test_release_unworked_gives_back_only_claims_without_work(tmp_path):
    remote = local_forge_remote(tmp_path / "remote.git")
    human = agent_forge(agent_mesh(remote, tmp_path / "hosts", "human"))
    idle = human.create_issue("Idle", "nothing yet", ["task"]).number
    pushed = human.create_issue("Pushed", "work exists", ["task"]).number
    mesh = agent_mesh(remote, tmp_path / "hosts", "alice")
    store = mesh.claims()
    store.acquire(idle, work_branch=f"alice/{idle}-idle")
    store.acquire(pushed, work_branch=f"alice/{pushed}-pushed")
    git("push", "--quiet", str(remote), f"main:refs/heads/alice/{pushed}-pushed", cwd=remote)
    assert release_unworked(mesh, agent_forge(mesh)) == [idle]
    assert sorted(remote_refs(remote, "refs/heads/claim/")) == [f"refs/heads/claim/{pushed}"]


def test_the_daemon_works_on_schedule_and_drains_on_sigterm(tmp_path):
    remote = local_forge_remote(tmp_path / "remote.git")
    human = agent_forge(agent_mesh(remote, tmp_path / "hosts", "human"))
    number = human.create_issue("Doc", demo_body("doc.md", "d\n"), ["task"]).number
    config = tmp_path / "agentmesh.yaml"
    config.write_text(yaml.safe_dump({"agent": "alice", "remote": str(remote), "state_dir": str(tmp_path / "state"),
                                      "executor": {"kind": "demo"}}))
    proc = start_cli("--config", str(config), "daemon", "--claim-every", "0.5", "--monitor-every", "0.5",
                     "--jitter", "0", "--json", cwd=tmp_path)
    deadline = time.monotonic() + 60
    while not human.list_pulls() and time.monotonic() < deadline:
        time.sleep(0.3)
    assert human.list_pulls(), "the daemon opened no PR"
    # a claim with no work yet (as if claimed just before the signal) is given back by the drain; the
    # host is halted first so the daemon's next tick cannot resume the claim before the signal lands
    halted = run_cli("--config", str(config), "halt", "--local", cwd=tmp_path)
    assert halted.returncode == 0, halted.stderr
    mesh = agent_mesh(remote, tmp_path / "hosts2", "alice")
    spare = human.create_issue("Spare", "later", ["other"]).number
    mesh.claims().acquire(spare, work_branch=f"alice/{spare}-spare")
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    lines = [json.loads(line) for line in out.splitlines()]
    assert {line["command"] for line in lines} >= {"claim-task", "monitor-prs", "drain"}
    assert lines[-1] == {"command": "drain", "released": [spare]}
    assert sorted(remote_refs(remote, "refs/heads/claim/")) == [f"refs/heads/claim/{number}"]  # in review: kept


def test_a_claim_interval_that_would_let_claims_in_review_lapse_is_refused(tmp_path):
    """The default lease is 1800 s renewed every 300 s: claim-task runs at most 1500 s apart."""
    remote = local_forge_remote(tmp_path / "remote.git")
    config = tmp_path / "agentmesh.yaml"
    config.write_text(yaml.safe_dump({"agent": "alice", "remote": str(remote), "state_dir": str(tmp_path / "state"),
                                      "executor": {"kind": "demo"}}))
    refused = run_cli("--config", str(config), "daemon", "--claim-every", "1500", "--jitter", "1", cwd=tmp_path)
    assert refused.returncode == 1, refused.stderr
    assert "claims in review lapse" in refused.stderr and "at most 1500s" in refused.stderr
    assert refused.stderr.count("\n") == 1
    assert remote_refs(remote, "refs/heads/claim/") == {}
