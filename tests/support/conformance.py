"""One backend-agnostic conformance suite for the Forge interface.

Each backend's test module provides a `forge_env` fixture and star-imports
this module:

    from tests.support.conformance import *  # noqa: F401,F403

`forge_env` must have:
- `forge`: a Forge on a repository whose default branch exists;
- `push_branch(name, files) -> sha`: create or update branch `name` on the
  remote, off the default branch, with `files` ({path: text}) committed;
  returns the new head sha.

Optional attributes (defaults in brackets): `base` ["main"], the default
branch; `reviewer` ["reviewer-bot"], a user who may be asked for a review.

Only the Forge interface is used here. Backend-specific behaviour (real merge
conflicts, `Closes #N`, races) belongs in each backend's own tests.
"""

from __future__ import annotations

import uuid

import pytest

from agentmesh.core.model import StatusContext
from agentmesh.forge.base import CIStatus, Comment, Conflict, Issue, NotFound, PullRequest, Review

__all__ = [name for name in dir() if name.startswith("test_")]  # refreshed at the bottom


def _base(env) -> str:
    return getattr(env, "base", "main")


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _open_pull(env, files: dict[str, str] | None = None, *, title: str = "a change", body: str = "") -> PullRequest:
    head = _unique("feature/conf")
    env.push_branch(head, files or {f"{head.replace('/', '-')}.txt": "hello\n"})
    return env.forge.create_pull(head=head, base=_base(env), title=title, body=body)


# --- issues ----------------------------------------------------------------------------


def test_create_and_get_issue(forge_env):
    forge = forge_env.forge
    created = forge.create_issue("Fix the login timeout", "It times out.\n\nSteps: ...", labels=["bug"])
    assert isinstance(created, Issue)
    assert created.number >= 1
    assert created.title == "Fix the login timeout"
    assert created.state == "open"
    assert "bug" in created.labels

    fetched = forge.get_issue(created.number)
    assert fetched.number == created.number
    assert fetched.title == "Fix the login timeout"
    assert fetched.body == "It times out.\n\nSteps: ..."
    assert fetched.state == "open"
    assert fetched.labels == ("bug",)
    assert fetched.author == forge.current_user()
    assert set(fetched.to_json()) >= {"number", "title", "body", "state", "labels", "author"}


def test_issue_numbers_are_distinct(forge_env):
    numbers = [forge_env.forge.create_issue(f"issue {i}").number for i in range(3)]
    assert len(set(numbers)) == 3


def test_get_missing_issue_raises_not_found(forge_env):
    with pytest.raises(NotFound):
        forge_env.forge.get_issue(987654)


def test_list_issues_by_state_and_label(forge_env):
    forge = forge_env.forge
    tag = _unique("conf-label")
    a = forge.create_issue("a", labels=[tag, "task"])
    b = forge.create_issue("b", labels=[tag])
    c = forge.create_issue("c", labels=["task"])
    forge.close_issue(b.number)

    open_tagged = {i.number for i in forge.list_issues(state="open", labels=[tag])}
    assert open_tagged == {a.number}
    both = {i.number for i in forge.list_issues(state="open", labels=[tag, "task"])}
    assert both == {a.number}
    closed = {i.number for i in forge.list_issues(state="closed", labels=[tag])}
    assert closed == {b.number}
    everything = {i.number for i in forge.list_issues(state="all", labels=[tag])}
    assert everything == {a.number, b.number}
    open_all = {i.number for i in forge.list_issues(state="open")}
    assert {a.number, c.number} <= open_all
    assert b.number not in open_all


def test_list_issues_never_includes_pulls(forge_env):
    forge = forge_env.forge
    issue = forge.create_issue("an issue")
    pull = _open_pull(forge_env)
    numbers = {i.number for i in forge.list_issues(state="all")}
    assert issue.number in numbers
    assert pull.number not in numbers


def test_issues_and_pulls_share_one_sequence(forge_env):
    forge = forge_env.forge
    issue = forge.create_issue("an issue")
    pull = _open_pull(forge_env)
    assert pull.number != issue.number


