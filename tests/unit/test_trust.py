"""Which reviews and comments the roster vouches for, on Gitea/GitHub (by forge login) and on the local
forge (by the signature of the item commit that wrote them)."""

from __future__ import annotations

import base64

from agentmesh.agent.trust import maintainers, review_logins, verified_comments, verified_reviews
from agentmesh.core.markers import count_attempts
from agentmesh.core.model import Comment, Review
from agentmesh.host.roster import MAINTAINER_PREFIX, Roster

KEY_A = "ssh-ed25519 " + base64.b64encode(b"\x00\x00\x00\x0bssh-ed25519\x00\x00\x00\x20" + b"a" * 32).decode()
KEY_B = "ssh-ed25519 " + base64.b64encode(b"\x00\x00\x00\x0bssh-ed25519\x00\x00\x00\x20" + b"b" * 32).decode()
ROSTER = Roster.model_validate({"agents": [{"name": "ada", "key": KEY_A, "login": "ada-bot"},
                                           {"name": "bob", "key": KEY_B}],
                                "maintainers": [{"login": "grace"}]})


class Signers:
    """The one thing verified_reviews and verified_comments ask of an Identity: who signed these commits."""

    def __init__(self, known: dict[str, str]):
        self.known = known

    def signers(self, shas):
        return {sha: self.known.get(sha) for sha in shas}


def review(author: str, recorded_in: str | None = None, state="APPROVED") -> Review:
    return Review(id=1, author=author, state=state, commit_id="h" * 40, recorded_in=recorded_in)


def test_on_a_forge_with_accounts_the_roster_login_names_the_reviewer():
    reviews = [review("ada-bot"), review("ada"), review("bob"), review("GRACE"), review("mallory")]
    found = verified_reviews(reviews, roster=ROSTER, identity=Signers({}), local=False)
    assert [r.author for r in found] == ["ada", "bob", "maintainer:grace"]


def test_on_the_local_forge_only_a_signature_matching_the_author_counts():
    reviews = [review("bob", "c1"), review("bob", "c2"), review("ada", None), review("grace", "c3")]
    signed = Signers({"c1": "bob", "c2": "ada", "c3": "maintainer:grace"})
    found = verified_reviews(reviews, roster=ROSTER, identity=signed, local=True)
    assert [(r.author, r.recorded_in) for r in found] == [("bob", "c1"), ("maintainer:grace", "c3")]


def test_without_a_roster_nothing_is_filtered_and_names_are_logins():
    reviews = [review("anyone")]
    assert verified_reviews(reviews, roster=None, identity=Signers({}), local=True) == reviews
    assert review_logins(None, ["ada"]) == ["ada"] and maintainers(None) == []
    assert review_logins(ROSTER, ["ada", "bob"]) == ["ada-bot", "bob"]
    assert maintainers(ROSTER) == ["maintainer:grace"]


def comment(author: str, recorded_in: str | None = None, body="<!-- agentmesh:attempt/ada/1 -->") -> Comment:
    return Comment(id=1, author=author, body=body, recorded_in=recorded_in)


def test_on_the_local_forge_a_comment_keeps_its_author_only_when_the_signature_matches():
    comments = [comment("ada", "c1"), comment("ada", "c2"), comment("ada"), comment("grace", "c3"),
                comment("maintainer:grace", "c3"), comment("mallory", "c4")]
    signed = Signers({"c1": "ada", "c2": "bob", "c3": "maintainer:grace", "c4": None})
    found = verified_comments(comments, roster=ROSTER, identity=signed, local=True)
    assert [c.author for c in found] == ["ada", "unverified:ada", "unverified:ada", "grace", "maintainer:grace",
                                         "unverified:mallory"]
    assert [c.body for c in found] == [c.body for c in comments]  # the text stays: only who wrote it is judged


def test_on_a_forge_with_accounts_a_comment_keeps_its_author_only_for_a_roster_login():
    comments = [comment("ada-bot"), comment("ada"), comment("bob"), comment("GRACE"), comment("mallory")]
    found = verified_comments(comments, roster=ROSTER, identity=Signers({}), local=False)
    assert [c.author for c in found] == ["ada-bot", "unverified:ada", "bob", "GRACE", "unverified:mallory"]


def test_an_unverified_author_is_never_trusted_nor_mine():
    """What AgentRun.trusted asks of the roster, and what ensure_comment compares with its own name."""
    forged = verified_comments([comment("ada"), comment("maintainer:grace")], roster=ROSTER,
                               identity=Signers({}), local=True)
    for c in forged:
        assert c.author != "ada"
        assert ROSTER.agent(c.author) is None and ROSTER.agent_by_login(c.author) is None
        assert not ROSTER.is_maintainer(c.author.removeprefix(MAINTAINER_PREFIX))
    assert count_attempts(forged, {c.author for c in forged if ROSTER.agent(c.author)}) == 0


def test_without_a_roster_comments_are_left_as_the_forge_gave_them():
    comments = [comment("anyone", "c1"), comment("ada")]
    assert verified_comments(comments, roster=None, identity=Signers({}), local=True) == comments
    assert verified_comments(comments, roster=None, identity=Signers({}), local=False) == comments
