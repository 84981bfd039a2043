"""Dependencies on the local forge, as real processes on a real bare remote: `issue edit` grows a
parent's task list (signed, author-checked), `issue deps` draws the tree, and claim-task runs block
a dependency cycle with one comment on each of its issues, whichever agents run and how often."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentmesh.core.markers import marker_text
from agentmesh.core.vocab import Label
from agentmesh.forge.base import Forbidden
from agentmesh.forge.local import LocalForge
from tests.support import agent_forge, agent_mesh, git, local_forge_remote
from tests.support.cli import ok_json, run_cli


def cli(tmp_path: Path, remote: Path, *args: str, agent: str | None = "alice"):
    who = ["--remote", str(remote)] + (["--agent", agent] if agent else [])
    return run_cli(*who, *args, cwd=tmp_path)


@pytest.fixture
def remote(tmp_path):
    return local_forge_remote(tmp_path / "remote.git")


def test_issue_edit_grows_a_task_list_and_issue_deps_draws_the_tree(tmp_path, remote):
    forge = agent_forge(agent_mesh(remote, tmp_path / "hosts", "alice"))
    parent = forge.create_issue("Parent", "The whole job.", ["task"])
    child = forge.create_issue("Child \x1b]0;pwned\x07one", "", ["task"])
    other = forge.create_issue("Child two", "", ["task"])

    edited = ok_json(cli(tmp_path, remote, "issue", "edit", str(parent.number), "--add-task", str(child.number),
                         "--add-task", str(other.number), "--json"))
    assert edited["body"] == f"The whole job.\n\n- [ ] #{child.number}\n- [ ] #{other.number}\n"
    renamed = forge.edit_issue(parent.number, title="Parent job", add_tasks=[child.number])
    assert (renamed.title, renamed.body) == ("Parent job", edited["body"])  # a listed task is not added twice
    item = git("cat-file", "-p", f"refs/agentmesh/items/{parent.number}", cwd=remote)
    assert "gpgsig -----BEGIN SSH SIGNATURE-----" in item and "issue: edit" in item and "Agentmesh-Actor: alice" in item

    # someone else may not edit alice's issue without write access; the control: with it, they may
    forge.set_permission("mallory", "read")
    with pytest.raises(Forbidden, match="may not edit"):
        LocalForge(forge.cache, user="mallory").edit_issue(parent.number, title="Mine now")
    assert LocalForge(forge.cache, user="bob").edit_issue(other.number, body=f"Depends on #{parent.number}").body \
        == f"Depends on #{parent.number}"
    forge.close_issue(child.number)

    data = ok_json(cli(tmp_path, remote, "issue", "deps", str(parent.number), "--json", agent=None))
    tree = data["tree"]
    assert (tree["issue"], tree["title"], tree["state"], tree["mark"]) == (parent.number, "Parent job", "open", None)
    assert [(d["issue"], d["state"], d["mark"]) for d in tree["depends_on"]] == [
        (child.number, "closed", None), (other.number, "open", None)]
    assert [(d["issue"], d["mark"]) for d in tree["depends_on"][1]["depends_on"]] == [(parent.number, "cycle")]
    assert data["cycles"] == [{"members": [parent.number, other.number],
                               "path": [parent.number, other.number, parent.number]}]

    text = cli(tmp_path, remote, "issue", "deps", str(parent.number), agent=None)
    assert text.returncode == 0, text.stderr
    assert "\x1b" not in text.stdout and "\x07" not in text.stdout  # forge text is made safe for the terminal
    assert text.stdout.splitlines() == [
        f"#{parent.number} Parent job [open]",
        f"├── #{child.number} Child one [closed]",
        f"└── #{other.number} Child two [open]",
        f"    └── #{parent.number} Parent job [open] (cycle)",
        f"cycle: #{parent.number} -> #{other.number} -> #{parent.number} (none of them can start)",
    ]
    missing = cli(tmp_path, remote, "issue", "deps", "99", agent=None)
    assert missing.returncode == 1 and "#99 not found" in missing.stderr


def tick(tmp_path: Path, remote: Path, agent: str, *flags: str) -> dict:
    return ok_json(cli(tmp_path, remote, "claim-task", *flags, "--json", agent=agent))


def test_claim_task_blocks_a_dependency_cycle_with_one_comment_each(tmp_path, remote):
    human = agent_forge(agent_mesh(remote, tmp_path / "hosts", "human"))
    first = human.create_issue("First", "", ["task"])
    second = human.create_issue("Second", f"Depends on #{first.number}", ["task"])
    human.edit_issue(first.number, add_tasks=[second.number])
    members = (first.number, second.number)
    tag = marker_text(f"cycle/{first.number}-{second.number}")

    planned = tick(tmp_path, remote, "ada", "--dry-run")
    assert [(e["event"], e["issue"]) for e in planned["events"] if e["event"].startswith("would-")] == [
        ("would-block-cycle", first.number)]
    assert all(Label.BLOCKED not in human.get_issue(n).labels for n in members)  # a dry run writes nothing

    def check(report: dict) -> None:
        assert not [e for e in report["events"] if e["event"] == "claimed"]  # neither is ever worked on
        for number in members:
            assert Label.BLOCKED in human.get_issue(number).labels
            [comment] = [c for c in human.list_comments(number) if tag in c.body]
            assert comment.author == "ada" and f"#{first.number} -> #{second.number} -> #{first.number}" in comment.body

    report = tick(tmp_path, remote, "ada")
    assert [e["detail"] for e in report["events"] if e["event"] == "cycle-blocked"] == [
        f"dependency cycle #{first.number} -> #{second.number} -> #{first.number}"]
    check(report)
    check(tick(tmp_path, remote, "bob"))  # settled: bob adds nothing

    # a human takes one label off, the cycle still there. Both agents alive now, bob keeps the cycle of
    # #1 (cycle_keeper: 1 % 2): ada leaves it alone, bob puts the label back and posts no second
    # comment, ada's marker standing for the mesh
    human.remove_labels(first.number, [Label.BLOCKED])
    assert first.number == 1
    tick(tmp_path, remote, "ada")
    assert Label.BLOCKED not in human.get_issue(first.number).labels
    check(tick(tmp_path, remote, "bob"))
    assert git("log", "--format=%s", "main", cwd=remote) == "Initial commit"
