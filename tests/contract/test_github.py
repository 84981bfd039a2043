"""GitHub-specific behaviour of GitHubForge against the GitHub fake (every request spec-validated)."""

from __future__ import annotations

import pytest

from agentmesh.forge.base import Conflict, NotFound, RateLimited
from agentmesh.forge.github import GitHubForge
from tests.contract.spec import GITHUB_URL, fake_env


@pytest.fixture
def env(tmp_path):
    with fake_env("github", tmp_path / "etags") as env:
        yield env


def statuses(env, suffix: str) -> list[int]:
    return [status for method, path, status in env.fake.requests if method == "GET" and path.endswith(suffix)]


def test_sends_the_api_version_headers(env):
    env.forge.current_user()
    headers = env.mock.calls[-1].request.headers
    assert headers["X-GitHub-Api-Version"] == "2022-11-28"
    assert headers["Accept"] == "application/vnd.github+json"
    assert headers["Authorization"] == f"Bearer {env.fake.token}"


def test_issue_list_drops_pulls_and_follows_link_pages(env):
    for i in range(230):
        env.fake.new_item(f"issue {i}", "")
    env.fake.push_branch("feature/p", {"p.txt": "p\n"})
    pull = env.forge.create_pull(head="feature/p", base="main", title="p")
    numbers = [i.number for i in env.forge.list_issues()]
    assert sorted(numbers) == list(range(1, 231)) and pull.number not in numbers
    pages = [c.request.url for c in env.mock.calls if "/issues?" in c.request.url]
    assert len(pages) == 3 and all("per_page=100" in url for url in pages)


def test_unchanged_poll_is_answered_304_with_the_same_issues(env):
    env.forge.create_issue("one", labels=["agentmesh:ready"])
    env.forge.create_issue("two", labels=["agentmesh:ready"])
    first = env.forge.list_issues(labels=["agentmesh:ready"])
    second = env.forge.list_issues(labels=["agentmesh:ready"])
    assert statuses(env, "/issues") == [200, 304]
    assert second == first and len(second) == 2
    assert "If-None-Match" in env.mock.calls[-1].request.headers

    env.forge.create_issue("three", labels=["agentmesh:ready"])
    assert len(env.forge.list_issues(labels=["agentmesh:ready"])) == 3  # changed: a fresh 200
    assert statuses(env, "/issues")[-1] == 200


def test_etag_cache_survives_a_new_client(env, tmp_path):
    env.forge.create_issue("one")
    env.forge.list_issues()
    again = GitHubForge(GITHUB_URL, "mesh/work", env.fake.token, cache_dir=tmp_path / "etags")
    assert [i.title for i in again.list_issues()] == ["one"]
    assert statuses(env, "/issues") == [200, 304]


def test_duplicate_pull_422_adopts_the_open_pull(env):
    env.fake.push_branch("feature/dup", {"d.txt": "d\n"})
    first = env.forge.create_pull(head="feature/dup", base="main", title="one")
    assert env.forge.create_pull(head="feature/dup", base="main", title="two").number == first.number
    assert ("POST", "/repos/mesh/work/pulls", 422) in env.fake.requests


def test_merge_is_pinned_with_sha_and_refusals_conflict(env):
    old = env.fake.push_branch("feature/m", {"m.txt": "1\n"})
    pull = env.forge.create_pull(head="feature/m", base="main", title="m")
    new = env.fake.push_branch("feature/m", {"m.txt": "2\n"})
    with pytest.raises(Conflict, match="409"):
        env.forge.merge_pull(pull.number, sha=old)
    env.forge.merge_pull(pull.number, sha=new, method="squash")
    merge = [c.request for c in env.mock.calls if c.request.method == "PUT"][-1]
    assert merge.body == f'{{"sha": "{new}", "merge_method": "squash"}}'.encode()
    env.forge.merge_pull(pull.number, sha=new)  # already merged at that sha: a no-op
    with pytest.raises(Conflict, match="405"):
        env.forge.merge_pull(pull.number, sha=old)


