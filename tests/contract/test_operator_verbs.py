"""`agentmesh issue cancel N` and `issue requeue N` on Gitea and GitHub (issue 15, item 8): the operator
code behind the CLI against the spec-validated fakes, every request checked against the official API
description. The git side is real: a bare remote holding ada's claim on #1 (the claim protocol) and
her pushed work branch, which the fake hosts (tests/support/fakes/git_hosted.py).

cancel comments and closes the issue, closes ada's PR unmerged and deletes its branch and her claim
on the remote; requeue clears failed attempts that ada's bot recorded through the forge (comment
markers, the failed and dead-letter labels). Both are idempotent: a rerun writes nothing.
"""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest

from agentmesh.agent.mesh import Mesh
from agentmesh.agent.stages import attempts_so_far, record_failure
from agentmesh.cli.issue import operate
from agentmesh.core.markers import pull_marker
from agentmesh.core.vocab import Label
from tests.contract.spec import ContractMock, ContractScene, fake_forge_mesh, push_work_branch, validator
from tests.support import human_commit, make_remote, remote_refs

BOT, OPERATOR, ISSUE, BRANCH = "ada-bot", "grace", 1, "ada/1-fix"
TOKEN_ENV = "MESH_FORGE_TOKEN"
WRITES = ("POST", "PATCH", "PUT", "DELETE")


@dataclass
class Scene(ContractScene):
    grace: Mesh

    def operate(self, verb: str, **args) -> int:
        return operate(self.grace, ISSUE, verb, as_json=True, **args)

    def writes(self) -> list[str]:
        return [f"{c.request.method} {c.request.url}" for c in self.mock.calls if c.request.method in WRITES]

    def labels(self, number: int) -> set[str]:
        return set(self.forge.get_issue(number).labels)


def build(stack: ExitStack, tmp_path: Path, kind: str) -> Scene:
    checker = validator(kind)  # skips when the API description is absent
    remote = make_remote(tmp_path / "remote.git")
    push_work_branch(remote, BRANCH, agent="ada", issue=ISSUE)
    fake, ada = fake_forge_mesh(kind, remote, tmp_path / "ada", agent="ada", bot=BOT, token_env=TOKEN_ENV,
                                hosted=True)
    token = fake.add_account(OPERATOR, "write")
    grace = Mesh(ada.host.model_copy(update={"agent": OPERATOR, "host": "host-grace",
                                             "state_dir": tmp_path / "grace"}), env={TOKEN_ENV: token})
    mock = stack.enter_context(ContractMock(checker))
    fake.install(mock)
    return Scene(kind, remote, ada, ada.open_forge(), fake, mock, checker.validated, grace)


@pytest.fixture(params=["gitea", "github"])
def scene(request, tmp_path):
    with ExitStack() as stack:
        yield build(stack, tmp_path, request.param)


def test_cancel_closes_the_issue_and_takes_down_the_agents_pr_branch_and_claim(scene):
    forge = scene.forge
    assert forge.create_issue("Fix the thing", "", ["task"]).number == ISSUE
    claim = scene.mesh.claims().acquire(ISSUE, work_branch=BRANCH)
    body = f"Closes #{ISSUE}\n\n<!-- {pull_marker('ada', ISSUE, claim.sha or '')} -->\n"
    pull = forge.create_pull(head=BRANCH, base="main", title=f"Fix the thing (#{ISSUE})", body=body)
    forge.add_labels(pull.number, [Label.PR])
    human_commit(scene.remote, {"other.txt": "a human's fix\n"}, branch="human-fix", base="main")
    human = forge.create_pull(head="human-fix", base="main", title="A human's", body=f"Closes #{ISSUE}\n")
    claim_ref = scene.mesh.claims().ref(ISSUE)
    assert {f"refs/heads/{BRANCH}", claim_ref} <= set(remote_refs(scene.remote))

    assert scene.operate("cancel", reason="not wanted any more") == 0
    assert forge.get_issue(ISSUE).state == "closed"
    assert forge.get_pull(pull.number).state == "closed" and not scene.fake.items[pull.number].merged
    assert forge.get_pull(human.number).state == "open"  # a human's PR that closes it is left alone
    refs = remote_refs(scene.remote)
    assert f"refs/heads/{BRANCH}" not in refs and claim_ref not in refs and "refs/heads/human-fix" in refs
    said = [c.body for c in forge.list_comments(ISSUE)]
    assert len(said) == 1 and "`grace` cancelled this issue: not wanted any more" in said[0]
    assert [c.author for c in forge.list_comments(pull.number)] == [OPERATOR]

    before = len(scene.writes())
    assert scene.operate("cancel", reason="not wanted any more") == 0  # idempotent: nothing written twice
    assert scene.writes()[before:] == []
    assert scene.all_validated()


def test_requeue_clears_the_failed_attempts_the_agent_recorded(scene):
    forge = scene.forge
    assert forge.create_issue("Fix the thing", "", ["task"]).number == ISSUE
    trusted = {BOT, OPERATOR}.__contains__  # both have write access
    for attempt in (1, 2):  # ada's bot records two failed attempts: the second is the last allowed
        failed = record_failure(forge, ISSUE, forge.list_comments(ISSUE), agent="ada", claim_attempt=attempt,
                                reason="tests fail", details="", max_attempts=2, trusted=trusted)
    assert failed.dead and {Label.FAILED, Label.DEAD_LETTER} <= scene.labels(ISSUE)

    assert scene.operate("requeue") == 0
    assert not {Label.FAILED, Label.DEAD_LETTER} & scene.labels(ISSUE)
    assert attempts_so_far(forge.list_comments(ISSUE), trusted) == 0
    assert "its 2 failed attempt(s) no longer count" in forge.list_comments(ISSUE)[-1].body

    before = len(scene.writes())
    assert scene.operate("requeue") == 0  # idempotent: nothing to requeue, nothing written
    assert scene.writes()[before:] == []
    assert scene.all_validated()
