"""Issue 15, item 6.9: the PR of a crashed run keeps no stale `agentmesh:working` label on its issue.

A real claim-task process works an issue on a real local-forge remote and is killed (SIGKILL, by the
remote's pre-receive hook, which also refuses that push) as it labels its new PR, or as it moves the
issue to review. On the local forge both ride on the push that opens the PR (one atomic push: the PR,
its label and the issue's review stage), so the crash leaves the work branch pushed, no PR, and the
issue still `agentmesh:working`. The next run finds its claim with the pushed work and opens the one
PR, labelled, and the issue ends labelled for review only. (On Gitea and GitHub the three are separate
calls, and a crash between them is settled by the renewing run, ClaimTask.settle_review: no crash test
reaches that state on the local forge any more; see ai-memory/architecture/next.md.)
"""

from __future__ import annotations

import pytest

from agentmesh.core.vocab import Label, Stage
from tests.support import agent_forge, agent_mesh, demo_body, local_forge_remote
from tests.support.cli import ok_json, run_cli
from tests.support.crash import claim_task_killed_at_push

STAGES = {s.value for s in Stage}


@pytest.mark.parametrize("killed_at", [Label.PR, Label.REVIEW])  # labelling the PR, or the issue
def test_a_crashed_runs_pr_ends_with_the_review_stage_only(tmp_path, killed_at):
    remote = local_forge_remote(tmp_path / "remote.git")
    human = agent_forge(agent_mesh(remote, tmp_path / "humans", "human"))
    issue = human.create_issue("Add notes", demo_body("notes.txt", "notes\n"), ["task"]).number
    # killed, and the push refused, as it pushes `killed_at` onto an issue or PR
    config = claim_task_killed_at_push(tmp_path, remote, "pre-receive",
                                       f'ref.startswith("refs/agentmesh/items/") and set(new) != {{"0"}} '
                                       f"and {killed_at.value!r} in labels(new)")
    assert human.list_pulls(state="open") == []  # the PR, its label and the stage were one refused push ...
    assert Stage.WORKING in human.get_issue(issue).labels  # ... so the issue is still working

    ok_json(run_cli("--config", str(config), "claim-task", "--json", cwd=tmp_path))
    [pull] = human.list_pulls(state="open")  # one PR, from the work the crashed run pushed
    assert {label for label in human.get_issue(issue).labels if label in STAGES} == {Stage.REVIEW}
    assert Label.PR in human.get_pull(pull.number).labels
