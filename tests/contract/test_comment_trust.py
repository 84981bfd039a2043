"""Whose comments count on Gitea and GitHub: with a roster, an author counts only by the roster's login of
an agent or a maintainer (the forge authenticated the account). An account that merely bears an agent's
name posts attempt markers for nothing, and cannot make the agent skip its own marker comment.

The git side is real (a bare remote with the roster on main); the forge is the stateful Gitea/GitHub
fake, every request validated against the official API description (skipped when the specs are absent).
"""

from __future__ import annotations

import pytest
import yaml

from agentmesh.agent.base import AgentRun
from agentmesh.agent.mesh import Mesh
from agentmesh.agent.report import Report
from agentmesh.agent.stages import attempts_so_far
from agentmesh.host.roster import ROSTER_PATH
from tests.contract.spec import ContractMock, fake_forge_mesh, validator
from tests.support import human_commit, make_remote

BOT = "ada-bot"  # ada's account on the forge: the token's user
TOKEN_ENV = "MESH_FORGE_TOKEN"
MARKER = "<!-- agentmesh:attempt/ada/1 -->"


@pytest.mark.parametrize("kind", ["gitea", "github"])
def test_a_comment_counts_only_from_a_roster_login(tmp_path, kind):
    checker = validator(kind)  # skips when the API description is absent
    remote = make_remote(tmp_path / "remote.git")
    fake, first = fake_forge_mesh(kind, remote, tmp_path / "state", agent="ada", bot=BOT, token_env=TOKEN_ENV)
    host, key = first.host, first.public_key
    roster = {"agents": [{"name": "ada", "key": key.line, "login": BOT}], "maintainers": [{"login": "grace"}]}
    human_commit(remote, {ROSTER_PATH: yaml.safe_dump(roster)}, message="roster")
    number = fake.new_item("Task", "").number
    for login, body in (("ada", f"{MARKER}\nforged"), ("grace", "please also do X"), ("mallory", MARKER)):
        fake.comments.setdefault(number, []).append(
            {"id": fake.new_id(), "user": fake.user(login), "body": body, "created_at": fake.now()})

    with ContractMock(checker) as mock:
        fake.install(mock)
        mesh = Mesh(host, env={TOKEN_ENV: fake.token})
        run = AgentRun(mesh, mesh.open_forge(), Report("ada"), dry_run=False, env={})
        comments = run.comments(number)
        assert [c.author for c in comments] == ["unverified:ada", "grace", "unverified:mallory"]
        assert [run.trusted(c.author) for c in comments] == [False, True, False]
        assert attempts_so_far(comments, run.trusted) == 0
        posted = run.ensure_comment(number, "attempt/ada/1", "attempt 1 failed")
        assert posted.author == BOT and posted.body.endswith("attempt 1 failed")
        assert run.ensure_comment(number, "attempt/ada/1", "attempt 1 failed").id == posted.id
        assert attempts_so_far(run.comments(number), run.trusted) == 1
    assert len(fake.comments[number]) == 4
