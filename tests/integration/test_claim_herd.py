"""claim-task after a lost race: it lists the claims again and deals anew (core/select.deal), real git, local forge."""

from __future__ import annotations

from agentmesh.agent.claim_task import ClaimTask, TickReport
from agentmesh.core.vocab import Event
from tests.support import agent_forge, agent_mesh, local_forge_remote

RING = "version: 1\nreview:\n  ring: [alice, bob, carol]\n"


def test_a_lost_race_lists_the_claims_again_before_the_next_try(tmp_path):
    remote = local_forge_remote(tmp_path / "remote.git", RING)
    hosts = tmp_path / "hosts"
    human = agent_forge(agent_mesh(remote, hosts, "human"))
    for n in range(6):
        human.create_issue(f"task {n}", "", ["task"])
    mesh = agent_mesh(remote, hosts, "alice")
    report = TickReport("alice")
    task = ClaimTask(mesh, agent_forge(mesh), report, dry_run=False, env={"PATH": "/usr/bin:/bin"})
    seen = task.observe()
    plan = task.plan(seen)
    mine, then = plan.claims[0].issue, plan.claims[1].issue
    assert mine is not None and then is not None
    bob = agent_mesh(remote, hosts, "bob").claims()
    assert bob.acquire(mine).won and bob.acquire(then).won  # after alice listed: her listing is stale

    jobs = task.apply(plan, seen)

    lost = [e.issue for e in report.events if e.event == Event.LOST_RACE]
    won = [e.issue for e in report.events if e.event == Event.CLAIMED]
    assert lost == [mine]  # one push lost, not one for each candidate bob took since the listing
    assert len(won) == 1 and won[0] not in (mine, then) and [j.issue.number for j in jobs] == won
