"""`review.required_checks` on Gitea and GitHub: real monitor-prs code against the spec-validated fakes.

The git side is real: a bare remote whose mesh policy requires `ci/tests` and auto-merges, alice's
claim on #1 through the claim protocol and her pushed work branch. The forge side is the stateful
Gitea/GitHub fake behind `responses`, every request validated against the official API description:
issue #1, alice's PR and bob's approval on its head. A missing `ci/tests` holds the merge, so does
another context that passes or a pending `ci/tests`; once the forge reports it success (a commit
status, or on GitHub a check run of that name) alice merges.
"""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest

from agentmesh.agent.monitor import monitor_prs
from tests.contract.spec import ContractMock, ContractScene, fake_forge_mesh, push_work_branch, validator
from tests.support import make_remote, remote_refs

AGENT, BOT, ISSUE, BRANCH = "alice", "agent-1", 1, "alice/1-fix"
TOKEN_ENV = "MESH_FORGE_TOKEN"
POLICY = (f"review: {{ring: [alice, bob], bot_users: [{BOT}], required_checks: [ci/tests]}}\n"
          "merge: {auto: true}\ngates: []\n")


@dataclass
class Scene(ContractScene):
    pull: int
    head: str

    def monitor(self) -> list[tuple[str, str]]:
        report = monitor_prs(self.mesh, self.forge, env={})
        assert report.exit_code == 0, report.to_json()
        return [(e.event, e.detail) for e in report.events if e.pr == self.pull]

    def merged(self) -> bool:
        return self.fake.items[self.pull].merged


def build(stack: ExitStack, tmp_path: Path, kind: str) -> Scene:
    checker = validator(kind)
    remote = make_remote(tmp_path / "remote.git", mesh_yaml=POLICY)
    head = push_work_branch(remote, BRANCH, agent=AGENT, issue=ISSUE)

    fake, mesh = fake_forge_mesh(kind, remote, tmp_path / "state", agent=AGENT, bot=BOT, token_env=TOKEN_ENV)
    won = mesh.claims().acquire(ISSUE, work_branch=BRANCH)
    assert won.won
    assert fake.new_item("Fix the thing", "").number == ISSUE
    fake.commits[head] = {**fake.commits[fake.branches["main"]], "fix.txt": "fixed\n"}  # what the merge takes
    body = f"Closes #{ISSUE}\n\n<!-- agentmesh:pr/{AGENT}/{ISSUE}/{won.sha} -->\n"
    pull = fake.new_item(f"Fix the thing (#{ISSUE})", body, head=BRANCH, base="main", last_head_sha=head)
    fake.reviews[pull.number] = [fake.review_entry("APPROVED", "Approved", head, user="bob")]  # both forges' word

    mock = stack.enter_context(ContractMock(checker))
    fake.install(mock)
    return Scene(kind, remote, mesh, mesh.open_forge(), fake, mock, checker.validated, pull.number, head)


@pytest.fixture
def scene(tmp_path):
    with ExitStack() as stack:
        yield lambda kind: build(stack, tmp_path, kind)


@pytest.mark.parametrize("kind, report", [("gitea", "status"), ("github", "status"), ("github", "check run")])
def test_a_missing_required_check_holds_the_merge_and_its_success_lets_it_through(scene, kind, report):
    s = scene(kind)
    assert ("waiting", "required checks not green: ci/tests (missing)") in s.monitor()  # no CI at all
    assert not s.merged()
    s.forge.set_status(s.head, context="lint", state="success")  # another context does not stand in
    assert ("waiting", "required checks not green: ci/tests (missing)") in s.monitor()
    s.forge.set_status(s.head, context="ci/tests", state="pending")
    assert ("waiting", "CI is pending") in s.monitor()
    assert not s.merged() and f"refs/heads/{BRANCH}" in remote_refs(s.remote)

    if report == "check run":
        s.fake.statuses[s.head] = [st for st in s.fake.statuses[s.head] if st["context"] != "ci/tests"]
        s.fake.add_check_run(s.head, "ci/tests")
    else:
        s.forge.set_status(s.head, context="ci/tests", state="success")
    events = s.monitor()
    assert ("merged", "") in events, events
    assert s.merged() and s.fake.items[ISSUE].state == "closed"
    assert f"refs/heads/{BRANCH}" not in remote_refs(s.remote)  # cleaned up after the merge
    assert s.all_validated()


@pytest.mark.parametrize("kind", ["gitea", "github"])
def test_a_failing_required_check_is_red_ci(scene, kind):
    s = scene(kind)
    s.forge.set_status(s.head, context="ci/tests", state="failure", description="2 failed")
    events = s.monitor()
    assert ("ci-failed", "ci/tests") in events and ("waiting", "CI is failure") in events, events
    assert not s.merged() and s.all_validated()
