"""Who set an issue's labels on Gitea and GitHub (issue 15, item 13): the issue's label events (GitHub's
events, Gitea's timeline), each author counted only by the roster's login of an agent or a maintainer,
as comments are (tests/contract/test_comment_trust.py). A `timeout:`/`executor:` label an outsider set
is ignored; one a maintainer set applies, even after the outsider removed and re-added another.

The git side is real (a bare remote with the roster on main); the forge is the stateful fake, every
request validated against the official API description (skipped when the specs are absent).
"""

from __future__ import annotations

import pytest
import yaml

from agentmesh.agent.base import AgentRun
from agentmesh.agent.mesh import Mesh
from agentmesh.agent.report import Report
from agentmesh.core.overrides import parse_overrides, setters
from agentmesh.forge.gitea import GiteaForge
from agentmesh.forge.github import GitHubForge
from agentmesh.host.roster import ROSTER_PATH
from tests.contract.spec import GITEA_URL, GITHUB_URL, ContractMock, fake_forge_mesh, validator
from tests.support import human_commit, make_remote

BOT = "ada-bot"
TOKEN_ENV = "MESH_FORGE_TOKEN"


@pytest.mark.parametrize("kind", ["gitea", "github"])
def test_label_events_name_who_set_each_label_and_only_the_rosters_count(tmp_path, kind):
    checker = validator(kind)
    remote = make_remote(tmp_path / "remote.git")
    fake, first = fake_forge_mesh(kind, remote, tmp_path / "state", agent="ada", bot=BOT, token_env=TOKEN_ENV)
    host, key = first.host, first.public_key
    tokens = {login: fake.add_account(login) for login in ("grace", "mallory")}
    roster = {"agents": [{"name": "ada", "key": key.line, "login": BOT}], "maintainers": [{"login": "grace"}]}
    human_commit(remote, {ROSTER_PATH: yaml.safe_dump(roster)}, message="roster")

    def as_user(login: str):
        repo = f"{fake.owner}/{fake.name}"
        if kind == "gitea":
            return GiteaForge(GITEA_URL, repo, tokens[login])
        return GitHubForge(GITHUB_URL, repo, tokens[login], cache_dir=tmp_path / f"etags-{login}")

    with ContractMock(checker) as mock:
        fake.install(mock)
        mesh = Mesh(host, env={TOKEN_ENV: fake.token})
        forge = mesh.open_forge()
        number = forge.create_issue("Task", "", ["task"]).number
        grace, mallory = as_user("grace"), as_user("mallory")
        grace.add_labels(number, ["timeout:30m"])
        mallory.add_labels(number, ["executor:demo"])
        mallory.remove_labels(number, ["timeout:30m"])
        grace.add_labels(number, ["timeout:30m"])  # removed by an outsider, set again by the maintainer

        raw = forge.label_events(number)
        assert [(e.label, e.added, e.author) for e in raw] == [
            ("task", True, BOT), ("timeout:30m", True, "grace"), ("executor:demo", True, "mallory"),
            ("timeout:30m", False, "mallory"), ("timeout:30m", True, "grace")]
        run = AgentRun(mesh, forge, Report("ada"), dry_run=False, env={})
        who = setters(run.label_events(number))
        assert who == {"task": BOT, "timeout:30m": "grace", "executor:demo": "unverified:mallory"}
        labels = forge.get_issue(number).labels
        distrusted = {label: f"set by {who[label]}" for label in labels if not run.trusted(who[label])}
        found = parse_overrides(labels, executors=["demo"], distrusted=distrusted)
        assert found.timeout_seconds == 1800 and found.executor is None
        assert found.ignored == ("executor:demo: set by unverified:mallory",)
