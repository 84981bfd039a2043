"""monitor-prs cleans up nothing when the forge's PR listing or a branch's PR lookup fails (Gitea and GitHub).

The git side is real: a bare remote with a default branch, a claim acquired
through the claim protocol, and a work branch pushed to it. The forge side is
the stateful Gitea/GitHub fake behind `responses`, every request validated
against the official API description (skipped when the specs are absent, as
in the other contract tests). The only fault is injected at the HTTP
boundary: a 500 or a refused connection for the listing of open PRs (its
first page or its second), or for the lookup of the claimed work branch's PRs
(GitHub `GET /pulls?head=`, Gitea `GET /pulls/{base}/{head}`). That branch
has a merged PR, which only the lookup shows, so cleanup from a run whose
listing or lookup failed would delete the claim and the branch; the control
case without a fault shows it does.
"""

from __future__ import annotations

import json
import re
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests

from agentmesh.agent.monitor import monitor_prs
from agentmesh.core.errors import EXIT_TEMPORARY, TemporaryError
from agentmesh.forge.gitea import PAGE_LIMIT, GiteaForge
from agentmesh.forge.github import PER_PAGE, GitHubForge
from tests.contract.spec import (
    GITEA_URL,
    GITHUB_URL,
    ContractMock,
    ContractScene,
    fake_forge_mesh,
    push_work_branch,
    validator,
)
from tests.support import make_remote, remote_refs

AGENT = "alice"
BOT = "agent-1"  # the fake forge's own account: the one the agents' token belongs to
ISSUE = 1
BRANCH = "alice/1-fix"
BRANCH_REF = f"refs/heads/{BRANCH}"
CLAIM_REF = f"refs/heads/claim/{ISSUE}"
MEMORY_REF = "refs/heads/agentmesh/journals/alice"  # the agent's own journal branch
PRESENCE_PREFIX = "refs/heads/agentmesh/agents/"  # monitor-prs refreshes its presence: the one expected write
TOKEN_ENV = "MESH_FORGE_TOKEN"
WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
BACKENDS = {"gitea": (GITEA_URL, GiteaForge, PAGE_LIMIT), "github": (GITHUB_URL, GitHubForge, PER_PAGE)}


@dataclass
class Served:
    """What the forge answered, as (method, path, query, status or exception name)."""

    log: list[tuple[str, str, dict[str, str], Any]] = field(default_factory=list)
    bodies: list[tuple[str, dict[str, str], Any]] = field(default_factory=list)  # successful GET /pulls pages


class Faulty:
    """The fake forge's dispatcher with a fault in front of chosen PR-listing requests."""

    def __init__(self, fake, fail: str | None, page: int | None, served: Served, *, lookup: bool = False):
        self.fake, self.fail, self.page, self.served, self.lookup = fake, fail, page, served, lookup
        self.pulls_path = f"{urlsplit(fake.api_url).path}/repos/{fake.owner}/{fake.name}/pulls"

    def is_lookup(self, path: str, query: dict[str, str]) -> bool:
        """A branch's PRs asked for directly: GitHub's `head=` filter, Gitea's /pulls/{base}/{head}."""
        return "head" in query or path.startswith(f"{self.pulls_path}/main/")

    def hit(self, method: str, path: str, query: dict[str, str]) -> bool:
        if self.fail is None or method != "GET" or not path.startswith(self.pulls_path):
            return False
        if self.lookup:
            return self.is_lookup(path, query)
        return path == self.pulls_path and not self.is_lookup(path, query) and (
            self.page is None or int(query.get("page", "1")) == self.page)

    def __call__(self, request: requests.PreparedRequest):
        parts = urlsplit(request.url or "")
        method, query = request.method or "GET", dict(parse_qsl(parts.query))
        if self.hit(method, parts.path, query):
            if self.fail == "connection":
                self.served.log.append((method, parts.path, query, "ConnectionError"))
                raise requests.ConnectionError("connection refused (injected)")
            self.served.log.append((method, parts.path, query, 500))
            return 500, {"Content-Type": "application/json"}, json.dumps({"message": "internal error (injected)"})
        status, headers, body = self.fake.dispatch(request)
        self.served.log.append((method, parts.path, query, status))
        listing = parts.path == self.pulls_path and not self.is_lookup(parts.path, query)
        if method == "GET" and listing and status == 200:
            self.served.bodies.append((method, query, json.loads(body)))
        return status, headers, body


