"""Issue 14's review attacks on Gitea and GitHub: only roster logins approve, steer or get asked.

The adversary has an account on the forge with write access to the repository, but no place in
the roster (`.agentmesh/roster.yaml` on main): `bob`, an account named like the agent bob, whose
roster login is `bob-bot`, and `mallory`, a plain collaborator. They review through the forge's
API with their own tokens. On these forges the account that wrote a review is authenticated, so
trust comes from the roster's logins (agent/trust.py); agent names count for nothing.

Everything but the forge is real: ada and bob are Meshes with their own state and signing keys,
running claim-task and monitor-prs in-process against a real bare remote. The forge is the
stateful Gitea/GitHub fake hosting that remote (tests/support/fakes/git_hosted.py: PR heads are
its branch heads, a merge is a real merge commit on main), every request validated against the
official API description. Each refusal has a positive control by a roster login, so no test
passes by the mesh merely doing nothing.
"""

from __future__ import annotations

import json
from contextlib import ExitStack
from urllib.parse import urlsplit

import pytest
import yaml

from agentmesh.agent.claim_task import claim_task
from agentmesh.agent.mesh import Mesh
from agentmesh.agent.monitor import monitor_prs
from agentmesh.agent.rework import ReworkRequests
from agentmesh.core.markers import attempt_marker, marker_text
from agentmesh.core.vocab import Label
from agentmesh.forge.gitea import GiteaForge
from agentmesh.forge.github import GitHubForge
from agentmesh.host.config import HostConfig
from agentmesh.host.roster import ROSTER_PATH
from tests.contract.spec import GITEA_URL, GITHUB_URL, ContractMock, fake_forge, validator
from tests.support import (
    demo_body,
    forged_claim,
    git,
    human_commit,
    make_remote,
    path_only_env,
    remote_refs,
    roster_yaml,
)

LOGINS = {"ada": "ada-bot", "bob": "bob-bot"}  # the roster's forge login of each agent
MAINTAINER = "grace"
IMPOSTOR = "bob"  # an account named like the agent bob
COLLABORATOR = "mallory"
TOKEN_ENV = "MESH_FORGE_TOKEN"
POLICY = {"merge": {"auto": True}}  # the starter ring (empty): the roster decides who reviews
MODULE = "pkg/mod.py"


