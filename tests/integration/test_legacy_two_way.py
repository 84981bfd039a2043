"""Migrating from the old cron scripts, the other way round (docs/migration.md, `migration.lock_branches`):
while an agent holds a claim it also holds a lock branch of the old scripts' shape, so the old
claim-task.py, which takes an issue only when no `<agent>/<issue>-<slug>` branch exists, leaves it alone.
Real claim-task ticks on a real local-forge remote; the old script is a stand-in for its check.
"""

from __future__ import annotations

import re

from agentmesh.agent.claim_task import ClaimTask, TickReport, claim_task
from agentmesh.agent.monitor import monitor_prs
from agentmesh.core.lease import parse_trailers
from agentmesh.core.plan import Claim
from agentmesh.core.slug import work_branch
from tests.support import (
    agent_forge,
    agent_mesh,
    demo_body,
    git,
    human_commit,
    local_forge_remote,
    path_only_env,
    remote_refs,
)


def old_script_takes(remote, issue: int) -> bool:
    """The old claim-task.py's check: an issue is free unless some branch `<anyone>/<issue>-<slug>` exists."""
    return not any(re.fullmatch(rf"refs/heads/[^/]+/{issue}-.+", ref) for ref in remote_refs(remote, "refs/heads/"))


def test_a_claim_holds_the_old_scripts_lock_branch_until_it_is_released(tmp_path):
    remote = local_forge_remote(tmp_path / "remote.git", "migration:\n  lock_branches: true\n")
    human = agent_forge(agent_mesh(remote, tmp_path / "hosts", "human"))
    number = human.create_issue("Add notes", demo_body("notes.txt", "notes\n"), ["task"]).number
    lock = f"refs/heads/ada/{number}--agentmesh-claim"
    assert old_script_takes(remote, number)

    def tick():
        mesh = agent_mesh(remote, tmp_path / "hosts", "ada")
        report = claim_task(mesh, agent_forge(mesh), env=path_only_env())
        assert report.exit_code == 0, report.events
        return mesh, remote_refs(remote, "refs/heads/")

    mesh, heads = tick()  # claimed and worked: its PR is open, the claim held until the PR closes
    assert [c.issue for c in mesh.claims().list()] == [number]
    assert lock in heads and not old_script_takes(remote, number)
    main = heads["refs/heads/main"]
    assert git("rev-parse", f"{heads[lock]}^", f"{heads[lock]}^{{tree}}", cwd=remote).split() == \
        [main, git("rev-parse", "main^{tree}", cwd=remote)]  # on main with main's tree: an empty change
    message = git("log", "-1", "--format=%B", heads[lock], cwd=remote)
    assert parse_trailers(message) == {"agent": "ada", "issue": str(number)}  # agentmesh's own, not a legacy lock

    assert tick()[1][lock] == heads[lock]  # idempotent: the next tick keeps it as it is
    git("update-ref", "-d", lock, cwd=remote)  # lost (a human deleted it): the next tick puts it back
    assert lock in tick()[1]
    [pull] = human.list_pulls(state="open")
    human.merge_pull(pull.number, sha=pull.head_sha)
    mesh = agent_mesh(remote, tmp_path / "hosts", "ada")
    monitor_prs(mesh, agent_forge(mesh), env=path_only_env())  # its cleanup releases the claim, and the lock
    assert mesh.claims().list() == [] and lock not in remote_refs(remote, "refs/heads/")

    git("update-ref", lock, heads[lock], cwd=remote)  # one left by a claim released another way (a reaper)
    assert lock not in tick()[1]  # the next tick drops it


def test_a_claim_backs_off_when_an_old_script_locked_the_issue_since_the_listing(tmp_path):
    remote = local_forge_remote(tmp_path / "remote.git", "migration:\n  lock_branches: true\n")
    human = agent_forge(agent_mesh(remote, tmp_path / "hosts", "human"))
    issue = human.create_issue("Fix login", demo_body("login.txt", "fixed\n"), ["task"])
    mesh = agent_mesh(remote, tmp_path / "hosts", "ada")
    task = ClaimTask(mesh, agent_forge(mesh), TickReport("ada"), dry_run=False, env=path_only_env())
    human_commit(remote, {"wip.txt": "old scripts at work\n"}, branch=f"oldbot/{issue.number}-fix-login",
                 base="main", message="wip")  # the old claim-task.py, after this tick listed the branches
    claim = Claim(issue=issue.number, branch=work_branch("ada", issue.number, issue.title), attempt=1, detail="best")
    assert task.claim([claim], 1, {issue.number: issue}) == []
    assert mesh.claims().list() == []
    assert [ref for ref in remote_refs(remote, "refs/heads/") if "agentmesh-claim" in ref] == []
    assert [(e.event, e.issue) for e in task.report.events][-1] == ("released", issue.number)
    assert task.legacy_held == {issue.number: f"oldbot/{issue.number}-fix-login"}