@dataclass
class Scene(ContractScene):
    served: Served
    merged_number: int

    def refs(self) -> dict[str, str]:
        return {k: v for k, v in remote_refs(self.remote).items() if not k.startswith(PRESENCE_PREFIX)}

    def writes(self) -> list[str]:
        return [f"{c.request.method} {urlsplit(str(c.request.url or '')).path}" for c in self.mock.calls
                if c.request.method in WRITES]

    def pull_requests(self) -> list[tuple[str, dict[str, str], Any]]:
        """The listings of open PRs served."""
        return [(m, q, s) for m, p, q, s in self.served.log if p.endswith("/pulls") and m == "GET" and "head" not in q]

    def lookups(self) -> list[Any]:
        """The statuses of the lookups of the claimed branch's PRs."""
        return [s for m, p, q, s in self.served.log
                if m == "GET" and ("head" in q or p.endswith(f"/pulls/main/{BRANCH}"))]


def build(stack: ExitStack, tmp_path: Path, kind: str, *, fail: str | None, page: int | None,
          fillers: int, lookup: bool = False) -> Scene:
    """A real remote with alice's claim on #1 and its pushed work branch; on the fake forge, issue #1,
    `fillers` open PRs of humans' branches and, newest, a merged PR of alice/1-fix."""
    _, forge_class, _ = BACKENDS[kind]
    checker = validator(kind)  # skips when the API description is absent
    remote = make_remote(tmp_path / "remote.git", mesh_yaml=f"review: {{bot_users: [{BOT}]}}\n")
    head_sha = push_work_branch(remote, BRANCH, agent=AGENT, issue=ISSUE)

    fake, mesh = fake_forge_mesh(kind, remote, tmp_path / "state", agent=AGENT, bot=BOT, token_env=TOKEN_ENV)
    won = mesh.claims().acquire(ISSUE, work_branch=BRANCH)
    assert won.won and won.holder is not None and won.holder.work_branch == BRANCH

    issue = fake.new_item("Fix the thing", "")
    assert issue.number == ISSUE
    for i in range(fillers):
        fake.branches[f"human/{i}"] = fake.branches["main"]
        fake.new_item(f"human PR {i}", "", head=f"human/{i}", base="main", last_head_sha=fake.branches["main"])
    # alice's PR: the mesh marker, by the forge account the agents use (review.bot_users)
    body = f"Closes #{ISSUE}\n\n<!-- agentmesh:pr/{AGENT}/{ISSUE}/{won.sha} -->\n"
    merged = fake.new_item(f"Fix the thing (#{ISSUE})", body, head=BRANCH, base="main",
                           last_head_sha=head_sha, state="closed", merged=True)
    merged.merged_at = merged.updated_at = fake.now()
    merged.merge_sha = fake.branches["main"]

    served = Served()
    mock = stack.enter_context(ContractMock(checker))
    pattern = re.compile(re.escape(fake.api_url) + r"/.*")
    dispatch = Faulty(fake, fail, page, served, lookup=lookup)
    for method in ("GET", "POST", "PUT", "PATCH", "DELETE"):
        mock.add_callback(method, pattern, callback=dispatch)
    forge = mesh.open_forge()
    assert isinstance(forge, forge_class)
    return Scene(kind, remote, mesh, forge, fake, mock, checker.validated, served, merged.number)


@pytest.fixture
def scene(tmp_path):
    with ExitStack() as stack:
        def make(kind: str, *, fail: str | None = None, page: int | None = None, fillers: int = 0,
                 lookup: bool = False) -> Scene:
            return build(stack, tmp_path, kind, fail=fail, page=page, fillers=fillers, lookup=lookup)

        yield make


def run_failing(s: Scene) -> str:
    """monitor-prs must stop with a temporary error (exit 75), raised or reported; returns its text."""
    try:
        report = monitor_prs(s.mesh, s.forge, env={})
    except TemporaryError as exc:
        assert exc.exit_code == EXIT_TEMPORARY
        return str(exc)
    assert report.exit_code == EXIT_TEMPORARY, report.to_json()
    errors = [e for e in report.events if e.event == "error"]
    assert errors, report.to_json()
    return "; ".join(e.detail for e in errors)