class Scene:
    """ada and bob in the roster with their logins, grace its maintainer; one issue for ada's PR."""

    def __init__(self, stack: ExitStack, tmp_path, kind: str):
        self.kind, self.tmp = kind, tmp_path
        self.remote = make_remote(tmp_path / "remote.git", mesh_yaml=yaml.safe_dump(POLICY))
        self.fake = fake_forge(kind, me=LOGINS["ada"], hosting=self.remote)
        self.tokens = {LOGINS["ada"]: self.fake.token, LOGINS["bob"]: self.fake.add_account(LOGINS["bob"]),
                       MAINTAINER: self.fake.add_account(MAINTAINER, "admin"),
                       IMPOSTOR: self.fake.add_account(IMPOSTOR), COLLABORATOR: self.fake.add_account(COLLABORATOR)}
        self.fake.create_label("task")
        checker = validator(kind)  # skips when the API description is absent
        self.validated_before = checker.validated
        self.mock = stack.enter_context(ContractMock(checker))
        self.fake.install(self.mock)
        keys = [self.mesh(agent) for agent in LOGINS]  # an agent's key exists once its state does
        human_commit(self.remote, {ROSTER_PATH: roster_yaml(keys, [{"login": MAINTAINER}], logins=LOGINS)},
                     message="roster: ada and bob, grace maintains")

    def mesh(self, agent: str) -> Mesh:
        """A new Mesh per run, as per command: it reads the policy and roster once."""
        host = HostConfig.model_validate({
            "agent": agent, "host": f"host-{agent}", "remote": str(self.remote),
            "state_dir": str(self.tmp / "hosts" / agent), "executor": {"kind": "demo"},
            "forge": {"kind": self.kind, "url": GITEA_URL if self.kind == "gitea" else GITHUB_URL,
                      "repo": f"{self.fake.owner}/{self.fake.name}", "token_env": TOKEN_ENV}})
        return Mesh(host, env={TOKEN_ENV: self.tokens[LOGINS[agent]]})

    def monitor(self, agent: str):
        mesh = self.mesh(agent)
        return monitor_prs(mesh, mesh.open_forge(), env=path_only_env())

    def claim_task(self, agent: str):
        mesh = self.mesh(agent)
        return claim_task(mesh, mesh.open_forge(), env=path_only_env())

    def user(self, login: str):
        """A forge client holding `login`'s token, as that person would use the API."""
        repo = f"{self.fake.owner}/{self.fake.name}"
        if self.kind == "gitea":
            return GiteaForge(GITEA_URL, repo, self.tokens[login])
        return GitHubForge(GITHUB_URL, repo, self.tokens[login], cache_dir=self.tmp / "http" / login)

    def opened(self) -> int:
        """ada and bob present, grace's issue worked by ada up to an open PR that asked for its reviewer."""
        self.monitor("ada")
        self.monitor("bob")
        issue = self.user(MAINTAINER).create_issue("Add a module", demo_body(MODULE, "VALUE = 1\n"), ["task"])
        opened = [e.pr for e in self.claim_task("ada").events if e.event == "pr-opened" and e.issue == issue.number]
        assert opened, "ada opened no PR"
        self.monitor("ada")
        return opened[0]

    def review(self, login: str, number: int, event: str) -> None:
        """`login` reviews the PR's current head through the API."""
        head = self.fake.head_sha(self.fake.items[number])
        self.user(login).submit_review(number, event=event, body=f"{event} by {login}", commit_id=head)

    # --- what happened, from the fake's state, the recorded requests and the bare remote ---------------

    def merged(self, number: int) -> bool:
        return self.fake.items[number].merged

    def on_main(self) -> bool:
        return MODULE in git("ls-tree", "-r", "--name-only", "main", cwd=self.remote).split()

    def branch(self, number: int) -> str | None:
        return remote_refs(self.remote, "refs/heads/").get(f"refs/heads/{self.fake.items[number].head}")

    def review_requests(self) -> list[tuple[str, dict]]:
        return [(urlsplit(str(c.request.url)).path, json.loads(c.request.body)) for c in self.mock.calls
                if c.request.method == "POST" and str(c.request.url).endswith("/requested_reviewers")]

    def all_validated(self) -> bool:
        return self.mock.checker.validated - self.validated_before == len(self.mock.calls) > 0


@pytest.fixture(params=["gitea", "github"])
def scene(request, tmp_path):
    with ExitStack() as stack:
        yield Scene(stack, tmp_path, request.param)


def events(report, number: int) -> list[str]:
    return [e.event for e in report.events if e.pr == number]


@pytest.mark.parametrize("adversary", [IMPOSTOR, COLLABORATOR])
def test_an_approval_from_a_login_outside_the_roster_merges_nothing(scene, adversary):
    """Attack 1 on a forge with accounts: `bob` is not bob's login. bob-bot's approval merges."""
    number = scene.opened()
    head = scene.branch(number)
    scene.review(adversary, number, "approve")
    assert "merged" not in events(scene.monitor("ada"), number)
    assert not scene.merged(number) and not scene.on_main() and scene.branch(number) == head

    scene.monitor("bob")  # the control: the roster's reviewer approves under its own login
    [approval] = [r for r in scene.fake.reviews[number] if r["state"] == "APPROVED" and r["user"]["login"] != adversary]
    assert approval["user"]["login"] == LOGINS["bob"] and approval["commit_id"] == head
    assert "merged" in events(scene.monitor("ada"), number)
    assert scene.merged(number) and scene.on_main() and scene.branch(number) is None
    assert scene.all_validated()