def test_close_issue_is_idempotent(forge_env):
    forge = forge_env.forge
    issue = forge.create_issue("close me")
    forge.close_issue(issue.number)
    forge.close_issue(issue.number)
    assert forge.get_issue(issue.number).state == "closed"


def test_edit_issue_sets_title_and_body_and_grows_a_task_list(forge_env):
    forge = forge_env.forge
    issue = forge.create_issue("Parent", "The whole job.")
    edited = forge.edit_issue(issue.number, add_tasks=[7, 8])
    assert (edited.title, edited.body) == ("Parent", "The whole job.\n\n- [ ] #7\n- [ ] #8\n")
    again = forge.edit_issue(issue.number, title="Parent job", add_tasks=[8])  # listed already: not twice
    fetched = forge.get_issue(issue.number)
    assert (again.title, again.body) == (fetched.title, fetched.body) == ("Parent job", edited.body)
    assert forge.edit_issue(issue.number, body="Rewritten").body == "Rewritten"


def test_comments_oldest_first(forge_env):
    forge = forge_env.forge
    issue = forge.create_issue("discuss")
    first = forge.comment(issue.number, "first")
    second = forge.comment(issue.number, "second\nwith two lines")
    assert isinstance(first, Comment)
    assert first.id != second.id
    comments = forge.list_comments(issue.number)
    assert [c.body for c in comments] == ["first", "second\nwith two lines"]
    assert all(c.author == forge.current_user() for c in comments)


def test_comments_on_a_pull(forge_env):
    forge = forge_env.forge
    pull = _open_pull(forge_env)
    forge.comment(pull.number, "looks fine")
    assert [c.body for c in forge.list_comments(pull.number)] == ["looks fine"]


def test_ensure_comment_posts_once(forge_env):
    forge = forge_env.forge
    issue = forge.create_issue("reap me")
    one = forge.ensure_comment(issue.number, "reaped/1", "Claim reaped.")
    two = forge.ensure_comment(issue.number, "reaped/1", "Claim reaped.")
    assert one.id == two.id
    forge.ensure_comment(issue.number, "reaped/2", "Claim reaped again.")
    assert len(forge.list_comments(issue.number)) == 2


def test_labels_add_and_remove(forge_env):
    forge = forge_env.forge
    issue = forge.create_issue("label me", labels=["task"])
    fresh = _unique("conf-new-label")  # not in the repository yet: add_labels creates it
    forge.add_labels(issue.number, [fresh, "agentmesh:claimed"])
    assert set(forge.get_issue(issue.number).labels) == {"task", fresh, "agentmesh:claimed"}
    forge.add_labels(issue.number, [fresh])  # already there
    assert sorted(forge.get_issue(issue.number).labels).count(fresh) == 1

    forge.remove_labels(issue.number, ["task", "agentmesh:claimed"])
    forge.remove_labels(issue.number, ["not-on-the-issue"])  # idempotent
    assert forge.get_issue(issue.number).labels == (fresh,)
    assert [i.number for i in forge.list_issues(labels=[fresh])] == [issue.number]


def test_relabel_adds_and_removes_at_once(forge_env):
    forge = forge_env.forge
    issue = forge.create_issue("relabel me", labels=["task", "agentmesh:claimed"])
    fresh = _unique("conf-stage")  # not in the repository yet: relabel creates it
    forge.relabel(issue.number, add=[fresh], remove=["agentmesh:claimed", "agentmesh:review"])
    assert sorted(forge.get_issue(issue.number).labels) == sorted(["task", fresh])
    forge.relabel(issue.number, add=[fresh], remove=["agentmesh:claimed"])  # nothing to change
    assert sorted(forge.get_issue(issue.number).labels) == sorted(["task", fresh])
    me = forge.current_user()
    assert [(e.label, e.added, e.author) for e in forge.label_events(issue.number)][-2:] in (
        [("agentmesh:claimed", False, me), (fresh, True, me)], [(fresh, True, me), ("agentmesh:claimed", False, me)])
    forge.relabel(issue.number, remove=["task", fresh])  # the last labels go too
    assert forge.get_issue(issue.number).labels == ()


