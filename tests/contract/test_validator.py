"""The request validator itself: it must reject what the real forge would reject."""

from __future__ import annotations

import pytest
import requests

from tests.contract.spec import GITEA_URL, GITHUB_URL, ContractMock, RequestInvalid, fake_env, validator

GITEA_API = GITEA_URL + "/api/v1/repos/mesh/work"
GITHUB_API = GITHUB_URL + "/repos/mesh/work"
AUTH = {"gitea": {"Authorization": "token t"}, "github": {"Authorization": "Bearer t"}}


def check(kind: str, method: str, url: str, **kw) -> None:
    request = requests.Request(method, url, headers=AUTH[kind], **kw).prepare()
    validator(kind).validate(request)


@pytest.mark.parametrize("kind, method, url, kw", [
    ("gitea", "GET", GITEA_API + "/issues", {"params": {"state": "open", "type": "issues", "page": 2, "limit": 50}}),
    ("gitea", "GET", GITEA_API + "/contents/docs/deep/note.md", {"params": {"ref": "feature/a-b"}}),
    ("gitea", "DELETE", GITEA_API + "/branches/feature/with/slashes", {}),
    ("gitea", "POST", GITEA_API + "/pulls/3/merge", {"json": {"do": "squash", "head_commit_id": "a" * 40}}),
    ("gitea", "POST", GITEA_API + "/pulls/3/reviews", {"json": {"event": "REQUEST_CHANGES", "body": "b",
                                                                "commit_id": "a" * 40}}),
    ("github", "GET", GITHUB_API + "/issues", {"params": {"state": "all", "labels": "a,b", "per_page": 100}}),
    ("github", "DELETE", GITHUB_API + "/git/refs/heads/feature/x", {}),
    ("github", "PUT", GITHUB_API + "/pulls/3/merge", {"json": {"sha": "a" * 40, "merge_method": "merge"}}),
    ("github", "POST", GITHUB_API + "/pulls/3/reviews", {"json": {"event": "APPROVE", "body": "b",
                                                                  "commit_id": "a" * 40}}),
])
def test_accepts_valid_requests(kind, method, url, kw):
    check(kind, method, url, **kw)


@pytest.mark.parametrize("kind, method, url, kw, why", [
    ("gitea", "PUT", GITEA_API + "/pulls/3/merge", {"json": {"do": "merge"}}, "has no PUT"),
    ("github", "POST", GITHUB_API + "/pulls/3/merge", {"json": {"sha": "a"}}, "has no POST"),
    ("gitea", "GET", GITEA_API + "/issuez", {}, "unknown path"),
    ("github", "GET", GITHUB_URL + "/repos/mesh/work/pulls/3/reviewz", {}, "unknown path"),
    ("gitea", "GET", GITEA_URL + "/repos/mesh/work/issues", {}, "outside the API root"),
    ("gitea", "GET", GITEA_API + "/issues", {"params": {"state": "bogus"}}, "bogus"),
    ("github", "GET", GITHUB_API + "/pulls", {"params": {"state": "bogus"}}, "bogus"),
    ("gitea", "GET", GITEA_API + "/issues", {"params": {"per_page": 100}}, "undeclared query parameter 'per_page'"),
    ("github", "GET", GITHUB_API + "/issues", {"params": {"limit": 50}}, "undeclared query parameter 'limit'"),
    ("gitea", "GET", GITEA_API + "/issues/3/comments", {"params": {"page": 1}}, "undeclared query parameter"),
    ("gitea", "GET", GITEA_API + "/issues/abc", {}, "index"),
    ("gitea", "POST", GITEA_API + "/pulls/3/merge", {"json": {"do": "octopus"}}, "octopus"),
    ("gitea", "POST", GITEA_API + "/pulls/3/merge", {"json": {"head_commit_id": "a"}}, "do"),
    ("gitea", "POST", GITEA_API + "/pulls/3/reviews", {"json": {"event": "APPROVE"}}, "APPROVE"),
    ("github", "POST", GITHUB_API + "/pulls/3/reviews", {"json": {"event": "APPROVED"}}, "APPROVED"),
    ("gitea", "POST", GITEA_API + "/issues", {"json": {"title": "t", "labels": ["bug"]}}, "bug"),
    ("gitea", "POST", GITEA_API + "/issues", {"json": {"title": "t", "colour": "red"}}, "undeclared body fields"),
    ("github", "POST", GITHUB_API + "/statuses/abc", {"json": {"state": "warning"}}, "warning"),
    ("github", "POST", GITHUB_API + "/labels", {"json": {"color": "ededed"}}, "name"),
])
def test_rejects_wrong_requests(kind, method, url, kw, why):
    with pytest.raises(RequestInvalid, match=why):
        check(kind, method, url, **kw)


def test_contract_mock_rejects_before_answering():
    with ContractMock(validator("github")) as mock:
        mock.add("GET", GITHUB_API + "/pulls", json=[])
        with pytest.raises(RequestInvalid, match="bogus"):
            requests.get(GITHUB_API + "/pulls", params={"state": "bogus"}, headers=AUTH["github"], timeout=5)
        assert requests.get(GITHUB_API + "/pulls", params={"state": "open"}, headers=AUTH["github"],
                            timeout=5).json() == []


@pytest.mark.parametrize("kind", ["gitea", "github"])
def test_every_request_of_a_session_was_validated(kind, tmp_path):
    with fake_env(kind, tmp_path) as env:
        checker = env.mock.checker
        before = checker.validated
        issue = env.forge.create_issue("x", labels=["a"])
        env.forge.add_labels(issue.number, ["b"])
        env.forge.remove_labels(issue.number, ["a"])
        env.forge.list_issues(labels=["b"])
        assert len(env.mock.calls) >= 5
        assert checker.validated - before == len(env.mock.calls)
