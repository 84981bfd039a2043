"""Who wrote a review or a comment, by the roster: the only source of trust besides verified signatures.

With a roster on the base branch, a review or comment is an agent's or a maintainer's only when:
- on Gitea/GitHub, its author login is the roster's login of that agent or maintainer (the forge
  authenticated the account);
- on the local forge, where anyone who can push could write any author name, the item commit
  that last wrote it verifies as that agent's (or maintainer's) key.
Every other review is dropped before any decision; every other comment keeps its text but its
author is marked unverified, so no trust decision counts it. Reviewers are named by their roster
principal: the agent's name, or `maintainer:<login>`. Without a roster, nothing changes (`doctor` warns).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Protocol, TypeVar

from agentmesh.core.model import Comment, LabelEvent, Review
from agentmesh.host.roster import MAINTAINER_PREFIX, Roster
from agentmesh.refs.identity import Identity

UNVERIFIED_PREFIX = "unverified:"  # agent names and forge logins have no colon: a marked author is never one


class Authored(Protocol):
    @property
    def author(self) -> str: ...

    @property
    def recorded_in(self) -> str | None: ...


def _principal(roster: Roster, login: str) -> str | None:
    """The roster principal whose forge login `login` is, or None."""
    if (agent := roster.agent_by_login(login)) is not None:
        return agent.name
    maintainer = roster.maintainer(login)
    return MAINTAINER_PREFIX + maintainer.login if maintainer else None


def _vouched(records: Sequence[Authored], *, roster: Roster, identity: Identity, local: bool) -> list[str | None]:
    """The roster principal behind each record's author, or None where the roster does not vouch for it."""
    if not local:
        return [_principal(roster, r.author) for r in records]
    signers = identity.signers([r.recorded_in for r in records if r.recorded_in])
    return [who if r.recorded_in and (who := signers.get(r.recorded_in)) in (r.author, MAINTAINER_PREFIX + r.author)
            else None for r in records]


def verified_reviews(reviews: Sequence[Review], *, roster: Roster | None, identity: Identity,
                     local: bool) -> list[Review]:
    """The reviews whose author the roster vouches for, each renamed to its roster principal."""
    if roster is None:
        return list(reviews)
    principals = _vouched(reviews, roster=roster, identity=identity, local=local)
    return [replace(r, author=who) for r, who in zip(reviews, principals) if who]


Marked = TypeVar("Marked", Comment, LabelEvent)


def verified_comments(comments: Sequence[Marked], *, roster: Roster | None, identity: Identity,
                      local: bool) -> list[Marked]:
    """Every comment (or label change), its author kept where the roster vouches for it and marked
    unverified otherwise (`unverified:<author>`: never an agent, login or maintainer, so never trusted,
    never "mine")."""
    if roster is None:
        return list(comments)
    principals = _vouched(comments, roster=roster, identity=identity, local=local)
    return [c if who else replace(c, author=UNVERIFIED_PREFIX + c.author) for c, who in zip(comments, principals)]


def maintainers(roster: Roster | None) -> list[str]:
    """The roster principals of the maintainers: their approvals count like a ring sibling's."""
    return [MAINTAINER_PREFIX + m.login for m in roster.maintainers] if roster else []


def review_logins(roster: Roster | None, names: Sequence[str]) -> list[str]:
    """The forge accounts to request reviews from: the roster's login of each agent."""
    if roster is None:
        return list(names)
    return [entry.forge_login if (entry := roster.agent(name)) else name for name in names]


def agent_logins(roster: Roster | None, *, local: bool) -> dict[str, str] | None:
    """The forge login each agent opens its PRs under, or None where an account is named like its
    agent: without a roster, and on the local forge (whose authors are self-declared anyway)."""
    if roster is None or local:
        return None
    return {entry.name: entry.forge_login for entry in roster.agents}