def test_open_issue_listings_follow_every_change(forge_env):
    """A listing repeated on one forge (Gitea's answers from its cache plus a since= poll) shows closes,
    label changes, edits and new issues."""
    forge = forge_env.forge
    a, b, c = (forge.create_issue(_unique("listed"), labels=["task"]) for _ in range(3))
    assert {a.number, b.number, c.number} <= {i.number for i in forge.list_issues()}
    forge.close_issue(a.number)
    forge.relabel(b.number, add=["agentmesh:working"])
    forge.edit_issue(c.number, title="renamed")
    d = forge.create_issue(_unique("listed"))
    listed = {i.number: i for i in forge.list_issues()}
    assert a.number not in listed and d.number in listed
    assert "agentmesh:working" in listed[b.number].labels and listed[c.number].title == "renamed"
    assert [i.number for i in forge.list_issues(labels=["agentmesh:working"]) if i.number == b.number] == [b.number]


def test_label_events_say_who_added_and_removed_each_label(forge_env):
    forge = forge_env.forge
    issue = forge.create_issue("label history", labels=["task"])
    forge.add_labels(issue.number, ["timeout:30m"])
    forge.add_labels(issue.number, ["timeout:30m"])  # already there: no event
    forge.remove_labels(issue.number, ["task"])
    me = forge.current_user()
    assert [(e.label, e.added, e.author) for e in forge.label_events(issue.number)] == [
        ("task", True, me), ("timeout:30m", True, me), ("task", False, me)]


def test_set_assignees(forge_env):
    forge = forge_env.forge
    me = forge.current_user()
    issue = forge.create_issue("assign me")
    forge.set_assignees(issue.number, [me])
    assert forge.get_issue(issue.number).assignees == (me,)
    forge.set_assignees(issue.number, [])
    assert forge.get_issue(issue.number).assignees == ()


# --- pull requests -----------------------------------------------------------------------


def test_create_pull(forge_env):
    forge = forge_env.forge
    head = _unique("feature/conf-create")
    sha = forge_env.push_branch(head, {"new.txt": "new\n"})
    pull = forge.create_pull(head=head, base=_base(forge_env), title="Add new.txt", body="Body text")
    assert isinstance(pull, PullRequest)
    assert pull.state == "open"
    assert (pull.head, pull.base, pull.head_sha) == (head, _base(forge_env), sha)
    assert pull.title == "Add new.txt"
    assert pull.body == "Body text"
    got = forge.get_pull(pull.number)
    assert (got.number, got.head, got.head_sha, got.state) == (pull.number, head, sha, "open")
    assert got.author == forge.current_user()
    assert set(got.to_json()) >= {"number", "title", "body", "state", "head", "base", "head_sha", "author", "reviews"}


def test_create_pull_adopts_the_open_pull_for_the_same_head(forge_env):
    forge = forge_env.forge
    first = _open_pull(forge_env, title="first")
    again = forge.create_pull(head=first.head, base=_base(forge_env), title="second try")
    assert again.number == first.number
    assert forge.find_pull_for_head(first.head).number == first.number
    assert [p.number for p in forge.list_pulls(state="open") if p.head == first.head] == [first.number]


def test_pulls_for_head_finds_a_branchs_pull_in_any_state(forge_env):
    forge = forge_env.forge
    base = _base(forge_env)
    merged = _open_pull(forge_env)
    assert [p.number for p in forge.pulls_for_head(merged.head, base=base)] == [merged.number]
    forge.merge_pull(merged.number, sha=merged.head_sha)
    found = forge.pulls_for_head(merged.head, base=base)
    assert [(p.number, p.state, p.head_sha) for p in found] == [(merged.number, "merged", merged.head_sha)]
    assert forge.latest_pull_for_head(merged.head, base=base).number == merged.number
    assert forge.pulls_for_head(_unique("feature/never-pushed"), base=base) == []
    assert forge.latest_pull_for_head(_unique("feature/never-pushed"), base=base) is None


