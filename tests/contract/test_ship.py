"""`agentmesh pr ship N` on Gitea and GitHub (issue 15, item 8): the operator code behind the CLI against
the spec-validated fakes, every request checked against the official API description.

The git side is real: a bare remote with the roster on main (ada an agent with the forge login
`ada-bot`, grace a maintainer) and ada's work branch pushed to it. The fake hosts that remote
(tests/support/fakes/git_hosted.py), so the PR's head is the branch's real head, whose changed paths
ship reads from git, and a merge is a real merge commit on main. Only the maintainer's token ships; it
ships the head it checked, pinned in the merge request, and a head that moves meanwhile is not merged.
"""

from __future__ import annotations

import json
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest

from agentmesh.agent.mesh import Mesh
from agentmesh.agent.operator import HeadMoved
from agentmesh.cli.issue import operate
from agentmesh.core.errors import UserError
from agentmesh.host.roster import ROSTER_PATH
from tests.contract.spec import ContractMock, ContractScene, fake_forge_mesh, push_work_branch, validator
from tests.support import git, human_commit, make_remote, roster_yaml

BOT, MAINTAINER, ISSUE, BRANCH = "ada-bot", "grace", 1, "ada/1-fix"
TOKEN_ENV = "MESH_FORGE_TOKEN"


@dataclass
class Scene(ContractScene):
    pull: int
    head: str
    main: str
    grace: Mesh

    def ship(self, mesh: Mesh, sha: str | None = None) -> int:
        return operate(mesh, self.pull, "ship", as_json=True, sha=sha)

    def merged(self) -> bool:
        return self.fake.items[self.pull].merged

    def main_now(self) -> str:
        return git("rev-parse", "main", cwd=self.remote)

    def merge_requests(self) -> list[dict]:
        return [json.loads(c.request.body) for c in self.mock.calls
                if str(c.request.url).endswith(f"/pulls/{self.pull}/merge")]

    def move_head(self) -> str:
        return human_commit(self.remote, {"more.txt": "more\n"}, branch=BRANCH, message="a push meanwhile")


def build(stack: ExitStack, tmp_path: Path, kind: str) -> Scene:
    checker = validator(kind)  # skips when the API description is absent
    remote = make_remote(tmp_path / "remote.git")
    head = push_work_branch(remote, BRANCH, agent="ada", issue=ISSUE)
    fake, ada = fake_forge_mesh(kind, remote, tmp_path / "ada", agent="ada", bot=BOT, token_env=TOKEN_ENV,
                                hosted=True)
    token = fake.add_account(MAINTAINER, "admin")
    main = human_commit(remote, {ROSTER_PATH: roster_yaml([ada], [{"login": MAINTAINER}], logins={"ada": BOT})},
                        message="roster: ada, grace maintains")
    grace = Mesh(ada.host.model_copy(update={"agent": MAINTAINER, "host": "host-grace",
                                             "state_dir": tmp_path / "grace"}), env={TOKEN_ENV: token})
    assert fake.new_item("Fix the thing", "").number == ISSUE
    pull = fake.new_item(f"Fix the thing (#{ISSUE})", f"Closes #{ISSUE}\n", head=BRANCH, base="main")
    assert fake.head_sha(pull) == head  # the fake's PR head is the real commit on the remote
    mock = stack.enter_context(ContractMock(checker))
    fake.install(mock)
    return Scene(kind, remote, ada, None, fake, mock, checker.validated, pull.number, head, main, grace)


@pytest.fixture(params=["gitea", "github"])
def scene(request, tmp_path):
    with ExitStack() as stack:
        yield build(stack, tmp_path, request.param)


def test_only_the_maintainers_token_ships_and_it_merges_the_head_it_checked(scene, capsys):
    with pytest.raises(UserError, match="only a maintainer"):  # ada's token: a roster agent, not a maintainer
        scene.ship(scene.mesh)
    moved = scene.move_head()
    with pytest.raises(HeadMoved, match="moved"):  # the head grace looked at is no longer the PR's
        scene.ship(scene.grace, sha=scene.head)
    assert not scene.merged() and scene.main_now() == scene.main and scene.merge_requests() == []

    assert scene.ship(scene.grace, sha=moved) == 0
    assert scene.merged()
    assert git("rev-parse", "main^1", "main^2", cwd=scene.remote).split() == [scene.main, moved]
    pinned = "head_commit_id" if scene.kind == "gitea" else "sha"
    assert [r[pinned] for r in scene.merge_requests()] == [moved]
    approvals = [r for r in scene.fake.reviews[scene.pull] if r["state"] == "APPROVED"]
    assert [(r["user"]["login"], r["commit_id"]) for r in approvals] == [(MAINTAINER, moved)]

    main = scene.main_now()
    capsys.readouterr()
    assert scene.ship(scene.grace) == 0  # idempotent: already merged, nothing sent
    assert "already merged" in capsys.readouterr().out
    assert scene.main_now() == main and len(scene.merge_requests()) == 1
    assert scene.all_validated()


def test_a_head_that_moves_while_it_is_shipped_is_not_merged(scene):
    fake = scene.fake
    racing = []

    def push_then_merge(**kw):  # someone pushes between grace's check and her merge request
        racing.append(scene.move_head())
        return fake.merge_pull(**kw)

    fake.routes = [(verb, pattern, push_then_merge if handler == fake.merge_pull else handler)
                   for verb, pattern, handler in fake.routes]
    with pytest.raises(HeadMoved, match="moved while it was shipped"):
        scene.ship(scene.grace)
    assert len(racing) == 1 and not scene.merged() and scene.main_now() == scene.main
    assert scene.all_validated()
