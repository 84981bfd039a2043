"""`agentmesh migrate` on Gitea and GitHub (issue 15, item 14): the migration code behind the CLI against
the spec-validated fakes, every request checked against the official API description. The git side is
real: a bare remote, hosted by the fake (tests/support/fakes/git_hosted.py), with the old scripts' lock
branch on it; the old scripts' directory holds a MEMORY.md and an hourly log.

A dry run writes nothing; the import is one PR labelled memory, which a rerun keeps; once the PR is
merged (a real merge commit on main) nothing is left to import; the old scripts' lock holds its issue
until the lock's PR closes.
"""

from __future__ import annotations

import pytest

from agentmesh.agent.migrate import migrate
from agentmesh.core.vocab import Label, MigrateStep
from tests.contract.spec import ContractMock, fake_forge_mesh, validator
from tests.support import branch_files, human_commit, make_remote

BOT, TOKEN_ENV = "ada-bot", "MESH_FORGE_TOKEN"
LOCKED, LOCK = 1, "oldbot/1-fix-login"  # what the old claim-task.py pushed as its lock
WRITES = ("POST", "PATCH", "PUT", "DELETE")


@pytest.mark.parametrize("kind", ["gitea", "github"])
def test_migrate_imports_memory_as_one_pr_and_shows_the_old_scripts_lock(tmp_path, kind):
    checker = validator(kind)  # skips when the API description is absent
    remote = make_remote(tmp_path / "remote.git")
    human_commit(remote, {"wip.txt": "old scripts at work\n"}, branch=LOCK, base="main", message="wip")
    old = tmp_path / "old-scripts"
    (old / "memory").mkdir(parents=True)
    (old / "MEMORY.md").write_text("# Long-term memory\n\nRun `make check` before opening a PR.\n")
    (old / "memory" / "2026-11-20-14.md").write_text("14:05 claimed #1\n")
    fake, mesh = fake_forge_mesh(kind, remote, tmp_path / "ada", agent="ada", bot=BOT, token_env=TOKEN_ENV,
                                 hosted=True)
    assert fake.new_item("Fix login", "").number == LOCKED
    with ContractMock(checker) as mock:
        fake.install(mock)
        forge = mesh.open_forge()

        def writes() -> int:
            return sum(c.request.method in WRITES for c in mock.calls)

        planned = migrate(mesh, forge, old, dry_run=True)
        assert (planned.step, planned.pull, writes()) == (MigrateStep.OPEN, None, 0)
        assert [(x.issue, x.agent, x.branch, x.pr) for x in planned.legacy] == [(LOCKED, "oldbot", LOCK, None)]

        opened = migrate(mesh, forge, old, dry_run=False)
        assert opened.step is MigrateStep.OPEN and opened.pull is not None
        pull = forge.get_pull(opened.pull.number)
        assert (pull.head, pull.base, pull.state) == ("ada/migrate/memory", "main", "open")
        assert Label.MEMORY in forge.get_issue(pull.number).labels
        files = branch_files(remote, "ada/migrate/memory")
        assert "make check" in files["ai-memory/architecture/legacy-memory.md"]
        assert files["ai-memory/legacy/memory/2026-11-20-14.md"] == "14:05 claimed #1"
        assert fake.head_sha(fake.items[pull.number]) == pull.head_sha  # the PR's head is the pushed branch

        before = writes()
        again = migrate(mesh, forge, old, dry_run=False)  # a rerun keeps the open PR, writes nothing
        assert (again.step, again.pull.number if again.pull else None) == (MigrateStep.ADOPT, pull.number)
        assert writes() == before

        old_pr = forge.create_pull(head=LOCK, base="main", title="Fix login", body="")
        assert [x.pr for x in migrate(mesh, forge, old, dry_run=True).legacy] == [old_pr.number]
        forge.close_pull(old_pr.number)  # the old scripts are done with it: the lock is released
        forge.merge_pull(pull.number, sha=pull.head_sha)
        mesh = fake_forge_mesh(kind, remote, tmp_path / "ada", agent="ada", bot=BOT, token_env=TOKEN_ENV)[1]
        done = migrate(mesh, forge, old, dry_run=False)  # a new run reads the merged main
        assert (done.step, done.missing, done.legacy) == (MigrateStep.NOTHING, [], [])
        assert [p.number for p in forge.list_pulls(state="all") if Label.MEMORY in p.labels] == [pull.number]
        assert checker.validated >= len(mock.calls) > 0