def test_head_sha_follows_the_branch(forge_env):
    forge = forge_env.forge
    pull = _open_pull(forge_env)
    newer = forge_env.push_branch(pull.head, {"more.txt": "more\n"})
    assert forge.get_pull(pull.number).head_sha == newer


def test_get_missing_pull_raises_not_found(forge_env):
    with pytest.raises(NotFound):
        forge_env.forge.get_pull(987655)


def test_list_pulls_by_state(forge_env):
    forge = forge_env.forge
    open_pull = _open_pull(forge_env)
    closed_pull = _open_pull(forge_env)
    merged_pull = _open_pull(forge_env)
    forge.close_pull(closed_pull.number)
    forge.merge_pull(merged_pull.number, sha=merged_pull.head_sha)

    def numbers(state):
        return {p.number for p in forge.list_pulls(state=state)}

    mine = {open_pull.number, closed_pull.number, merged_pull.number}
    assert numbers("open") & mine == {open_pull.number}
    assert numbers("merged") & mine == {merged_pull.number}
    assert numbers("closed") & mine == {closed_pull.number}
    assert numbers("all") & mine == mine


def test_close_pull_is_idempotent(forge_env):
    forge = forge_env.forge
    pull = _open_pull(forge_env)
    forge.close_pull(pull.number)
    forge.close_pull(pull.number)
    assert forge.get_pull(pull.number).state == "closed"
    assert forge.find_pull_for_head(pull.head) is None


def test_reviews_are_bound_to_commit_id(forge_env):
    forge = forge_env.forge
    pull = _open_pull(forge_env)
    review = forge.submit_review(pull.number, event="approve", body="LGTM", commit_id=pull.head_sha)
    assert isinstance(review, Review)
    assert (review.state, review.commit_id) == ("APPROVED", pull.head_sha)

    newer = forge_env.push_branch(pull.head, {"fix.txt": "fix\n"})
    forge.submit_review(pull.number, event="request_changes", body="Please fix", commit_id=newer)
    forge.submit_review(pull.number, event="comment", body="A note", commit_id=newer)
    reviews = forge.list_reviews(pull.number)
    assert [(r.state, r.commit_id) for r in reviews] == [
        ("APPROVED", pull.head_sha),
        ("CHANGES_REQUESTED", newer),
        ("COMMENTED", newer),
    ]
    assert all(r.author == forge.current_user() for r in reviews)
    assert [r.state for r in forge.get_pull(pull.number).reviews] == ["APPROVED", "CHANGES_REQUESTED", "COMMENTED"]


def test_review_of_a_moved_head_conflicts(forge_env):
    forge = forge_env.forge
    pull = _open_pull(forge_env)
    forge_env.push_branch(pull.head, {"moved.txt": "moved\n"})
    with pytest.raises(Conflict):
        forge.submit_review(pull.number, event="approve", body="stale", commit_id=pull.head_sha)


def test_review_with_status_sets_both_or_neither(forge_env):
    forge = forge_env.forge
    pull = _open_pull(forge_env)
    forge.set_status(pull.head_sha, context="agentmesh/tests", state="success")
    review = forge.submit_review_with_status(pull.number, event="request_changes", body="no", commit_id=pull.head_sha,
                                             status=StatusContext("agentmesh/review", "failure", "request_changes"))
    assert (review.state, review.commit_id) == ("CHANGES_REQUESTED", pull.head_sha)
    assert [r.state for r in forge.list_reviews(pull.number)] == ["CHANGES_REQUESTED"]
    status = forge.ci_status(pull.head_sha)
    assert {c.context: (c.state, c.description) for c in status.contexts} == {
        "agentmesh/tests": ("success", ""), "agentmesh/review": ("failure", "request_changes")}

    newer = forge_env.push_branch(pull.head, {"moved.txt": "moved\n"})
    with pytest.raises(Conflict):
        forge.submit_review_with_status(pull.number, event="approve", body="stale", commit_id=pull.head_sha,
                                        status=StatusContext("agentmesh/review", "success", "approve"))
    assert [r.state for r in forge.list_reviews(pull.number)] == ["CHANGES_REQUESTED"]
    assert forge.ci_status(pull.head_sha).state == "failure"
    assert forge.ci_status(newer).contexts == ()


