"""What agentmesh's steps cost in forge requests (issue 16), on the Gitea and GitHub fakes.

An idle claim-task + monitor-prs costs a few requests, however long the repository's history.

Issue 16: with 1000 open issues and 1000 closed PRs an idle tick on Gitea cost 63 requests (the halt
check listed every open issue a second time, monitor-prs listed every PR ever opened) and 24 on
GitHub. Now, with warm caches (the Gitea issue cache and GitHub's ETag cache, both in the state dir),
one idle claim-task and one idle monitor-prs together cost at most 4 requests on Gitea, and at most 1
request charged to GitHub's rate limit (a 304 is free). The remote is real git, the forges are the
stateful fakes, every request validated against the official API description.

A stage change is one write: one label-replace call (it was an add, a remove per old stage label, and
the repository's labels listed each time).
"""

from __future__ import annotations

import json
from urllib.parse import parse_qsl, urlsplit

import pytest

from agentmesh.agent.claim_task import claim_task
from agentmesh.agent.monitor import monitor_prs
from agentmesh.agent.stages import set_stage
from agentmesh.core.vocab import RunStatus, Stage
from agentmesh.forge.gitea import GiteaForge
from agentmesh.forge.issue_cache import FULL_EVERY
from tests.contract.spec import GITEA_URL, ContractMock, fake_env, fake_forge_mesh, validator
from tests.support import make_remote

OPEN_ISSUES = 1000
CLOSED_PULLS = 1000
CHARGED = {"gitea": 4, "github": 1}  # requests per idle claim-task + monitor-prs, warm caches


def idle_tick(mesh) -> None:
    """One claim-task and one monitor-prs, each with its own forge client as each command makes one."""
    assert claim_task(mesh, mesh.open_forge(), env={}).status == RunStatus.IDLE
    report = monitor_prs(mesh, mesh.open_forge(), env={})
    assert report.exit_code == 0, report.to_json()


@pytest.mark.parametrize("kind", ["gitea", "github"])
def test_an_idle_tick_costs_a_few_requests_whatever_the_history(tmp_path, kind):
    checker = validator(kind)  # skips when the API description is absent
    remote = make_remote(tmp_path / "remote.git")
    fake, mesh = fake_forge_mesh(kind, remote, tmp_path / "state", agent="alice", bot="agent-1", token_env="TOKEN")
    question = fake.create_label("question")["id"]  # not an eligible label: claim-task stays idle
    for n in range(OPEN_ISSUES):
        fake.new_item(f"question {n}", "", labels=[question])
    for n in range(CLOSED_PULLS):
        fake.new_item(f"old PR {n}", "", head=f"human/{n}", base="main", state="closed",
                      merged=n % 2 == 0, last_head_sha=fake.branches["main"])
    with ContractMock(checker) as mock:
        fake.install(mock)
        idle_tick(mesh)  # fills the caches
        fake.requests.clear()
        first = len(mock.calls)
        idle_tick(mesh)
        queries = [dict(parse_qsl(urlsplit(str(c.request.url)).query)) for c in mock.calls[first:]]
        assert checker.validated >= len(mock.calls)

    charged = [(m, p, s) for m, p, s in fake.requests if s != 304]
    assert len(charged) <= CHARGED[kind], fake.requests
    assert [q for q in queries if q.get("state") == "all" and "since" not in q] == []  # no listing of all history


@pytest.mark.parametrize("kind", ["gitea", "github"])
def test_a_stage_change_is_one_write(tmp_path, kind):
    with fake_env(kind, tmp_path / "etags") as env:
        issue = env.forge.create_issue("staged", labels=["task", Stage.CLAIMED.label])
        env.fake.requests.clear()
        for stage in (Stage.WORKING, Stage.REVIEW, Stage.REVIEW, None):
            set_stage(env.forge, issue.number, stage)
        writes = [(m, p.rsplit("/repos/mesh/work", 1)[-1]) for m, p, _ in env.fake.requests if m != "GET"]
        labels = [env.fake.labels[i]["name"] for i in env.fake.items[issue.number].labels]
        reads = [p for m, p, _ in env.fake.requests if m == "GET"]
    n = issue.number
    # working, review (review again: no write), no stage; Gitea creates the two new labels first
    assert [w for w in writes if w != ("POST", "/labels")] == [
        ("PUT", f"/issues/{n}/labels"), ("PUT", f"/issues/{n}/labels"), ("PUT", f"/issues/{n}/labels")]
    assert labels == ["task"]
    assert sum(p.endswith("/labels") for p in reads) <= 1  # the repository's labels, listed once per run


def test_gitea_polls_open_issues_since_the_last_poll_over_a_cache_in_the_state_dir(tmp_path):
    from tests.support.fakes.gitea_fake import GiteaFake

    fake = GiteaFake(GITEA_URL)
    for n in range(120):
        fake.new_item(f"issue {n}", "")
    cache = tmp_path / "http-cache"

    def listing() -> tuple[list[int], list[dict[str, str]]]:
        """The open issues a new forge client (one per run) lists, and the query of each request it sent."""
        fake.requests.clear()
        start = len(mock.calls)
        numbers = [i.number for i in GiteaForge(GITEA_URL, "mesh/work", fake.token, cache_dir=cache).list_issues()]
        return numbers, [dict(parse_qsl(urlsplit(str(c.request.url)).query)) for c in mock.calls[start:]]

    with ContractMock(validator("gitea")) as mock:
        fake.install(mock)
        numbers, queries = listing()
        assert len(numbers) == 120 and [q["page"] for q in queries] == ["1", "2", "3"]  # the first: all of it
        numbers, queries = listing()
        assert len(numbers) == 120 and len(queries) == 1 and queries[0]["state"] == "all" and "since" in queries[0]
        fake.items[5].state = "closed"
        fake.items[5].updated_at = fake.now()
        fake.items[7].title = "renamed"
        fake.items[7].updated_at = fake.now()
        numbers, queries = listing()
        assert 5 not in numbers and len(numbers) == 119 and len(queries) == 1

        [path] = cache.glob("issues-*.json")
        data = json.loads(path.read_text())
        assert data["issues"]["7"]["title"] == "renamed"
        data["full_at"] -= FULL_EVERY + 1  # an hour on: the whole list again (a deleted issue goes)
        path.write_text(json.dumps(data))
        del fake.items[9]
        numbers, queries = listing()
        assert 9 not in numbers and len(queries) == 3 and all(q["state"] == "open" for q in queries)
        path.write_text(path.read_text()[:40])  # torn: a miss, never an error
        numbers, queries = listing()
        assert len(numbers) == 118 and len(queries) == 3