def test_a_maintainers_approval_counts(scene):
    number = scene.opened()
    scene.review(COLLABORATOR, number, "approve")
    scene.monitor("ada")
    assert not scene.merged(number)
    scene.review(MAINTAINER, number, "approve")
    assert "merged" in events(scene.monitor("ada"), number)
    assert scene.merged(number) and scene.on_main()
    assert scene.all_validated()


def test_changes_requested_by_a_login_outside_the_roster_steer_no_rework(scene):
    number = scene.opened()
    body = scene.fake.items[number].body  # "Closes #<issue>"
    queue = ReworkRequests(scene.mesh("ada").state.root)
    scene.review(IMPOSTOR, number, "request_changes")
    assert "rework-queued" not in events(scene.monitor("ada"), number)
    assert all(queue.load(n) is None for n in scene.fake.items)

    scene.review(LOGINS["bob"], number, "request_changes")  # the control: from the roster's reviewer
    assert "rework-queued" in events(scene.monitor("ada"), number)
    [queued] = [r for n in scene.fake.items if (r := queue.load(n)) is not None]
    assert queued.pull == number and f"#{queued.issue}" in body
    assert scene.all_validated()


def test_reviews_are_requested_from_roster_logins(scene):
    """Not from agent names: `bob` is someone else's account here."""
    number = scene.opened()
    path = f"{urlsplit(scene.fake.api_url).path}/repos/mesh/work/pulls/{number}/requested_reviewers"
    assert scene.review_requests() == [(path, {"reviewers": [LOGINS["bob"]]})]
    assert scene.fake.items[number].requested_reviewers == [LOGINS["bob"]]
    scene.monitor("ada")  # requested once: a later run does not ask again
    assert len(scene.review_requests()) == 1
    assert scene.all_validated()


def test_an_approval_of_an_older_head_does_not_count(scene):
    number = scene.opened()
    scene.monitor("bob")
    [approval] = [r for r in scene.fake.reviews[number] if r["state"] == "APPROVED"]
    # ada pushes again (a commit signed with her key, so the head is still hers): the approval is stale
    ada = scene.mesh("ada")
    pushed = human_commit(scene.remote, {"pkg/more.py": "MORE = 2\n"}, branch=scene.fake.items[number].head,
                          message="more", sign_with=ada.signing_key)
    assert approval["commit_id"] != pushed == scene.branch(number)
    report = scene.monitor("ada")
    assert "merged" not in events(report, number) and "handed-over" not in events(report, number)
    assert not scene.merged(number) and not scene.on_main()
    assert Label.NEEDS_HUMAN not in [scene.fake.labels[i]["name"] for i in scene.fake.items[number].labels]

    scene.monitor("bob")  # the control: bob reviews the new head, and that approval merges it
    assert "merged" in events(scene.monitor("ada"), number)
    assert scene.merged(number) and scene.fake.items[number].last_head_sha == pushed and scene.on_main()
    assert scene.all_validated()


@pytest.mark.parametrize("author", [IMPOSTOR, LOGINS["bob"]])
def test_failed_attempts_on_an_issue_count_only_from_roster_logins(scene, author):
    """Attempt comments decide when an issue is dead-lettered: `bob`'s are a stranger's, bob-bot's are bob's."""
    scene.monitor("ada")
    issue = scene.user(MAINTAINER).create_issue("Add a module", demo_body(MODULE, "VALUE = 1\n"), ["task"])
    scene.user(MAINTAINER).add_labels(issue.number, [Label.FAILED])
    for attempt in (1, 2):
        scene.user(author).comment(issue.number, f"failed\n\n{marker_text(attempt_marker('bob', attempt))}")
    [claimed] = [e.detail for e in scene.claim_task("ada").events if e.event == "claimed" and e.issue == issue.number]
    assert claimed.endswith(f"attempt {1 if author == IMPOSTOR else 3}")
    assert scene.all_validated()


