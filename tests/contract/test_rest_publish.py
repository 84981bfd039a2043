"""A PR opened on a REST forge (Gitea, GitHub) reads nothing that only the local forge uses.

Jobs.ring_reviewers reads the presence refs to ask the ring's reviewers in the local forge's PR-creation push;
a REST forge creates its PR by a call of its own (`Forge.create_fenced_pull` declines), and monitor-prs asks its
reviewers. The remote is real git, the forge the stateful fake, every git process counted (tests/support/gitcount).
"""

from __future__ import annotations

import pytest

from agentmesh.agent.claim_task import claim_task
from agentmesh.core.vocab import Event
from tests.contract.spec import ContractMock, fake_forge_mesh, validator
from tests.support import demo_body, make_remote, path_only_env
from tests.support.gitcount import counting_git


@pytest.mark.parametrize("kind", ["gitea", "github"])
def test_opening_a_pr_on_a_rest_forge_does_not_read_the_presence_refs(tmp_path, kind):
    checker = validator(kind)  # skips when the API description is absent
    remote = make_remote(tmp_path / "remote.git")
    fake, mesh = fake_forge_mesh(kind, remote, tmp_path / "state", agent="ada", bot="agent-1", token_env="TOKEN",
                                 hosted=True)
    task = fake.create_label("task")["id"]
    fake.new_item("Add notes", demo_body("notes.txt", "notes\n"), labels=[task])
    with ContractMock(checker) as mock:
        fake.install(mock)
        with counting_git(tmp_path / "count") as count:
            report = claim_task(mesh, mesh.open_forge(), env=path_only_env())
    assert Event.PR_OPENED in [e.event for e in report.events], report.to_json()
    presence = "refs/mirror/" + mesh.policy.presence.ref_prefix.removeprefix("refs/")
    assert [a for a in count.argvs() if any(arg.startswith(presence) for arg in a)] == []