def assert_nothing_cleaned(s: Scene, before: dict[str, str]) -> None:
    after = s.refs()
    assert after == before
    assert after[CLAIM_REF] and after[BRANCH_REF]
    assert s.writes() == []
    assert s.fake.items[ISSUE].state == "open" and s.fake.items[ISSUE].labels == []
    assert s.fake.comments == {}
    assert s.all_validated()


@pytest.mark.parametrize("fail", ["http-500", "connection"])
@pytest.mark.parametrize("kind", ["gitea", "github"])
def test_failed_pr_listing_cleans_up_nothing(scene, kind, fail):
    s = scene(kind, fail=fail)
    before = s.refs()
    assert CLAIM_REF in before and BRANCH_REF in before
    message = run_failing(s)
    assert "/pulls" in message and ("HTTP 500" in message if fail == "http-500" else "connection failed" in message)
    # the transport retried the idempotent GET, then gave up; nothing of the listing arrived
    assert [status for _, _, status in s.pull_requests()] == [500 if fail == "http-500" else "ConnectionError"] * 3
    assert_nothing_cleaned(s, before)


@pytest.mark.parametrize("fail", ["http-500", "connection"])
@pytest.mark.parametrize("kind", ["gitea", "github"])
def test_failed_second_page_cleans_up_nothing(scene, kind, fail):
    size = BACKENDS[kind][2]
    s = scene(kind, fail=fail, page=2, fillers=size + 5)
    before = s.refs()
    message = run_failing(s)
    assert "/pulls" in message
    statuses = [status for _, _, status in s.pull_requests()]
    assert statuses[0] == 200 and len(statuses) == 4 and 200 not in statuses[1:]
    assert {q.get("page") for _, q, _ in s.pull_requests()[1:]} == {"2"}
    (_, _, first_page), = s.served.bodies
    assert len(first_page) == size
    assert s.lookups() == []  # the run stopped at the listing
    assert_nothing_cleaned(s, before)


@pytest.mark.parametrize("fail", ["http-500", "connection"])
@pytest.mark.parametrize("kind", ["gitea", "github"])
def test_a_failed_lookup_of_the_branchs_prs_cleans_up_nothing(scene, kind, fail):
    s = scene(kind, fail=fail, lookup=True)
    before = s.refs()
    message = run_failing(s)
    assert "/pulls" in message
    assert s.lookups() == [500 if fail == "http-500" else "ConnectionError"] * 3  # retried, then given up
    assert_nothing_cleaned(s, before)


@pytest.mark.parametrize("pages", ["one page", "two pages"])
@pytest.mark.parametrize("kind", ["gitea", "github"])
def test_control_a_complete_listing_with_the_merged_pr_cleans_up(scene, kind, pages):
    """Without a fault the same scene is cleaned up, so the tests above can fail."""
    count = 0 if pages == "one page" else BACKENDS[kind][2] + 5
    s = scene(kind, fillers=count)
    before = s.refs()
    assert CLAIM_REF in before and BRANCH_REF in before
    report = monitor_prs(s.mesh, s.forge, env={})
    assert ("cleaned-up", s.merged_number, ISSUE) in [(e.event, e.pr, e.issue) for e in report.events], \
        report.to_json()
    after = s.refs()
    assert CLAIM_REF not in after and BRANCH_REF not in after
    assert {k: v for k, v in after.items() if k != MEMORY_REF} == {
        k: v for k, v in before.items() if k not in (CLAIM_REF, BRANCH_REF, MEMORY_REF)}  # main did not move
    assert MEMORY_REF in after  # the run's journal
    assert s.fake.items[ISSUE].state == "closed"
    assert f"PATCH {urlsplit(s.fake.api_url).path}/repos/mesh/work/issues/{ISSUE}" in s.writes()
    assert len(s.served.bodies) == (1 if count == 0 else 2)  # the open PRs, listed once
    assert s.lookups() == [200]  # the merged PR, asked for by its branch: never a listing of closed PRs
    assert all(q.get("state") != "all" for _, q, _ in s.pull_requests())
    assert s.all_validated()