def test_a_dependency_cycle_is_blocked_with_one_comment_each(scene):
    """Issue 15, item 11, on a forge with accounts: grace's two issues wait for each other. One agent
    comments on each and labels both blocked, whoever runs; the cycle's marker posted by a login outside
    the roster stands for nothing (the control: the agent still comments)."""
    grace = scene.user(MAINTAINER)
    first = grace.create_issue("First", "", ["task"])
    second = grace.create_issue("Second", f"Depends on #{first.number}", ["task"])
    scene.fake.items[first.number].body = f"- [ ] #{second.number}"  # grace edits her issue in the web UI
    tag = marker_text(f"cycle/{first.number}-{second.number}")
    scene.user(IMPOSTOR).comment(first.number, f"{tag}\nnothing to see")

    def check() -> None:
        for number in (first.number, second.number):
            agents = [c for c in scene.fake.comments[number] if tag in c["body"] and c["user"]["login"] != IMPOSTOR]
            assert [c["user"]["login"] for c in agents] == [LOGINS["ada"]]
            assert Label.BLOCKED in [scene.fake.labels[i]["name"] for i in scene.fake.items[number].labels]

    blocked = [e.detail for e in scene.claim_task("ada").events if e.event == "cycle-blocked"]
    assert blocked == [f"dependency cycle #{first.number} -> #{second.number} -> #{first.number}"]
    check()
    scene.claim_task("bob")
    grace.remove_labels(second.number, [Label.BLOCKED])  # the cycle is still there: back it goes, no 2nd comment
    scene.claim_task("ada")
    scene.claim_task("bob")
    check()
    assert scene.all_validated()


def test_a_forged_trailer_pushed_onto_an_agents_pr_is_handed_to_a_human(scene):
    """Attack 2 on a forge with accounts: after bob-bot approved, a collaborator pushes a commit whose
    trailers name ada onto her PR's branch. No signature of hers: the PR goes to a human, unmerged."""
    number = scene.opened()
    scene.monitor("bob")
    pushed = human_commit(scene.remote, {"backdoor.py": "import os\n"}, branch=scene.fake.items[number].head,
                          message=f"more\n\nAgentmesh-Agent: ada\nAgentmesh-Issue: {number}\n")
    assert scene.branch(number) == pushed
    scene.monitor("bob")
    assert "handed-over" in events(scene.monitor("ada"), number)
    assert Label.NEEDS_HUMAN in [scene.fake.labels[i]["name"] for i in scene.fake.items[number].labels]
    assert not scene.merged(number) and not scene.on_main()
    assert scene.all_validated()


def test_a_forged_claim_and_branch_on_a_parked_issue_are_never_adopted(scene):
    """Attack 3 on a forge with accounts: a collaborator pushes a branch with his file and a well-formed
    claim carrying ada's trailers, on an issue grace parked for a human. ada opens no PR for it."""
    scene.monitor("ada")
    scene.monitor("bob")
    scene.fake.create_label(Label.NEEDS_HUMAN)
    number = scene.user(MAINTAINER).create_issue("Add a module", demo_body(MODULE, "VALUE = 1\n"),
                                                 [Label.NEEDS_HUMAN]).number
    branch = f"ada/{number}-add-a-module"
    human_commit(scene.remote, {"evil.py": "EVIL = True\n"}, branch=branch, base="main",
                 message=f"work\n\nAgentmesh-Agent: ada\nAgentmesh-Issue: {number}\n")
    forged_claim(scene.remote, number, "ada", branch)
    for _ in range(2):
        assert "adopted" not in [e.event for e in scene.claim_task("ada").events]
        scene.monitor("bob")
        scene.monitor("ada")
    assert [i.number for i in scene.fake.items.values() if i.is_pull] == []
    assert "evil.py" not in git("ls-tree", "-r", "--name-only", "main", cwd=scene.remote).split()
    assert scene.all_validated()
