import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agentmesh.core.markers import (
    attempt_marker,
    attempts_ever,
    closing_references,
    count_attempts,
    marker_text,
    parse_pull_marker,
    pull_marker,
    requeue_marker,
    since_requeue,
    strip_issue_keywords,
)
from agentmesh.core.model import Comment

SHA = "a" * 40


def test_closing_references():
    assert closing_references("Closes #3\nfixes #4, Resolves: #5 and fixed #3") == [3, 4, 5]
    assert closing_references("closes#3 or encloses #4 or see #5") == []


# GitHub's and Gitea's closing syntax, written independently of agentmesh.core.markers: a keyword, an
# optional colon, then #N, owner/repo#N or an issue URL.
FORGE_CLOSES = re.compile(r"(?i)\b(?:close[sd]?|fix(?:e[sd])?|resolve[sd]?|reopen(?:s|ed)?)\b:?\s*"
                          r"(?:#\d|[\w.-]+/[\w.-]+#\d|gh-\d|https?://)")


@pytest.mark.parametrize("title, kept", [
    ("Closes #1 Fixes #2", ""),
    ("Add a greeting, fixes: #12", "Add a greeting"),
    ("Closes #1, Fixes: #2; fix the login", "fix the login"),
    ("Refactor (resolves owner/repo#3)", "Refactor ( )"),
    ("Fix https://github.com/o/r/issues/4 now", "now"),
    ("CLOSED #1, #2 and #3 then", "then"),
    ("Fix Closes #1 #2", ""),  # removing the inner one joins the outer keyword to #2
    ("Fixes issue #7", ""),
    ("Reopens #5 please", "please"),
    ("Fix the login bug", "Fix the login bug"),
    ("Fix bug #3 in the parser", "Fix bug #3 in the parser"),  # no forge closes on this
    ("Resolve merge conflicts", "Resolve merge conflicts"),
])
def test_strip_issue_keywords(title, kept):
    assert strip_issue_keywords(title) == kept
    assert not FORGE_CLOSES.search(strip_issue_keywords(title))


@given(st.lists(st.sampled_from(["Closes", "fixes", "Fix", "resolved:", "#1", "#22", "o/r#3", "x", ",", "and",
                                 " ", "  ", "(", ")", "close", "d", "s"]), max_size=12))
def test_strip_issue_keywords_leaves_nothing_a_forge_closes_on(parts):
    assert not FORGE_CLOSES.search(strip_issue_keywords("".join(parts)))


def test_pull_marker_round_trip():
    body = f"Closes #7\n\n{marker_text(pull_marker('host1-a', 7, SHA))}\n"
    parsed = parse_pull_marker(body)
    assert (parsed.agent, parsed.issue, parsed.claim_sha) == ("host1-a", 7, SHA)


def test_pull_marker_rejects_lookalikes():
    assert parse_pull_marker("<!-- agentmesh:pr/Evil Agent/7/" + SHA + " -->") is None
    assert parse_pull_marker("<!-- agentmesh:pr/a/7/xyz -->") is None
    assert parse_pull_marker("") is None


def test_attempts_count_only_trusted_authors():
    tag = marker_text(attempt_marker("alice", 1))
    comments = [Comment(1, "alice", tag), Comment(2, "mallory", tag), Comment(3, "bob", "no marker"),
                Comment(4, "bob", marker_text(attempt_marker("bob", 2)) + " failed")]
    assert count_attempts(comments, {"alice", "bob"}) == 2
    assert count_attempts(comments, set()) == 0


def test_a_trusted_requeue_restarts_the_count():
    def attempt(n: int, who: str = "alice") -> Comment:
        return Comment(n, who, marker_text(attempt_marker(who, n)))

    requeued = Comment(3, "ops", marker_text(requeue_marker(2)))
    comments = [attempt(1), attempt(2), requeued, attempt(4)]
    assert count_attempts(comments, {"alice", "ops"}) == 1
    assert since_requeue(comments, {"alice", "ops"}) == [attempt(4)]
    assert attempts_ever(comments, {"alice", "ops"}) == 3
    # a requeue marker from someone untrusted changes nothing
    assert count_attempts(comments, {"alice"}) == 3
    forged = [attempt(1), Comment(2, "mallory", marker_text(requeue_marker(1))), attempt(3)]
    assert count_attempts(forged, {"alice"}) == 2