def test_check_runs_fold_into_the_combined_state(env):
    sha = env.fake.push_branch("feature/ci", {"c.txt": "c\n"})
    env.forge.set_status(sha, context="legacy", state="success")
    env.fake.add_check_run(sha, "build", conclusion="success")
    assert env.forge.ci_status(sha).state == "success"
    env.fake.add_check_run(sha, "e2e", status="in_progress", conclusion=None)
    assert env.forge.ci_status(sha).state == "pending"
    env.fake.add_check_run(sha, "lint", conclusion="timed_out")
    status = env.forge.ci_status(sha)
    assert status.state == "failure"
    assert [c.context for c in status.failing()] == ["lint"]
    assert {c.context for c in status.contexts} == {"legacy", "build", "e2e", "lint"}


def test_secondary_rate_limit_is_retried_after_retry_after(env):
    env.fake.secondary_rate_limit(retry_after=0)
    assert env.forge.current_user() == env.fake.me
    assert [r[2] for r in env.fake.requests] == [403, 200]


def test_long_secondary_rate_limit_raises_rate_limited(env):
    env.fake.secondary_rate_limit(retry_after=120)
    with pytest.raises(RateLimited) as info:
        env.forge.list_pulls()
    assert info.value.retry_after == 120 and info.value.exit_code == 75
    assert len(env.fake.requests) == 1


def test_primary_rate_limit_uses_the_reset_time(env):
    env.fake.inject("GET", "/user$", 403, {"message": "API rate limit exceeded"},
                    x_ratelimit_remaining="0", x_ratelimit_reset="4102444800")
    with pytest.raises(RateLimited) as info:
        env.forge.current_user()
    assert info.value.retry_after > 3600


def test_post_is_never_retried(env):
    env.fake.inject("POST", "/issues$", 502, {"message": "Bad Gateway"})
    with pytest.raises(Exception, match="HTTP 502"):
        env.forge.create_issue("once")
    assert [r for r in env.fake.requests if r[0] == "POST"] == [("POST", "/repos/mesh/work/issues", 502)]


def test_get_is_retried_after_a_5xx(env):
    env.fake.inject("GET", "/pulls$", 503, {"message": "busy"}, times=2)
    assert env.forge.list_pulls() == []
    assert statuses(env, "/pulls") == [503, 503, 200]


def test_delete_branch_422_means_already_gone(env):
    env.fake.push_branch("feature/gone", {"g.txt": "g\n"})
    env.forge.delete_branch("feature/gone")
    env.forge.delete_branch("feature/gone")
    assert [r[2] for r in env.fake.requests if r[0] == "DELETE"] == [204, 422]


def test_permission_of_unknown_user_is_none(env):
    assert env.forge.permission("reader") == "read"
    assert env.forge.permission("stranger") == "none"


def test_torn_cache_files_are_misses(env, tmp_path):
    env.forge.create_issue("one")
    env.forge.list_issues()
    for entry in (tmp_path / "etags").iterdir():
        entry.write_text('{"url": "x", "etag"')
    assert [i.title for i in env.forge.list_issues()] == ["one"]
    assert statuses(env, "/issues") == [200, 200]
    assert "If-None-Match" not in env.mock.calls[-1].request.headers


def test_without_cache_dir_the_etags_live_in_memory():
    with fake_env("github", None) as env:
        env.forge.list_pulls()
        env.forge.list_pulls()
        assert statuses(env, "/pulls") == [200, 304]


def test_retry_after_on_a_503_is_honoured(env):
    env.fake.inject("GET", "/user$", 503, {"message": "maintenance"}, Retry_After="0")
    assert env.forge.current_user() == env.fake.me


def test_a_deleted_issue_is_not_found(env):
    """GitHub answers 410 Gone for it: monitor-prs reads a deleted issue as closed (AgentRun.issue_open), and
    any other answer ended every agent's run while a PR named it."""
    number = env.forge.create_issue("gone soon").number
    env.fake.delete_issue(number)
    with pytest.raises(NotFound, match="410"):
        env.forge.get_issue(number)
