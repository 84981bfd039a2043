"""Issue 15, item 10: a `priority:critical` label preempts only when a maintainer or roster agent set it.
What ada's running jobs rank at a heartbeat (ClaimTask.rank_now, agent/claim_task.py) on a real
local-forge remote with a roster, where who set a label is the signer of the item commit that added it:
eve, an outsider who can push, labels one issue critical; the maintainer labels another.
"""

from __future__ import annotations

from agentmesh.agent.claim_task import ClaimTask, TickReport
from agentmesh.core.preempt import RunningJob, choose_preemption
from agentmesh.host.roster import ROSTER_PATH
from tests.support import agent_forge, agent_mesh, human_commit, local_forge_remote, path_only_env, roster_yaml

CRITICAL = "priority:critical"


def test_only_a_trusted_critical_label_preempts_and_an_ignored_one_is_reported(tmp_path):
    remote = local_forge_remote(tmp_path / "remote.git")
    human = agent_mesh(remote, tmp_path / "humans", "human")
    ada = agent_mesh(remote, tmp_path / "hosts", "ada")
    human_commit(remote, {ROSTER_PATH: roster_yaml([ada], [{"login": "human", "key": human.public_key.line}])},
                 message="roster: ada, maintained by human")
    filer, eve = agent_forge(human), agent_forge(agent_mesh(remote, tmp_path / "hosts", "eve"))
    running = [RunningJob(99, 15.0)]  # ada's one seat is busy (an issue of its own)

    def decide() -> tuple[int | None, ClaimTask]:
        mesh = agent_mesh(remote, tmp_path / "hosts", "ada")  # a new run reads the roster afresh
        task = ClaimTask(mesh, agent_forge(mesh), TickReport("ada"), dry_run=False, env=path_only_env())
        decided = choose_preemption(running, task.rank_now(), seats=1, preempting=task.policy.preemption.labels)
        return (decided.urgent if decided else None), task

    outsiders = filer.create_issue("Outsider's", "", ["task"]).number
    eve.add_labels(outsiders, [CRITICAL])
    urgent, task = decide()
    assert urgent is None
    said = [(e.event, e.issue, e.detail) for e in task.report.events]
    why = f"ignored {CRITICAL}: set by `unverified:eve`, not a maintainer or roster agent"
    assert said == [("override", outsiders, why)], said

    maintainers = filer.create_issue("Maintainer's", "", ["task"]).number
    filer.add_labels(maintainers, [CRITICAL])
    assert decide()[0] == maintainers
