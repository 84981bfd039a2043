"""The memory PR (`agentmesh memory publish`): the journals shown on the default branch through one
open, reviewed PR, ensure-style. Real bare remote, local forge; the branch read with git plumbing."""

from __future__ import annotations

from datetime import UTC, datetime

from agentmesh.agent.journal_pr import PUBLISH_BRANCH, publish_journals
from agentmesh.core.vocab import Label
from tests.support import JOURNALS, agent_forge, agent_mesh, git, local_forge_remote
from tests.support.cli import run_cli

REF = f"refs/heads/{PUBLISH_BRANCH}"


def published(remote) -> dict[str, str]:
    names = git("ls-tree", "-r", "--name-only", REF, "--", "ai-memory/journals/", cwd=remote).split()
    return {n: git("cat-file", "blob", f"{REF}:{n}", cwd=remote) for n in names}


def test_one_open_memory_pr_follows_the_journals_and_a_merge_shows_them_on_main(tmp_path):
    remote = local_forge_remote(tmp_path / "remote.git")
    main = git("rev-parse", "main", cwd=remote)
    meshes = {a: agent_mesh(remote, tmp_path / "hosts", a) for a in ("ada", "bob")}
    for agent, mesh in meshes.items():
        journal = mesh.journal()
        journal.record("claimed", issue=1, summary=f"{agent} claims")
        journal.flush()
    today = datetime.now(UTC).date()
    month = today.strftime("%Y-%m")
    ada, forge = meshes["ada"], agent_forge(meshes["ada"])

    first = publish_journals(ada, forge, today)
    assert (first.state, first.files) == ("pushed", 2)
    pull = forge.get_pull(first.pr or 0)
    assert pull.head == PUBLISH_BRANCH and pull.base == "main" and Label.MEMORY in pull.labels
    assert pull.title == f"memory: journals up to {today.isoformat()}"
    for agent in ("ada", "bob"):  # the same lines as each agent's own branch
        assert published(remote)[f"ai-memory/journals/{agent}/{month}.jsonl"] == git(
            "cat-file", "blob", f"{JOURNALS}{agent}:ai-memory/agents/{agent}/journal/{month}.jsonl", cwd=remote)
    assert git("rev-parse", f"{REF}^", cwd=remote) == main == git("rev-parse", "main", cwd=remote)

    pushed = git("rev-parse", REF, cwd=remote)
    again = publish_journals(meshes["bob"], agent_forge(meshes["bob"]), today)  # another agent, nothing new
    assert (again.state, again.pr) == ("up-to-date", first.pr) and git("rev-parse", REF, cwd=remote) == pushed

    bob = meshes["bob"].journal()
    bob.record("merged", issue=1, summary="bob merges")
    bob.flush()
    moved = publish_journals(ada, forge, today)
    assert (moved.state, moved.pr) == ("pushed", first.pr)  # the same PR, its branch moved
    assert "bob merges" in published(remote)[f"ai-memory/journals/bob/{month}.jsonl"]
    assert [p.number for p in forge.list_pulls(state="open")] == [first.pr]

    pull = forge.get_pull(first.pr or 0)
    forge.merge_pull(pull.number, sha=pull.head_sha)  # a maintainer's review and merge
    assert git("cat-file", "blob", f"main:ai-memory/journals/bob/{month}.jsonl", cwd=remote).count("\n") == 1
    ada = agent_mesh(remote, tmp_path / "hosts", "ada")  # a new run: it reads the merged main
    forge = agent_forge(ada)
    done = publish_journals(ada, forge, today)
    assert (done.state, done.pr) == ("up-to-date", None)  # main shows them all: no PR

    ada_journal = ada.journal()
    ada_journal.record("pr-opened", issue=1, summary="ada opens a PR")
    ada_journal.flush()
    cli = run_cli("--remote", str(remote), "--agent", "ada", "memory", "publish", cwd=tmp_path)
    assert cli.returncode == 0, cli.stderr
    [reopened] = agent_forge(agent_mesh(remote, tmp_path / "hosts", "bob")).list_pulls(state="open")  # a fresh listing
    assert reopened.number != first.pr and reopened.head == PUBLISH_BRANCH
    assert f"PR #{reopened.number}" in cli.stdout
    # readers keep reading the journal branches only: nothing counts twice
    entries = meshes["bob"].journal().entries(today)
    assert len(entries) == len({e.id for e in entries}) == 4
