"""What a `status --watch` redraw costs against GitHub's rate limit once nothing changed (issue 17).

The second redraw of an unchanged fleet asks again only for what a memo cannot know (the open issues,
the open PRs, a PR head's CI that is not final), each a conditional request answered `304`, which
GitHub does not count; a PR's reviews are not asked for again while its head and update time stay.
"""

from __future__ import annotations

import time

from agentmesh.agent.mesh import Mesh
from agentmesh.ops.status import StatusMemo, gather
from tests.contract.spec import ContractMock, fake_forge_mesh, validator
from tests.support import make_remote


def test_an_unchanged_redraw_costs_nothing_against_the_github_rate_limit(tmp_path):
    checker = validator("github")  # skips when the API description is absent
    remote = make_remote(tmp_path / "remote.git")
    fake, first_mesh = fake_forge_mesh("github", remote, tmp_path / "state", agent="obs", bot="agent-1",
                                       token_env="TOKEN")
    fake.new_item("an issue", "")
    pull = fake.new_item("a PR", "", head="a/1-x", base="main", state="open", last_head_sha=fake.branches["main"])
    memo = StatusMemo()

    def redraw():  # a new Mesh and forge client per redraw, as the command makes them
        mesh = Mesh(first_mesh.host, env={"TOKEN": fake.token})
        return gather(mesh, mesh.open_forge(), time.time(), memo=memo)

    with ContractMock(checker) as mock:
        fake.install(mock)
        first = redraw()
        asked = len(fake.requests)
        fake.requests.clear()
        same = redraw()
        again = list(fake.requests)
        fake.requests.clear()
        pull.updated_at = fake.now()  # e.g. a review was posted: the PR's reviews are read again
        redraw()
        after_update = list(fake.requests)
    assert [p.number for p in same.pulls] == [p.number for p in first.pulls] == [pull.number]
    assert [status for _, _, status in again] == [304] * len(again) and len(again) < asked, (again, asked)
    assert not any(path.endswith("/reviews") for _, path, _ in again)
    assert any(path.endswith(f"/pulls/{pull.number}/reviews") for _, path, _ in after_update)
