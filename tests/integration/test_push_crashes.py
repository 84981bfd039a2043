"""A claim-task killed (SIGKILL) around the pushes whose shape issue 16 changed: the claim (the mirror ref now
moved by the push itself) and the journal (its first push pinned to the head the run listed). The remote's
hook kills the process as the push arrives: in `pre-receive` the push is refused (killed before it lands), in
`post-receive` it has landed (killed after it, before the run could record anything of it). Whatever the
mirror ended up holding, the next run finishes the work: one claim, one PR, each journal entry once."""

from __future__ import annotations

import json

import pytest

from agentmesh.core.vocab import Stage
from tests.support import agent_forge, agent_mesh, demo_body, git, local_forge_remote
from tests.support.cli import ok_json, run_cli
from tests.support.crash import claim_task_killed_at_push

STAGES = {s.value for s in Stage}


@pytest.mark.parametrize(("hook", "prefix"), [
    ("pre-receive", "refs/heads/claim/"),  # the claim (with the issue's `working` stage) refused
    ("post-receive", "refs/heads/claim/"),  # the claim landed; the run never saw it
    ("post-receive", "refs/heads/agentmesh/journals/"),  # the journal landed; its entries still queued
])
def test_a_run_killed_at_a_push_is_finished_by_the_next(tmp_path, hook, prefix):
    remote = local_forge_remote(tmp_path / "remote.git")
    reader = agent_mesh(remote, tmp_path / "humans", "human")
    human = agent_forge(reader)
    issue = human.create_issue("Add notes", demo_body("notes.txt", "notes\n"), ["task"]).number
    config = claim_task_killed_at_push(tmp_path, remote, hook, f'ref.startswith({prefix!r}) and set(new) != {{"0"}}')
    if hook == "pre-receive":
        assert human.list_pulls(state="open") == [] and reader.claims().read(issue) is None

    ok_json(run_cli("--config", str(config), "claim-task", "--json", cwd=tmp_path))  # the next run finishes it
    [pull] = human.list_pulls(state="open")  # one PR
    assert {label for label in human.get_issue(issue).labels if label in STAGES} == {Stage.REVIEW}
    held = reader.claims().read(issue)
    assert held is not None and held[1] is not None and held[1].agent == "ada"
    lines = journal_lines(remote, "ada")  # as pushed: a line pushed twice would be there twice
    ids = [line["id"] for line in lines]
    assert len(ids) == len(set(ids)), lines
    assert [line["event"] for line in lines].count("claimed") == 1, lines
    assert [line.get("pr") for line in lines if line["event"] == "pr-opened"] == [pull.number], lines


def journal_lines(remote, agent: str) -> list[dict]:
    ref = f"refs/heads/agentmesh/journals/{agent}"
    paths = git("ls-tree", "-r", "--name-only", ref, cwd=remote).split("\n")
    return [json.loads(line) for path in paths if path.endswith(".jsonl")
            for line in git("show", f"{ref}:{path}", cwd=remote).splitlines() if line.strip()]
