"""Gitea-specific behaviour of GiteaForge against the Gitea fake (every request spec-validated)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from agentmesh.forge.base import Conflict, NotMergeableYet
from tests.contract.spec import fake_env


@pytest.fixture
def env():
    with fake_env("gitea") as env:
        yield env


def gets(env, suffix: str) -> list[tuple[str, str, int]]:
    return [r for r in env.fake.requests if r[0] == "GET" and r[1].endswith(suffix)]


def test_lists_page_past_the_silent_limit_cap(env):
    for i in range(120):
        env.fake.new_item(f"issue {i}", "")
    issues = env.forge.list_issues()
    assert sorted(i.number for i in issues) == list(range(1, 121))
    pages = [call.request.url for call in env.mock.calls if "/issues?" in call.request.url]
    assert len(pages) == 3 and all("limit=50" in url and "type=issues" in url for url in pages)


def test_issue_list_asks_for_issues_only_and_filters_unknown_labels_itself(env):
    issue = env.forge.create_issue("real issue", labels=["task"])
    env.fake.push_branch("feature/x", {"x.txt": "x\n"})
    env.forge.create_pull(head="feature/x", base="main", title="a pull")
    assert [i.number for i in env.forge.list_issues(state="all")] == [issue.number]
    # Gitea drops `never-created` from its filter and would answer every `task` issue
    assert env.forge.list_issues(labels=["task", "never-created"]) == []
    assert [i.number for i in env.forge.list_issues(labels=["task"])] == [issue.number]


def test_labels_are_created_then_added_by_id_and_removed_by_id(env):
    issue = env.forge.create_issue("label me")
    env.forge.add_labels(issue.number, ["fresh", "fresh"])
    (label,) = [lab for lab in env.fake.labels.values() if lab["name"] == "fresh"]
    posted = [c.request for c in env.mock.calls if c.request.url.endswith(f"/issues/{issue.number}/labels")]
    assert posted[-1].body == f'{{"labels": [{label["id"]}]}}'.encode()
    env.forge.remove_labels(issue.number, ["fresh", "absent"])
    assert env.fake.requests[-1] == ("DELETE", f"/repos/mesh/work/issues/{issue.number}/labels/{label['id']}", 204)
    assert env.forge.get_issue(issue.number).labels == ()


def test_since_is_sent_as_utc(env):
    env.forge.list_issues(since=datetime(2026, 1, 1, 1, 0, tzinfo=UTC))
    assert "since=2026-01-01T01%3A00%3A00Z" in env.mock.calls[-1].request.url


def test_duplicate_pull_409_adopts_the_open_pull(env):
    env.fake.push_branch("feature/dup", {"d.txt": "d\n"})
    first = env.forge.create_pull(head="feature/dup", base="main", title="one")
    again = env.forge.create_pull(head="feature/dup", base="main", title="two")
    assert again.number == first.number
    assert ("POST", "/repos/mesh/work/pulls", 409) in env.fake.requests


def test_merge_retries_while_mergeability_is_computed(env):
    sha = env.fake.push_branch("feature/m", {"m.txt": "m\n"})
    pull = env.forge.create_pull(head="feature/m", base="main", title="m")
    env.forge.merge_pull(pull.number, sha=sha)
    merges = [r[2] for r in env.fake.requests if r[1].endswith("/merge")]
    assert merges == [405, 200]
    assert env.forge.get_pull(pull.number).state == "merged"
    env.forge.merge_pull(pull.number, sha=sha)  # merging a merged PR at the same sha is a no-op


def test_merge_gives_up_with_not_mergeable_yet(env):
    env.forge.merge_backoff = (0.0, 0.0)
    sha = env.fake.push_branch("feature/slow", {"s.txt": "s\n"})
    pull = env.forge.create_pull(head="feature/slow", base="main", title="s")
    env.fake.inject("POST", r"/merge$", 405, {"message": "Please try again later"}, times=5)
    with pytest.raises(NotMergeableYet) as info:
        env.forge.merge_pull(pull.number, sha=sha)
    assert info.value.exit_code == 75
    assert "HTTP 405" in str(info.value)


def test_merge_of_a_moved_head_conflicts(env):
    old = env.fake.push_branch("feature/moved", {"a.txt": "a\n"})
    pull = env.forge.create_pull(head="feature/moved", base="main", title="moved")
    env.fake.push_branch("feature/moved", {"a.txt": "b\n"})
    with pytest.raises(Conflict, match="409"):
        env.forge.merge_pull(pull.number, sha=old)
    body = [c.request.body for c in env.mock.calls if c.request.url.endswith("/merge")][-1]
    assert f'"head_commit_id": "{old}"'.encode() in body and b'"do": "merge"' in body


def test_review_requests_are_not_reviews_and_events_use_gitea_names(env):
    sha = env.fake.push_branch("feature/r", {"r.txt": "r\n"})
    pull = env.forge.create_pull(head="feature/r", base="main", title="r")
    env.forge.request_reviewers(pull.number, ["reviewer-bot"])
    assert env.forge.list_reviews(pull.number) == []  # Gitea lists the request as REQUEST_REVIEW
    env.forge.submit_review(pull.number, event="request_changes", body="no", commit_id=sha)
    assert b'"event": "REQUEST_CHANGES"' in env.mock.calls[-1].request.body
    assert [r.state for r in env.forge.list_reviews(pull.number)] == ["CHANGES_REQUESTED"]


def test_statuses_map_gitea_states(env):
    sha = env.fake.push_branch("feature/ci", {"c.txt": "c\n"})
    env.fake.statuses[sha] = [{"id": 1, "context": "lint", "state": "warning", "description": "", "target_url": ""}]
    status = env.forge.ci_status(sha)
    assert (status.state, status.contexts[0].state) == ("success", "success")


def test_file_paths_and_branch_names_with_slashes(env):
    env.fake.push_branch("feature/deep/name", {"a/b/c.txt": "deep\n"})
    assert env.forge.read_file("a/b/c.txt", "feature/deep/name") == "deep\n"
    assert env.forge.read_file("a/b", "feature/deep/name") is None  # a directory is not a file
    env.forge.delete_branch("feature/deep/name")
    assert "feature/deep/name" not in env.fake.branches


def test_a_lower_admin_cap_is_paged_through_with_x_total_count(env):
    env.fake.max_response_items = 20
    for i in range(45):
        env.fake.new_item(f"issue {i}", "")
    assert len(env.forge.list_issues()) == 45
    assert len([c for c in env.mock.calls if "/issues?" in c.request.url]) == 3
