"""Budgets from the journals: task caps stop claims on every agent, a minutes cap stops a running
executor without publishing, a reported cost counts."""

from __future__ import annotations

import sys

import yaml

from agentmesh.agent.claim_task import claim_task
from tests.support import agent_forge, agent_mesh, demo_body, local_forge_remote, remote_refs
from tests.support.cli import ok_json, run_cli

ENV = {"PATH": "/usr/bin:/bin"}


def setup(tmp_path, budgets, issues=6):
    remote = local_forge_remote(tmp_path / "remote.git", yaml.safe_dump({"budgets": budgets}))
    human = agent_forge(agent_mesh(remote, tmp_path / "hosts", "human"))
    numbers = [human.create_issue(f"Doc {i}", demo_body(f"docs/{i}.md", f"{i}\n"), ["task"]).number
               for i in range(issues)]
    return remote, human, numbers


def tick(remote, tmp_path, agent, **kwargs):
    mesh = agent_mesh(remote, tmp_path / "hosts", agent, **kwargs)
    report = claim_task(mesh, agent_forge(mesh), env=ENV)
    return [(e.event, e.issue) for e in report.events], report


def test_a_fleet_cap_of_three_tasks_refuses_the_fourth_claim_on_every_agent(tmp_path):
    remote, _, _numbers = setup(tmp_path, {"fleet": {"tasks_per_day": 3}})
    for agent in "abc":
        events, _ = tick(remote, tmp_path, agent)
        assert [e for e in events if e[0] == "claimed"], events
    for agent in "abc":
        events, report = tick(remote, tmp_path, agent)
        assert not [e for e in events if e[0] == "claimed"], events
        [refused] = [e for e in report.events if e.event == "budget-exhausted"]
        assert refused.detail == "fleet tasks_per_day: 3 of 3: no new claims"
    assert len(remote_refs(remote, "refs/heads/claim/")) == 3
    result = _budget_json(remote, tmp_path)
    assert result["fleet"]["usage"]["tasks"] == 3
    assert result["fleet"]["exhausted"] == [{"scope": "fleet", "cap": "tasks_per_day", "used": 3, "limit": 3}]
    assert {a: r["usage"]["tasks"] for a, r in result["agents"].items()} == {"a": 1, "b": 1, "c": 1}


def _budget_json(remote, tmp_path):
    return ok_json(run_cli("--remote", str(remote), "--agent", "a", "budget", "--json", cwd=tmp_path,
                           env={"AGENTMESH_STATE_DIR": str(tmp_path / "cli-state")}))


def test_the_minutes_cap_stops_a_running_executor_and_publishes_nothing(tmp_path):
    remote, human, [number] = setup(tmp_path, {"agent": {"executor_minutes_per_day": 0.02}}, issues=1)
    slow = {"kind": "command", "sandbox": "off",
            "command": [sys.executable, "-c",
                        "import time, pathlib, sys; pathlib.Path(sys.argv[1], 'x').write_text('1'); time.sleep(60)",
                        "{worktree}"]}
    events, report = tick(remote, tmp_path, "a", executor=slow)
    assert ("budget-stopped", number) in events and ("released", number) in events, events
    [executed] = [e for e in report.events if e.event == "executed"]
    assert 1.0 <= executed.duration_s < 30
    assert not remote_refs(remote, "refs/heads/claim/") and not remote_refs(remote, "refs/heads/a/")
    assert human.list_pulls(state="all") == []
    [comment] = [c.body for c in human.list_comments(number)]
    assert "budget exhausted" in comment and "Nothing was published" in comment
    events, report = tick(remote, tmp_path, "a", executor=slow)
    assert [e.event for e in report.events] == ["budget-exhausted", "idle"]
    assert "no executor runs" in report.events[0].detail


def test_a_reported_cost_counts_against_the_cost_cap(tmp_path):
    remote, _, numbers = setup(tmp_path, {"agent": {"cost_usd_per_day": 1.0}}, issues=2)
    costly = {"kind": "command", "sandbox": "off",
              "command": [sys.executable, "-c", ("import pathlib, sys; pathlib.Path(sys.argv[1], 'x').write_text('1');"
                          " print('{\"type\": \"result\", \"total_cost_usd\": 1.25}')"), "{worktree}"]}
    events, report = tick(remote, tmp_path, "a", executor=costly)
    assert ("pr-opened", numbers[0]) in events or ("pr-opened", numbers[1]) in events, events
    assert [e.cost_usd for e in report.events if e.event == "executed"] == [1.25]
    events, report = tick(remote, tmp_path, "a", executor=costly)
    assert "agent a cost_usd_per_day: 1.25 of 1" in report.events[0].detail, report.events
    assert not [e for e in events if e[0] == "claimed"]
    events, _ = tick(remote, tmp_path, "b", executor=costly)  # another agent has its own cap
    assert [e for e in events if e[0] == "claimed"]
