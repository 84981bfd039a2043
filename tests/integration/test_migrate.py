"""The switch-over from the old cron scripts, as an operator runs it: `agentmesh migrate` on a real remote
with the old scripts' memory files and a lock branch, and a real claim-task that leaves the locked issue
alone until the lock's PR closes (docs/migration.md)."""

from __future__ import annotations

import time

from agentmesh.agent.claim_task import claim_task
from agentmesh.agent.legacy import observe_legacy, tip_messages
from agentmesh.agent.migrate import migrate
from agentmesh.cli.status import render_plain
from agentmesh.core.vocab import MigrateStep
from agentmesh.ops.status import gather
from tests.support import agent_forge, agent_mesh, branch_files, demo_body, human_commit, local_forge_remote
from tests.support.cli import ok_json, run_cli


def who(remote, agent="alice"):
    return ["--remote", str(remote), "--agent", agent]


def old_scripts_dir(tmp_path):
    old = tmp_path / "old-scripts"
    (old / "memory").mkdir(parents=True)
    (old / "MEMORY.md").write_text("# Long-term memory\n\nRun `make check` before opening a PR.\n")
    (old / "memory" / "2026-11-20-14.md").write_text("14:05 claimed #3\n")
    (old / "memory" / "2026-11-20-15.md").write_text("15:10 PR opened for #3\n")
    return old


def test_migrate_imports_memory_as_one_pr_and_agents_leave_legacy_locked_issues_alone(tmp_path):
    remote = local_forge_remote(tmp_path / "remote.git")
    human = agent_forge(agent_mesh(remote, tmp_path / "hosts", "human"))
    locked = human.create_issue("Fix login", demo_body("login.txt", "fixed\n"), ["task"]).number
    free = human.create_issue("Add notes", demo_body("notes.txt", "notes\n"), ["task"]).number
    lock = f"oldbot/{locked}-fix-login"  # what the old claim-task.py pushed as its lock
    human_commit(remote, {"wip.txt": "old scripts at work\n"}, branch=lock, base="main", message="wip")
    old = old_scripts_dir(tmp_path)

    planned = ok_json(run_cli(*who(remote), "migrate", "--from", str(old), "--dry-run", "--json", cwd=tmp_path))
    assert (planned["step"], planned["pr"], planned["branch"]) == ("open-pr", None, "alice/migrate/memory")
    logs = "ai-memory/legacy/memory"
    assert planned["missing"] == ["ai-memory/architecture/legacy-memory.md", f"{logs}/2026-11-20-14.md",
                                  f"{logs}/2026-11-20-15.md"]
    assert [(x["issue"], x["agent"], x["branch"]) for x in planned["legacy_locks"]] == [(locked, "oldbot", lock)]
    assert human.list_pulls(state="all") == []  # a dry run writes nothing

    opened = ok_json(run_cli(*who(remote), "migrate", "--from", str(old), "--json", cwd=tmp_path))
    assert opened["step"] == "open-pr" and opened["pr"] is not None
    files = branch_files(remote, "alice/migrate/memory")
    assert "make check" in files["ai-memory/architecture/legacy-memory.md"]
    assert files["ai-memory/legacy/memory/2026-11-20-15.md"] == "15:10 PR opened for #3"
    assert "ai-memory/legacy/memory/2026-11-20-14.md" not in branch_files(remote, "main")  # a PR, not a push to main
    again = run_cli(*who(remote), "migrate", "--from", str(old), cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "keep the PR of alice/migrate/memory" in again.stdout and f"PR #{opened['pr']}" in again.stdout
    assert f"#{locked} held by oldbot on {lock}" in again.stdout
    [pull] = human.list_pulls(state="all")
    assert "agentmesh:memory" in pull.labels

    # a real claim-task: the legacy-held issue is skipped, the other one claimed and worked
    ran = run_cli(*who(remote), "claim-task", "--json", cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    assert {c.issue for c in agent_mesh(remote, tmp_path / "hosts", "human").claims().list()} == {free}
    observer = agent_mesh(remote, tmp_path / "observer", "bob")
    shown = gather(observer, agent_forge(observer), time.time())
    assert [(x.issue, x.branch) for x in shown.legacy] == [(locked, lock)]
    assert "oldbot (legacy lock)  LEGACY-HELD" in render_plain(shown)

    # the lock holds until its PR closes; then the issue is free, and the merged import is not proposed again
    old_pr = human.create_pull(head=lock, base="main", title="Fix login")
    human.close_pull(old_pr.number)
    human.merge_pull(pull.number, sha=pull.head_sha)
    observer = agent_mesh(remote, tmp_path / "observer", "bob")
    plan = claim_task(observer, agent_forge(observer), dry_run=True, env={})
    assert [c["issue"] for c in plan.candidates] == [locked]
    done = migrate(observer, agent_forge(observer), old, dry_run=False)
    assert (done.step, done.missing, done.legacy) == (MigrateStep.NOTHING, [], [])
    assert [p.number for p in human.list_pulls(state="all") if "agentmesh:memory" in p.labels] == [pull.number]


def test_a_lock_branch_deleted_after_the_listing_is_read_as_a_lock_for_that_run(tmp_path):
    remote = local_forge_remote(tmp_path / "remote.git")
    mesh = agent_mesh(remote, tmp_path / "hosts", "alice")
    sha = human_commit(remote, {"wip.txt": "x\n"}, branch="oldbot/1-a", base="main", message="wip")
    branches = {"oldbot/1-a": sha, "oldbot/2-gone": "0" * 40}  # the second was deleted since it was listed
    assert tip_messages(mesh, branches, sorted(branches)) == {}  # one fetch for both failed: neither is read
    assert tip_messages(mesh, branches, ["oldbot/1-a"]).keys() == {"oldbot/1-a"}
    locks = observe_legacy(mesh, agent_forge(mesh), claimed=(), pulls=[], branches=branches)
    assert sorted(locks) == [1, 2]