def test_request_reviewers(forge_env):
    forge = forge_env.forge
    reviewer = getattr(forge_env, "reviewer", "reviewer-bot")
    pull = _open_pull(forge_env)
    forge.request_reviewers(pull.number, [reviewer])
    assert reviewer in forge.get_pull(pull.number).requested_reviewers


def test_merge_is_pinned_to_sha(forge_env):
    forge = forge_env.forge
    path = f"{_unique('merged')}.txt"
    pull = _open_pull(forge_env, {path: "merged content\n"})
    newer = forge_env.push_branch(pull.head, {path: "newer content\n"})
    with pytest.raises(Conflict):
        forge.merge_pull(pull.number, sha=pull.head_sha)  # the head moved since
    assert forge.get_pull(pull.number).state == "open"
    assert forge.read_file(path, _base(forge_env)) is None

    forge.merge_pull(pull.number, sha=newer)
    merged = forge.get_pull(pull.number)
    assert merged.state == "merged"
    assert forge.read_file(path, _base(forge_env)) == "newer content\n"
    assert forge.find_pull_for_head(pull.head) is None


def test_squash_merge(forge_env):
    forge = forge_env.forge
    path = f"{_unique('squashed')}.txt"
    pull = _open_pull(forge_env, {path: "one\n"})
    head = forge_env.push_branch(pull.head, {path: "two\n"})
    forge.merge_pull(pull.number, sha=head, method="squash")
    assert forge.get_pull(pull.number).state == "merged"
    assert forge.read_file(path, _base(forge_env)) == "two\n"


# --- CI ----------------------------------------------------------------------------------


def test_ci_status_set_and_combined(forge_env):
    forge = forge_env.forge
    sha = forge_env.push_branch(_unique("feature/conf-ci"), {"ci.txt": "ci\n"})
    status = forge.ci_status(sha)
    assert isinstance(status, CIStatus)
    assert (status.sha, status.state, status.contexts) == (sha, "none", ())

    forge.set_status(sha, context="agentmesh/tests", state="pending", description="running")
    assert forge.ci_status(sha).state == "pending"

    forge.set_status(sha, context="agentmesh/tests", state="success", description="42 passed")
    forge.set_status(sha, context="agentmesh/lint", state="success")
    status = forge.ci_status(sha)
    assert status.state == "success"
    assert {c.context: c.state for c in status.contexts} == {"agentmesh/tests": "success", "agentmesh/lint": "success"}

    forge.set_status(sha, context="agentmesh/lint", state="failure", description="E501",
                     target_url="https://ci.example/1")
    status = forge.ci_status(sha)
    assert status.state == "failure"
    assert [c.context for c in status.failing()] == ["agentmesh/lint"]


# --- content and identity ---------------------------------------------------------------------


def test_read_file(forge_env):
    forge = forge_env.forge
    branch = _unique("feature/conf-read")
    sha = forge_env.push_branch(branch, {"docs/note.md": "# Note\n\nünïcode ✓\n"})
    assert forge.read_file("docs/note.md", branch) == "# Note\n\nünïcode ✓\n"
    assert forge.read_file("docs/note.md", sha) == "# Note\n\nünïcode ✓\n"
    assert forge.read_file("docs/missing.md", branch) is None


def test_delete_branch_is_idempotent(forge_env):
    forge = forge_env.forge
    branch = _unique("feature/conf-delete")
    forge_env.push_branch(branch, {"gone.txt": "gone\n"})
    assert forge.read_file("gone.txt", branch) == "gone\n"
    forge.delete_branch(branch)
    forge.delete_branch(branch)
    assert forge.read_file("gone.txt", branch) is None


def test_current_user_and_permission(forge_env):
    forge = forge_env.forge
    me = forge.current_user()
    assert isinstance(me, str) and me
    assert forge.permission(me) in ("admin", "write")


__all__ = [name for name in dir() if name.startswith("test_")]
