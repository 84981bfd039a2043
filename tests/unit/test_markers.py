from agentmesh.core.markers import (
    attempt_marker,
    closing_references,
    count_attempts,
    marker_text,
    parse_pull_marker,
    pull_marker,
)
from agentmesh.core.model import Comment

SHA = "a" * 40


def test_closing_references():
    assert closing_references("Closes #3\nfixes #4, Resolves: #5 and fixed #3") == [3, 4, 5]
    assert closing_references("closes#3 or encloses #4 or see #5") == []


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
