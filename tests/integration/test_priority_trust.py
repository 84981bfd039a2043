"""Issue 15: a `priority:` label ranks an issue only when a maintainer or roster agent set it, as a
preempting label preempts (test_preempt_trust.py). What ada's claim-task ranks (ClaimTask.select,
agent/claim_task.py) on a real local-forge remote with a roster, where who set a label is the signer of
the item commit that added it: eve, an outsider who can push, marks the oldest issue critical; the
maintainer marks a newer one high.
"""

from __future__ import annotations

from agentmesh.agent.claim_task import ClaimTask, TickReport
from agentmesh.host.roster import ROSTER_PATH
from tests.support import agent_forge, agent_mesh, human_commit, local_forge_remote, path_only_env, roster_yaml


def test_an_outsiders_priority_label_ranks_as_no_priority(tmp_path):
    remote = local_forge_remote(tmp_path / "remote.git")
    human = agent_mesh(remote, tmp_path / "humans", "human")
    ada = agent_mesh(remote, tmp_path / "hosts", "ada")
    human_commit(remote, {ROSTER_PATH: roster_yaml([ada], [{"login": "human", "key": human.public_key.line}])},
                 message="roster: ada, maintained by human")
    filer, eve = agent_forge(human), agent_forge(agent_mesh(remote, tmp_path / "hosts", "eve"))
    outsiders = filer.create_issue("Outsider's", "", ["task"]).number
    plain = filer.create_issue("Plain", "", ["task"]).number
    maintainers = filer.create_issue("Maintainer's", "", ["task"]).number
    eve.add_labels(outsiders, ["priority:critical"])
    filer.add_labels(maintainers, ["priority:high"])

    mesh = agent_mesh(remote, tmp_path / "hosts", "ada")
    forge = agent_forge(mesh)
    task = ClaimTask(mesh, forge, TickReport("ada"), dry_run=True, env=path_only_env())
    selection = task.select(forge.list_issues(state="open"), [], set(), {})
    assert selection.candidates[0].number == maintainers  # then the two ties, in ada's tie order (core/select.py)
    assert {c.number: c.score.priority for c in selection.candidates} == {maintainers: 30.0, outsiders: 15.0,
                                                                          plain: 15.0}
    why = "ignored priority:critical: set by `unverified:eve`, not a maintainer or roster agent"
    assert [(e.event, e.issue, e.detail) for e in task.report.events] == [("override", outsiders, why)]
